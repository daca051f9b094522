// metav1.Status bodies shaped exactly like kube-apiserver's (k8s.io/apimachinery/pkg/api/errors),
// so a client tested against this server parses the same fields it will meet in a cluster.
import type { JsonObject } from '../../src/cni/validate';

/** The identity of a resource type, as the apiserver names it in messages. */
export interface ResourceName {
  group: string; // '' for the core group
  resource: string; // plural, e.g. 'pods'
  kind: string; // e.g. 'Pod'
}

/** Thrown inside the server; the HTTP layer turns it into the response. */
export class StatusError extends Error {
  readonly code: number;
  readonly body: JsonObject;
  readonly headers: Record<string, string>;
  constructor(body: JsonObject, headers: Record<string, string> = {}) {
    super(typeof body.message === 'string' ? body.message : 'status error');
    this.code = typeof body.code === 'number' ? body.code : 500;
    this.body = body;
    this.headers = headers;
  }
}

export function status(code: number, reason: string, message: string, details?: JsonObject): JsonObject {
  const out: JsonObject = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure' };
  if (message) out.message = message;
  if (reason) out.reason = reason;
  if (details) out.details = details;
  out.code = code;
  return out;
}

/** `pods` for core resources, `network-attachment-definitions.k8s.cni.cncf.io` otherwise. */
export function qualifiedResource(r: ResourceName): string {
  return r.group ? `${r.resource}.${r.group}` : r.resource;
}

function qualifiedKind(r: ResourceName): string {
  return r.group ? `${r.kind}.${r.group}` : r.kind;
}

function resourceDetails(r: ResourceName, name: string): JsonObject {
  const d: JsonObject = { name };
  if (r.group) d.group = r.group;
  d.kind = r.resource;
  return d;
}

export function notFound(r: ResourceName, name: string): StatusError {
  return new StatusError(status(404, 'NotFound', `${qualifiedResource(r)} "${name}" not found`, resourceDetails(r, name)));
}

export function alreadyExists(r: ResourceName, name: string): StatusError {
  return new StatusError(status(409, 'AlreadyExists', `${qualifiedResource(r)} "${name}" already exists`, resourceDetails(r, name)));
}

export const OPTIMISTIC_LOCK_MSG = 'the object has been modified; please apply your changes to the latest version and try again';

export function conflict(r: ResourceName, name: string, why: string): StatusError {
  return new StatusError(
    status(409, 'Conflict', `Operation cannot be fulfilled on ${qualifiedResource(r)} "${name}": ${why}`, resourceDetails(r, name)),
  );
}

export interface FieldCause {
  field: string;
  value: string;
  detail: string;
}

/** errors.NewInvalid: 422 with one FieldValueInvalid cause per field. */
export function invalid(r: ResourceName, name: string, causes: FieldCause[]): StatusError {
  const bodies = causes.map((c) => `Invalid value: ${JSON.stringify(c.value)}: ${c.detail}`);
  const joined = causes.map((c, i) => `${c.field}: ${bodies[i]}`);
  const agg = joined.length === 1 ? joined[0] : `[${joined.join(', ')}]`;
  const details: JsonObject = { name };
  if (r.group) details.group = r.group;
  details.kind = r.kind;
  details.causes = causes.map((c, i) => ({ reason: 'FieldValueInvalid', message: bodies[i] ?? '', field: c.field }));
  return new StatusError(status(422, 'Invalid', `${qualifiedKind(r)} "${name}" is invalid: ${agg}`, details));
}

/** What a failed JSON-patch operation produces (errors.NewGenericServerResponse with 422). */
export function patchRejected(why: string): StatusError {
  return new StatusError(
    status(422, 'Invalid', 'the server rejected our request due to an error in our request', {
      causes: [{ reason: 'UnexpectedServerResponse', message: why }],
    }),
  );
}

export function badRequest(message: string): StatusError {
  return new StatusError(status(400, 'BadRequest', message));
}

export function unauthorized(): StatusError {
  return new StatusError(status(401, 'Unauthorized', 'Unauthorized'));
}

export function forbidden(r: ResourceName, user: string, verb: string, resourcePath: string, ns: string, name: string): StatusError {
  const subject = name ? `${qualifiedResource(r)} "${name}"` : qualifiedResource(r);
  const msg = `${subject} is forbidden: User "${user}" cannot ${verb} resource "${resourcePath}" in API group "${r.group}" in the namespace "${ns}"`;
  return new StatusError(status(403, 'Forbidden', msg, resourceDetails(r, name)));
}

export function methodNotAllowed(): StatusError {
  return new StatusError(status(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource'));
}

export function pathNotFound(): StatusError {
  return new StatusError(status(404, 'NotFound', 'the server could not find the requested resource', {}));
}

export function unsupportedMediaType(accepted: string[]): StatusError {
  return new StatusError(
    status(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: ${accepted.join(', ')}`),
  );
}

/** The body an injected fault returns for a bare status code, with the reason real servers use. */
export function forCode(code: number, message?: string): StatusError {
  switch (code) {
    case 429:
      return new StatusError(status(429, 'TooManyRequests', message ?? 'Too many requests, please try again later.', { retryAfterSeconds: 1 }), {
        'Retry-After': '1',
      });
    case 500:
      return new StatusError(status(500, 'InternalError', message ?? 'Internal error occurred: injected fault', { causes: [{ message: 'injected fault' }] }));
    case 503:
      return new StatusError(status(503, 'ServiceUnavailable', message ?? 'the server is currently unable to handle the request'));
    case 504:
      return new StatusError(status(504, 'Timeout', message ?? 'the server was unable to return a response in the time allotted, but may still be processing the request'));
    case 401:
      return unauthorized();
    case 403:
      return new StatusError(status(403, 'Forbidden', message ?? 'forbidden: injected fault'));
    case 404:
      return pathNotFound();
    case 409:
      return new StatusError(status(409, 'Conflict', message ?? `Operation cannot be fulfilled: ${OPTIMISTIC_LOCK_MSG}`));
    default:
      return new StatusError(status(code, '', message ?? `the server responded with the status code ${code} but did not return more information`));
  }
}
