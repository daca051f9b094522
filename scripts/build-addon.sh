#!/usr/bin/env bash
# Builds the N-API addon plexus uses to act inside network namespaces (native/plexus_netns.c).
# Plain C against Node's own headers: no node-gyp, no node-addon-api, nothing fetched.
# Output: build/plexus_netns.node (ship it beside the plexus executable).
set -euo pipefail
cd "$(dirname "$0")/.."
NODE_INCLUDE=${NODE_INCLUDE:-}
if [ -z "$NODE_INCLUDE" ]; then
  for d in /usr/include/node /usr/local/include/node "$(dirname "$(dirname "$(command -v node)")")/include/node"; do
    if [ -f "$d/node_api.h" ]; then NODE_INCLUDE=$d; break; fi
  done
fi
if [ -z "$NODE_INCLUDE" ] || [ ! -f "$NODE_INCLUDE/node_api.h" ]; then
  echo "build-addon: node_api.h not found; set NODE_INCLUDE (Debian: apt-get install libnode-dev)" >&2
  exit 1
fi
mkdir -p build
out=build/plexus_netns.node
# Rebuild only when the source or this script changed, so the main build stays fast.
fresh=true
for dep in native/plexus_netns.c native/plexus_napi.h native/plexus_netlink.h "$0"; do [ "$out" -nt "$dep" ] || fresh=false; done
if ! $fresh || [ -n "${FORCE:-}" ]; then
  ${CC:-gcc} -O2 -Wall -Wextra -Werror -shared -fPIC -fvisibility=hidden \
    -I"$NODE_INCLUDE" -o "$out.tmp" native/plexus_netns.c
  mv "$out.tmp" "$out"
  echo "build-addon: built $out"
fi
# plexus-shim: the ~1 ms per-call forwarder of daemon mode (native/plexus_shim.c), static so it
# runs on a minimal node OS.
shim=build/plexus-shim
if [ ! "$shim" -nt native/plexus_shim.c ] || [ ! "$shim" -nt "$0" ] || [ -n "${FORCE:-}" ]; then
  ${CC:-gcc} -O2 -Wall -Wextra -Werror -static -o "$shim.tmp" native/plexus_shim.c
  mv "$shim.tmp" "$shim"
  echo "build-addon: built $shim"
fi
