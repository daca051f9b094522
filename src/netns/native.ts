// Finds and loads plexus_netns.node (native/plexus_netns.c) on first use, so CNI verbs that never
// touch a namespace (VERSION, most DELs from the journal) do not pay for it.
//
// Where it looks, first hit wins:
//   1. $PLEXUS_ADDON, an explicit path (tests, unusual installs);
//   2. beside the running executable: a single-executable application can load addons only from
//      disk, and the build ships the .node next to the binary;
//   3. beside this code: the esbuild bundle lives in build/ next to the addon;
//   4. build/ of the repo, seen from src/netns (tsx in development and tests).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export const ADDON_FILE = 'plexus_netns.node';

export interface NetnsAddon {
  /**
   * A netlink socket created inside the namespace at nsPath (null: the current one), subscribed to
   * the multicast groups bitmask `groups` (0: none).
   */
  openNetlinkIn(nsPath: string | null, protocol: number, groups: number): number;
  /** Sends one request and returns every message answering it, ending with ERROR or DONE. */
  request(fd: number, message: Buffer): Buffer[];
  /** request() on libuv's threadpool. fd must stay open until the promise settles. */
  requestAsync(fd: number, message: Buffer): Promise<Buffer[]>;
  /**
   * Waits on the threadpool up to timeoutMs for notifications on a subscribed socket and returns
   * every message queued ([] if none came). fd must stay open until the promise settles.
   */
  receiveAsync(fd: number, timeoutMs: number): Promise<Buffer[]>;
  close(fd: number): void;
  /** key is a path below /proc/sys, e.g. "net/ipv4/conf/eth0/arp_notify". */
  writeSysctlIn(nsPath: string | null, key: string, value: string): void;
  readSysctlIn(nsPath: string | null, key: string): string;
  /** Sends one whole Ethernet frame out of ifindex in that namespace; returns bytes sent. */
  /** An AF_PACKET socket inside the namespace, for sending only; the caller closes it. */
  openRawIn(nsPath: string | null): number;
  /** Sends one whole Ethernet frame out of ifindex; returns bytes sent. */
  sendRaw(fd: number, ifindex: number, frame: Buffer): number;
  nsIdentity(path: string): { dev: number; ino: number };
  /** flock(fd, LOCK_EX|LOCK_NB): true when taken, false when held elsewhere. Closing fd unlocks. */
  flockTry(fd: number): boolean;
}

const FUNCTIONS: ReadonlyArray<keyof NetnsAddon> = [
  'openNetlinkIn',
  'request',
  'requestAsync',
  'receiveAsync',
  'close',
  'writeSysctlIn',
  'readSysctlIn',
  'openRawIn',
  'sendRaw',
  'nsIdentity',
  'flockTry',
];

function isAddon(m: unknown): m is NetnsAddon {
  return typeof m === 'object' && m !== null && FUNCTIONS.every((f) => typeof (m as Record<string, unknown>)[f] === 'function');
}

export function addonCandidates(env: NodeJS.ProcessEnv = process.env): string[] {
  const here = typeof __dirname === 'string' ? __dirname : dirname(process.execPath);
  const list = [
    env.PLEXUS_ADDON,
    join(dirname(process.execPath), ADDON_FILE),
    join(here, ADDON_FILE),
    join(here, '..', '..', 'build', ADDON_FILE),
  ];
  return list.filter((p): p is string => typeof p === 'string' && p !== '');
}

let loaded: NetnsAddon | undefined;

export function addon(): NetnsAddon {
  if (loaded) return loaded;
  const candidates = addonCandidates();
  // An explicit PLEXUS_ADDON that is missing is a mistake to report, not to route around.
  const explicit = process.env.PLEXUS_ADDON;
  const path = explicit ? explicit : candidates.find((p) => existsSync(p));
  if (!path || !existsSync(path)) {
    throw new Error(`cannot find ${ADDON_FILE}; looked in: ${candidates.join(', ')} (run scripts/build-addon.sh)`);
  }
  const mod: unknown = createRequire(path)(path);
  if (!isAddon(mod)) throw new Error(`${path} is not a compatible ${ADDON_FILE} (missing functions)`);
  loaded = mod;
  return mod;
}
