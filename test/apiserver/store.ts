// The object store behind the test apiserver: create/get/list/update/patch/delete with the
// apiserver's metadata rules (uid, creationTimestamp, a global resourceVersion counter,
// optimistic concurrency, uid preconditions, immutable fields, status subresources).
//
// Deliberate simplifications (documented so nobody relies on them): no schema validation of
// spec/status, pods are deleted at once (no graceful deletion), label selectors support only
// `k`, `!k`, `k=v`, `k==v`, `k!=v`. Every write is reported to `onChange` (watch.ts keeps the
// bounded event history that watches, bookmarks and list continuation are served from).
import { randomUUID } from 'node:crypto';
import { isObject, type Json, type JsonObject } from '../../src/cni/validate';
import { applyJsonPatch, mergePatch, PatchError, strategicMergePatch } from './patch';
import * as S from './status';

export interface ResourceType extends S.ResourceName {
  version: string;
  listKind: string;
  /** PUT/PATCH on the object keep status; on /status they keep spec. */
  statusSubresource: boolean;
  patchTypes: string[];
  /** Pods answer DELETE with the object; custom resources with a Success Status. */
  deleteReturnsObject: boolean;
  /** Custom resources: drop what the CRD's structural schema does not declare. */
  prune?: (obj: JsonObject) => void;
}

export const MERGE = 'application/merge-patch+json';
export const STRATEGIC = 'application/strategic-merge-patch+json';
export const JSONPATCH = 'application/json-patch+json';

export const PODS: ResourceType = {
  group: '', version: 'v1', resource: 'pods', kind: 'Pod', listKind: 'PodList',
  statusSubresource: true, patchTypes: [JSONPATCH, MERGE, STRATEGIC], deleteReturnsObject: true,
};
export const NADS: ResourceType = {
  group: 'k8s.cni.cncf.io', version: 'v1', resource: 'network-attachment-definitions', kind: 'NetworkAttachmentDefinition',
  listKind: 'NetworkAttachmentDefinitionList', statusSubresource: false, patchTypes: [JSONPATCH, MERGE], deleteReturnsObject: false,
};
export const EVENTS: ResourceType = {
  group: '', version: 'v1', resource: 'events', kind: 'Event', listKind: 'EventList',
  statusSubresource: false, patchTypes: [JSONPATCH, MERGE, STRATEGIC], deleteReturnsObject: false,
};
export const EVENTS_V1: ResourceType = {
  group: 'events.k8s.io', version: 'v1', resource: 'events', kind: 'Event', listKind: 'EventList',
  statusSubresource: false, patchTypes: [JSONPATCH, MERGE, STRATEGIC], deleteReturnsObject: false,
};
// The custom resources of Whereabouts (its CRDs: no status subresource except where noted, so a
// write carries the whole object) and the NPWG IPAMClaim (status subresource). `prune` drops the
// fields their structural schemas do not declare, as the real server does on every write.
export const IPPOOLS: ResourceType = {
  group: 'whereabouts.cni.cncf.io', version: 'v1alpha1', resource: 'ippools', kind: 'IPPool', listKind: 'IPPoolList',
  statusSubresource: false, patchTypes: [JSONPATCH, MERGE], deleteReturnsObject: false, prune: pruneIPPool,
};
export const OVERLAPPING_RESERVATIONS: ResourceType = {
  group: 'whereabouts.cni.cncf.io', version: 'v1alpha1', resource: 'overlappingrangeipreservations', kind: 'OverlappingRangeIPReservation',
  listKind: 'OverlappingRangeIPReservationList', statusSubresource: false, patchTypes: [JSONPATCH, MERGE], deleteReturnsObject: false,
  prune: (o) => pruneTo(o, 'spec', ['containerid', 'podref', 'ifname']),
};
export const NODE_SLICE_POOLS: ResourceType = {
  group: 'whereabouts.cni.cncf.io', version: 'v1alpha1', resource: 'nodeslicepools', kind: 'NodeSlicePool', listKind: 'NodeSlicePoolList',
  statusSubresource: false, patchTypes: [JSONPATCH, MERGE], deleteReturnsObject: false,
};
export const IPAMCLAIMS: ResourceType = {
  group: 'k8s.cni.cncf.io', version: 'v1alpha1', resource: 'ipamclaims', kind: 'IPAMClaim', listKind: 'IPAMClaimList',
  statusSubresource: true, patchTypes: [JSONPATCH, MERGE], deleteReturnsObject: false,
};
/** coordination.k8s.io Lease: what Whereabouts serialises on (the benchmark replays its protocol). */
export const LEASES: ResourceType = {
  group: 'coordination.k8s.io', version: 'v1', resource: 'leases', kind: 'Lease', listKind: 'LeaseList',
  statusSubresource: false, patchTypes: [JSONPATCH, MERGE, STRATEGIC], deleteReturnsObject: false,
};
export const RESOURCE_TYPES: ResourceType[] = [PODS, NADS, EVENTS, EVENTS_V1, IPPOOLS, OVERLAPPING_RESERVATIONS, NODE_SLICE_POOLS, IPAMCLAIMS, LEASES];

/** etcd's default --max-request-bytes: the apiserver cannot store an object larger than this. */
export const MAX_OBJECT_BYTES = 1.5 * 1024 * 1024;
/** apimachinery's TotalAnnotationSizeLimitB. */
export const MAX_ANNOTATION_BYTES = 256 * 1024;

function pruneTo(obj: JsonObject, field: string, keep: string[]): void {
  const v = obj[field];
  if (!isObject(v)) return;
  for (const k of Object.keys(v)) if (!keep.includes(k)) delete v[k];
}

/** ippools.whereabouts.cni.cncf.io: spec.range, spec.allocations.<offset>.{id,podref,ifname}. */
function pruneIPPool(obj: JsonObject): void {
  pruneTo(obj, 'spec', ['range', 'allocations']);
  const spec = obj.spec;
  if (!isObject(spec) || !isObject(spec.allocations)) return;
  for (const a of Object.values(spec.allocations)) if (isObject(a)) pruneTo({ a }, 'a', ['id', 'podref', 'ifname']);
}

export function apiVersionOf(t: ResourceType): string {
  return t.group ? `${t.group}/${t.version}` : t.version;
}

export function metaOf(obj: JsonObject): JsonObject {
  if (!isObject(obj.metadata)) obj.metadata = {};
  return obj.metadata as JsonObject;
}

function str(v: Json | undefined): string {
  return typeof v === 'string' ? v : '';
}

function now(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function storageKey(t: ResourceType, ns: string, name: string): string {
  return t.group ? `/registry/${t.group}/${t.resource}/${ns}/${name}` : `/registry/${t.resource}/${ns}/${name}`;
}

function preconditionFailed(t: ResourceType, ns: string, name: string, what: string, want: string, have: string): S.StatusError {
  return S.conflict(
    t,
    name,
    `StorageError: invalid object, Code: 4, Key: ${storageKey(t, ns, name)}, ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: ${what} in precondition: ${want}, ${what} in object meta: ${have}`,
  );
}

/** One committed change, as a watch reports it: `obj` is the object at `rv` (for DELETED, the
 * last state with the deletion's resourceVersion), `prev` the state before. */
export interface Change {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  t: ResourceType;
  rv: number;
  obj: JsonObject;
  prev?: JsonObject;
}

export class ObjectStore {
  private rv = 100;
  private readonly objects = new Map<string, JsonObject>();
  /** Told of every committed change, in resourceVersion order. */
  onChange: (c: Change) => void = () => undefined;

  /** The resourceVersion of the latest write (what a list reports). */
  currentRv(): number {
    return this.rv;
  }

  private key(t: ResourceType, ns: string, name: string): string {
    return `${t.group}/${t.resource}|${ns}|${name}`;
  }

  private nextRv(): string {
    this.rv += 1;
    return String(this.rv);
  }

  private stored(t: ResourceType, ns: string, name: string): JsonObject {
    const o = this.objects.get(this.key(t, ns, name));
    if (!o) throw S.notFound(t, name);
    return o;
  }

  /** Puts obj as the new revision of (t, ns, name), with a fresh resourceVersion. */
  private commit(t: ResourceType, ns: string, name: string, obj: JsonObject): JsonObject {
    t.prune?.(obj);
    const annotations = metaOf(obj).annotations;
    if (isObject(annotations)) {
      const total = Object.entries(annotations).reduce((n, [k, v]) => n + k.length + (typeof v === 'string' ? v.length : 0), 0);
      if (total > MAX_ANNOTATION_BYTES) {
        throw S.invalid(t, name, [{ field: 'metadata.annotations', value: '', detail: `Too long: must have at most ${MAX_ANNOTATION_BYTES} bytes` }]);
      }
    }
    const { kind: _k, apiVersion: _a, ...rest } = obj;
    const stored: JsonObject = { kind: t.kind, apiVersion: apiVersionOf(t), ...rest };
    if (Buffer.byteLength(JSON.stringify(stored)) > MAX_OBJECT_BYTES) {
      throw new S.StatusError(S.status(500, 'InternalError', 'etcdserver: request is too large'));
    }
    metaOf(stored).resourceVersion = this.nextRv();
    const prev = this.objects.get(this.key(t, ns, name));
    this.objects.set(this.key(t, ns, name), stored);
    this.onChange({ type: prev ? 'MODIFIED' : 'ADDED', t, rv: this.rv, obj: structuredClone(stored), ...(prev ? { prev } : {}) });
    return structuredClone(stored);
  }

  get(t: ResourceType, ns: string, name: string): JsonObject {
    return structuredClone(this.stored(t, ns, name));
  }

  find(t: ResourceType, ns: string, name: string): JsonObject | undefined {
    const o = this.objects.get(this.key(t, ns, name));
    return o && structuredClone(o);
  }

  all(t: ResourceType): JsonObject[] {
    const prefix = `${t.group}/${t.resource}|`;
    return [...this.objects.entries()].filter(([k]) => k.startsWith(prefix)).map(([, v]) => structuredClone(v));
  }

  list(t: ResourceType, ns: string | undefined, labelSelector: string | undefined): JsonObject {
    const match = parseSelector(labelSelector);
    const items = this.all(t)
      .filter((o) => ns === undefined || metaOf(o).namespace === ns)
      .filter((o) => match(isObject(metaOf(o).labels) ? (metaOf(o).labels as JsonObject) : {}))
      .sort((a, b) => `${str(metaOf(a).namespace)}/${str(metaOf(a).name)}`.localeCompare(`${str(metaOf(b).namespace)}/${str(metaOf(b).name)}`));
    // Typed core lists carry no per-item kind; custom resource lists (unstructured) do.
    if (!t.group) for (const o of items) { delete o.kind; delete o.apiVersion; }
    return { kind: t.listKind, apiVersion: apiVersionOf(t), metadata: { resourceVersion: String(this.rv) }, items };
  }

  /** Keeps the objects whose labels match a label selector (the subset list() understands). */
  withLabels(items: JsonObject[], labelSelector: string | undefined): JsonObject[] {
    const match = parseSelector(labelSelector);
    return items.filter((o) => match(isObject(metaOf(o).labels) ? (metaOf(o).labels as JsonObject) : {}));
  }

  create(t: ResourceType, ns: string, body: JsonObject): JsonObject {
    const obj = structuredClone(body);
    checkKind(t, obj);
    const m = metaOf(obj);
    if (m.namespace !== undefined && m.namespace !== '' && m.namespace !== ns) {
      throw S.badRequest('the namespace of the provided object does not match the namespace sent on the request');
    }
    if (str(m.resourceVersion) !== '') throw S.badRequest('resourceVersion should not be set on objects to be created');
    let name = str(m.name);
    if (!name && str(m.generateName)) name = str(m.generateName) + randomUUID().slice(0, 5);
    if (!name) throw S.invalid(t, '', [{ field: 'metadata.name', value: '', detail: 'name or generateName is required' }]);
    validateCreate(t, ns, name, obj);
    if (this.objects.has(this.key(t, ns, name))) throw S.alreadyExists(t, name);
    Object.assign(m, { name, namespace: ns, uid: randomUUID(), creationTimestamp: now() });
    delete m.deletionTimestamp;
    return this.commit(t, ns, name, obj);
  }

  /** PUT: body replaces the object (or only its status/metadata on the status subresource). */
  update(t: ResourceType, ns: string, name: string, body: JsonObject, sub: string | undefined): JsonObject {
    const current = this.stored(t, ns, name);
    const next = structuredClone(body);
    checkKind(t, next);
    const uid = str(metaOf(next).uid);
    // rest.DefaultUpdatedObjectInfo turns a uid in a PUT body into a storage precondition.
    if (uid && uid !== str(metaOf(current).uid)) throw preconditionFailed(t, ns, name, 'UID', uid, str(metaOf(current).uid));
    return this.finishUpdate(t, ns, name, current, next, sub);
  }

  patch(t: ResourceType, ns: string, name: string, contentType: string, patchText: string, sub: string | undefined): JsonObject {
    if (!t.patchTypes.includes(contentType)) throw S.unsupportedMediaType(t.patchTypes);
    const current = this.stored(t, ns, name);
    let patch: Json;
    try {
      patch = JSON.parse(patchText) as Json;
    } catch (err) {
      throw S.badRequest(`error decoding patch: ${(err as Error).message}`);
    }
    let next: Json | undefined;
    try {
      if (contentType === JSONPATCH) next = applyJsonPatch(current, patch);
      else if (contentType === MERGE) next = mergePatch(current, patch);
      else next = strategicMergePatch(current, patch);
    } catch (err) {
      if (!(err instanceof PatchError)) throw err;
      throw err.malformed ? S.badRequest(err.message) : S.patchRejected(err.message);
    }
    if (!isObject(next)) throw S.badRequest('the patched object is not a JSON object');
    // Unlike PUT, a patch has no uid precondition of its own: a different uid in the result
    // fails metadata validation as an immutable field (422), after the resourceVersion check.
    return this.finishUpdate(t, ns, name, current, next, sub);
  }

  private finishUpdate(t: ResourceType, ns: string, name: string, current: JsonObject, next: JsonObject, sub: string | undefined): JsonObject {
    const m = metaOf(next);
    const cm = metaOf(current);
    if (str(m.name) !== name) throw S.badRequest(`the name of the object (${str(m.name)}) does not match the name on the URL (${name})`);
    if (m.namespace !== undefined && m.namespace !== '' && m.namespace !== ns) {
      throw S.badRequest('the namespace of the provided object does not match the namespace sent on the request');
    }
    const rv = str(m.resourceVersion);
    if (rv !== '') {
      if (!/^[0-9]+$/.test(rv)) throw S.badRequest(`invalid resource version: ${rv}`);
      if (rv !== str(cm.resourceVersion)) throw S.conflict(t, name, S.OPTIMISTIC_LOCK_MSG);
    }
    const uid = str(m.uid);
    if (uid && uid !== str(cm.uid)) throw S.invalid(t, name, [{ field: 'metadata.uid', value: uid, detail: 'field is immutable' }]);
    // Fields no write may change, then the half of the object this endpoint does not own.
    m.namespace = ns;
    m.uid = cm.uid ?? null;
    m.creationTimestamp = cm.creationTimestamp ?? null;
    for (const k of ['deletionTimestamp', 'deletionGracePeriodSeconds', 'generation'] as const) {
      if (cm[k] !== undefined) m[k] = cm[k] as Json;
      else delete m[k];
    }
    if (t.statusSubresource) {
      const keep = sub === 'status' ? 'spec' : 'status';
      if (current[keep] !== undefined) next[keep] = current[keep] as Json;
      else delete next[keep];
      if (sub === 'status') {
        if (cm.ownerReferences !== undefined) m.ownerReferences = cm.ownerReferences as Json;
        else delete m.ownerReferences;
      }
    }
    return this.commit(t, ns, name, next);
  }

  delete(t: ResourceType, ns: string, name: string, options: JsonObject | undefined): JsonObject {
    const current = this.stored(t, ns, name);
    const cm = metaOf(current);
    const pre = options && isObject(options.preconditions) ? options.preconditions : undefined;
    if (pre && typeof pre.uid === 'string' && pre.uid !== cm.uid) throw preconditionFailed(t, ns, name, 'UID', pre.uid, str(cm.uid));
    if (pre && typeof pre.resourceVersion === 'string' && pre.resourceVersion !== cm.resourceVersion) {
      throw preconditionFailed(t, ns, name, 'ResourceVersion', pre.resourceVersion, str(cm.resourceVersion));
    }
    this.objects.delete(this.key(t, ns, name));
    this.rv += 1;
    this.deleted(t, current);
    if (t.deleteReturnsObject) return structuredClone(current);
    const details: JsonObject = { name };
    if (t.group) details.group = t.group;
    details.kind = t.resource;
    details.uid = cm.uid ?? '';
    return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details };
  }

  /** Test access: create or replace without HTTP; keeps uid and creationTimestamp unless given. */
  upsert(t: ResourceType, obj: JsonObject): JsonObject {
    const next = structuredClone(obj);
    const m = metaOf(next);
    const ns = str(m.namespace) || 'default';
    const name = str(m.name);
    if (!name) throw new Error('upsert: metadata.name is required');
    const existing = this.objects.get(this.key(t, ns, name));
    m.namespace = ns;
    m.uid = str(m.uid) || (existing ? str(metaOf(existing).uid) : '') || randomUUID();
    m.creationTimestamp = str(m.creationTimestamp) || (existing ? str(metaOf(existing).creationTimestamp) : '') || now();
    return this.commit(t, ns, name, next);
  }

  remove(t: ResourceType, ns: string, name: string): boolean {
    const current = this.objects.get(this.key(t, ns, name));
    if (!current) return false;
    this.objects.delete(this.key(t, ns, name));
    this.rv += 1;
    this.deleted(t, current);
    return true;
  }

  /** A DELETED event carries the object's last state at the deletion's resourceVersion. */
  private deleted(t: ResourceType, last: JsonObject): void {
    const obj = structuredClone(last);
    metaOf(obj).resourceVersion = String(this.rv);
    this.onChange({ type: 'DELETED', t, rv: this.rv, obj, prev: last });
  }
}

function checkKind(t: ResourceType, obj: JsonObject): void {
  if (obj.kind !== undefined && obj.kind !== '' && obj.kind !== t.kind) {
    throw S.badRequest(`the kind of the object (${str(obj.kind)}) does not match the kind of the endpoint (${t.kind})`);
  }
  if (obj.apiVersion !== undefined && obj.apiVersion !== '' && obj.apiVersion !== apiVersionOf(t)) {
    throw S.badRequest(`the API version in the data (${str(obj.apiVersion)}) does not match the expected API version (${apiVersionOf(t)})`);
  }
}

/** The one cross-field rule the core Event API enforces that clients commonly get wrong. */
function validateCreate(t: ResourceType, ns: string, name: string, obj: JsonObject): void {
  if (t !== EVENTS) return;
  const io = obj.involvedObject;
  if (!isObject(io)) throw S.invalid(t, name, [{ field: 'involvedObject', value: '', detail: 'must be set' }]);
  if (typeof io.namespace === 'string' && io.namespace !== '' && io.namespace !== ns) {
    throw S.invalid(t, name, [{ field: 'involvedObject.namespace', value: io.namespace, detail: 'does not match event.namespace' }]);
  }
}

function parseSelector(sel: string | undefined): (labels: JsonObject) => boolean {
  if (!sel) return () => true;
  const tests = sel.split(',').map((term) => {
    const t = term.trim();
    let m: RegExpMatchArray | null;
    if ((m = t.match(/^([^!=\s]+)\s*!=\s*(.*)$/))) {
      const [, k = '', v = ''] = m;
      return (l: JsonObject) => l[k] !== v;
    }
    if ((m = t.match(/^([^!=\s]+)\s*==?\s*(.*)$/))) {
      const [, k = '', v = ''] = m;
      return (l: JsonObject) => l[k] === v;
    }
    if ((m = t.match(/^!([^!=\s]+)$/))) {
      const k = m[1] ?? '';
      return (l: JsonObject) => !Object.hasOwn(l, k);
    }
    if (/^[^!=\s]+$/.test(t)) return (l: JsonObject) => Object.hasOwn(l, t);
    throw S.badRequest(`unable to parse requirement: ${JSON.stringify(t)} (the test apiserver supports only =, ==, != and existence)`);
  });
  return (labels) => tests.every((f) => f(labels));
}
