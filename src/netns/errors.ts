// Typed errors for netlink and the namespace addon. Callers branch on .code ('EEXIST' makes an
// ADD idempotent, 'ENODEV'/'ENOENT' make a DEL succeed), so codes must be exact and never parsed
// out of a message string.
import { constants } from 'node:os';

const PREFERRED: Record<number, string> = {
  // Where Linux has two names for one number, use the one the kernel sources use.
  [constants.errno.EOPNOTSUPP]: 'EOPNOTSUPP',
  [constants.errno.EAGAIN]: 'EAGAIN',
  [constants.errno.EDEADLK]: 'EDEADLK',
};

let names: Map<number, string> | undefined;

/** 'EEXIST' for 17, and so on; 'E<n>' for numbers Node does not name. */
export function errnoName(errno: number): string {
  if (!names) {
    names = new Map();
    for (const [name, n] of Object.entries(constants.errno)) if (!names.has(n)) names.set(n, name);
    for (const [n, name] of Object.entries(PREFERRED)) names.set(Number(n), name);
  }
  return names.get(errno) ?? `E${errno}`;
}

// strerror() texts for the errors rtnetlink really returns; others fall back to the name alone.
const TEXT: Record<string, string> = {
  EPERM: 'Operation not permitted',
  ENOENT: 'No such file or directory',
  ESRCH: 'No such process',
  EINTR: 'Interrupted system call',
  EBUSY: 'Device or resource busy',
  EEXIST: 'File exists',
  ENODEV: 'No such device',
  EINVAL: 'Invalid argument',
  ERANGE: 'Numerical result out of range',
  ENOBUFS: 'No buffer space available',
  EOPNOTSUPP: 'Operation not supported',
  EAFNOSUPPORT: 'Address family not supported by protocol',
  EPROTONOSUPPORT: 'Protocol not supported',
  EADDRNOTAVAIL: 'Cannot assign requested address',
  ENETUNREACH: 'Network is unreachable',
  ENETDOWN: 'Network is down',
  EHOSTUNREACH: 'No route to host',
  EADDRINUSE: 'Address already in use',
  ENOTEMPTY: 'Directory not empty',
  E2BIG: 'Argument list too long',
  EMSGSIZE: 'Message too long',
  ENOTSUP: 'Operation not supported',
  ETIMEDOUT: 'Connection timed out',
  EACCES: 'Permission denied',
  ENOMEM: 'Cannot allocate memory',
  ENOSPC: 'No space left on device',
};

export function errnoText(errno: number): string {
  const name = errnoName(errno);
  return `${TEXT[name] ?? 'error'} (${name})`;
}

/** A request the kernel refused. `extack` is the kernel's own explanation when it gave one. */
export class NetlinkError extends Error {
  readonly errno: number;
  readonly code: string;
  readonly extack: string | null;
  /** What plexus was doing, e.g. "create veth pxt0". */
  readonly operation: string;

  constructor(operation: string, errno: number, extack: string | null = null) {
    super(`${operation}: ${errnoText(errno)}${extack ? `: ${extack}` : ''}`);
    this.name = 'NetlinkError';
    this.errno = errno;
    this.code = errnoName(errno);
    this.extack = extack;
    this.operation = operation;
  }
}

/** An error thrown by the addon (open, setns, socket, /proc/sys writes): errno is positive. */
export interface SystemError extends Error {
  errno: number;
  code: string;
  syscall?: string;
}

export function isSystemError(err: unknown): err is SystemError {
  return err instanceof Error && typeof (err as Partial<SystemError>).errno === 'number' && typeof (err as Partial<SystemError>).code === 'string';
}

/** True for NetlinkError or SystemError with one of the given codes. */
export function hasCode(err: unknown, ...codes: string[]): boolean {
  return (err instanceof NetlinkError || isSystemError(err)) && codes.includes(err.code);
}
