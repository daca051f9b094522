// The node agent's periodic pool leak sweep: what `plexus ipam gc` does (gcCluster), on a timer,
// so leaks are freed without a person, as Whereabouts' reconciler does, but every few minutes
// instead of once a day. It never runs on a CNI request's path: its own timer, its own API client,
// and a failure is a warning and a metric, never a /readyz or CNI answer.
//
// One agent in the cluster sweeps at a time, elected with the Lease `plexus-ipam-gc` in the pool
// namespace (src/k8s/lease.ts). That Lease elects the sweeper and nothing else: allocation and
// release never read or wait for it (they stay guarded JSON patches, store.ts), so a stuck or
// absent sweeper can delay leak cleanup but never an ADD or DEL. Two sweeps at once (a Lease
// expiring under a long sweep) would still be safe, every release being guarded; the Lease only
// keeps N nodes from doing N times the same reads.
import { CniError } from '../cni/errors';
import { KubeClient } from '../k8s/client';
import { loadClusterAccess } from '../k8s/kubeconfig';
import { LeaseElector } from '../k8s/lease';
import { log } from '../log';
import { gcCluster, type ClusterGcReport } from '../ipam/pool/gc';
import { DEFAULT_NAMESPACE } from '../ipam/pool/layout';
import { PoolApi } from '../ipam/pool/store';
import type { IpamGcConfig } from './config';
import type { Registry } from './metrics';

export const GC_LEASE_NAME = 'plexus-ipam-gc';
/** The first sweep comes this long after start-up (jittered), not at once: a DaemonSet rollout
 * restarts every agent together, and their first reads should not arrive together either. */
const FIRST_DELAY_MAX_MS = 10_000;
/** A sweep's requests wait at most this long each (retries included): a slow API delays a sweep,
 * and the next interval retries it. */
const SWEEP_BUDGET_MS = 30_000;
/** stop() waits this long at most for a request of the sweep still in flight. Leaving it is safe:
 * each release is one guarded patch, applied whole or not at all. */
const STOP_WAIT_MS = 1_000;

export interface IpamGcOptions {
  cfg: IpamGcConfig;
  /** holderIdentity of the Lease: the node name. */
  identity: string;
  kubeconfig: string | undefined;
  registry: Registry;
  random?: () => number;
}

export interface IpamGcLoop {
  /** Ends the loop: no new sweep; one in flight stops at its next entry, awaited up to STOP_WAIT_MS. */
  stop(): Promise<void>;
}

type Outcome = 'swept' | 'skipped' | 'failed';

function metricsOf(registry: Registry, state: { lastSuccess: number; leader: boolean }) {
  const m = {
    runs: registry.counter('plexus_ipam_gc_runs_total', 'Periodic IPAM leak sweeps, by result: swept (this agent held the Lease and swept), skipped (another agent holds it), failed (an error; retried next interval).'),
    freed: registry.counter('plexus_ipam_gc_freed_total', 'IPPool allocations freed by the periodic sweep (pod deleted or re-created).'),
    reservations: registry.counter('plexus_ipam_gc_reservations_deleted_total', 'Orphaned OverlappingRangeIPReservations deleted by the periodic sweep.'),
    duration: registry.histogram('plexus_ipam_gc_duration_seconds', 'Time of one sweep this agent ran, the election excluded.'),
  };
  // Every result from the start, so a rate() or an alert on "failed" sees a zero, not no series.
  for (const result of ['swept', 'skipped', 'failed'] satisfies Outcome[]) m.runs.inc({ result }, 0);
  m.freed.inc({}, 0);
  m.reservations.inc({}, 0);
  registry.gauge('plexus_ipam_gc_last_success_timestamp_seconds', 'Unix time of the last sweep this agent completed (0: none yet).', () => [[{}, state.lastSuccess / 1000]]);
  registry.gauge('plexus_ipam_gc_leader', '1 while this agent holds the sweeper Lease (as of its last election round).', () => [[{}, state.leader ? 1 : 0]]);
  return m;
}

function logReport(namespace: string, report: ClusterGcReport, ms: number): void {
  for (const f of report.freed) log.info('ipam gc freed an allocation', { namespace, pool: f.pool, offset: f.offset, containerId: f.id, pod: f.podref, why: f.why });
  log.info('ipam gc sweep done', { namespace, pools: report.pools, kept: report.kept, freed: report.freed.length, reservationsDeleted: report.reservationsDeleted, ms: Math.round(ms) });
}

export function startIpamGc(o: IpamGcOptions): IpamGcLoop {
  const random = o.random ?? Math.random;
  const state = { lastSuccess: 0, leader: false };
  const m = metricsOf(o.registry, state);
  const abort = new AbortController();
  const intervalMs = o.cfg.intervalSeconds * 1000;
  // Held across two intervals: the holder renews every interval, so one late round (a long
  // sweep, a slow API) does not hand the Lease over; a holder gone is replaced within two.
  const leaseSeconds = 2 * o.cfg.intervalSeconds;
  let conn: { elector: LeaseElector; pools: PoolApi } | undefined;

  const connect = () => {
    if (conn) return conn;
    const access = loadClusterAccess(o.kubeconfig);
    const client = new KubeClient(access, { userAgent: 'plexus-ipam-gc' });
    const namespace = o.cfg.namespace ?? access.namespace ?? DEFAULT_NAMESPACE;
    conn = { elector: new LeaseElector(client, namespace, GC_LEASE_NAME, o.identity, leaseSeconds), pools: new PoolApi(client, namespace, SWEEP_BUDGET_MS) };
    return conn;
  };

  const round = async (): Promise<Outcome> => {
    const { elector, pools } = connect();
    const vote = await elector.tryAcquireOrRenew();
    state.leader = vote.role === 'leader';
    if (vote.role === 'follower') {
      log.debug('ipam gc: another agent holds the sweeper Lease', { holder: vote.holder });
      return 'skipped';
    }
    if (vote.acquired) log.info('ipam gc: this agent is the sweeper now', { lease: `${elector.namespace}/${GC_LEASE_NAME}`, identity: o.identity });
    const t0 = performance.now();
    const report = await gcCluster(pools, { dryRun: false, graceMs: o.cfg.graceSeconds * 1000, signal: abort.signal });
    const ms = performance.now() - t0;
    m.duration.observe({}, ms / 1000);
    m.freed.inc({}, report.freed.length);
    m.reservations.inc({}, report.reservationsDeleted.length);
    state.lastSuccess = Date.now();
    logReport(pools.namespace, report, ms);
    return 'swept';
  };

  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<void> | undefined;
  const schedule = (ms: number) => {
    if (abort.signal.aborted) return;
    timer = setTimeout(tick, ms);
    // The sweep alone never keeps the process alive; the daemon's servers do.
    timer.unref();
  };
  // The next round is scheduled only when this one has ended: two sweeps never overlap.
  const tick = () => {
    timer = undefined;
    inFlight = round()
      .then((outcome) => m.runs.inc({ result: outcome }))
      .catch((err: unknown) => {
        if (abort.signal.aborted) return log.info('ipam gc sweep stopped: the agent is stopping');
        m.runs.inc({ result: 'failed' });
        state.leader = false;
        log.warn('ipam gc sweep failed; retried next interval', { err: err instanceof CniError ? err.message : String(err) });
      })
      .finally(() => {
        inFlight = undefined;
        // ±10 %: agents started together drift apart instead of reading the Lease in step.
        schedule(intervalMs * (0.9 + 0.2 * random()));
      });
  };
  schedule(Math.min(intervalMs, FIRST_DELAY_MAX_MS) * (0.5 + random()));
  log.info('ipam gc: periodic sweep on', { intervalSeconds: o.cfg.intervalSeconds, graceSeconds: o.cfg.graceSeconds, namespace: o.cfg.namespace ?? '(kubeconfig context, else kube-system)', identity: o.identity });

  return {
    async stop() {
      abort.abort();
      if (timer) clearTimeout(timer);
      timer = undefined;
      if (inFlight) {
        let bound: NodeJS.Timeout | undefined;
        await Promise.race([inFlight, new Promise<void>((resolve) => (bound = setTimeout(resolve, STOP_WAIT_MS)))]);
        clearTimeout(bound);
      }
      // Handed back, so a rolling update does not leave leaks unswept for two intervals; a crash
      // still leaves the Lease to expire.
      if (state.leader && conn) {
        await conn.elector.release(STOP_WAIT_MS).then(
          (released) => released && log.info('ipam gc: sweeper Lease handed back', { lease: `${conn?.elector.namespace}/${GC_LEASE_NAME}` }),
          (err: unknown) => log.warn('ipam gc: could not hand the sweeper Lease back; it expires instead', { err: String(err) }),
        );
      }
    },
  };
}
