// A kube-apiserver stand-in for plexus's tests, benchmarks and demo: real HTTP(S) on 127.0.0.1,
// the REST paths plexus uses, apiserver-shaped Status errors, bearer-token and client-certificate
// authentication, RBAC-style denials, and injectable faults. Object semantics live in store.ts.
import { mkdtempSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { isObject, type Json, type JsonObject } from '../../src/cni/validate';
import { writeKubeconfigFile, type KubeconfigOptions } from './kubeconfig';
import * as S from './status';
import { negotiate, render } from './negotiate';
import { EVENTS, EVENTS_V1, NADS, ObjectStore, PODS, RESOURCE_TYPES, type ResourceType } from './store';
import { allows, forbiddenMessage, loadClusterRole, requestAttributes, type PolicyRule } from './rbac';
import { createPki, issueClientCert, selfSignedClientCert, type CertFiles, type TestPki } from './tls';
import { WatchHub } from './watch';

export type { CertFiles } from './tls';
export type { KubeconfigOptions } from './kubeconfig';

export interface FakeApiOptions {
  tls?: boolean;
  /** When set, requests need `Authorization: Bearer <token>` or a client certificate from our CA. */
  token?: string;
  /** Require credentials even without a token (then only client certificates work). */
  requireAuth?: boolean;
  /** The user a valid bearer token authenticates as (shows in Forbidden messages). */
  tokenUser?: string;
  /**
   * A second bearer token for the person setting up the world (what kubectl would send): it
   * authenticates as `kubernetes-admin` in group system:masters, which RBAC never restricts.
   */
  adminToken?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /**
   * The RBAC rules every authenticated request is checked against (403 otherwise). Default: the
   * ClusterRole plexus is deployed with (deploy/10-rbac.yaml), so a test of any plexus flow also
   * proves the deployment grants what it calls. `false` only for tests of the client or of the
   * server itself, which make requests plexus never makes.
   */
  rbac?: PolicyRule[] | false;
  /** Changes kept for watches and list continuation (default 200); older versions are 410 Expired. */
  historySize?: number;
  /** Interval of BOOKMARK events on watches that allow them (default 60000, as kube-apiserver). */
  bookmarkIntervalMs?: number;
}

/** Matching requests (method and path prefix, both optional) are consumed in injection order. */
export interface Fault {
  method?: string;
  pathPrefix?: string;
  /** How many matching requests this fault applies to; Infinity for all. */
  times: number;
  /** Wait this long before answering (or before handling normally when no status/reset). */
  delayMs?: number;
  status?: number;
  /** Response body instead of the apiserver's usual Status for `status`. */
  body?: JsonObject | string;
  /** Drop the connection without an answer (the client sees ECONNRESET / socket hang up). */
  reset?: boolean;
}

/** An RBAC denial: verb is get/list/create/update/patch/delete, resource e.g. `pods/status`. */
export interface DenyRule {
  verb: string;
  resource: string;
  namespace?: string;
}

export interface RequestRecord {
  method: string;
  path: string;
  query: string;
  contentType: string;
  body: string;
  /** 0 when the connection was reset by a fault. */
  status: number;
  user: string;
}

export interface FakeApi {
  url: string;
  port: number;
  caPem?: string;
  caFile?: string;
  close(): Promise<void>;
  setToken(token: string | undefined): void;
  putPod(pod: JsonObject): JsonObject;
  getPod(ns: string, name: string): JsonObject | undefined;
  deletePod(ns: string, name: string): boolean;
  putNad(ns: string, name: string, config?: string, annotations?: Record<string, string>): JsonObject;
  getNad(ns: string, name: string): JsonObject | undefined;
  deleteNad(ns: string, name: string): boolean;
  events(): JsonObject[];
  /** Any served resource by its plural (`ippools`, `ipamclaims`, ...), without HTTP. */
  putObject(resource: string, obj: JsonObject): JsonObject;
  getObject(resource: string, ns: string, name: string): JsonObject | undefined;
  listObjects(resource: string): JsonObject[];
  removeObject(resource: string, ns: string, name: string): boolean;
  requests(): RequestRecord[];
  clearRequests(): void;
  /** TCP connections accepted so far (keep-alive reuse shows as fewer connections than requests). */
  connections(): number;
  inject(fault: Fault): void;
  /** Every request fails with `status` (default 503) until clearFaults(). */
  failAll(status?: number): void;
  clearFaults(): void;
  deny(rule: DenyRule): void;
  clearDenies(): void;
  /** A client certificate signed by the server's CA (TLS only). */
  mintClientCert(user: string, groups?: string[]): Promise<CertFiles>;
  /** A self-signed client certificate the server must reject (TLS only). */
  mintRogueClientCert(user: string): Promise<CertFiles>;
  writeKubeconfig(path: string, opts?: KubeconfigOptions): void;
  /** Open watch streams. */
  watches(): number;
  /** Drops every watch connection mid-stream; answers how many. */
  cutWatches(): number;
  /** Sends a BOOKMARK now on every watch that allows them. */
  bookmark(): void;
  /** Forgets the change history (an etcd compaction): older resourceVersions answer 410 Expired. */
  compact(): void;
  /** true: watch events queue instead of being sent (a lagging watch); false sends them. */
  holdWatches(on: boolean): void;
  /** The resourceVersion of the latest write. */
  resourceVersion(): string;
}

const MAX_BODY = 3 * 1024 * 1024; // kube-apiserver's default request body limit
const ADMIN_USER = 'kubernetes-admin';

interface Route {
  type: ResourceType;
  ns: string | undefined;
  name: string | undefined;
  sub: string | undefined;
}

/** /api/v1/... and /apis/<group>/<version>/...; undefined when the path names no known resource. */
function route(pathname: string): Route | undefined {
  const parts = pathname.split('/').filter(Boolean).map(decodeURIComponent);
  let group = '';
  let version = 'v1';
  let rest: string[];
  if (parts[0] === 'api' && parts[1] === 'v1') rest = parts.slice(2);
  else if (parts[0] === 'apis' && parts.length >= 3) {
    group = parts[1] ?? '';
    version = parts[2] ?? '';
    rest = parts.slice(3);
  } else return undefined;
  let ns: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    ns = rest[1];
    rest = rest.slice(2);
  }
  const [resource, name, sub, ...extra] = rest;
  const type = RESOURCE_TYPES.find((t) => t.group === group && t.version === version && t.resource === resource);
  if (!type || extra.length) return undefined;
  if (ns === undefined && name !== undefined) return undefined;
  if (sub !== undefined && !(sub === 'status' && type.statusSubresource)) return undefined;
  return { type, ns, name, sub };
}

function typeNamed(resource: string): ResourceType {
  const t = RESOURCE_TYPES.find((x) => x.resource === resource && x.group !== 'events.k8s.io');
  if (!t) throw new Error(`the test apiserver serves no resource ${JSON.stringify(resource)}`);
  return t;
}

function verbOf(method: string, r: Route): string {
  if (method === 'GET') return r.name === undefined ? 'list' : 'get';
  return { POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: 'delete' }[method] ?? method.toLowerCase();
}

function mediaType(req: http.IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

function parseJsonBody(text: string): JsonObject {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw S.badRequest(`error decoding body: ${(err as Error).message}`);
  }
  if (!isObject(v)) throw S.badRequest('error decoding body: the body must be a JSON object');
  return v;
}

export async function startApiServer(opts: FakeApiOptions = {}): Promise<FakeApi> {
  const dir = mkdtempSync(join(tmpdir(), 'plexus-apiserver-'));
  let pki: TestPki | undefined;
  try {
    if (opts.tls) pki = await createPki(dir);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const store = new ObjectStore();
  const hub = new WatchHub(store, { historySize: opts.historySize, bookmarkIntervalMs: opts.bookmarkIntervalMs });
  let token = opts.token;
  const tokenUser = opts.tokenUser ?? 'system:serviceaccount:kube-system:multus';
  let faults: Fault[] = [];
  let denies: DenyRule[] = [];
  let log: RequestRecord[] = [];
  const rbac = opts.rbac === false ? undefined : (opts.rbac ?? loadClusterRole());
  const sockets = new Set<Socket>();
  let accepted = 0;
  const timers = new Set<NodeJS.Timeout>();

  const wait = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        timers.delete(t);
        resolve();
      }, ms);
      timers.add(t);
    });

  function takeFault(method: string, path: string): Fault | undefined {
    const f = faults.find((x) => x.times > 0 && (!x.method || x.method.toUpperCase() === method) && (!x.pathPrefix || path.startsWith(x.pathPrefix)));
    if (f) f.times -= 1;
    faults = faults.filter((x) => x.times > 0);
    return f;
  }

  function authenticate(req: http.IncomingMessage): string | undefined {
    const sock = req.socket as Partial<TLSSocket>;
    if (sock.encrypted && sock.authorized && sock.getPeerCertificate) {
      const cn = sock.getPeerCertificate().subject?.CN;
      if (cn) return Array.isArray(cn) ? cn[0] : cn;
    }
    const auth = req.headers.authorization ?? '';
    if (token !== undefined && auth === `Bearer ${token}`) return tokenUser;
    if (opts.adminToken !== undefined && auth === `Bearer ${opts.adminToken}`) return ADMIN_USER;
    if (token === undefined && !opts.requireAuth) return 'system:anonymous';
    return undefined;
  }

  /** undefined when the request became a watch stream (already answered). */
  function handle(req: http.IncomingMessage, url: URL, body: string, user: string, res: http.ServerResponse): { code: number; body: Json } | undefined {
    const r = route(url.pathname);
    if (!r) throw S.pathNotFound();
    const method = req.method ?? 'GET';
    const verb = verbOf(method, r);
    const resourcePath = r.sub ? `${r.type.resource}/${r.sub}` : r.type.resource;
    if (denies.some((d) => d.verb === verb && d.resource === resourcePath && (!d.namespace || d.namespace === r.ns))) {
      throw S.forbidden(r.type, user, verb, resourcePath, r.ns ?? '', r.name ?? '');
    }
    const needJson = () => {
      const mt = mediaType(req);
      if (mt !== '' && mt !== 'application/json') throw S.unsupportedMediaType(['application/json']);
      return parseJsonBody(body);
    };
    const q = url.searchParams;
    if (q.get('watch') === 'true' || q.get('watch') === '1') {
      if (method !== 'GET' || r.name !== undefined) throw S.methodNotAllowed();
      const watchVerb = 'watch';
      if (denies.some((d) => d.verb === watchVerb && d.resource === resourcePath && (!d.namespace || d.namespace === r.ns))) {
        throw S.forbidden(r.type, user, watchVerb, resourcePath, r.ns ?? '', '');
      }
      hub.serve(r.type, r.ns, q, res);
      return undefined;
    }
    if (r.name === undefined) {
      if (method === 'GET') return { code: 200, body: hub.list(r.type, r.ns, q, (items) => store.withLabels(items, q.get('labelSelector') ?? undefined)) };
      if (method === 'POST' && r.ns !== undefined) return { code: 201, body: store.create(r.type, r.ns, needJson()) };
      throw S.methodNotAllowed();
    }
    const ns = r.ns ?? '';
    switch (method) {
      case 'GET':
        return { code: 200, body: store.get(r.type, ns, r.name) };
      case 'PUT':
        return { code: 200, body: store.update(r.type, ns, r.name, needJson(), r.sub) };
      case 'PATCH':
        return { code: 200, body: store.patch(r.type, ns, r.name, mediaType(req), body, r.sub) };
      case 'DELETE':
        if (r.sub) throw S.methodNotAllowed();
        return { code: 200, body: store.delete(r.type, ns, r.name, body.trim() ? parseJsonBody(body) : undefined) };
      default:
        throw S.methodNotAllowed();
    }
  }

  async function serve(req: http.IncomingMessage, res: http.ServerResponse, body: string): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const method = req.method ?? 'GET';
    const rec: RequestRecord = { method, path: url.pathname, query: url.search, contentType: req.headers['content-type'] ?? '', body, status: 0, user: '' };
    log.push(rec);
    const send = (code: number, payload: Json | string, headers: Record<string, string> = {}) => {
      rec.status = code;
      const text = typeof payload === 'string' ? payload : JSON.stringify(payload);
      res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
      res.end(text);
    };
    const fault = takeFault(method, url.pathname);
    if (fault?.delayMs) await wait(fault.delayMs);
    if (req.socket.destroyed) return;
    if (fault?.reset) {
      req.socket.destroy();
      return;
    }
    if (fault?.status !== undefined) {
      const e = S.forCode(fault.status);
      send(fault.status, fault.body ?? { ...e.body, code: fault.status }, fault.body ? {} : e.headers);
      return;
    }
    const user = authenticate(req);
    if (user === undefined) {
      const e = S.unauthorized();
      send(e.code, e.body);
      return;
    }
    rec.user = user;
    const attrs = requestAttributes(method, url);
    // system:masters is allowed everything before any authorizer runs, as in kube-apiserver.
    if (rbac && user !== ADMIN_USER && !allows(rbac, attrs)) {
      const e = S.status(403, 'Forbidden', forbiddenMessage(user, attrs), attrs.isResource ? { name: attrs.name, group: attrs.apiGroup, kind: attrs.resource } : {});
      send(403, e);
      return;
    }
    try {
      if (body.length > MAX_BODY) throw new S.StatusError(S.status(413, 'RequestEntityTooLarge', 'request entity too large'));
      const q = url.searchParams;
      const streaming = q.get('watch') === 'true' || q.get('watch') === '1';
      const rendering = streaming ? 'object' : negotiate(req.headers.accept, route(url.pathname)?.name === undefined);
      const out = handle(req, url, body, user, res);
      if (out) out.body = render(out.body, rendering);
      if (!out) {
        rec.status = 200;
        return;
      }
      send(out.code, out.body);
    } catch (err) {
      if (err instanceof S.StatusError) send(err.code, err.body, err.headers);
      else send(500, S.status(500, 'InternalError', `Internal error occurred: ${(err as Error).message}`));
    }
  }

  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY + 1) chunks.push(c);
    });
    req.on('end', () => {
      serve(req, res, Buffer.concat(chunks).toString('utf8')).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500).end(String(err));
      });
    });
  };

  const server = pki
    ? https.createServer({ key: pki.server.keyPem, cert: pki.server.certPem, ca: [pki.caPem], requestCert: true, rejectUnauthorized: false }, onRequest)
    : http.createServer(onRequest);
  server.on('connection', (s: Socket) => {
    accepted += 1;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  // A TLS handshake failure must not crash the server; the client sees the reset.
  server.on('tlsClientError', (_err: Error, s: Socket) => s.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  }).catch((err: unknown) => {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const url = `${pki ? 'https' : 'http'}://127.0.0.1:${port}`;
  let closed: Promise<void> | undefined;

  const nad = (ns: string, name: string, config?: string, annotations?: Record<string, string>): JsonObject => {
    const metadata: JsonObject = { name, namespace: ns };
    if (annotations) metadata.annotations = annotations;
    return { metadata, spec: config === undefined ? {} : { config } };
  };

  return {
    url,
    port,
    caPem: pki?.caPem,
    caFile: pki?.caFile,
    close() {
      closed ??= new Promise<void>((resolve) => {
        for (const t of timers) clearTimeout(t);
        timers.clear();
        hub.closeAll();
        server.close(() => {
          rmSync(dir, { recursive: true, force: true });
          resolve();
        });
        server.closeAllConnections();
        for (const s of sockets) s.destroy();
      });
      return closed;
    },
    setToken: (t) => void (token = t),
    putPod: (pod) => store.upsert(PODS, pod),
    getPod: (ns, name) => store.find(PODS, ns, name),
    deletePod: (ns, name) => store.remove(PODS, ns, name),
    putNad: (ns, name, config, annotations) => store.upsert(NADS, nad(ns, name, config, annotations)),
    getNad: (ns, name) => store.find(NADS, ns, name),
    deleteNad: (ns, name) => store.remove(NADS, ns, name),
    events: () => [...store.all(EVENTS), ...store.all(EVENTS_V1)],
    putObject: (resource, obj) => store.upsert(typeNamed(resource), obj),
    getObject: (resource, ns, name) => store.find(typeNamed(resource), ns, name),
    listObjects: (resource) => store.all(typeNamed(resource)),
    removeObject: (resource, ns, name) => store.remove(typeNamed(resource), ns, name),
    requests: () => log.map((r) => ({ ...r })),
    clearRequests: () => void (log = []),
    connections: () => accepted,
    inject: (f) => void faults.push({ ...f }),
    failAll: (code = 503) => void faults.push({ times: Infinity, status: code }),
    clearFaults: () => void (faults = []),
    deny: (rule) => void denies.push({ ...rule }),
    clearDenies: () => void (denies = []),
    mintClientCert: (user, groups) => {
      if (!pki) throw new Error('mintClientCert needs a TLS server');
      return issueClientCert(pki, user, groups);
    },
    mintRogueClientCert: (user) => {
      if (!pki) throw new Error('mintRogueClientCert needs a TLS server');
      return selfSignedClientCert(pki, user);
    },
    writeKubeconfig: (path, o = {}) => writeKubeconfigFile(path, { server: url, caFile: pki?.caFile, caPem: pki?.caPem, token }, o),
    watches: () => hub.count(),
    cutWatches: () => hub.cut(),
    bookmark: () => hub.bookmarkAll(),
    compact: () => hub.compact(),
    holdWatches: (on) => hub.hold(on),
    resourceVersion: () => String(store.currentRv()),
  };
}
