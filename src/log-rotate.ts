// A log file that rotates like Multus's (lumberjack behind `logOptions`): past maxSize megabytes
// the file is renamed to <name>-<UTC timestamp><ext>, backups beyond maxBackups or older than
// maxAge days are removed, and with `compress` a backup is gzipped (node:zlib, only when asked).
// Several processes append to one file (every one-shot CNI call is a process, plus the daemon):
// writes are O_APPEND, the size is the file's, not this process's count, and a file renamed under
// us by another process is noticed by its inode and reopened.
import { closeSync, createReadStream, createWriteStream, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { pipeline } from 'node:stream';
import { createGzip, gzipSync } from 'node:zlib';

export interface RotateOptions {
  /** Megabytes before rotating; 0 or unset: never (lumberjack's default is 100). */
  maxSize?: number;
  /** Days to keep backups; 0 or unset: no age limit. */
  maxAge?: number;
  /** Backups to keep; 0 or unset: all. */
  maxBackups?: number;
  compress?: boolean;
}

const DAY_MS = 86_400_000;

function stamp(d: Date): string {
  // lumberjack's backup time format, 2006-01-02T15-04-05.000: sortable and safe in file names.
  return d.toISOString().replace(/:/g, '-').replace(/Z$/, '');
}

export class RotatingFile {
  private fd = -1;
  private ino = -1;

  /** `background`: compress asynchronously (a long-lived daemon); else before returning (one-shot). */
  constructor(
    readonly path: string,
    private readonly o: RotateOptions,
    private readonly background = false,
  ) {}

  private open(): void {
    mkdirSync(dirname(this.path), { recursive: true });
    this.fd = openSync(this.path, 'a', 0o644);
    this.ino = fstatSync(this.fd).ino;
  }

  write(line: string): void {
    if (this.fd < 0) this.open();
    const max = (this.o.maxSize ?? 0) * 1024 * 1024;
    if (max > 0) {
      let current: number;
      try {
        current = statSync(this.path).ino;
      } catch {
        current = -1;
      }
      if (current !== this.ino) {
        closeSync(this.fd);
        this.open();
      }
      const size = fstatSync(this.fd).size;
      if (size > 0 && size + Buffer.byteLength(line) > max) this.rotate();
    }
    writeSync(this.fd, line);
  }

  private rotate(): void {
    const ext = extname(this.path);
    const backup = join(dirname(this.path), `${basename(this.path, ext)}-${stamp(new Date())}${ext}`);
    closeSync(this.fd);
    this.fd = -1;
    try {
      renameSync(this.path, backup);
    } catch {
      // another process rotated it first: append to the new file
    }
    this.open();
    if (this.o.compress) this.compress(backup);
    this.prune();
  }

  private compress(file: string): void {
    const done = () => {
      try {
        unlinkSync(file);
      } catch {
        // already compressed by someone else
      }
      this.prune();
    };
    if (!this.background) {
      try {
        writeFileSync(`${file}.gz`, gzipSync(readFileSync(file)));
        done();
      } catch {
        // leave the plain backup; it still counts against maxBackups
      }
      return;
    }
    pipeline(createReadStream(file), createGzip(), createWriteStream(`${file}.gz`), (err) => {
      if (!err) done();
    });
  }

  /** Backups of this file, newest first. */
  backups(): string[] {
    const ext = extname(this.path);
    const stem = `${basename(this.path, ext)}-`;
    const dir = dirname(this.path);
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return [];
    }
    return names
      .filter((n) => n.startsWith(stem) && /^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}/.test(n.slice(stem.length)) && (n.endsWith(ext) || n.endsWith(`${ext}.gz`)))
      .sort()
      .reverse()
      .map((n) => join(dir, n));
  }

  private prune(): void {
    // A backup being compressed exists twice for a moment (plain and .gz): count it once.
    const groups = new Map<string, string[]>();
    for (const f of this.backups()) {
      const key = f.replace(/\.gz$/, '');
      groups.set(key, [...(groups.get(key) ?? []), f]);
    }
    const keep = this.o.maxBackups ?? 0;
    const cutoff = (this.o.maxAge ?? 0) > 0 ? Date.now() - (this.o.maxAge ?? 0) * DAY_MS : 0;
    [...groups.values()].forEach((files, i) => {
      const old = cutoff > 0 && files.every((f) => {
        try {
          return statSync(f).mtimeMs < cutoff;
        } catch {
          return false;
        }
      });
      if (!(keep > 0 && i >= keep) && !old) return;
      for (const f of files) {
        try {
          unlinkSync(f);
        } catch {
          // removed by another process
        }
      }
    });
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}
