// The node agent's view of the cluster: watch caches of every NetworkAttachmentDefinition and of
// this node's pods, in front of the same API client a one-shot call uses. The meta-plugin gets it
// as its ApiSource and cannot tell the difference, except that an ADD usually reads nothing.
//
// Staleness rule (docs/decisions.md, "watch caches"): a request is served from a cache only while
// that cache is live (listed, and its watch stream open). In the default `pod` consistency, the
// NAD cache must also have reached the version at which the request's pod first appeared on this
// node (its binding); if it has not, one LIST of NADs brings it there (shared by every request
// waiting at that moment). So an ADD sees every NAD change committed before its pod was bound to
// the node, however late the NAD watch is. A NAD missing from the cache is read with a GET.
import { parseCniArgs, podFromArgs } from '../cni/args';
import type { CniEnv } from '../cni/env';
import type { ClusterApi, NadInfo, PodInfo } from '../delegates/cluster';
import { log } from '../log';
import { kubeClusterApi } from '../k8s/cluster-api';
import { isNotFound, KubeClient } from '../k8s/client';
import { Informer } from '../k8s/informer';
import { loadClusterAccess } from '../k8s/kubeconfig';
import { getNad, getPod, parseNad, parsePod } from '../k8s/pods';

/** `pod`: NADs at least as new as the pod's binding (may cost one LIST); `watch`: whatever the watch has (Multus thick). */
export type Consistency = 'pod' | 'watch';

export interface CacheCounters {
  podHits: number;
  podMisses: number;
  nadHits: number;
  nadMisses: number;
  fenceRefreshes: number;
}

const NADS_PATH = '/apis/k8s.cni.cncf.io/v1/network-attachment-definitions';
const PODS_PATH = '/api/v1/pods';

export class ClusterCache {
  readonly nads: Informer<NadInfo>;
  readonly pods: Informer<PodInfo & { resourceVersion: string }> | undefined;
  readonly counters: CacheCounters = { podHits: 0, podMisses: 0, nadHits: 0, nadMisses: 0, fenceRefreshes: 0 };
  private readonly client: KubeClient;

  constructor(
    private readonly kubeconfig: string | undefined,
    nodeName: string | undefined,
    private readonly consistency: Consistency,
    watchTimeoutS?: number,
  ) {
    this.client = new KubeClient(loadClusterAccess(kubeconfig), { userAgent: 'plexus-daemon' });
    const common = { client: this.client, ...(watchTimeoutS ? { watchTimeoutS } : {}) };
    this.nads = new Informer({ ...common, path: NADS_PATH, parse: (o) => parseNad(o) });
    // Without a node name there is no way to scope a pod watch to this node: pods are then read.
    this.pods = nodeName ? new Informer({ ...common, path: PODS_PATH, fieldSelector: `spec.nodeName=${nodeName}`, parse: (o) => parsePod(o) }) : undefined;
  }

  start(): void {
    this.nads.start();
    this.pods?.start();
  }

  async stop(): Promise<void> {
    await Promise.all([this.nads.stop(), this.pods?.stop()]);
  }

  synced(): boolean {
    return this.nads.synced && (this.pods?.synced ?? true);
  }

  whenSynced(timeoutMs: number): Promise<boolean> {
    return Promise.all([this.nads.whenSynced(timeoutMs), this.pods?.whenSynced(timeoutMs) ?? true]).then((r) => r.every(Boolean));
  }

  /** The ClusterApi of one request: reads from the caches under the rule above, writes direct. */
  forRequest(env: CniEnv, budgetMs: number): ClusterApi {
    const direct = kubeClusterApi(this.kubeconfig, budgetMs);
    let ref: { namespace: string; name: string; uid?: string } | undefined;
    try {
      ref = podFromArgs(parseCniArgs(env.args));
    } catch {
      ref = undefined; // the meta-plugin reports bad CNI_ARGS itself
    }
    // The version the NAD cache must have reached for this request (pod consistency).
    let fence: number | undefined;
    const cachedPod = (ns: string, name: string) => {
      if (!this.pods?.live) return undefined;
      const e = this.pods.get(`${ns}/${name}`);
      // A uid other than the runtime's: the pod was re-created and the cache has not caught up.
      if (!e || (ref?.uid && ref.namespace === ns && ref.name === name && e.value.uid !== ref.uid)) return undefined;
      return e;
    };
    const readNad = async (ns: string, name: string): Promise<NadInfo | null> => {
      this.counters.nadMisses += 1;
      try {
        return await getNad(this.client, ns, name, { budgetMs });
      } catch (err) {
        if (isNotFound(err)) return null;
        throw err;
      }
    };
    return {
      getPod: async (ns, name) => {
        const e = cachedPod(ns, name);
        if (e) {
          this.counters.podHits += 1;
          fence ??= e.firstRv;
          return e.value;
        }
        this.counters.podMisses += 1;
        const pod = await getPod(this.client, ns, name, { budgetMs });
        fence ??= Number(pod.resourceVersion) || undefined;
        return pod;
      },
      getNad: async (ns, name) => {
        if (!this.nads.live) return readNad(ns, name);
        if (this.consistency === 'pod') {
          const f = fence ?? (ref ? cachedPod(ref.namespace, ref.name)?.firstRv : undefined);
          if (f === undefined || this.nads.rv < f) {
            this.counters.fenceRefreshes += 1;
            try {
              await this.nads.refresh();
            } catch (err) {
              log.verbose('watch cache: refreshing NADs failed, reading the NAD', { err: (err as Error).message });
              return readNad(ns, name);
            }
            // The LIST is as new as anything this request has seen: later NADs of it need no other.
            fence = Math.min(fence ?? this.nads.rv, this.nads.rv);
          }
        }
        const e = this.nads.get(`${ns}/${name}`);
        if (e) {
          this.counters.nadHits += 1;
          return e.value;
        }
        return readNad(ns, name);
      },
      patchPodAnnotations: (pod, annotations) => direct.patchPodAnnotations(pod, annotations),
      podEvent: (pod, event) => direct.podEvent(pod, event),
    };
  }
}
