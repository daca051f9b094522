// Which IPAM plugins need the pod's interface on DEL. dhcp does: its daemon sends the DHCPRELEASE
// from inside the pod's namespace out of CNI_IFNAME, so once the link is gone (deleted, or a host
// device moved back to the host) the release fails with "no such device" and the lease stays held
// on the server until it expires. The IPAM plugins listed here keep their state in a store of their
// own (files, the Kubernetes API) and never touch the link: their DEL may run after it is gone,
// which keeps the meta-plugin's one-request link delete (src/delegates/teardown.ts) and the plugins'
// "address free only once no interface holds it" order. Any other type, unknown ones included, is
// assumed to need the link: a slower DEL is better than a lease leaked on someone's server.
const LINK_FREE_IPAM = new Set(['host-local', 'static', 'whereabouts']);

/** Whether IPAM `type`'s DEL must run while the pod's interface still exists. */
export function ipamNeedsLink(type: string | undefined): boolean {
  return type !== undefined && type !== '' && !LINK_FREE_IPAM.has(type);
}
