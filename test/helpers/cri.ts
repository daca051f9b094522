// A small CRI client (runtime.v1, what the kubelet speaks to containerd): the pod-sandbox calls a
// CNI test needs, encoded by hand with the project's protobuf codec and sent with its unary gRPC
// client. Field numbers are those of k8s.io/cri-api pkg/apis/runtime/v1/api.proto.
import { GrpcChannel } from '../../src/grpc/client';
import { decodeMessage, ProtoWriter } from '../../src/grpc/proto';

const SERVICE = '/runtime.v1.RuntimeService';

export interface SandboxSpec {
  name: string;
  namespace: string;
  uid: string;
  attempt?: number;
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
  logDirectory: string;
}

export interface SandboxStatus {
  id: string;
  /** SANDBOX_READY = 0, SANDBOX_NOTREADY = 1. */
  state: number;
  ip: string;
  additionalIps: string[];
  annotations: Record<string, string>;
  /** The verbose `info` map, parsed (containerd: pid, runtimeSpec, cniResult, …). */
  info: Record<string, unknown>;
}

export interface RuntimeCondition {
  type: string;
  status: boolean;
  reason: string;
  message: string;
}

function podSandboxConfig(s: SandboxSpec): ProtoWriter {
  const metadata = new ProtoWriter().string(1, s.name).string(2, s.uid).string(3, s.namespace).varint(4, s.attempt ?? 0);
  // linux.security_context.namespace_options.network = POD (0): the sandbox gets its own netns
  const nsOptions = new ProtoWriter().varint(1, 0).varint(2, 0).varint(3, 0);
  const linux = new ProtoWriter().message(2, new ProtoWriter().message(1, nsOptions));
  return new ProtoWriter()
    .message(1, metadata)
    .string(2, s.name)
    .string(3, s.logDirectory)
    .map(6, s.labels ?? {})
    .map(7, s.annotations ?? {})
    .message(8, linux);
}

export class CriClient {
  private readonly ch: GrpcChannel;

  constructor(
    readonly socket: string,
    private readonly timeoutMs = 120_000,
  ) {
    this.ch = new GrpcChannel(socket);
  }

  private call(method: string, req: ProtoWriter): Promise<Buffer> {
    return this.ch.unary(`${SERVICE}/${method}`, req.finish(), { timeoutMs: this.timeoutMs });
  }

  async runPodSandbox(s: SandboxSpec): Promise<string> {
    const res = decodeMessage(await this.call('RunPodSandbox', new ProtoWriter().message(1, podSandboxConfig(s))));
    return res.string(1);
  }

  async stopPodSandbox(id: string): Promise<void> {
    await this.call('StopPodSandbox', new ProtoWriter().string(1, id));
  }

  async removePodSandbox(id: string): Promise<void> {
    await this.call('RemovePodSandbox', new ProtoWriter().string(1, id));
  }

  async podSandboxStatus(id: string): Promise<SandboxStatus> {
    const res = decodeMessage(await this.call('PodSandboxStatus', new ProtoWriter().string(1, id).bool(2, true)));
    const st = res.message(1);
    const net = st.message(5);
    const info: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(res.map(2))) {
      try {
        info[k] = JSON.parse(v) as unknown;
      } catch {
        info[k] = v;
      }
    }
    return {
      id: st.string(1),
      state: st.number(3),
      ip: net.string(1),
      additionalIps: net.messages(2).map((m) => m.string(1)),
      annotations: st.map(8),
      info,
    };
  }

  /** Ids of every sandbox the runtime knows, ready or not. */
  async listPodSandboxes(): Promise<string[]> {
    const res = decodeMessage(await this.call('ListPodSandbox', new ProtoWriter()));
    return res.messages(1).map((m) => m.string(1));
  }

  async status(): Promise<RuntimeCondition[]> {
    const res = decodeMessage(await this.call('Status', new ProtoWriter()));
    return res
      .message(1)
      .messages(1)
      .map((c) => ({ type: c.string(1), status: c.bool(2), reason: c.string(3), message: c.string(4) }));
  }

  /** The verbose Status info map: containerd puts the loaded CNI configs under `cniconfig`. */
  async statusInfo(): Promise<Record<string, string>> {
    return decodeMessage(await this.call('Status', new ProtoWriter().bool(1, true))).map(2);
  }

  close(): void {
    this.ch.close();
  }
}

/** The sandbox's network namespace path, from containerd's verbose info (its OCI runtime spec). */
export function sandboxNetns(st: SandboxStatus): string {
  const info = st.info.info as { runtimeSpec?: { linux?: { namespaces?: { type: string; path?: string }[] } } } | undefined;
  const ns = info?.runtimeSpec?.linux?.namespaces?.find((n) => n.type === 'network');
  if (!ns?.path) throw new Error(`sandbox ${st.id}: no network namespace path in its verbose status`);
  return ns.path;
}
