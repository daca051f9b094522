#!/usr/bin/env bash
# Installs the Debian packages plexus's build, tests and demo use, only when missing.
set -euo pipefail
need=()
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
command -v ip >/dev/null || need+=(iproute2)
command -v openssl >/dev/null || need+=(openssl)
command -v gcc >/dev/null || need+=(gcc)
command -v strip >/dev/null || need+=(binutils)
command -v tcpdump >/dev/null || need+=(tcpdump)
[ -x /bin/busybox ] || need+=(busybox-static)   # ping in the policy-routing test; the VM init
command -v nft >/dev/null || need+=(nftables)
command -v iptables >/dev/null || need+=(iptables)
command -v dnsmasq >/dev/null || need+=(dnsmasq-base)   # the DHCP server of test/e2e-dhcp.test.ts
command -v containerd >/dev/null || need+=(containerd)   # test/e2e-containerd.test.ts
command -v runc >/dev/null || need+=(runc)
command -v nsenter >/dev/null || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "install-deps: need root to install: ${need[*]}" >&2; exit 1; fi
  echo "install-deps: installing ${need[*]}"
  # Wait for the dpkg lock rather than fail: on a fresh machine unattended-upgrades holds it.
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${need[@]}" >/dev/null
fi
