// Shapes shared across modules. Results are held in the CNI 1.x shape internally and converted
// at the edges (src/cni/result.ts); delegate configs are kept as their exact bytes elsewhere.
import type { JsonObject } from './validate';

export interface CniInterface {
  name: string;
  mac?: string;
  mtu?: number;
  sandbox?: string;
  socketPath?: string;
  pciID?: string;
}

export interface CniIPConfig {
  address: string; // CIDR
  gateway?: string;
  interface?: number;
}

export interface CniRoute {
  dst: string;
  gw?: string;
  mtu?: number;
  advmss?: number;
  priority?: number;
  table?: number;
  scope?: number;
}

export interface CniDNS {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

/** A result in the 1.x shape (1.0.0 / 1.1.0), whatever version it came in as. */
export interface Result {
  cniVersion: string;
  interfaces?: CniInterface[];
  ips?: CniIPConfig[];
  routes?: CniRoute[];
  dns?: CniDNS;
  /** Fields a plugin returned that the spec does not define; kept so chaining passes them on. */
  extra?: JsonObject;
}

/** One element of k8s.v1.cni.cncf.io/networks, validated (NPWG v1.3 §4.1.2.1). */
export interface NetworkSelectionElement {
  name: string;
  namespace: string;
  interface?: string;
  ips?: string[];
  mac?: string;
  cniArgs?: JsonObject;
  portMappings?: PortMapping[];
  bandwidth?: Bandwidth;
  defaultRoute?: string[];
  infinibandGuid?: string;
  ipamClaimReference?: string;
  deviceID?: string; // Multus extension
}

export interface PortMapping {
  hostPort: number;
  containerPort: number;
  protocol: string; // lower-case tcp/udp/sctp, as containerd sends it
  hostIP?: string;
}

export interface Bandwidth {
  ingressRate?: number;
  ingressBurst?: number;
  egressRate?: number;
  egressBurst?: number;
}

/** One entry of k8s.v1.cni.cncf.io/network-status (NPWG §5 plus the NAD client's keys). */
export interface NetworkStatus {
  name: string;
  interface?: string;
  ips?: string[];
  mac?: string;
  mtu?: number;
  default: boolean;
  dns?: CniDNS;
  'device-info'?: JsonObject;
  gateway?: string[];
  'default-route'?: string[];
}
