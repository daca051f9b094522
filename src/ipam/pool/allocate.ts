// Allocation and release against the pool objects. No lock: an allocator reads the pool once,
// picks one of the lowest free addresses at random (so concurrent allocators on other nodes
// rarely pick the same one), and commits it with a patch that succeeds only if that key is still
// absent, then reserves it cluster-wide. A lost race costs one more patch on another address,
// never a re-read of a stale whole object, and a crashed allocator holds nothing. Uncontended:
// GET + PATCH + POST reservation; in the agent, whose recent read of the pool serves a burst of
// its ADDs (PoolViews), PATCH + POST.
import { CniError, Code } from '../../cni/errors';
import { KubeApiError } from '../../k8s/client';
import { log } from '../../log';
import { ipString, netString, size, type Net, type Span } from './addrs';
import type { PoolConf, PoolRange } from './config';
import { isOwn, poolName, reservationName, type Allocation, type Extra, type PoolObject } from './layout';
import type { PoolApi } from './store';

export interface Attachment {
  containerId: string;
  ifname: string;
  /** "namespace/name" as Whereabouts writes it. */
  podref: string;
  podUid?: string;
  /** "namespace/name" of the IPAMClaim the address is bound to. */
  claim?: string;
  node?: string;
}

/** Where one configured range allocates: a shared pool, or this node's slice of it. */
export interface Target {
  range: PoolRange;
  net: Net;
  pool: string;
  free: Span[];
}

export interface Allocated {
  target: Target;
  ip: bigint;
  /** Whether this call wrote it (false: it was already this attachment's, or a claim's). */
  fresh: boolean;
}

/** How many of the lowest free addresses a pick chooses among. */
const SPREAD = 64;
/** Lost pool races before giving up (code 11: the runtime retries). */
const MAX_ATTEMPTS = 24;
/** Addresses found reserved by another pool's pod before giving up: they are occupancy, not races. */
const MAX_HELD_PROBES = 256;

export function sharedTarget(conf: PoolConf, range: PoolRange): Target {
  return { range, net: range.net, pool: poolName(netString(range.net), conf.networkName), free: range.free };
}

function extraOf(att: Attachment): Extra {
  const e: Extra = { cid: att.containerId.slice(0, 12), if: att.ifname };
  if (att.podUid) e.uid = att.podUid;
  if (att.claim) e.claim = att.claim;
  if (att.node) e.node = att.node;
  return e;
}

function allocationAt(att: Attachment, offset: bigint): Allocation {
  return { offset, id: att.containerId, podref: att.podref, ifname: att.ifname, extra: extraOf(att) };
}

/** Up to SPREAD free addresses from the bottom of the range, skipping what the pool and `taken` hold. */
export function candidates(free: readonly Span[], pool: PoolObject, taken: ReadonlySet<bigint>, want = SPREAD): bigint[] {
  const out: bigint[] = [];
  const free1 = (ip: bigint) => !taken.has(ip) && !pool.allocations.has((ip - pool.base).toString());
  for (const s of free) {
    const lo = s.lo - pool.base;
    const hi = s.hi - pool.base;
    if (lo >= 0n && hi <= BigInt(Number.MAX_SAFE_INTEGER)) {
      // A nearly full pool walks thousands of held offsets first: in doubles, not bigints (one-shot, cold).
      const top = Number(hi);
      for (let off = Number(lo); off <= top && out.length < want; off++) {
        if (pool.allocations.has(String(off))) continue;
        const ip = pool.base + BigInt(off);
        if (!taken.has(ip)) out.push(ip);
      }
    } else {
      for (let ip = s.lo; ip <= s.hi && out.length < want; ip++) if (free1(ip)) out.push(ip);
    }
    if (out.length >= want) break;
  }
  return out;
}

function union(a: ReadonlySet<bigint>, b: ReadonlySet<bigint>): Set<bigint> {
  const out = new Set(a);
  for (const v of b) out.add(v);
  return out;
}

function jitter(attempt: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.random() * Math.min(5 * attempt, 50)));
}

export class Allocator {
  constructor(
    readonly api: PoolApi,
    readonly conf: PoolConf,
  ) {}

  private async reserveFor(t: Target, ip: bigint, att: Attachment): Promise<boolean> {
    if (!this.conf.overlapping) return true;
    return this.api.reserve(reservationName(ip, t.net, this.conf.networkName), { containerid: att.containerId, podref: att.podref, ifname: att.ifname });
  }

  private async unreserveFor(t: Target, ip: bigint): Promise<void> {
    if (this.conf.overlapping) await this.api.unreserve(reservationName(ip, t.net, this.conf.networkName));
  }

  /** The reservation for `ip` is this attachment's (left by an earlier attempt of the same ADD). */
  private async reservedByUs(t: Target, ip: bigint, att: Attachment): Promise<boolean> {
    const r = await this.api.getReservation(reservationName(ip, t.net, this.conf.networkName));
    const spec = r && typeof r.spec === 'object' && r.spec !== null && !Array.isArray(r.spec) ? r.spec : undefined;
    return !!spec && spec.podref === att.podref && (spec.containerid === undefined || spec.containerid === att.containerId);
  }

  /** The address `ip` holds in the pool is this attachment's: make sure its cluster-wide reservation is too. */
  private async keepReserved(t: Target, ip: bigint, att: Attachment): Promise<void> {
    if (!this.conf.overlapping) return;
    // Missing after a crash between the pool write and the reservation: this ADD finishes the job.
    if ((await this.reserveFor(t, ip, att)) || (await this.reservedByUs(t, ip, att))) return;
    throw new CniError(Code.Internal, `address ${ipString(ip, t.net.family)} of container ${att.containerId} is also reserved by another pod (OverlappingRangeIPReservation ${reservationName(ip, t.net, this.conf.networkName)}); an overlapping range handed it out twice: DEL this attachment`);
  }

  /**
   * Takes the reservation for an address just written to the pool. Lost (another pool's pod holds
   * it) or failed: the pool entry is taken back, so neither write is left behind alone.
   */
  private async reserveAfterClaim(t: Target, pool: PoolObject, a: Allocation, att: Attachment, ours: boolean): Promise<boolean> {
    let reserved: boolean;
    try {
      reserved = (await this.reserveFor(t, pool.base + a.offset, att)) || (ours && (await this.reservedByUs(t, pool.base + a.offset, att)));
    } catch (err) {
      await this.api.releaseOffset(pool, a).catch(() => undefined);
      throw err;
    }
    if (!reserved) await this.api.releaseOffset(pool, a);
    return reserved;
  }

  /** One address for `att` from target `t`: its existing one, the requested one, or a free one. */
  async allocate(t: Target, att: Attachment, requested?: bigint, claimed?: bigint): Promise<Allocated> {
    // A long-lived process picks free addresses from its recent view of the pool (see PoolViews);
    // requested and claimed addresses are judged on a fresh read.
    const recent = claimed === undefined && requested === undefined ? this.api.recentPool(t.pool) : undefined;
    let fromView = recent !== undefined;
    let pool = recent ?? (await this.api.getOrCreatePool(t.pool, netString(t.net)));
    for (const a of pool.allocations.ofContainer(att.containerId)) {
      if (!isOwn(a, att.containerId, att.ifname)) continue;
      await this.keepReserved(t, pool.base + a.offset, att);
      return { target: t, ip: pool.base + a.offset, fresh: false };
    }
    if (claimed !== undefined) return this.takeClaimed(t, pool, att, claimed);
    if (requested !== undefined) return this.takeRequested(t, pool, att, requested);
    // taken: lost pool races (our view was stale; cleared on a re-read). held: reserved cluster-wide
    // by another pod (an overlapping range's), which a re-read of this pool does not show.
    // pending: what this process's other ADDs are committing right now.
    const pending = this.api.pendingIn(t.pool);
    const taken = new Set<bigint>();
    const held = new Set<bigint>();
    const reread = async () => {
      pool = await this.api.getOrCreatePool(t.pool, netString(t.net));
      fromView = false;
      taken.clear();
    };
    let lost = 0;
    for (let attempt = 1; attempt - held.size <= MAX_ATTEMPTS && held.size <= MAX_HELD_PROBES; attempt++) {
      // Each lost race widens the pick, so many allocators spread out instead of colliding again.
      const spread = SPREAD * 2 ** Math.min(lost, 6);
      let picks = candidates(t.free, pool, union(union(taken, held), pending), spread);
      if (picks.length === 0 && (taken.size > 0 || attempt > 1 || fromView)) {
        // Our view may be stale in the freeing direction only; one fresh read settles it.
        await reread();
        picks = candidates(t.free, pool, union(held, pending), spread);
      }
      if (picks.length === 0) {
        throw new CniError(Code.Internal, `could not allocate IP in range ${t.range.text}${t.pool !== sharedTarget(this.conf, t.range).pool ? ` (this node's slice ${netString(t.net)})` : ''}: all addresses are allocated (IPPool ${pool.namespace}/${pool.name}, ${pool.allocations.size} allocations${held.size ? `, ${held.size} more reserved by other pods' OverlappingRangeIPReservations` : ''}${pending.size ? `, ${pending.size} being allocated by this node` : ''})`);
      }
      this.api.checkRoom(pool);
      const ip = picks[Math.floor(Math.random() * picks.length)] as bigint;
      const a = allocationAt(att, ip - pool.base);
      pending.add(ip);
      try {
        // The pool first, then the reservation (Whereabouts' order): a lost pool race then costs
        // one refused patch, and only the rare overlapping-range collision costs a rollback.
        let committed: boolean;
        try {
          committed = await this.api.claimOffset(pool, a);
        } catch (err) {
          // The pool a kept view shows was deleted since (by hand, or a range re-created): read,
          // which creates it again, and pick anew.
          if (!(fromView && err instanceof KubeApiError && err.status === 404)) throw err;
          await reread();
          continue;
        }
        if (committed) {
          if (await this.reserveAfterClaim(t, pool, a, att, false)) return { target: t, ip, fresh: true };
          held.add(ip);
          lost += 1;
          continue;
        }
      } finally {
        pending.delete(ip);
      }
      taken.add(ip);
      lost += 1;
      // A view kept from earlier calls is likely behind other nodes' writes: read now. A fresh
      // read only lost to a concurrent allocator: try elsewhere, and re-read now and then.
      if (fromView || !pool.hasAnnotations || attempt % 4 === 0) await reread();
      await jitter(attempt);
    }
    if (held.size > MAX_HELD_PROBES) {
      throw new CniError(Code.Internal, `could not allocate IP in range ${t.range.text}: the ${held.size} free addresses tried are reserved by other pods' OverlappingRangeIPReservations (an overlapping range); set network_name to separate the ranges`);
    }
    throw new CniError(Code.TryAgainLater, `could not allocate IP in range ${t.range.text}: ${MAX_ATTEMPTS} attempts lost to concurrent allocations (IPPool ${pool.namespace}/${pool.name})`);
  }

  private holder(pool: PoolObject, offset: bigint): Allocation | undefined {
    return pool.allocations.get(offset.toString());
  }

  /** A requested address (runtimeConfig.ips, static addresses): reserved, or refused when held. */
  private async takeRequested(t: Target, pool: PoolObject, att: Attachment, ip: bigint): Promise<Allocated> {
    for (let attempt = 1; attempt <= 4; attempt++) {
      const held = this.holder(pool, ip - pool.base);
      if (held) {
        throw new CniError(Code.Internal, `requested IP address ${ipString(ip, t.net.family)} is already allocated to container ${held.id} (pod ${held.podref || 'unknown'}) in IPPool ${pool.namespace}/${pool.name}`);
      }
      this.api.checkRoom(pool);
      const a = allocationAt(att, ip - pool.base);
      if (await this.api.claimOffset(pool, a)) {
        if (await this.reserveAfterClaim(t, pool, a, att, true)) return { target: t, ip, fresh: true };
        throw new CniError(Code.Internal, `requested IP address ${ipString(ip, t.net.family)} is reserved by another pod (OverlappingRangeIPReservation ${reservationName(ip, t.net, this.conf.networkName)})`);
      }
      pool = await this.api.getOrCreatePool(t.pool, netString(t.net));
    }
    throw new CniError(Code.TryAgainLater, `requested IP address ${ipString(ip, t.net.family)}: the pool kept changing; try again`);
  }

  /** The address an IPAMClaim holds: handed from the claim's previous pod to this one. */
  private async takeClaimed(t: Target, pool: PoolObject, att: Attachment, ip: bigint): Promise<Allocated> {
    for (let attempt = 1; attempt <= 4; attempt++) {
      const held = this.holder(pool, ip - pool.base);
      if (!held) {
        const a = allocationAt(att, ip - pool.base);
        if (await this.api.claimOffset(pool, a)) {
          if (await this.reserveAfterClaim(t, pool, a, att, true)) return { target: t, ip, fresh: true };
          throw new CniError(Code.Internal, `IPAMClaim ${att.claim ?? ''}: its address ${ipString(ip, t.net.family)} is reserved by another pod (OverlappingRangeIPReservation ${reservationName(ip, t.net, this.conf.networkName)})`);
        }
      } else if (held.extra?.claim === att.claim) {
        if (await this.api.moveOffset(pool, held.id, allocationAt(att, ip - pool.base))) return { target: t, ip, fresh: false };
      } else {
        throw new CniError(Code.Internal, `IPAMClaim ${att.claim ?? ''}: its address ${ipString(ip, t.net.family)} is allocated to container ${held.id} (pod ${held.podref}), not to the claim`);
      }
      pool = await this.api.getOrCreatePool(t.pool, netString(t.net));
    }
    throw new CniError(Code.TryAgainLater, `IPAMClaim ${att.claim ?? ''}: the pool kept changing; try again`);
  }

  /**
   * Frees every allocation of this attachment in target `t`. A claim-bound address stays with its
   * claim unless `releaseClaimed`. Returns the addresses freed.
   */
  async release(t: Target, att: Pick<Attachment, 'containerId' | 'ifname'>, releaseClaimed = false): Promise<bigint[]> {
    const freed: bigint[] = [];
    let pool = await this.api.getPool(t.pool);
    for (let attempt = 1; pool && attempt <= MAX_ATTEMPTS; attempt++) {
      const mine = [...pool.allocations.ofContainer(att.containerId)].filter((a) => isOwn(a, att.containerId, att.ifname) && (releaseClaimed || !a.extra?.claim));
      if (mine.length === 0) break;
      const a = mine[0] as Allocation;
      if (await this.api.releaseOffset(pool, a)) {
        const ip = pool.base + a.offset;
        freed.push(ip);
        await this.unreserveFor(t, ip);
        continue;
      }
      pool = await this.api.getPool(t.pool);
      await jitter(attempt);
    }
    return freed;
  }

  /** Frees one allocation found by GC (it names the container and the exact entry). */
  async releaseEntry(t: Target, pool: PoolObject, a: Allocation): Promise<boolean> {
    if (!(await this.api.releaseOffset(pool, a))) return false;
    await this.unreserveFor(t, pool.base + a.offset);
    return true;
  }
}

/** Addresses in a target, for messages and the bench. */
export function capacity(t: Target): bigint {
  return t.free.reduce((n, s) => n + (s.hi - s.lo + 1n), 0n) || size(t.net);
}

export function logAllocated(a: Allocated, att: Attachment): void {
  log.debug('pool address', { pool: a.target.pool, ip: ipString(a.ip, a.target.net.family), containerId: att.containerId, ifname: att.ifname, fresh: a.fresh });
}
