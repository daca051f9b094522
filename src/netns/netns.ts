// A handle on one network namespace: a netlink socket created inside it (opened once, reused for
// every request) plus the per-namespace things that cannot go through that socket (/proc/sys,
// raw frames). Every call is synchronous; the addon enters and leaves the namespace within one C
// call, so no JavaScript ever runs while this thread is in another namespace.
import { close, closeSync, openSync } from 'node:fs';
import { NETLINK_ROUTE, NLM_F } from './consts';
import { hasCode, NetlinkError } from './errors';
import { addon } from './native';
import type { Attr } from './nlattr';
import { decodeMessage, encodeMessage, type NlMessage, repliesOrThrow } from './rtnl';

const SELF_NS = '/proc/thread-self/ns/net';
const DUMP_ATTEMPTS = 4;

export interface NsIdentity {
  dev: number;
  ino: number;
}

export class Netns {
  private fd: number;
  private nsFileFd: number | null = null;
  private seq = 0;

  private constructor(
    /** The namespace file this handle was opened from; null for the process's own namespace. */
    readonly path: string | null,
    fd: number,
  ) {
    this.fd = fd;
  }

  /** Opens a handle on the namespace at path (/var/run/netns/x, /proc/<pid>/ns/net, ...). */
  static open(path: string): Netns {
    return new Netns(path, addon().openNetlinkIn(path, NETLINK_ROUTE, 0));
  }

  /** A handle on the namespace this process runs in (the host's, for a CNI plugin). */
  static current(): Netns {
    return new Netns(null, addon().openNetlinkIn(null, NETLINK_ROUTE, 0));
  }

  get closed(): boolean {
    return this.fd < 0;
  }

  close(): void {
    if (this.fd >= 0) addon().close(this.fd);
    this.fd = -1;
    if (this.nsFileFd !== null) closeSync(this.nsFileFd);
    this.nsFileFd = null;
  }

  /**
   * An fd of this namespace's file, for IFLA_NET_NS_FD ("move that link here"). Opened once and
   * closed with the handle. For the current namespace it pins the namespace the handle was for.
   */
  nsFd(): number {
    this.assertOpen();
    if (this.nsFileFd === null) this.nsFileFd = openSync(this.path ?? SELF_NS, 'r');
    return this.nsFileFd;
  }

  identity(): NsIdentity {
    return addon().nsIdentity(this.path ?? SELF_NS);
  }

  /**
   * Sends a request that changes or reads one object and waits for the kernel's ACK.
   * Returns the data messages the kernel sent before the ACK (a GET's answer); throws
   * NetlinkError with the kernel's errno and extack on refusal.
   */
  request(type: number, flags: number, header: Buffer, attrs: readonly Attr[], operation: string): NlMessage[] {
    return repliesOrThrow(this.exchange(type, NLM_F.REQUEST | NLM_F.ACK | flags, header, attrs), operation);
  }

  /**
   * Dumps a table. A dump the kernel marks inconsistent (NLM_F_DUMP_INTR: the table changed
   * mid-dump) or that overflowed the socket (ENOBUFS) is simply asked again: dumps are reads.
   */
  dump(type: number, header: Buffer, attrs: readonly Attr[], operation: string): NlMessage[] {
    for (let attempt = 1; ; attempt++) {
      let answer: NlMessage[];
      let data: NlMessage[];
      try {
        answer = this.exchange(type, NLM_F.REQUEST | NLM_F.DUMP, header, attrs);
        data = repliesOrThrow(answer, operation);
      } catch (err) {
        if (attempt < DUMP_ATTEMPTS && hasCode(err, 'ENOBUFS')) continue;
        throw err;
      }
      // The kernel may flag only the final NLMSG_DONE, so look at the whole answer.
      if (!answer.some((m) => m.flags & NLM_F.DUMP_INTR)) return data;
      if (attempt >= DUMP_ATTEMPTS) throw new NetlinkError(`${operation} (table kept changing during the dump)`, 4 /* EINTR */);
    }
  }

  /**
   * request(), on a socket of its own and off the event loop (libuv's threadpool), for the
   * operations the kernel answers long after their effect is visible (see deleteLinksInGroupEarly).
   * The handle can be used, or closed, meanwhile.
   */
  async requestOffThread(type: number, flags: number, header: Buffer, attrs: readonly Attr[], operation: string): Promise<NlMessage[]> {
    this.assertOpen();
    const a = addon();
    const fd = a.openNetlinkIn(this.path, NETLINK_ROUTE, 0);
    try {
      const answer = await a.requestAsync(fd, encodeMessage(type, NLM_F.REQUEST | NLM_F.ACK | flags, 1, header, attrs));
      return repliesOrThrow(answer.map(decodeMessage), operation);
    } finally {
      a.close(fd);
    }
  }

  /** A socket in this namespace subscribed to rtnetlink multicast groups (an RTMGRP_* bitmask). */
  subscribe(groups: number): Subscription {
    this.assertOpen();
    return new Subscription(addon().openNetlinkIn(this.path, NETLINK_ROUTE, groups));
  }

  private exchange(type: number, flags: number, header: Buffer, attrs: readonly Attr[]): NlMessage[] {
    this.assertOpen();
    this.seq = (this.seq + 1) >>> 0 || 1;
    return addon()
      .request(this.fd, encodeMessage(type, flags, this.seq, header, attrs))
      .map(decodeMessage);
  }

  private assertOpen(): void {
    if (this.fd < 0) throw new Error(`netns handle for ${this.path ?? 'the current namespace'} is closed`);
  }

  /** Runs fn with a handle on path, closing it afterwards. */
  static with<T>(path: string | null, fn: (ns: Netns) => T): T {
    const ns = path === null ? Netns.current() : Netns.open(path);
    try {
      return fn(ns);
    } finally {
      ns.close();
    }
  }
}

/** Kernel notifications, read on the threadpool so that waiting for them never blocks the loop. */
export class Subscription {
  private pending: Promise<unknown> | null = null;
  private closing = false;

  constructor(private fd: number) {}

  /** The notifications that arrive within timeoutMs ([] if none did). One call at a time. */
  async next(timeoutMs: number): Promise<NlMessage[]> {
    if (this.fd < 0 || this.closing) throw new Error('netlink subscription is closed');
    if (this.pending) throw new Error('netlink subscription is already being read');
    const read = addon().receiveAsync(this.fd, timeoutMs);
    this.pending = read;
    try {
      return (await read).map(decodeMessage);
    } finally {
      this.pending = null;
      if (this.closing) this.release();
    }
  }

  /** Closes the socket, or, while a read is on the threadpool, as soon as it returns. */
  close(): void {
    this.closing = true;
    if (!this.pending) this.release();
  }

  private release(): void {
    if (this.fd >= 0) addon().close(this.fd);
    this.fd = -1;
  }
}

/** dev/inode of a namespace file: two paths name the same namespace when these are equal. */
export function nsIdentity(path: string): NsIdentity {
  return addon().nsIdentity(path);
}

export function currentNsIdentity(): NsIdentity {
  return addon().nsIdentity(SELF_NS);
}

export function sameNetns(a: string, b: string): boolean {
  const x = nsIdentity(a);
  const y = nsIdentity(b);
  return x.dev === y.dev && x.ino === y.ino;
}

/**
 * Sends whole Ethernet frames out of ifindex inside ns (gratuitous ARP, unsolicited NA) through
 * one packet socket. Closing a packet socket waits for an RCU grace period (synchronize_net in
 * packet_release, ~9 ms per socket here), so the close runs on libuv's threadpool, off the path
 * of the call that announced.
 */
export function sendRawFrames(ns: Netns, ifindex: number, frames: readonly Buffer[]): number {
  const a = addon();
  const fd = a.openRawIn(ns.path);
  let sent = 0;
  try {
    for (const frame of frames) sent += a.sendRaw(fd, ifindex, frame);
  } finally {
    close(fd, () => undefined);
  }
  return sent;
}

/** One frame: see sendRawFrames. */
export function sendRawFrame(ns: Netns, ifindex: number, frame: Buffer): number {
  return sendRawFrames(ns, ifindex, [frame]);
}
