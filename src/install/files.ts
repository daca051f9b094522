// Atomic file replacement for the host's CNI dirs: write a temp name in the same directory, fsync,
// rename over the target, fsync the directory. A runtime that reads or execs the target sees the
// old file or the new one, never a prefix of either; a crash (kill -9, power loss) leaves at most
// a temp file, which the next install removes. Temp names end in neither .conf/.conflist/.json
// nor a plugin name, so no runtime ever loads or execs one.
import { chmodSync, closeSync, copyFileSync, fsyncSync, lstatSync, openSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

const TMP_MARK = '.plexus-tmp.';
const TMP_RE = /^\..*\.plexus-tmp\.(\d+)\.[0-9a-z]+$/;
/** A temp file this old is abandoned even if its pid is (again) alive, e.g. pid 1 in a container. */
const STALE_MS = 10 * 60_000;

let seq = 0;
function tmpPath(target: string): string {
  seq++;
  return join(dirname(target), `.${basename(target)}${TMP_MARK}${process.pid}.${seq.toString(36)}`);
}

function fsyncPath(path: string, flags = 'r'): void {
  const fd = openSync(path, flags);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function commit(tmp: string, target: string): void {
  try {
    renameSync(tmp, target);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  fsyncPath(dirname(target));
}

export function writeAtomic(target: string, data: string | Buffer, mode: number): void {
  const tmp = tmpPath(target);
  try {
    writeFileSync(tmp, data, { mode, flag: 'wx' });
    fsyncPath(tmp, 'r+');
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  commit(tmp, target);
}

export function copyAtomic(src: string, target: string, mode: number): void {
  const tmp = tmpPath(target);
  try {
    copyFileSync(src, tmp);
    fsyncPath(tmp, 'r+');
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  // the mode is set after the copy: copyFileSync takes the source's, which may lack the x bits
  try {
    chmodSync(tmp, mode);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  commit(tmp, target);
}

/** Replaces `target` by a symlink to `to`, unless it already is exactly that link. */
export function symlinkAtomic(to: string, target: string): 'kept' | 'replaced' | 'created' {
  let before: 'absent' | 'same' | 'other' = 'absent';
  try {
    before = lstatSync(target).isSymbolicLink() && readlinkSync(target) === to ? 'same' : 'other';
  } catch {
    /* absent */
  }
  if (before === 'same') return 'kept';
  const tmp = tmpPath(target);
  symlinkSync(to, tmp);
  commit(tmp, target);
  return before === 'other' ? 'replaced' : 'created';
}

/** Content of a file, or undefined when it does not exist. */
export function readIfExists(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function alive(pid: number): boolean {
  if (pid === process.pid) return false; // ours from an earlier life: we made none yet
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes temp files an interrupted install left in `dir`; returns their names. */
export function removeStaleTemps(dir: string, now = Date.now()): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return removed;
  }
  for (const name of names) {
    const m = TMP_RE.exec(name);
    if (!m) continue;
    const path = join(dir, name);
    let old = false;
    try {
      old = now - lstatSync(path).mtimeMs > STALE_MS;
    } catch {
      continue;
    }
    if (old || !alive(Number(m[1]))) {
      try {
        unlinkSync(path);
        removed.push(name);
      } catch {
        /* gone already */
      }
    }
  }
  return removed;
}

export function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
