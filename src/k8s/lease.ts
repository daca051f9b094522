// Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics
// (tools/leaderelection tryAcquireOrRenew): a Lease is free when absent, when its holder is empty,
// or when its record has not changed for leaseDurationSeconds *as this process observed it*.
// Expiry is judged on the local clock from the moment the record was last seen to change, never
// from the holder's renewTime, so clock skew between nodes cannot make two holders. Every write
// carries the resourceVersion that was read: of two candidates, the API server lets one win and
// answers the other 409.
import { isObject, type JsonObject } from '../cni/validate';
import { KubeApiError, type KubeClient } from './client';

const LEASES = '/apis/coordination.k8s.io/v1/namespaces';

export interface LeaseRecord {
  holderIdentity: string;
  leaseDurationSeconds: number;
  acquireTime: string;
  renewTime: string;
  leaseTransitions: number;
}

export type Election =
  | { role: 'leader'; acquired: boolean }
  | { role: 'follower'; holder: string };

/** MicroTime as the API server writes it: RFC 3339 with microseconds. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export function recordOf(lease: JsonObject): LeaseRecord {
  const spec = isObject(lease.spec) ? lease.spec : {};
  const str = (v: unknown) => (typeof v === 'string' ? v : '');
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
  return {
    holderIdentity: str(spec.holderIdentity),
    leaseDurationSeconds: num(spec.leaseDurationSeconds),
    acquireTime: str(spec.acquireTime),
    renewTime: str(spec.renewTime),
    leaseTransitions: num(spec.leaseTransitions),
  };
}

export class LeaseElector {
  /** The record last read and when it was first seen in that form (client-go's observedTime). */
  private observed: { key: string; atMs: number } | undefined;
  /** The Lease as this process last wrote it (its resourceVersion guards a release). */
  private last: JsonObject | undefined;

  constructor(
    private readonly client: KubeClient,
    readonly namespace: string,
    readonly name: string,
    readonly identity: string,
    readonly durationSeconds: number,
    private readonly now: () => number = Date.now,
  ) {}

  private path(withName: boolean): string {
    const base = `${LEASES}/${encodeURIComponent(this.namespace)}/leases`;
    return withName ? `${base}/${encodeURIComponent(this.name)}` : base;
  }

  /** One round: take the Lease if free, renew it if ours, otherwise report who holds it. */
  async tryAcquireOrRenew(): Promise<Election> {
    const now = this.now();
    let current: JsonObject | undefined;
    try {
      current = await this.client.get(this.path(true), { budgetMs: 5_000 });
    } catch (err) {
      if (!(err instanceof KubeApiError && err.status === 404)) throw err;
    }
    const mine: LeaseRecord = { holderIdentity: this.identity, leaseDurationSeconds: this.durationSeconds, acquireTime: microTime(now), renewTime: microTime(now), leaseTransitions: 0 };
    if (!current) {
      const body: JsonObject = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: this.name, namespace: this.namespace }, spec: { ...mine } };
      return this.write(() => this.client.post(this.path(false), body, { budgetMs: 5_000 }), { role: 'leader', acquired: true });
    }
    const old = recordOf(current);
    const key = JSON.stringify(old);
    if (this.observed?.key !== key) this.observed = { key, atMs: now };
    const ours = old.holderIdentity === this.identity;
    const valid = this.observed.atMs + old.leaseDurationSeconds * 1000 > now;
    if (old.holderIdentity !== '' && valid && !ours) return { role: 'follower', holder: old.holderIdentity };
    const next: LeaseRecord = ours
      ? { ...mine, acquireTime: old.acquireTime || mine.acquireTime, leaseTransitions: old.leaseTransitions }
      : { ...mine, leaseTransitions: old.leaseTransitions + 1 };
    const meta = isObject(current.metadata) ? current.metadata : {};
    // resourceVersion from the read: a competing write in between makes this a 409, not a second leader.
    const body: JsonObject = { ...current, metadata: { ...meta }, spec: { ...(isObject(current.spec) ? current.spec : {}), ...next } };
    return this.write(() => this.client.put(this.path(true), body, { budgetMs: 5_000 }), { role: 'leader', acquired: !ours });
  }

  /**
   * Gives the Lease back if this process holds it (client-go's ReleaseOnCancel): the holder is
   * emptied, so the next candidate takes it at its next round instead of waiting out the duration.
   * false: not ours any more, or another write came first (its resourceVersion guards this one).
   */
  async release(budgetMs = 1_000): Promise<boolean> {
    const last = this.last;
    if (!last || recordOf(last).holderIdentity !== this.identity) return false;
    const now = microTime(this.now());
    const spec = { ...(isObject(last.spec) ? last.spec : {}), holderIdentity: '', leaseDurationSeconds: 1, acquireTime: now, renewTime: now };
    try {
      await this.client.put(this.path(true), { ...last, spec }, { budgetMs });
      this.last = undefined;
      return true;
    } catch (err) {
      if (err instanceof KubeApiError && (err.status === 409 || err.status === 404)) return false;
      throw err;
    }
  }

  private async write(call: () => Promise<JsonObject>, won: Election): Promise<Election> {
    try {
      const stored = await call();
      this.last = stored;
      this.observed = { key: JSON.stringify(recordOf(stored)), atMs: this.now() };
      return won;
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 409) return { role: 'follower', holder: '(another candidate won the race)' };
      throw err;
    }
  }
}
