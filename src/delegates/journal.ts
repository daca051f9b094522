// The crash-safe record of what plexus attached to a container. Written atomically before the
// first delegate runs and after each one finishes, so DEL always knows what to tear down.
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { CniError, Code, errnoOf } from '../cni/errors';
import { Fields, isObject, parseObject, type JsonObject } from '../cni/validate';

export type AttachmentState = 'planned' | 'added';

export interface AttachmentRecord {
  /** Position in the full list of networks (the cluster network is 0), as Multus numbers them. */
  index: number;
  /** The name network-status uses: `ns/name` for NADs, the conf name for the cluster network. */
  network: string;
  ifname: string;
  isDefault: boolean;
  /** The network configuration's exact bytes (conf or conflist). */
  config: string;
  capabilityArgs: JsonObject;
  cniArgs?: JsonObject;
  /** CNI_ARGS given to the delegate. */
  args: string;
  state: AttachmentState;
  /** The final ADD result, in the network's own cniVersion. */
  result?: JsonObject;
  deviceInfoFile?: string;
  /** The device-plugin resource the NAD names, and the pod's device given to this attachment. */
  resourceName?: string;
  deviceID?: string;
  /** NPWG default-route gateways this attachment was asked to carry (may be empty). */
  defaultRoute?: string[];
}

export interface PodRef {
  namespace: string;
  name: string;
  uid?: string;
}

export interface JournalRecord {
  kind: 'plexusJournal';
  version: 1;
  containerId: string;
  netns: string;
  ifname: string;
  cniVersion: string;
  pod?: PodRef;
  attachments: AttachmentRecord[];
}

// A leading underscore cannot start a container ID, so Multus's `<cniDir>/<containerID>` scratch
// files can never collide with this directory, and they stay readable beside it for migration.
export const JOURNAL_DIR = '_plexus';

export function journalDir(cniDir: string): string {
  return join(cniDir, JOURNAL_DIR);
}

export function journalPath(cniDir: string, containerId: string): string {
  return join(journalDir(cniDir), `${containerId}.json`);
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes the whole record atomically: temp file, fsync, rename, fsync the directory. `durable`
 * false skips the two fsyncs: for a record that only adds a delegate's result to an intent that
 * is already on disk. The rename still makes it atomic for a crashed or killed process (the page
 * cache outlives it); only an OS crash can lose it, and that also destroys the pod's links, while
 * the durable intent record still names every attachment for DEL. An fsync on a busy node's disk
 * costs 1-20 ms, and ADD writes a result record per attachment.
 */
export function writeJournal(cniDir: string, rec: JournalRecord, durable = true): void {
  const dir = journalDir(cniDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const final = journalPath(cniDir, rec.containerId);
  const tmp = `${final}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, JSON.stringify(rec));
    if (durable) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, final);
  if (durable) fsyncDir(dir);
}

export function removeJournal(cniDir: string, containerId: string): void {
  rmSync(journalPath(cniDir, containerId), { force: true });
}

/** Moves a record that cannot be parsed aside, so an operator can look at it later. */
export function quarantineJournal(cniDir: string, containerId: string): string {
  const from = journalPath(cniDir, containerId);
  const to = `${from}.corrupt-${Date.now()}`;
  renameSync(from, to);
  return to;
}

export function listJournaledContainers(cniDir: string): string[] {
  try {
    return readdirSync(journalDir(cniDir))
      .filter((f) => f.endsWith('.json'))
      .map((f) => f.slice(0, -'.json'.length));
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return [];
    throw err;
  }
}

/** The record for a container, null when there is none; a damaged record is an error (code 6). */
export function readJournal(cniDir: string, containerId: string): JournalRecord | null {
  const path = journalPath(cniDir, containerId);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return null;
    throw new CniError(Code.IOFailure, `journal ${path}: ${(err as Error).message}`);
  }
  return parseJournal(text, path);
}

export function parseJournal(text: string, path: string): JournalRecord {
  const obj = parseObject(text, `journal ${path}`, Code.DecodeFailure);
  const f = new Fields(obj, `journal ${path}`, Code.DecodeFailure);
  if (f.str('kind') !== 'plexusJournal' || f.int('version', 1, 1) !== 1) {
    throw new CniError(Code.DecodeFailure, `journal ${path}: not a plexus journal record`);
  }
  const podF = f.optObj('pod');
  const pod: PodRef | undefined = podF ? { namespace: podF.str('namespace'), name: podF.str('name'), uid: podF.optStr('uid') } : undefined;
  const attachments = f.arr('attachments').map((a, i): AttachmentRecord => {
    if (!isObject(a)) throw new CniError(Code.DecodeFailure, `journal ${path}: attachments[${i}] must be an object`);
    const af = new Fields(a, `journal ${path}: attachments[${i}]`, Code.DecodeFailure);
    const state = af.str('state');
    if (state !== 'planned' && state !== 'added') throw new CniError(Code.DecodeFailure, `${af.at('state')}: unknown state ${state}`);
    return {
      index: af.int('index', 0, 10000),
      network: af.str('network'),
      ifname: af.str('ifname'),
      isDefault: af.bool('isDefault', false),
      config: af.str('config'),
      capabilityArgs: af.optObj('capabilityArgs')?.obj ?? {},
      cniArgs: af.optObj('cniArgs')?.obj,
      args: af.str('args'),
      state,
      result: af.optObj('result')?.obj,
      deviceInfoFile: af.optStr('deviceInfoFile'),
      resourceName: af.optStr('resourceName'),
      deviceID: af.optStr('deviceID'),
      defaultRoute: af.optStrList('defaultRoute'),
    };
  });
  return {
    kind: 'plexusJournal',
    version: 1,
    containerId: f.str('containerId'),
    netns: f.str('netns'),
    ifname: f.str('ifname'),
    cniVersion: f.str('cniVersion'),
    pod,
    attachments,
  };
}
