// CNI_ARGS: "K=V;K=V" (CONVENTIONS.md). Parsed with libcni's rules (pkg/types/args.go LoadArgs)
// because plexus hands the same string to delegates that parse it with libcni: a string we accept
// must not make them fail. Order and duplicates are kept so the string can be rebuilt as given.
import { CniError, Code } from './errors';

export type CniArg = [key: string, value: string];

/**
 * Splits CNI_ARGS into pairs. Empty string = no args. Each pair needs exactly one "=" (libcni
 * splits on every "=", so "K=a=b" fails there too) and a non-empty key; an empty pair (";;" or a
 * trailing ";") is malformed, as in libcni. Errors are code 4 naming the pair.
 */
export function parseCniArgs(s: string): CniArg[] {
  if (s === '') return [];
  return s.split(';').map((pair) => {
    const parts = pair.split('=');
    if (parts.length !== 2) {
      throw new CniError(Code.InvalidEnv, `CNI_ARGS: invalid pair ${JSON.stringify(pair)}: want KEY=VALUE with exactly one "="`);
    }
    const [k, v] = parts as [string, string];
    if (k === '') throw new CniError(Code.InvalidEnv, `CNI_ARGS: invalid pair ${JSON.stringify(pair)}: empty key`);
    return [k, v];
  });
}

/** Rebuilds the CNI_ARGS string; refuses pairs that parseCniArgs would reject. */
export function formatCniArgs(args: readonly CniArg[]): string {
  return args
    .map(([k, v]) => {
      if (k === '' || k.includes('=') || k.includes(';') || v.includes('=') || v.includes(';')) {
        throw new CniError(Code.InvalidEnv, `CNI_ARGS: cannot encode ${JSON.stringify(`${k}=${v}`)}: keys and values must not contain "=" or ";"`);
      }
      return `${k}=${v}`;
    })
    .join(';');
}

/** The value of `key` (the last one when repeated: libcni assigns each pair in turn). */
export function getArg(args: readonly CniArg[], key: string): string | undefined {
  let out: string | undefined;
  for (const [k, v] of args) if (k === key) out = v;
  return out;
}

/** Replaces every `key` pair with one `key=value` at the first one's position, else appends. */
export function setArg(args: readonly CniArg[], key: string, value: string): CniArg[] {
  const out: CniArg[] = [];
  let placed = false;
  for (const a of args) {
    if (a[0] !== key) out.push(a);
    else if (!placed) {
      out.push([key, value]);
      placed = true;
    }
  }
  if (!placed) out.push([key, value]);
  return out;
}

/** IgnoreUnknown, read like libcni's UnmarshallableBool: 1/true/0/false, any case; else code 4. */
export function ignoreUnknown(args: readonly CniArg[]): boolean {
  const v = getArg(args, 'IgnoreUnknown');
  if (v === undefined) return false;
  switch (v.toLowerCase()) {
    case '1':
    case 'true':
      return true;
    case '0':
    case 'false':
      return false;
    default:
      throw new CniError(Code.InvalidEnv, `CNI_ARGS: IgnoreUnknown=${v}: want 1, true, 0 or false`);
  }
}

/**
 * Fails (code 4, listing them) when args hold keys outside `known` and IgnoreUnknown is not set:
 * libcni's LoadArgs contract for a plugin that declares which keys it understands.
 */
export function checkKnownArgs(args: readonly CniArg[], known: readonly string[]): void {
  const allowed = new Set([...known, 'IgnoreUnknown']);
  const unknown = args.filter(([k]) => !allowed.has(k)).map(([k, v]) => `${k}=${v}`);
  if (unknown.length > 0 && !ignoreUnknown(args)) {
    throw new CniError(Code.InvalidEnv, `CNI_ARGS: unknown args ${unknown.map((u) => JSON.stringify(u)).join(', ')} (set IgnoreUnknown=1 to allow them)`);
  }
}

/** The Kubernetes keys kubelet's runtime (containerd, CRI-O) puts into CNI_ARGS. */
export const K8S_ARG_KEYS = ['K8S_POD_NAMESPACE', 'K8S_POD_NAME', 'K8S_POD_INFRA_CONTAINER_ID', 'K8S_POD_UID'] as const;

export interface K8sArgs {
  podNamespace?: string;
  podName?: string;
  /** The sandbox container ID. */
  podInfraContainerId?: string;
  podUid?: string;
}

/** Pod identity from CNI_ARGS; an absent or empty key is left out. */
export function k8sArgs(args: readonly CniArg[]): K8sArgs {
  const out: K8sArgs = {};
  const take = (key: string): string | undefined => {
    const v = getArg(args, key);
    return v === undefined || v === '' ? undefined : v;
  };
  const ns = take('K8S_POD_NAMESPACE');
  const name = take('K8S_POD_NAME');
  const infra = take('K8S_POD_INFRA_CONTAINER_ID');
  const uid = take('K8S_POD_UID');
  if (ns !== undefined) out.podNamespace = ns;
  if (name !== undefined) out.podName = name;
  if (infra !== undefined) out.podInfraContainerId = infra;
  if (uid !== undefined) out.podUid = uid;
  return out;
}

/** The pod to look up, when CNI_ARGS names one (namespace and name both set). */
export function podFromArgs(args: readonly CniArg[]): { namespace: string; name: string; uid?: string } | undefined {
  const k = k8sArgs(args);
  if (k.podNamespace === undefined || k.podName === undefined) return undefined;
  return k.podUid === undefined ? { namespace: k.podNamespace, name: k.podName } : { namespace: k.podNamespace, name: k.podName, uid: k.podUid };
}
