// A minimal Kubernetes REST client on node:http(s): JSON in and out, a timeout per attempt, and
// bounded retries inside a total time budget the caller chooses. Deliberately not
// @kubernetes/client-node (reference/deps.md §4: it crashes on Node 20 or costs 160+ ms to load).
import * as http from 'node:http';
import * as https from 'node:https';
import { CniError, Code, errnoOf } from '../cni/errors';
import { isObject, parseObject, type Json, type JsonObject } from '../cni/validate';
import { log } from '../log';
import { bearerToken, type ClusterAccess } from './kubeconfig';
import { anchoredConnect } from './tls';

export const MERGE_PATCH = 'application/merge-patch+json';
export const STRATEGIC_MERGE_PATCH = 'application/strategic-merge-patch+json';
export const JSON_PATCH = 'application/json-patch+json';
export type PatchType = typeof MERGE_PATCH | typeof STRATEGIC_MERGE_PATCH | typeof JSON_PATCH;

export interface RequestOptions {
  /** Limit for one attempt, connection included. */
  timeoutMs?: number;
  /** Total time for all attempts and the waits between them; 0 means a single attempt. */
  budgetMs?: number;
  /** Statuses to retry besides 429 and 5xx, e.g. 409 for a write that re-reads on conflict. */
  retryStatuses?: number[];
  /** Told before each wait, e.g. to count attempts. */
  onRetry?: (err: KubeApiError, attempt: number, delayMs: number) => void;
  /** Resolve with {} instead of decoding a successful reply (a patch whose answer, a whole large object, is not needed). */
  discardBody?: boolean;
  /** Accept header instead of application/json, e.g. METADATA_ONLY for a write whose whole reply is not needed. */
  accept?: string;
  /** Told the size of a successful reply's body (what the apiserver's object limits measure). */
  onResponseBytes?: (bytes: number) => void;
}

/**
 * Asks for the reply as PartialObjectMetadata (metadata only), falling back to the object where a
 * server cannot transform it: kube-apiserver honours it on get, create, update and patch of any
 * resource, custom ones included (handlers/response.go transformResponseObject).
 */
export const METADATA_ONLY = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1, application/json';
/** The same for a LIST: each item's metadata only (what client-go's metadata informers ask for). */
export const METADATA_LIST = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1, application/json';

const DEFAULT_TIMEOUT_MS = 5000;
const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;
const RETRY_STATUSES = new Set([429, 500, 502, 503, 504]);
const RETRY_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/**
 * An API call that failed: an HTTP error with the apiserver's Status (`status`, `reason`,
 * `message` as the server wrote them), or no response at all (`status` 0, reason `Timeout` or
 * `ConnectionFailed`). As a CniError its code is 11 (try again later) when the cause is transient.
 */
export class KubeApiError extends CniError {
  readonly status: number;
  readonly reason: string;
  readonly method: string;
  readonly path: string;
  /** Status.details as sent, when there was one. */
  readonly statusDetails?: JsonObject;
  /** The network error code (ECONNREFUSED, ...) when no response arrived. */
  readonly errno?: string;
  readonly retryAfterMs?: number;
  attempts = 1;

  constructor(a: { status: number; reason: string; message: string; method: string; path: string; statusDetails?: JsonObject; errno?: string; retryAfterMs?: number }) {
    const transient = a.status === 0 || RETRY_STATUSES.has(a.status);
    const what = a.status ? `HTTP ${a.status}${a.reason ? ` ${a.reason}` : ''}` : a.reason;
    super(transient ? Code.TryAgainLater : Code.IOFailure, a.message, `${a.method} ${a.path}: ${what}`);
    this.name = 'KubeApiError';
    this.status = a.status;
    this.reason = a.reason;
    this.method = a.method;
    this.path = a.path;
    if (a.statusDetails) this.statusDetails = a.statusDetails;
    if (a.errno) this.errno = a.errno;
    if (a.retryAfterMs !== undefined) this.retryAfterMs = a.retryAfterMs;
  }
}

export function isNotFound(err: unknown): err is KubeApiError {
  return err instanceof KubeApiError && err.status === 404;
}

// One keep-alive agent per TLS identity per process: connections are reused across calls, and
// idle sockets are unref'd by Node, so they never keep a finished CNI call alive. One socket per
// agent: a CNI call makes a handful of small requests, and queueing them on one connection costs a
// millisecond each, while every extra connection costs a full TLS handshake (10-20 ms of CPU on a
// busy node). Measured: 5 parallel requests after ADD took 150 ms over 5 sockets.
const agents = new Map<string, http.Agent>();

function agentFor(a: ClusterAccess): http.Agent {
  const tls = a.server.protocol === 'https:';
  const key = JSON.stringify([tls, a.insecureSkipTlsVerify, a.tlsServerName, a.ca, a.clientCert, a.clientKey]);
  let agent = agents.get(key);
  if (!agent && tls && a.ca && !a.insecureSkipTlsVerify) {
    // The usual kubeconfig: a CA of its own. Verified without Node's root store (src/k8s/tls.ts).
    agent = new https.Agent({ keepAlive: true, maxSockets: 1, ...(a.tlsServerName ? { servername: a.tlsServerName } : {}) });
    const connect = anchoredConnect({
      ca: a.ca,
      ...(a.clientCert && a.clientKey ? { cert: a.clientCert, key: a.clientKey } : {}),
      onFallback: (why) => log.debug('API server certificate checked by the standard TLS path', { why }),
    });
    Object.assign(agent, { createConnection: connect });
    agents.set(key, agent);
  }
  if (!agent) {
    agent = tls
      ? new https.Agent({
          keepAlive: true,
          maxSockets: 1,
          rejectUnauthorized: !a.insecureSkipTlsVerify,
          ...(a.ca ? { ca: a.ca } : {}),
          ...(a.clientCert && a.clientKey ? { cert: a.clientCert, key: a.clientKey } : {}),
          ...(a.tlsServerName ? { servername: a.tlsServerName } : {}),
        })
      : new http.Agent({ keepAlive: true, maxSockets: 1 });
    agents.set(key, agent);
  }
  return agent;
}

// Watches hold their connection for minutes: never on the one-socket request agent above, or
// every request would queue behind them. One connection per stream, no pooling.
const streamAgents = new Map<string, http.Agent>();

function streamAgentFor(a: ClusterAccess): http.Agent {
  const tls = a.server.protocol === 'https:';
  const key = JSON.stringify([tls, a.insecureSkipTlsVerify, a.tlsServerName, a.ca, a.clientCert, a.clientKey]);
  let agent = streamAgents.get(key);
  if (!agent) {
    agent = tls
      ? new https.Agent({
          keepAlive: false,
          rejectUnauthorized: !a.insecureSkipTlsVerify,
          ...(a.ca ? { ca: a.ca } : {}),
          ...(a.clientCert && a.clientKey ? { cert: a.clientCert, key: a.clientKey } : {}),
          ...(a.tlsServerName ? { servername: a.tlsServerName } : {}),
        })
      : new http.Agent({ keepAlive: false });
    streamAgents.set(key, agent);
  }
  return agent;
}

/** Observes every API attempt (the daemon's metrics); one-shot calls leave it unset. */
export type RequestObserver = (e: { method: string; path: string; status: number; ms: number; retry: boolean }) => void;
let observer: RequestObserver | undefined;

export function observeRequests(o: RequestObserver | undefined): void {
  observer = o;
}

/** A watch stream being read: `done` settles when it ends (resolve) or fails (reject). */
export interface Stream {
  done: Promise<void>;
  abort(): void;
}

/** Closes every pooled connection (long-lived callers and tests; a CNI call just exits). */
export function destroyAgents(): void {
  for (const a of agents.values()) a.destroy();
  agents.clear();
  for (const a of streamAgents.values()) a.destroy();
  streamAgents.clear();
}

function retryAfter(header: string | string[] | undefined, details: JsonObject | undefined): number | undefined {
  const h = Array.isArray(header) ? header[0] : header;
  if (h && /^\d+$/.test(h.trim())) return Number(h.trim()) * 1000;
  const s = details?.retryAfterSeconds;
  return typeof s === 'number' && s >= 0 ? s * 1000 : undefined;
}

function errorFromResponse(method: string, path: string, status: number, headers: http.IncomingHttpHeaders, text: string): KubeApiError {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (isObject(body) && body.kind === 'Status') {
    const details = isObject(body.details) ? body.details : undefined;
    return new KubeApiError({
      status,
      reason: typeof body.reason === 'string' ? body.reason : '',
      message: typeof body.message === 'string' && body.message ? body.message : `HTTP ${status}`,
      method,
      path,
      ...(details ? { statusDetails: details } : {}),
      retryAfterMs: retryAfter(headers['retry-after'], details),
    });
  }
  // Not a Status (a proxy or load balancer answered): keep a short, printable excerpt.
  const excerpt = text.replace(/[^\x20-\x7e]+/g, ' ').trim().slice(0, 200);
  return new KubeApiError({
    status,
    reason: '',
    message: excerpt ? `HTTP ${status}: ${excerpt}` : `HTTP ${status} ${http.STATUS_CODES[status] ?? ''}`.trim(),
    method,
    path,
    retryAfterMs: retryAfter(headers['retry-after'], undefined),
  });
}

function backoffMs(attempt: number): number {
  const base = Math.min(100 * 2 ** (attempt - 1), 1000);
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

export class KubeClient {
  readonly access: ClusterAccess;
  private readonly basePath: string;
  private readonly defaultTimeoutMs: number;
  private readonly userAgent: string;

  constructor(access: ClusterAccess, defaults: { timeoutMs?: number; userAgent?: string } = {}) {
    this.access = access;
    // Keep a path prefix in the server URL (clusters behind a proxy such as Rancher's).
    this.basePath = access.server.pathname.replace(/\/+$/, '');
    this.defaultTimeoutMs = defaults.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.userAgent = defaults.userAgent ?? 'plexus';
  }

  get(path: string, opts?: RequestOptions): Promise<JsonObject> {
    return this.request('GET', path, undefined, undefined, opts);
  }

  post(path: string, body: JsonObject, opts?: RequestOptions): Promise<JsonObject> {
    return this.request('POST', path, JSON.stringify(body), 'application/json', opts);
  }

  put(path: string, body: JsonObject, opts?: RequestOptions): Promise<JsonObject> {
    return this.request('PUT', path, JSON.stringify(body), 'application/json', opts);
  }

  patch(path: string, body: JsonObject | Json[], contentType: PatchType, opts?: RequestOptions): Promise<JsonObject> {
    return this.request('PATCH', path, JSON.stringify(body), contentType, opts);
  }

  delete(path: string, opts?: RequestOptions): Promise<JsonObject> {
    return this.request('DELETE', path, undefined, undefined, opts);
  }

  /** Runs attempts until one succeeds, an error is not retryable, or the budget is spent. */
  async request(method: string, path: string, body?: string, contentType?: string, opts: RequestOptions = {}): Promise<JsonObject> {
    const timeoutMs = opts.timeoutMs ?? this.defaultTimeoutMs;
    const budgetMs = opts.budgetMs ?? 0;
    const started = Date.now();
    const deadline = started + budgetMs;
    for (let attempt = 1; ; attempt++) {
      const left = deadline - Date.now();
      const thisTimeout = budgetMs > 0 ? Math.max(1, Math.min(timeoutMs, left)) : timeoutMs;
      try {
        return await this.attempt(method, path, body, contentType, thisTimeout, opts);
      } catch (err) {
        if (!(err instanceof KubeApiError)) throw err;
        err.attempts = attempt;
        const retryable = err.status === 0 ? err.reason === 'Timeout' || RETRY_ERRNOS.has(err.errno ?? '') : RETRY_STATUSES.has(err.status) || !!opts.retryStatuses?.includes(err.status);
        if (!retryable) throw err;
        const delay = err.retryAfterMs ?? backoffMs(attempt);
        // Give up when the wait, plus a little time for the next attempt, no longer fits.
        if (Date.now() + delay + 10 >= deadline) throw err;
        log.verbose('kubernetes API call failed, retrying', { method, path, status: err.status, reason: err.reason, attempt, delayMs: delay });
        opts.onRetry?.(err, attempt, delay);
        observer?.({ method, path, status: err.status, ms: 0, retry: true });
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /**
   * GET a streaming response (a watch) and hand each newline-terminated line to onLine. A non-2xx
   * answer rejects `done` with the apiserver's Status; `idleMs` without a byte (not even a
   * bookmark) counts as a cut stream.
   */
  stream(path: string, onLine: (line: string) => void, idleMs: number, onOpen?: () => void): Stream {
    const a = this.access;
    const tls = a.server.protocol === 'https:';
    const headers = this.headers();
    let req: http.ClientRequest | undefined;
    const t0 = Date.now();
    const done = new Promise<void>((resolve, reject) => {
      const transport = (err: Error, reason = 'ConnectionFailed') => {
        const errno = errnoOf(err);
        reject(new KubeApiError({ status: 0, reason, message: `${a.server.host}: ${err.message}`, method: 'GET', path, ...(errno ? { errno } : {}) }));
      };
      req = (tls ? https : http).request(
        { protocol: a.server.protocol, hostname: a.server.hostname.replace(/^\[(.*)\]$/, '$1'), port: a.server.port || (tls ? 443 : 80), path: this.basePath + path, method: 'GET', headers, agent: streamAgentFor(a) },
        (res) => {
          const status = res.statusCode ?? 0;
          observer?.({ method: 'WATCH', path, status, ms: Date.now() - t0, retry: false });
          if (status < 200 || status > 299) {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => reject(errorFromResponse('GET', path, status, res.headers, Buffer.concat(chunks).toString('utf8'))));
            res.on('error', (err) => transport(err));
            return;
          }
          onOpen?.();
          let buf = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => {
            buf += c;
            for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
              const line = buf.slice(0, nl);
              buf = buf.slice(nl + 1);
              if (line.trim()) onLine(line);
            }
          });
          res.on('aborted', () => transport(new Error('watch stream cut')));
          res.on('error', (err) => transport(err));
          res.on('end', () => resolve());
        },
      );
      req.setTimeout(idleMs, () => req?.destroy(new Error(`no data for ${idleMs} ms`)));
      req.on('error', (err) => transport(err));
      req.end();
    });
    return { done, abort: () => req?.destroy(new Error('aborted')) };
  }

  private headers(): http.OutgoingHttpHeaders {
    const headers: http.OutgoingHttpHeaders = { Accept: 'application/json', 'User-Agent': this.userAgent };
    const token = bearerToken(this.access);
    if (token) headers.Authorization = `Bearer ${token}`;
    return headers;
  }

  private attempt(method: string, path: string, body: string | undefined, contentType: string | undefined, timeoutMs: number, opts: RequestOptions): Promise<JsonObject> {
    const a = this.access;
    const tls = a.server.protocol === 'https:';
    const discardBody = opts.discardBody ?? false;
    const headers = this.headers();
    if (opts.accept) headers.Accept = opts.accept;
    if (body !== undefined) {
      headers['Content-Type'] = contentType ?? 'application/json';
      headers['Content-Length'] = Buffer.byteLength(body);
    }
    const t0 = Date.now();
    return new Promise<JsonObject>((resolve, reject) => {
      let settled = false;
      const fail = (err: KubeApiError) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        log.debug('kubernetes API call', { method, path, status: err.status, reason: err.reason, ms: Date.now() - t0 });
        observer?.({ method, path, status: err.status, ms: Date.now() - t0, retry: false });
        reject(err);
      };
      const transport = (err: Error, reason = 'ConnectionFailed') => {
        const errno = errnoOf(err);
        fail(new KubeApiError({ status: 0, reason, message: `${a.server.host}: ${err.message}`, method, path, ...(errno ? { errno } : {}) }));
      };
      const req = (tls ? https : http).request(
        {
          protocol: a.server.protocol,
          hostname: a.server.hostname.replace(/^\[(.*)\]$/, '$1'),
          port: a.server.port || (tls ? 443 : 80),
          path: this.basePath + path,
          method,
          headers,
          agent: agentFor(a),
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > MAX_RESPONSE_BYTES) req.destroy(new Error(`response larger than ${MAX_RESPONSE_BYTES} bytes`));
            else chunks.push(c);
          });
          res.on('error', (err) => transport(err));
          res.on('end', () => {
            if (settled) return;
            const status = res.statusCode ?? 0;
            const ok = status >= 200 && status <= 299;
            const text = ok && discardBody ? '' : Buffer.concat(chunks).toString('utf8');
            if (!ok) return fail(errorFromResponse(method, path, status, res.headers, text));
            settled = true;
            clearTimeout(timer);
            opts.onResponseBytes?.(size);
            log.debug('kubernetes API call', { method, path, status, ms: Date.now() - t0 });
            observer?.({ method, path, status, ms: Date.now() - t0, retry: false });
            try {
              resolve(text.trim() ? parseObject(text, `${method} ${path}: response`, Code.DecodeFailure) : {});
            } catch (err) {
              reject(err);
            }
          });
        },
      );
      const timer = setTimeout(() => {
        const err = new Error(`no response within ${timeoutMs} ms`);
        transport(err, 'Timeout');
        req.destroy(err);
      }, timeoutMs);
      req.on('error', (err) => transport(err));
      req.end(body);
    });
  }
}
