// The meta-plugin's view of Kubernetes (src/delegates/cluster.ts) on top of this client. Loaded
// only by verbs that need the API, so kubeconfig parsing and TLS stay off every other path.
import type { ClusterApi } from '../delegates/cluster';
import { isNotFound, KubeClient } from './client';
import { createEvent } from './events';
import { loadClusterAccess } from './kubeconfig';
import { getNad, getPod, patchPodAnnotations } from './pods';

/** `kubeconfig` empty means the in-cluster service account; `budgetMs` bounds each call. */
export function kubeClusterApi(kubeconfig: string | undefined, budgetMs: number): ClusterApi {
  const client = new KubeClient(loadClusterAccess(kubeconfig));
  const opts = { budgetMs };
  return {
    getPod: (namespace, name) => getPod(client, namespace, name, opts),
    async getNad(namespace, name) {
      try {
        return await getNad(client, namespace, name, opts);
      } catch (err) {
        if (isNotFound(err)) return null;
        throw err;
      }
    },
    async patchPodAnnotations(pod, annotations) {
      await patchPodAnnotations(client, pod, annotations, opts);
    },
    podEvent: (pod, event) => createEvent(client, { pod, ...event }, { budgetMs: Math.min(budgetMs, 1000) }),
  };
}
