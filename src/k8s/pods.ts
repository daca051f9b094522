// Pods and NetworkAttachmentDefinitions, validated where they enter: the rest of plexus sees
// only these small shapes, never raw API objects.
import { CniError, Code } from '../cni/errors';
import { Fields, isObject, type JsonObject } from '../cni/validate';
import { KubeApiError, MERGE_PATCH, type KubeClient, type RequestOptions } from './client';

export interface PodInfo {
  name: string;
  namespace: string;
  uid: string;
  resourceVersion: string;
  annotations: Record<string, string>;
}

export interface NadInfo {
  name: string;
  namespace: string;
  uid: string;
  /** spec.config when present and non-empty. */
  config?: string;
  annotations: Record<string, string>;
}

export interface PodRef {
  namespace: string;
  name: string;
  /** When set, writes apply only to the pod with this uid, never to a re-created namesake. */
  uid?: string;
}

// Multus thin retries GET pod every 250 ms for up to 2.5 s; the same budget, with backoff.
const READ_DEFAULTS: RequestOptions = { budgetMs: 2500, timeoutMs: 1000 };
const WRITE_DEFAULTS: RequestOptions = { budgetMs: 5000, timeoutMs: 2000 };

const seg = encodeURIComponent;

export function podPath(namespace: string, name: string, subresource?: string): string {
  return `/api/v1/namespaces/${seg(namespace)}/pods/${seg(name)}${subresource ? `/${subresource}` : ''}`;
}

export function nadPath(namespace: string, name: string): string {
  return `/apis/k8s.cni.cncf.io/v1/namespaces/${seg(namespace)}/network-attachment-definitions/${seg(name)}`;
}

function stringMap(f: Fields, key: string): Record<string, string> {
  const m = f.optObj(key);
  if (!m) return {};
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(m.obj)) {
    if (typeof v !== 'string') throw new CniError(m.code, `${m.at(k)}: must be a string`);
    out[k] = v;
  }
  return out;
}

/** Runs a parser over an API object; its errors say which object and which field. */
function validated<T>(what: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof CniError) throw new CniError(Code.DecodeFailure, `${what}: ${err.message}`);
    throw err;
  }
}

function objectMeta(obj: JsonObject, kind: string): Fields {
  const top = new Fields(obj, '', Code.DecodeFailure);
  if (top.optStr('kind') !== undefined && obj.kind !== kind) throw new CniError(Code.DecodeFailure, `kind: expected ${kind}, got ${JSON.stringify(obj.kind)}`);
  return top.obj_('metadata');
}

export function parsePod(obj: JsonObject, what = 'pod'): PodInfo {
  return validated(what, () => {
    const m = objectMeta(obj, 'Pod');
    return {
      name: m.nonEmpty('name'),
      namespace: m.nonEmpty('namespace'),
      uid: m.nonEmpty('uid'),
      resourceVersion: m.optStr('resourceVersion') ?? '',
      annotations: stringMap(m, 'annotations'),
    };
  });
}

export function parseNad(obj: JsonObject, what = 'network-attachment-definition'): NadInfo {
  return validated(what, () => {
    const m = objectMeta(obj, 'NetworkAttachmentDefinition');
    const config = new Fields(obj, '', Code.DecodeFailure).optObj('spec')?.optStr('config');
    const out: NadInfo = { name: m.nonEmpty('name'), namespace: m.nonEmpty('namespace'), uid: m.optStr('uid') ?? '', annotations: stringMap(m, 'annotations') };
    if (config) out.config = config;
    return out;
  });
}

export async function getPod(client: KubeClient, namespace: string, name: string, opts: RequestOptions = {}): Promise<PodInfo> {
  const obj = await client.get(podPath(namespace, name), { ...READ_DEFAULTS, ...opts });
  return parsePod(obj, `pod ${namespace}/${name}`);
}

/** Throws a KubeApiError with status 404 and a message naming the NAD when it does not exist. */
export async function getNad(client: KubeClient, namespace: string, name: string, opts: RequestOptions = {}): Promise<NadInfo> {
  try {
    const obj = await client.get(nadPath(namespace, name), { ...READ_DEFAULTS, ...opts });
    return parseNad(obj, `network-attachment-definition ${namespace}/${name}`);
  } catch (err) {
    if (err instanceof KubeApiError && err.status === 404) {
      throw new KubeApiError({
        status: 404,
        reason: err.reason || 'NotFound',
        message: `cannot find a network-attachment-definition (${name}) in namespace (${namespace}): ${err.message}`,
        method: err.method,
        path: err.path,
      });
    }
    throw err;
  }
}

function recreated(ref: PodRef, err: KubeApiError): KubeApiError {
  return new KubeApiError({
    status: err.status,
    reason: 'UIDMismatch',
    message: `pod ${ref.namespace}/${ref.name} no longer has uid ${ref.uid}: it was deleted and re-created; not writing to the new pod`,
    method: err.method,
    path: err.path,
  });
}

/** A patch whose uid precondition failed: 422 `metadata.uid ... field is immutable`. */
function isUidMismatch(err: unknown): err is KubeApiError {
  if (!(err instanceof KubeApiError)) return false;
  if (err.status === 422) {
    const causes = err.statusDetails?.causes;
    return Array.isArray(causes) ? causes.some((c) => isObject(c) && c.field === 'metadata.uid') : err.message.includes('metadata.uid');
  }
  // PUT carries the uid as a storage precondition instead: 409 "Precondition failed: UID ...".
  return err.status === 409 && err.message.includes('Precondition failed: UID');
}

/**
 * Sets (string) or removes (null) annotations and keeps every other one: a JSON merge patch to
 * pods/<name>/status carrying metadata.uid, so it never lands on a re-created pod. Clusters that
 * grant only `update` on pods/status (Multus's own ClusterRole) answer 403; then it falls back to
 * read-modify-PUT, which is what Multus does. Returns the pod as written.
 */
export async function patchPodAnnotations(
  client: KubeClient,
  ref: PodRef,
  annotations: Record<string, string | null>,
  opts: RequestOptions = {},
): Promise<PodInfo> {
  const o: RequestOptions = { ...WRITE_DEFAULTS, ...opts, retryStatuses: [409, ...(opts.retryStatuses ?? [])] };
  const started = Date.now();
  const metadata: JsonObject = { annotations };
  if (ref.uid) metadata.uid = ref.uid;
  try {
    const obj = await client.patch(podPath(ref.namespace, ref.name, 'status'), { metadata }, MERGE_PATCH, o);
    return parsePod(obj, `pod ${ref.namespace}/${ref.name}`);
  } catch (err) {
    if (isUidMismatch(err)) throw recreated(ref, err);
    if (!(err instanceof KubeApiError && err.status === 403)) throw err;
  }
  const left = (o.budgetMs ?? 0) - (Date.now() - started);
  return updateAnnotations(client, ref, annotations, { ...o, budgetMs: Math.max(0, left) });
}

/** GET, edit, PUT pods/<name>/status; a conflict means someone wrote in between: read again. */
async function updateAnnotations(client: KubeClient, ref: PodRef, annotations: Record<string, string | null>, opts: RequestOptions): Promise<PodInfo> {
  const deadline = Date.now() + (opts.budgetMs ?? 0);
  const what = `pod ${ref.namespace}/${ref.name}`;
  for (;;) {
    const budgetMs = Math.max(0, deadline - Date.now());
    const pod = await client.get(podPath(ref.namespace, ref.name), { ...opts, budgetMs });
    const current = parsePod(pod, what);
    if (ref.uid && current.uid !== ref.uid) {
      throw recreated(ref, new KubeApiError({ status: 409, reason: 'Conflict', message: '', method: 'GET', path: podPath(ref.namespace, ref.name) }));
    }
    const merged: Record<string, string> = { ...current.annotations };
    for (const [k, v] of Object.entries(annotations)) {
      if (v === null) delete merged[k];
      else merged[k] = v;
    }
    (pod.metadata as JsonObject).annotations = merged;
    try {
      const out = await client.put(podPath(ref.namespace, ref.name, 'status'), pod, { ...opts, budgetMs: Math.max(0, deadline - Date.now()), retryStatuses: [] });
      return parsePod(out, what);
    } catch (err) {
      if (isUidMismatch(err)) throw recreated(ref, err);
      if (!(err instanceof KubeApiError && err.status === 409) || Date.now() + 10 >= deadline) throw err;
    }
  }
}
