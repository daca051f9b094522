// host-local's disk store, file for file what the reference backend/disk writes (v1.1.1), so the
// reference binary and plexus can share one store, even at the same time:
//   <dataDir>/<network>/<ip>                 "<containerID>\r\n<ifname>", created O_EXCL, 0644
//   <dataDir>/<network>/last_reserved_ip.<n> the last address handed out from range set n
//   <dataDir>/<network>/lock                 empty, 0750; every change happens under flock(LOCK_EX)
// Files written by host-local before 0.7 hold the container ID alone; they are matched too.
// Everything inside the lock is synchronous: the critical section never yields to the event loop.
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, unlinkSync, writeFileSync, constants } from 'node:fs';
import { join } from 'node:path';
import { formatIP, parseIP, type IPAddr } from '../../src/cni/addr';
import { addon } from '../../src/netns/native';
import { DEFAULT_DATA_DIR } from './config';

const LAST_IP_PREFIX = 'last_reserved_ip.';
const LINE_BREAK = '\r\n';

/** Go's strings.TrimSpace for the ASCII whitespace these files can hold. */
const trim = (s: string): string => s.replace(/^[\t\n\v\f\r ]+|[\t\n\v\f\r ]+$/g, '');

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface Reservation {
  ip: IPAddr;
  path: string;
  containerId: string;
  /** undefined for a pre-0.7 file that holds the container ID alone */
  ifname: string | undefined;
}

export class DiskStore {
  readonly dir: string;
  private lockFd = -1;

  private constructor(dir: string) {
    this.dir = dir;
  }

  /** disk.New: creates <dataDir>/<network> (0755) and the lock file (0750) when missing. */
  static open(network: string, dataDir: string): DiskStore {
    const dir = join(dataDir || DEFAULT_DATA_DIR, network);
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    return new DiskStore(dir);
  }

  /**
   * Takes the store's flock, as the reference does before every change. The lock is polled
   * (LOCK_NB, 1 ms doubling to 10 ms): a blocking flock would stall a daemon's whole event loop.
   */
  async lock(): Promise<void> {
    if (this.lockFd >= 0) throw new Error('host-local store: lock taken twice');
    const fd = openSync(join(this.dir, 'lock'), constants.O_CREAT | constants.O_RDONLY, 0o750);
    try {
      for (let wait = 1; !addon().flockTry(fd); wait = Math.min(wait * 2, 10)) await sleep(wait);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    this.lockFd = fd;
  }

  /** Closing the descriptor drops the flock. */
  unlock(): void {
    if (this.lockFd < 0) return;
    const fd = this.lockFd;
    this.lockFd = -1;
    closeSync(fd);
  }

  async locked<T>(fn: () => T): Promise<T> {
    await this.lock();
    try {
      return fn();
    } finally {
      this.unlock();
    }
  }

  /** Reserve: false when another attachment holds ip. */
  reserve(id: string, ifname: string, ip: IPAddr, rangeId: string): boolean {
    const name = formatIP(ip);
    const path = join(this.dir, name);
    let fd: number;
    try {
      fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, 0o644);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    }
    try {
      writeFileSync(fd, trim(id) + LINE_BREAK + ifname);
    } catch (err) {
      closeSync(fd);
      unlinkSync(path);
      throw err;
    }
    closeSync(fd);
    writeFileSync(join(this.dir, LAST_IP_PREFIX + rangeId), name, { mode: 0o644 });
    return true;
  }

  lastReservedIP(rangeId: string): IPAddr | undefined {
    try {
      return parseIP(readFileSync(join(this.dir, LAST_IP_PREFIX + rangeId), 'latin1'));
    } catch {
      return undefined;
    }
  }

  /** Every regular file below the store with its trimmed content, in filepath.Walk's (lexical) order. */
  private walk(dir = this.dir, out: { path: string; name: string; data: string }[] = []): typeof out {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return out;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const path = join(dir, e.name);
      if (e.isDirectory()) this.walk(path, out);
      else {
        try {
          out.push({ path, name: e.name, data: trim(readFileSync(path, 'utf8')) });
        } catch {
          // unreadable files are skipped, as the reference does
        }
      }
    }
    return out;
  }

  private releaseMatching(match: string): boolean {
    let found = false;
    for (const f of this.walk()) {
      if (f.data !== match) continue;
      try {
        unlinkSync(f.path);
        found = true;
      } catch {
        // tolerant, like the reference: release as much as possible
      }
    }
    return found;
  }

  /** ReleaseByID: the attachment's files, or failing that the pre-0.7 files of the container. */
  releaseByID(id: string, ifname: string): void {
    if (!this.releaseMatching(trim(id) + LINE_BREAK + ifname)) this.releaseMatching(trim(id));
  }

  /** GetByID: the addresses held by the attachment (or by the container, in pre-0.7 files). */
  getByID(id: string, ifname: string): IPAddr[] {
    const match = trim(id) + LINE_BREAK + ifname;
    const old = trim(id);
    const out: IPAddr[] = [];
    for (const f of this.walk()) {
      if (f.data !== match && f.data !== old) continue;
      const ip = parseIP(f.name);
      if (ip) out.push(ip);
    }
    return out;
  }

  /** FindByID, with the caller holding the lock. */
  findByID(id: string, ifname: string): boolean {
    const files = this.walk();
    const match = trim(id) + LINE_BREAK + ifname;
    return files.some((f) => f.data === match) || files.some((f) => f.data === trim(id));
  }

  /** The reservations at the top of the store (for GC), with their owners. */
  reservations(): Reservation[] {
    const out: Reservation[] = [];
    for (const f of this.walk()) {
      if (f.path !== join(this.dir, f.name)) continue;
      const ip = parseIP(f.name);
      if (!ip) continue;
      const nl = f.data.indexOf(LINE_BREAK);
      out.push(nl < 0 ? { ip, path: f.path, containerId: f.data, ifname: undefined } : { ip, path: f.path, containerId: f.data.slice(0, nl), ifname: f.data.slice(nl + 2) });
    }
    return out;
  }

  release(r: Reservation): void {
    try {
      unlinkSync(r.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}
