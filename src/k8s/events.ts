// Pod events as Multus records them (core/v1 Event, one object per occurrence, named the way
// client-go's recorder names them), e.g. `Normal AddedInterface` and `Warning NoNetworkFound`.
import { hostname } from 'node:os';
import { randomInt } from 'node:crypto';
import type { JsonObject } from '../cni/validate';
import type { KubeClient, RequestOptions } from './client';
import type { PodRef } from './pods';

export interface PodEventSpec {
  pod: PodRef;
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
  /** source.component / reportingComponent; `plexus` unless told otherwise. */
  component?: string;
}

// The apiserver keeps events.k8s.io notes to 1 kB; core events have no limit, but long ones help nobody.
const MAX_MESSAGE = 1024;
const DEFAULTS: RequestOptions = { budgetMs: 1000, timeoutMs: 1000 };

export function eventBody(e: PodEventSpec, now = new Date(), host = hostname()): JsonObject {
  // client-go names events <object>.<UnixNano in hex>; a random tail keeps two processes
  // recording in the same millisecond apart.
  const nanos = BigInt(now.getTime()) * 1_000_000n + BigInt(randomInt(1_000_000));
  const ts = now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const component = e.component ?? 'plexus';
  const involvedObject: JsonObject = { kind: 'Pod', apiVersion: 'v1', namespace: e.pod.namespace, name: e.pod.name };
  if (e.pod.uid) involvedObject.uid = e.pod.uid;
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name: `${e.pod.name}.${nanos.toString(16)}`, namespace: e.pod.namespace },
    involvedObject,
    reason: e.reason,
    message: e.message.length > MAX_MESSAGE ? e.message.slice(0, MAX_MESSAGE - 1) + '…' : e.message,
    type: e.type,
    source: { component, host },
    firstTimestamp: ts,
    lastTimestamp: ts,
    count: 1,
    reportingComponent: component,
    reportingInstance: host,
  };
}

/** Records the event; the caller decides whether a failure matters (usually it does not). */
export async function createEvent(client: KubeClient, e: PodEventSpec, opts: RequestOptions = {}): Promise<void> {
  const path = `/api/v1/namespaces/${encodeURIComponent(e.pod.namespace)}/events`;
  await client.post(path, eventBody(e), { ...DEFAULTS, ...opts });
}
