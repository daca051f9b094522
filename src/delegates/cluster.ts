// What the meta-plugin needs from Kubernetes, as an interface: verbs that can avoid the API (DEL,
// and ADD when the runtime hands over the pod's annotations) never load the client at all.
import { CniError } from '../cni/errors';

export interface PodInfo {
  namespace: string;
  name: string;
  uid: string;
  annotations: Record<string, string>;
}

export interface NadInfo {
  namespace: string;
  name: string;
  /** spec.config, when present and non-empty. */
  config?: string;
  annotations: Record<string, string>;
}

export interface PodEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export interface ClusterApi {
  getPod(namespace: string, name: string): Promise<PodInfo>;
  /** null when the NAD does not exist. */
  getNad(namespace: string, name: string): Promise<NadInfo | null>;
  /** Merge-patches annotations (null deletes), only if the pod still has `uid`. */
  patchPodAnnotations(pod: PodInfo | { namespace: string; name: string; uid?: string }, annotations: Record<string, string | null>): Promise<void>;
  podEvent(pod: { namespace: string; name: string; uid?: string }, event: PodEvent): Promise<void>;
}

/**
 * The same API whose failures say which call and object they were about: the apiserver's own
 * message ("Unauthorized", "the server is currently unable to handle the request") names
 * neither. Code and details (method, path, HTTP status) are kept; a message that already names
 * the object (a re-created pod, a missing NAD) is left as it is.
 */
export function namingObjects(api: ClusterApi): ClusterApi {
  const about = async <T>(what: string, object: string, call: () => Promise<T>): Promise<T> => {
    try {
      return await call();
    } catch (err) {
      if (!(err instanceof CniError) || err.message.includes(object)) throw err;
      throw new CniError(err.code, `Kubernetes API: ${what} ${object}: ${err.message}`, err.details);
    }
  };
  return {
    getPod: (ns, name) => about('reading pod', `${ns}/${name}`, () => api.getPod(ns, name)),
    getNad: (ns, name) => about('reading network-attachment-definition', `${ns}/${name}`, () => api.getNad(ns, name)),
    patchPodAnnotations: (pod, annotations) => about('writing annotations of pod', `${pod.namespace}/${pod.name}`, () => api.patchPodAnnotations(pod, annotations)),
    podEvent: (pod, event) => api.podEvent(pod, event),
  };
}
