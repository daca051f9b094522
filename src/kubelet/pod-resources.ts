// The kubelet's PodResources API (k8s.io/kubelet pkg/apis/podresources/v1/api.proto) on its unix
// socket: which device-plugin devices a pod holds. `Get` for the one pod where the kubelet offers
// it (KubeletPodResourcesGet, on by default from 1.34), else `List` of every pod on the node, as
// Multus does (pkg/kubeletclient). Loaded only for a NAD that names a resource: the gRPC client
// is imported here and nowhere on the path of an ordinary pod.
import { CniError, Code } from '../cni/errors';
import type { GrpcError } from '../grpc/client';
import type { ProtoMessage } from '../grpc/proto';

export const DEFAULT_SOCKET = '/var/lib/kubelet/pod-resources/kubelet.sock';
const SERVICE = '/v1.PodResourcesLister';
// Multus's limit: List returns every pod of the node.
const MAX_RESPONSE = 16 * 1024 * 1024;

export interface PodKey {
  namespace: string;
  name: string;
}

// Field numbers from api.proto.
const PodResources = { name: 1, namespace: 2, containers: 3 } as const;
const ContainerResources = { devices: 2 } as const;
const ContainerDevices = { resourceName: 1, deviceIds: 2 } as const;

/** Every device of every container of one PodResources message, by resource, sorted (Multus SortDeviceIDs). */
export function devicesOf(pod: ProtoMessage): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const c of pod.messages(PodResources.containers)) {
    for (const d of c.messages(ContainerResources.devices)) {
      const resource = d.string(ContainerDevices.resourceName);
      const ids = out.get(resource) ?? [];
      ids.push(...d.strings(ContainerDevices.deviceIds));
      out.set(resource, ids);
    }
  }
  for (const ids of out.values()) ids.sort();
  return out;
}

/**
 * Whether `Get` is not available on this kubelet, so `List` must answer: older kubelets do not
 * know the method; 1.27-1.33 have it behind a feature gate and fail it with a plain error.
 */
export function getUnavailable(err: GrpcError): boolean {
  return err.code === 12 /* UNIMPLEMENTED */ || (err.code === 2 /* UNKNOWN */ && /Get method disabled/i.test(err.details));
}

/** The pod's devices by resource name, asking the kubelet at `socket` within `timeoutMs` overall. */
export async function podDevices(socket: string, pod: PodKey, timeoutMs: number): Promise<Map<string, string[]>> {
  const [{ GrpcChannel, GrpcError: GrpcErrorClass }, { ProtoWriter, decodeMessage }] = await Promise.all([import('../grpc/client'), import('../grpc/proto')]);
  const channel = new GrpcChannel(socket);
  const deadline = Date.now() + timeoutMs;
  const call = (method: string, req: Uint8Array) =>
    channel.unary(`${SERVICE}/${method}`, req, { timeoutMs: Math.max(1, deadline - Date.now()), maxResponseBytes: MAX_RESPONSE });
  const where = `kubelet PodResources API at ${socket}`;
  try {
    let reply: Buffer;
    try {
      reply = await call('Get', new ProtoWriter().string(1, pod.name).string(2, pod.namespace).finish());
    } catch (err) {
      if (!(err instanceof GrpcErrorClass) || !getUnavailable(err)) throw err;
      const all = decodeMessage(await call('List', new Uint8Array(0))).messages(1);
      const mine = all.find((p) => p.string(PodResources.name) === pod.name && p.string(PodResources.namespace) === pod.namespace);
      return mine ? devicesOf(mine) : new Map();
    }
    return devicesOf(decodeMessage(reply).message(1));
  } catch (err) {
    if (err instanceof GrpcErrorClass) {
      // The kubelet being slow or restarting is worth a retry by the runtime.
      const transient = err.code === 4 || err.code === 14;
      throw new CniError(transient ? Code.TryAgainLater : Code.IOFailure, `${where}: ${err.message}`);
    }
    throw new CniError(Code.DecodeFailure, `${where}: malformed reply: ${(err as Error).message}`);
  } finally {
    channel.close();
  }
}
