// A kubelet PodResources v1 server for tests: gRPC over HTTP/2 on a unix socket, as the kubelet
// serves /var/lib/kubelet/pod-resources/kubelet.sock. Field numbers from k8s.io/kubelet
// pkg/apis/podresources/v1/api.proto. Its protobuf encoding is written out here by hand, not
// borrowed from src/grpc, so a codec bug cannot cancel itself out between client and server.
import * as http2 from 'node:http2';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { tempDir } from './host';

type Cleanup = Pick<TestContext, 'after'>;

export interface FakeDevice {
  resourceName: string;
  deviceIds: string[];
}

export interface FakePod {
  namespace: string;
  name: string;
  containers: { name: string; devices: FakeDevice[] }[];
}

export interface PodResourcesOptions {
  /**
   * How `Get` answers: `ok`; `unimplemented` (a kubelet before 1.27); `disabled` (1.27-1.33 with
   * the KubeletPodResourcesGet gate off: a plain error, code UNKNOWN).
   */
  get?: 'ok' | 'unimplemented' | 'disabled';
  /** Read requests and never answer. */
  hang?: boolean;
}

export interface PodResourcesServer {
  socket: string;
  pods: FakePod[];
  /** Methods called, in order ("Get default/web", "List"). */
  calls: string[];
}

function varint(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return Buffer.from(out);
}

/** A length-delimited field (strings and messages are all this API has). */
function ld(field: number, payload: Buffer | string): Buffer {
  const b = typeof payload === 'string' ? Buffer.from(payload) : payload;
  return Buffer.concat([varint((field << 3) | 2), varint(b.length), b]);
}

// Also sends fields a newer kubelet adds (cpu_ids, topology, memory): the client must skip them.
function encodePod(p: FakePod): Buffer {
  const containers = p.containers.map((c) =>
    ld(
      3,
      Buffer.concat([
        ld(1, c.name),
        ...c.devices.map((d) => ld(2, Buffer.concat([ld(1, d.resourceName), ...d.deviceIds.map((id) => ld(2, id)), ld(3, ld(1, Buffer.from([0x08, 0x01])))]))),
        ld(3, Buffer.from([0x02, 0x04])), // cpu_ids, packed [2, 4]
      ]),
    ),
  );
  return Buffer.concat([ld(1, p.name), ld(2, p.namespace), ...containers, ld(5, ld(1, 'memory'))]);
}

/** GetPodResourcesRequest {pod_name = 1, pod_namespace = 2}, strings only. */
function decodeGet(b: Buffer): { name: string; namespace: string } {
  const out = { name: '', namespace: '' };
  let i = 0;
  while (i < b.length) {
    const key = b[i++]!;
    let len = 0;
    for (let shift = 0; ; shift += 7) {
      const c = b[i++]!;
      len |= (c & 0x7f) << shift;
      if (!(c & 0x80)) break;
    }
    const v = b.subarray(i, i + len).toString();
    i += len;
    if (key === 0x0a) out.name = v;
    else if (key === 0x12) out.namespace = v;
  }
  return out;
}

function frame(msg: Buffer): Buffer {
  const b = Buffer.alloc(5 + msg.length);
  b.writeUInt32BE(msg.length, 1);
  msg.copy(b, 5);
  return b;
}

export async function podResourcesServer(t: Cleanup, pods: FakePod[], opts: PodResourcesOptions = {}): Promise<PodResourcesServer> {
  const socket = join(tempDir(t, 'plexus-podres-'), 'kubelet.sock');
  const state: PodResourcesServer = { socket, pods, calls: [] };
  const srv = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  srv.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  srv.on('stream', (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('error', () => undefined);
    stream.on('end', () => {
      const path = String(headers[':path']);
      const body = Buffer.concat(chunks).subarray(5);
      const status = (code: number, message: string) =>
        stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(code), 'grpc-message': encodeURIComponent(message) }, { endStream: true });
      const reply = (msg: Buffer) => {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end(frame(msg));
      };
      if (headers['content-type'] !== 'application/grpc') return status(3, `bad content-type ${String(headers['content-type'])}`);
      if (path === '/v1.PodResourcesLister/Get') {
        const q = decodeGet(body);
        state.calls.push(`Get ${q.namespace}/${q.name}`);
        if (opts.hang) return;
        if (opts.get === 'unimplemented') return status(12, 'unknown method Get for service v1.PodResourcesLister');
        if (opts.get === 'disabled') return status(2, 'PodResources API Get method disabled');
        const pod = state.pods.find((p) => p.namespace === q.namespace && p.name === q.name);
        // the kubelet's own wording for a pod it does not know
        if (!pod) return status(2, `pod ${q.name} in namespace ${q.namespace} not found`);
        return reply(ld(1, encodePod(pod)));
      }
      if (path === '/v1.PodResourcesLister/List') {
        state.calls.push('List');
        if (opts.hang) return;
        return reply(Buffer.concat(state.pods.map((p) => ld(1, encodePod(p)))));
      }
      state.calls.push(path);
      return status(12, `unknown method ${path}`);
    });
  });
  await new Promise<void>((res) => srv.listen(socket, res));
  t.after(() => {
    for (const s of sessions) s.destroy();
    return new Promise<void>((res) => srv.close(() => res()));
  });
  return state;
}
