// libcni's result cache (<cniDir>/results/<net>-<container>-<ifname>), written for every network
// plexus attaches so tools that read libcni's cache keep working after a switch from Multus.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { formatLibcniCache, libcniCachePath, type LibcniCacheInput } from './multus-cache';


export function writeResultCache(cniDir: string, e: LibcniCacheInput): void {
  const path = libcniCachePath(cniDir, e.networkName, e.containerId, e.ifName);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, formatLibcniCache(e), { mode: 0o600 });
}

export function removeResultCache(cniDir: string, networkName: string, containerId: string, ifName: string): void {
  rmSync(libcniCachePath(cniDir, networkName, containerId, ifName), { force: true });
}
