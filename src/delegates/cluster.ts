// What the meta-plugin needs from Kubernetes, as an interface: verbs that can avoid the API (DEL,
// and ADD when the runtime hands over the pod's annotations) never load the client at all.
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
