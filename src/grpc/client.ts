// A unary gRPC client over HTTP/2 on a unix socket (the kubelet's PodResources API, a CRI runtime):
// https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md. One request message, one
// response message, a deadline covering connection and call, status from the trailers (or from
// the headers of a trailers-only response). No TLS, no compression, no streaming, no retries: the
// local sockets plexus talks to need none of them, and @grpc/grpc-js costs far more to load than a
// CNI call can spare (docs/decisions.md, "gRPC client").
import * as http2 from 'node:http2';
import * as net from 'node:net';

/** gRPC status codes (grpc/doc/statuscodes.md). */
export const Status = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

const STATUS_NAMES = Object.fromEntries(Object.entries(Status).map(([k, v]) => [v, k])) as Record<number, string>;

export function statusName(code: number): string {
  return STATUS_NAMES[code] ?? `status ${code}`;
}

/** A call that did not return OK: the status the server sent, or one the client decided (deadline, connection). */
export class GrpcError extends Error {
  readonly code: number;
  /** grpc-message as the server sent it (percent-decoded), or the client's reason. */
  readonly details: string;
  readonly method: string;
  constructor(code: number, details: string, method: string) {
    super(`${method}: ${statusName(code)}${details ? `: ${details}` : ''}`);
    this.name = 'GrpcError';
    this.code = code;
    this.details = details;
    this.method = method;
  }
}

export interface CallOptions {
  /** Deadline for the whole call, connecting included; sent to the server as grpc-timeout. */
  timeoutMs: number;
  /** Largest response message accepted (grpc-go's default receive limit is 4 MiB; Multus raises it to 16 for PodResources). */
  maxResponseBytes?: number;
  /** Extra request metadata (lower-case ASCII names, no `grpc-` prefix). */
  metadata?: Readonly<Record<string, string>>;
}

const DEFAULT_MAX_RESPONSE = 16 * 1024 * 1024;

/**
 * One HTTP/2 connection to a unix socket, opened on the first call. Calls may run concurrently;
 * close() when done, since an open session keeps the process alive.
 */
export class GrpcChannel {
  private session: http2.ClientHttp2Session | undefined;
  private sessionError: Error | undefined;
  private closed = false;

  constructor(readonly socketPath: string) {}

  private connect(): http2.ClientHttp2Session {
    if (this.closed) throw new Error('channel closed');
    if (this.session && !this.session.destroyed) return this.session;
    this.sessionError = undefined;
    const s = http2.connect('http://localhost', { createConnection: () => net.connect(this.socketPath) });
    // Without a listener a refused connection would be an uncaught exception; calls pick the
    // error up from their stream or from here.
    s.on('error', (err: Error) => {
      this.sessionError = err;
    });
    this.session = s;
    return s;
  }

  unary(method: string, request: Uint8Array, opts: CallOptions): Promise<Buffer> {
    const max = opts.maxResponseBytes ?? DEFAULT_MAX_RESPONSE;
    return new Promise<Buffer>((resolve, reject) => {
      let settled = false;
      let stream: http2.ClientHttp2Stream | undefined;
      const finish = (err: GrpcError | undefined, body?: Buffer): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (stream && !stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
        if (err) reject(err);
        else resolve(body!);
      };
      const fail = (code: number, details: string): void => finish(new GrpcError(code, details, method));
      const timer = setTimeout(() => {
        // A server that accepted the connection but never answered: cancel the stream, and drop
        // the session too when it never got as far as HTTP/2 settings.
        fail(Status.DEADLINE_EXCEEDED, `no answer from ${this.socketPath} within ${opts.timeoutMs} ms`);
        if (this.session && !this.session.remoteSettings) this.dropSession();
      }, opts.timeoutMs);

      let session: http2.ClientHttp2Session;
      try {
        session = this.connect();
      } catch (err) {
        fail(Status.UNAVAILABLE, (err as Error).message);
        return;
      }
      const headers: http2.OutgoingHttpHeaders = {
        ':method': 'POST',
        ':path': method,
        'content-type': 'application/grpc',
        te: 'trailers',
        'grpc-timeout': `${Math.max(1, Math.min(Math.ceil(opts.timeoutMs), 99_999_999))}m`,
        'user-agent': 'plexus-grpc/1',
      };
      for (const [k, v] of Object.entries(opts.metadata ?? {})) headers[k] = v;
      try {
        stream = session.request(headers);
      } catch (err) {
        fail(Status.UNAVAILABLE, connectionReason(this.socketPath, this.sessionError ?? (err as Error)));
        return;
      }
      const frame = Buffer.alloc(5 + request.byteLength);
      frame.writeUInt32BE(request.byteLength, 1);
      frame.set(request, 5);
      stream.end(frame);

      let httpStatus = 0;
      let responseHeaders: http2.IncomingHttpHeaders = {};
      let trailers: http2.IncomingHttpHeaders | undefined;
      const chunks: Buffer[] = [];
      let received = 0;
      stream.on('response', (h) => {
        responseHeaders = h;
        httpStatus = Number(h[':status']);
      });
      stream.on('trailers', (t) => {
        trailers = t;
      });
      stream.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received > max + 5) fail(Status.RESOURCE_EXHAUSTED, `response larger than ${max} bytes`);
        else chunks.push(chunk);
      });
      stream.on('error', (err: Error) => {
        fail(Status.UNAVAILABLE, connectionReason(this.socketPath, this.sessionError ?? err));
      });
      stream.on('close', () => {
        if (settled) return;
        if (!httpStatus) {
          fail(Status.UNAVAILABLE, connectionReason(this.socketPath, this.sessionError ?? new Error('connection closed before a response')));
          return;
        }
        if (httpStatus !== 200) {
          fail(httpToStatus(httpStatus), `HTTP status ${httpStatus}`);
          return;
        }
        // A trailers-only response carries the status in its headers.
        const meta = trailers ?? responseHeaders;
        const raw = meta['grpc-status'];
        if (raw === undefined) {
          fail(Status.INTERNAL, 'response without grpc-status');
          return;
        }
        const code = Number(raw);
        if (code !== Status.OK) {
          fail(Number.isInteger(code) ? code : Status.UNKNOWN, percentDecode(String(meta['grpc-message'] ?? '')));
          return;
        }
        const type = String(responseHeaders['content-type'] ?? '');
        if (!type.startsWith('application/grpc')) {
          fail(Status.INTERNAL, `response content-type ${JSON.stringify(type)}`);
          return;
        }
        try {
          finish(undefined, singleMessage(Buffer.concat(chunks)));
        } catch (err) {
          fail(Status.INTERNAL, (err as Error).message);
        }
      });
    });
  }

  private dropSession(): void {
    this.session?.destroy();
    this.session = undefined;
  }

  close(): void {
    this.closed = true;
    this.dropSession();
  }
}

/** One call on its own connection, closed afterwards whatever the outcome. */
export async function unaryCall(socketPath: string, method: string, request: Uint8Array, opts: CallOptions): Promise<Buffer> {
  const ch = new GrpcChannel(socketPath);
  try {
    return await ch.unary(method, request, opts);
  } finally {
    ch.close();
  }
}

/** The one length-prefixed message of a unary response body. */
function singleMessage(body: Buffer): Buffer {
  if (body.length < 5) throw new Error(body.length ? `truncated message frame (${body.length} bytes)` : 'response without a message');
  if (body[0] !== 0) throw new Error('compressed response message, but no compression was offered');
  const len = body.readUInt32BE(1);
  if (body.length < 5 + len) throw new Error(`truncated message: ${body.length - 5} of ${len} bytes`);
  if (body.length > 5 + len) throw new Error('more than one message in a unary response');
  return body.subarray(5, 5 + len);
}

// grpc/doc/http-grpc-status-mapping.md
function httpToStatus(s: number): number {
  switch (s) {
    case 400:
      return Status.INTERNAL;
    case 401:
      return Status.UNAUTHENTICATED;
    case 403:
      return Status.PERMISSION_DENIED;
    case 404:
      return Status.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return Status.UNAVAILABLE;
    default:
      return Status.UNKNOWN;
  }
}

function percentDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function connectionReason(socketPath: string, err: Error): string {
  // A stream cancelled because its connection failed carries the connect error as its cause.
  const root = (err.cause instanceof Error ? err.cause : err) as NodeJS.ErrnoException;
  const text = root.code && !root.message.includes(root.code) ? `${root.code} ${root.message}` : root.message;
  return text.includes(socketPath) ? text : `${socketPath}: ${text}`;
}
