// The Accept header, negotiated as kube-apiserver does for JSON (k8s.io/apiserver endpoints/
// handlers/negotiation and response.go): clauses in order, the first acceptable one wins, and
// `as=PartialObjectMetadata[List];g=meta.k8s.io;v=v1` turns the reply into metadata only. No
// acceptable clause is 406 before the request runs, so a write is never applied and then refused.
import { isObject, type Json, type JsonObject } from '../../src/cni/validate';
import { status, StatusError } from './status';

/** What a reply becomes: the object as stored, or its metadata only. */
export type Rendering = 'object' | 'metadata';

interface Clause {
  type: string;
  params: Map<string, string>;
}

function parseAccept(header: string): Clause[] {
  return header
    .split(',')
    .map((c) => c.trim())
    .filter((c) => c !== '')
    .map((c) => {
      const [type = '', ...ps] = c.split(';').map((p) => p.trim());
      const params = new Map<string, string>();
      for (const p of ps) {
        const eq = p.indexOf('=');
        if (eq > 0) params.set(p.slice(0, eq).trim().toLowerCase(), p.slice(eq + 1).trim());
      }
      return { type: type.toLowerCase(), params };
    });
}

const JSON_TYPES = new Set(['application/json', 'application/*', '*/*']);

/** How to render a reply for `accept`; `list` when the request is a collection GET. Throws 406. */
export function negotiate(accept: string | undefined, list: boolean): Rendering {
  if (!accept || accept.trim() === '') return 'object';
  for (const c of parseAccept(accept)) {
    if (!JSON_TYPES.has(c.type)) continue;
    const as = c.params.get('as');
    if (as === undefined) return 'object';
    const version = c.params.get('v');
    if (c.params.get('g') !== 'meta.k8s.io' || (version !== 'v1' && version !== 'v1beta1')) continue;
    if (as === (list ? 'PartialObjectMetadataList' : 'PartialObjectMetadata')) return 'metadata';
  }
  throw new StatusError(status(406, 'NotAcceptable', 'only the following media types are accepted: application/json, application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1, application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1'));
}

/** The reply as rendered; a Status is never transformed. */
export function render(body: Json, how: Rendering): Json {
  if (how === 'object' || !isObject(body) || body.kind === 'Status') return body;
  const meta = (o: JsonObject): JsonObject => (isObject(o.metadata) ? o.metadata : {});
  if (Array.isArray(body.items)) {
    return {
      kind: 'PartialObjectMetadataList',
      apiVersion: 'meta.k8s.io/v1',
      metadata: meta(body),
      items: body.items.filter(isObject).map((o) => ({ kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: meta(o) })),
    };
  }
  return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: meta(body) };
}
