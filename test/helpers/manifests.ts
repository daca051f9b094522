// A structural validator for the Kubernetes kinds deploy/ uses: required fields, types, enums and
// known fields only (a typo such as `mountPropogation` is an error, as `kubectl apply --validate`
// makes it), after the API reference of core/v1, apps/v1, rbac/v1 and apiextensions/v1 — only the
// parts deploy/ can reach, not the whole API. Plus apiextensions' structural-schema rules for a
// CRD's openAPIV3Schema.
import { isObject } from '../../src/cni/validate';

type Type = 'string' | 'integer' | 'boolean' | 'object' | 'array' | 'int-or-string' | 'any';

export interface Schema {
  type: Type;
  required?: string[];
  props?: Record<string, Schema>;
  /** Schema of every value of a map (labels, resources.requests). */
  values?: Schema;
  items?: Schema;
  enum?: string[];
  pattern?: RegExp;
}

const str: Schema = { type: 'string' };
const int: Schema = { type: 'integer' };
const bool: Schema = { type: 'boolean' };
const any: Schema = { type: 'any' };
const strs: Schema = { type: 'array', items: str };
const strMap: Schema = { type: 'object', values: str };
const obj = (props: Record<string, Schema>, required: string[] = []): Schema => ({ type: 'object', props, required });
const list = (items: Schema): Schema => ({ type: 'array', items });
const oneOf = (...values: string[]): Schema => ({ type: 'string', enum: values });
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
// resource.Quantity
const quantity: Schema = { type: 'string', pattern: /^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/ };

const objectMeta = (namespaced: boolean): Schema =>
  obj({ name: { type: 'string', pattern: DNS_SUBDOMAIN }, namespace: { type: 'string', pattern: DNS_LABEL }, labels: strMap, annotations: strMap }, namespaced ? ['name', 'namespace'] : ['name']);

const labelSelector = obj({ matchLabels: strMap, matchExpressions: list(obj({ key: str, operator: oneOf('In', 'NotIn', 'Exists', 'DoesNotExist'), values: strs }, ['key', 'operator'])) });

const probe = obj({
  httpGet: obj({ path: str, port: { type: 'int-or-string' }, host: str, scheme: oneOf('HTTP', 'HTTPS'), httpHeaders: list(obj({ name: str, value: str }, ['name', 'value'])) }, ['port']),
  tcpSocket: obj({ port: { type: 'int-or-string' }, host: str }, ['port']),
  exec: obj({ command: strs }),
  initialDelaySeconds: int,
  periodSeconds: int,
  timeoutSeconds: int,
  successThreshold: int,
  failureThreshold: int,
  terminationGracePeriodSeconds: int,
});

const envVar = obj(
  {
    name: str,
    value: str,
    valueFrom: obj({
      fieldRef: obj({ fieldPath: str, apiVersion: str }, ['fieldPath']),
      configMapKeyRef: obj({ name: str, key: str, optional: bool }, ['key']),
      secretKeyRef: obj({ name: str, key: str, optional: bool }, ['key']),
      resourceFieldRef: obj({ resource: str, containerName: str, divisor: quantity }, ['resource']),
    }),
  },
  ['name'],
);

const container = obj(
  {
    name: { type: 'string', pattern: DNS_LABEL },
    image: str,
    imagePullPolicy: oneOf('Always', 'IfNotPresent', 'Never'),
    command: strs,
    args: strs,
    workingDir: str,
    env: list(envVar),
    ports: list(obj({ name: str, containerPort: int, hostPort: int, protocol: oneOf('TCP', 'UDP', 'SCTP'), hostIP: str }, ['containerPort'])),
    resources: obj({ requests: { type: 'object', values: quantity }, limits: { type: 'object', values: quantity } }),
    securityContext: obj({
      privileged: bool,
      allowPrivilegeEscalation: bool,
      readOnlyRootFilesystem: bool,
      runAsUser: int,
      runAsGroup: int,
      runAsNonRoot: bool,
      capabilities: obj({ add: strs, drop: strs }),
    }),
    livenessProbe: probe,
    readinessProbe: probe,
    startupProbe: probe,
    volumeMounts: list(obj({ name: str, mountPath: str, readOnly: bool, subPath: str, mountPropagation: oneOf('None', 'HostToContainer', 'Bidirectional') }, ['name', 'mountPath'])),
    terminationMessagePolicy: oneOf('File', 'FallbackToLogsOnError'),
    lifecycle: any,
  },
  ['name'],
);

const volume = obj(
  {
    name: { type: 'string', pattern: DNS_LABEL },
    hostPath: obj({ path: str, type: oneOf('', 'DirectoryOrCreate', 'Directory', 'FileOrCreate', 'File', 'Socket', 'CharDevice', 'BlockDevice') }, ['path']),
    configMap: obj({ name: str, defaultMode: int, optional: bool, items: list(obj({ key: str, path: str, mode: int }, ['key', 'path'])) }),
    emptyDir: obj({ medium: str, sizeLimit: quantity }),
    projected: any,
    secret: any,
  },
  ['name'],
);

const podSpec = obj(
  {
    serviceAccountName: str,
    automountServiceAccountToken: bool,
    hostNetwork: bool,
    hostPID: bool,
    hostIPC: bool,
    dnsPolicy: oneOf('ClusterFirst', 'ClusterFirstWithHostNet', 'Default', 'None'),
    priorityClassName: str,
    terminationGracePeriodSeconds: int,
    nodeSelector: strMap,
    affinity: any,
    tolerations: list(obj({ key: str, operator: oneOf('Exists', 'Equal'), value: str, effect: oneOf('NoSchedule', 'PreferNoSchedule', 'NoExecute'), tolerationSeconds: int })),
    initContainers: list(container),
    containers: list(container),
    volumes: list(volume),
    securityContext: any,
  },
  ['containers'],
);

const policyRule = obj({ apiGroups: strs, resources: strs, verbs: strs, resourceNames: strs, nonResourceURLs: strs }, ['verbs']);

export const KINDS: Record<string, { apiVersion: string; namespaced: boolean; schema: Record<string, Schema>; required?: string[] }> = {
  Namespace: { apiVersion: 'v1', namespaced: false, schema: {} },
  ServiceAccount: { apiVersion: 'v1', namespaced: true, schema: { automountServiceAccountToken: bool } },
  ConfigMap: { apiVersion: 'v1', namespaced: true, schema: { data: strMap, binaryData: strMap, immutable: bool } },
  ClusterRole: { apiVersion: 'rbac.authorization.k8s.io/v1', namespaced: false, schema: { rules: list(policyRule), aggregationRule: any } },
  ClusterRoleBinding: {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    namespaced: false,
    required: ['roleRef'],
    schema: {
      roleRef: obj({ apiGroup: oneOf('rbac.authorization.k8s.io'), kind: oneOf('ClusterRole', 'Role'), name: str }, ['apiGroup', 'kind', 'name']),
      subjects: list(obj({ kind: oneOf('ServiceAccount', 'User', 'Group'), name: str, namespace: str, apiGroup: str }, ['kind', 'name'])),
    },
  },
  Role: { apiVersion: 'rbac.authorization.k8s.io/v1', namespaced: true, schema: { rules: list(policyRule) } },
  RoleBinding: {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    namespaced: true,
    required: ['roleRef'],
    schema: {
      roleRef: obj({ apiGroup: oneOf('rbac.authorization.k8s.io'), kind: oneOf('ClusterRole', 'Role'), name: str }, ['apiGroup', 'kind', 'name']),
      subjects: list(obj({ kind: oneOf('ServiceAccount', 'User', 'Group'), name: str, namespace: str, apiGroup: str }, ['kind', 'name'])),
    },
  },
  DaemonSet: {
    apiVersion: 'apps/v1',
    namespaced: true,
    required: ['spec'],
    schema: {
      spec: obj(
        {
          selector: labelSelector,
          template: obj({ metadata: obj({ labels: strMap, annotations: strMap }), spec: podSpec }, ['spec']),
          updateStrategy: obj({ type: oneOf('RollingUpdate', 'OnDelete'), rollingUpdate: obj({ maxUnavailable: { type: 'int-or-string' }, maxSurge: { type: 'int-or-string' } }) }),
          minReadySeconds: int,
          revisionHistoryLimit: int,
        },
        ['selector', 'template'],
      ),
    },
  },
  CustomResourceDefinition: {
    apiVersion: 'apiextensions.k8s.io/v1',
    namespaced: false,
    required: ['spec'],
    schema: {
      spec: obj(
        {
          group: { type: 'string', pattern: DNS_SUBDOMAIN },
          scope: oneOf('Namespaced', 'Cluster'),
          names: obj({ plural: { type: 'string', pattern: DNS_LABEL }, singular: { type: 'string', pattern: DNS_LABEL }, kind: str, listKind: str, shortNames: strs, categories: strs }, ['plural', 'kind']),
          versions: list(
            obj(
              { name: str, served: bool, storage: bool, deprecated: bool, schema: obj({ openAPIV3Schema: { type: 'object', values: any } }, ['openAPIV3Schema']), subresources: obj({ status: obj({}), scale: any }), additionalPrinterColumns: any },
              ['name', 'served', 'storage', 'schema'],
            ),
          ),
          preserveUnknownFields: bool,
          conversion: any,
        },
        ['group', 'scope', 'names', 'versions'],
      ),
    },
  },
};

function typeOk(t: Type, v: unknown): boolean {
  switch (t) {
    case 'any':
      return true;
    case 'int-or-string':
      return typeof v === 'string' || Number.isInteger(v);
    case 'integer':
      return Number.isInteger(v);
    case 'object':
      return isObject(v);
    case 'array':
      return Array.isArray(v);
    default:
      return typeof v === t;
  }
}

/** Every violation, as `path: problem`. */
export function check(s: Schema, v: unknown, at: string, out: string[] = []): string[] {
  if (s.type === 'any') return out;
  if (!typeOk(s.type, v)) {
    out.push(`${at}: must be ${s.type === 'int-or-string' ? 'an integer or a string' : `a${s.type === 'integer' || s.type === 'object' || s.type === 'array' ? 'n' : ''} ${s.type}`}, got ${JSON.stringify(v)}`);
    return out;
  }
  if (s.enum && !s.enum.includes(v as string)) out.push(`${at}: ${JSON.stringify(v)} is not one of ${s.enum.join(', ')}`);
  if (s.pattern && typeof v === 'string' && !s.pattern.test(v)) out.push(`${at}: ${JSON.stringify(v)} does not match ${s.pattern}`);
  if (Array.isArray(v) && s.items) v.forEach((x, i) => check(s.items as Schema, x, `${at}[${i}]`, out));
  if (isObject(v)) {
    for (const r of s.required ?? []) if (v[r] === undefined) out.push(`${at}.${r}: required`);
    for (const [k, x] of Object.entries(v)) {
      const sub = s.props?.[k] ?? s.values;
      if (!sub) out.push(`${at}.${k}: unknown field`);
      else check(sub, x, `${at}.${k}`, out);
    }
  }
  return out;
}

/** A manifest document of one of KINDS. */
export function checkObject(doc: unknown, where: string): string[] {
  if (!isObject(doc)) return [`${where}: not an object`];
  const kind = typeof doc.kind === 'string' ? KINDS[doc.kind] : undefined;
  if (!kind) return [`${where}: kind ${JSON.stringify(doc.kind)} is not one deploy/ may use (${Object.keys(KINDS).join(', ')})`];
  const props: Record<string, Schema> = { apiVersion: oneOf(kind.apiVersion), kind: str, metadata: objectMeta(kind.namespaced), ...kind.schema };
  return check(obj(props, ['apiVersion', 'kind', 'metadata', ...(kind.required ?? [])]), doc, `${where} ${doc.kind}`);
}

const SCHEMA_KEYWORDS = new Set([
  'type', 'description', 'properties', 'required', 'items', 'additionalProperties', 'enum', 'format', 'default', 'nullable',
  'minimum', 'maximum', 'minLength', 'maxLength', 'minItems', 'maxItems', 'pattern', 'uniqueItems',
  'x-kubernetes-validations', 'x-kubernetes-preserve-unknown-fields', 'x-kubernetes-int-or-string',
  'x-kubernetes-list-type', 'x-kubernetes-list-map-keys', 'x-kubernetes-map-type',
]);
const TYPES = ['object', 'array', 'string', 'integer', 'number', 'boolean'];

/**
 * apiextensions/v1 structural schema rules: every node has a type (unless it preserves unknown
 * fields or is int-or-string), arrays have items, required names are properties, only known
 * keywords, and at the root metadata is at most `type: object` (the apiserver owns it).
 */
export function checkStructural(s: unknown, at: string, out: string[] = [], root = true): string[] {
  if (!isObject(s)) return [...out, `${at}: a schema must be an object`];
  for (const k of Object.keys(s)) if (!SCHEMA_KEYWORDS.has(k)) out.push(`${at}.${k}: not a schema keyword`);
  const special = s['x-kubernetes-preserve-unknown-fields'] === true || s['x-kubernetes-int-or-string'] === true;
  if (s.type === undefined && !special) out.push(`${at}: type is required in a structural schema`);
  if (s.type !== undefined && !TYPES.includes(s.type as string)) out.push(`${at}.type: ${JSON.stringify(s.type)} is not a schema type`);
  if (root && s.type !== 'object') out.push(`${at}: the root must be type: object`);
  if (s.type === 'array' && s.items === undefined) out.push(`${at}: an array needs items`);
  if (s.items !== undefined) checkStructural(s.items, `${at}.items`, out, false);
  if (s.additionalProperties !== undefined && typeof s.additionalProperties !== 'boolean') checkStructural(s.additionalProperties, `${at}.additionalProperties`, out, false);
  if (s.additionalProperties !== undefined && s.properties !== undefined) out.push(`${at}: properties and additionalProperties are mutually exclusive`);
  const props = isObject(s.properties) ? s.properties : {};
  if (s.properties !== undefined && !isObject(s.properties)) out.push(`${at}.properties: must be an object`);
  if (s.required !== undefined) {
    if (!Array.isArray(s.required)) out.push(`${at}.required: must be a list`);
    else for (const r of s.required) if (typeof r !== 'string' || props[r] === undefined) out.push(`${at}.required: ${JSON.stringify(r)} is not a property`);
  }
  if (s.enum !== undefined && !Array.isArray(s.enum)) out.push(`${at}.enum: must be a list`);
  if (s['x-kubernetes-validations'] !== undefined) {
    const v = s['x-kubernetes-validations'];
    if (!Array.isArray(v) || !v.every((r) => isObject(r) && typeof r.rule === 'string')) out.push(`${at}.x-kubernetes-validations: each needs a rule`);
  }
  for (const [k, p] of Object.entries(props)) {
    if (root && k === 'metadata') {
      if (!isObject(p) || Object.keys(p).some((x) => x !== 'type' && x !== 'description') || p.type !== 'object') out.push(`${at}.properties.metadata: at the root only type: object is allowed`);
      continue;
    }
    checkStructural(p, `${at}.properties.${k}`, out, false);
  }
  return out;
}
