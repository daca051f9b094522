// ADD: resolve the pod's networks, journal the plan, attach each in order, roll back on failure,
// report network-status, and return the cluster network's result.
import { addNetwork } from '../cni/api';
import { asCniError, CniError, Code } from '../cni/errors';
import { parseNetworkConfig } from '../cni/netconf';
import { isObject, type JsonObject } from '../cni/validate';
import { log } from '../log';
import type { NetworkSelectionElement } from '../cni/types';
import type { ClusterApi, PodInfo } from './cluster';
import type { PlexusConf } from './config';
import { runtimeFor, type Context } from './context';
import { copyDevicePluginInfo, readDeviceInfos, type DeviceInfoProblem } from './device-info';
import { assignDevices, needsDevices, type HeldDevices } from './devices';
import { readJournal, writeJournal, type AttachmentRecord, type JournalRecord, type PodRef } from './journal';
import { inlineDelegate, namedNetwork, nadNetwork, type NetworkSpec } from './networks';
import { lenientRoute, planAttachments, undeclaredRequests } from './plan';
import { applyDefaultRoute } from './default-route';
import { waitForReadiness } from './readiness';
import { writeResultCache } from './results-cache';
import { DEFAULT_NETWORK_ANNOTATION, NETWORKS_ANNOTATION, parseDefaultNetwork, parseNetworkSelection } from './selection';
import { announceAttachment, publishNetworkStatus } from './publish';
import { teardown, teardownError } from './teardown';
import { parseCniArgs, podFromArgs } from '../cni/args';

export const POD_ANNOTATIONS_CAPABILITY = 'io.kubernetes.cri.pod-annotations';

interface PodView {
  ref?: PodRef;
  annotations: Record<string, string>;
  /** Set when the pod was fetched from the API. */
  info?: PodInfo;
}

function runtimeAnnotations(conf: PlexusConf): Record<string, string> | undefined {
  const v = conf.runtimeConfig[POD_ANNOTATIONS_CAPABILITY];
  if (!isObject(v)) return undefined;
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) if (typeof val === 'string') out[k] = val;
  return out;
}

/** The pod's annotations: handed over by the runtime when it can, else fetched (UID checked). */
async function loadPod(ctx: Context, ref: PodRef | undefined): Promise<PodView> {
  const fromRuntime = runtimeAnnotations(ctx.conf);
  if (!ref) return { annotations: fromRuntime ?? {} };
  if (fromRuntime) return { ref, annotations: fromRuntime };
  const api = await ctx.api();
  if (!api) return { ref, annotations: {} };
  const info = await api.getPod(ref.namespace, ref.name);
  if (ref.uid && info.uid !== ref.uid) {
    throw new CniError(Code.InvalidEnv, `CNI_ARGS K8S_POD_UID ${ref.uid} does not match pod ${ref.namespace}/${ref.name} (uid ${info.uid}): the pod was re-created`);
  }
  return { ref: { ...ref, uid: info.uid }, annotations: info.annotations, info };
}

async function requireApi(ctx: Context, why: string): Promise<ClusterApi> {
  const api = await ctx.api();
  if (!api) throw new CniError(Code.InvalidConfig, `kubeconfig: not configured, but ${why} needs the Kubernetes API`);
  return api;
}

async function clusterNetwork(ctx: Context, pod: PodView): Promise<NetworkSpec> {
  const override = pod.annotations[DEFAULT_NETWORK_ANNOTATION];
  if (override !== undefined && override.trim() !== '') {
    const sel = parseDefaultNetwork(override, ctx.conf.multusNamespace);
    const api = await requireApi(ctx, `annotation ${DEFAULT_NETWORK_ANNOTATION}`);
    const spec = await nadNetwork(api, sel.namespace, sel.name, ctx.conf);
    if (!spec) throw new CniError(Code.InvalidConfig, `${DEFAULT_NETWORK_ANNOTATION}: network-attachment-definition ${sel.namespace}/${sel.name} not found`);
    return { ...spec, isDefault: true };
  }
  if (ctx.conf.delegates.length > 0) return inlineDelegate(ctx.conf, 0);
  return namedNetwork(ctx.conf.clusterNetwork ?? '', ctx.conf, await ctx.api(), true, 'clusterNetwork');
}

/** The selection annotation, parsed and checked against namespaceIsolation: pure, before anything runs. */
function selectionOf(ctx: Context, pod: PodView): NetworkSelectionElement[] {
  const annotation = pod.annotations[NETWORKS_ANNOTATION];
  if (annotation === undefined || annotation.trim() === '') return [];
  const podNs = pod.ref?.namespace ?? 'default';
  const elements = parseNetworkSelection(annotation, podNs);
  const { conf } = ctx;
  for (const el of elements) {
    if (conf.namespaceIsolation && el.namespace !== podNs && !conf.globalNamespaces.includes(el.namespace)) {
      throw new CniError(
        Code.InvalidConfig,
        `namespaceIsolation: pod in namespace ${podNs} may not use network ${el.namespace}/${el.name} (allowed: ${[podNs, ...conf.globalNamespaces].join(', ')})`,
      );
    }
  }
  return elements;
}

async function selectedNetworks(ctx: Context, pod: PodView, elements: NetworkSelectionElement[]): Promise<NetworkSpec[]> {
  if (elements.length === 0) return [];
  const api = await requireApi(ctx, `annotation ${NETWORKS_ANNOTATION}`);
  // NAD reads are independent: issue them together; the attachments themselves stay sequential.
  const specs = await Promise.all(elements.map((el) => nadNetwork(api, el.namespace, el.name, ctx.conf, el)));
  return specs.map((spec, i) => {
    const el = elements[i]!;
    if (spec) return spec;
    if (pod.ref) {
      void api.podEvent(pod.ref, { type: 'Warning', reason: 'NoNetworkFound', message: `cannot find a network-attachment-definition (${el.name}) in namespace (${el.namespace})` }).catch(() => undefined);
    }
    throw new CniError(Code.InvalidConfig, `${NETWORKS_ANNOTATION}: network-attachment-definition ${el.namespace}/${el.name} not found`);
  });
}

/** Every network after the cluster one: defaultNetworks, further inline delegates, the selection. */
async function otherNetworks(ctx: Context, pod: PodView, elements: NetworkSelectionElement[]): Promise<NetworkSpec[]> {
  const { conf } = ctx;
  const extra: NetworkSpec[] = [];
  const system = pod.ref && conf.systemNamespaces.includes(pod.ref.namespace);
  if (!system) {
    for (const name of conf.defaultNetworks) extra.push(await namedNetwork(name, conf, await ctx.api(), false, 'defaultNetworks'));
  }
  for (let i = 1; i < conf.delegates.length; i++) extra.push({ ...inlineDelegate(conf, i), isDefault: false });
  return [...extra, ...(await selectedNetworks(ctx, pod, elements))];
}

/** The pod's devices from the kubelet, asked at most once per ADD and only when a network names a resource. */
function deviceLookup(ctx: Context, pod: PodView): (specs: NetworkSpec[]) => Promise<HeldDevices> {
  let held: Promise<HeldDevices> | undefined;
  return (specs) => {
    const wanting = specs
      .filter((s) => s.resourceName)
      .map((s) => `${s.network} (resource ${JSON.stringify(s.resourceName)})`)
      .join(', ');
    const ref = pod.ref;
    if (!ref) {
      return Promise.reject(
        new CniError(Code.InvalidEnv, `network ${wanting}: a device-plugin resource needs the pod's name: CNI_ARGS has no K8S_POD_NAMESPACE and K8S_POD_NAME`),
      );
    }
    held ??= (async () => {
      const { podDevices } = await import('../kubelet/pod-resources');
      const { conf } = ctx;
      return podDevices(conf.podResourcesSocket, ref, conf.podResourcesTimeoutMs);
    })();
    return held.catch((err: unknown) => {
      const e = asCniError(err);
      throw new CniError(e.code, `network ${wanting}: cannot learn the pod's devices: ${e.message}`, e.details);
    });
  };
}

/** The specs, each network naming a resource given its device of the pod (Multus order). */
async function withDevices(specs: NetworkSpec[], pod: PodView, lookup: (specs: NetworkSpec[]) => Promise<HeldDevices>): Promise<NetworkSpec[]> {
  if (!needsDevices(specs)) return specs;
  const held = await lookup(specs);
  const ids = assignDevices(specs, held, pod.ref ? `${pod.ref.namespace}/${pod.ref.name}` : '');
  const out = specs.map((s, i) => (ids[i] === undefined ? s : { ...s, deviceID: ids[i] }));
  log.phase('devices assigned', { devices: out.filter((s) => s.deviceID).map((s) => `${s.network}=${s.deviceID}`) });
  return out;
}

function cacheResult(ctx: Context, att: AttachmentRecord): void {
  if (!att.result) return;
  const { env, conf } = ctx;
  writeResultCache(conf.cniDir, {
    containerId: env.containerId,
    ifName: att.ifname,
    networkName: parseNetworkConfig(att.config, `network ${att.network}`).name,
    netns: env.netns,
    config: att.config,
    cniArgs: parseCniArgs(att.args),
    capabilityArgs: att.capabilityArgs,
    result: att.result,
  });
}

async function attach(ctx: Context, rec: JournalRecord, att: AttachmentRecord, problems: DeviceInfoProblem[]): Promise<void> {
  const { env, conf } = ctx;
  const net = parseNetworkConfig(att.config, `network ${att.network}`);
  let result: JsonObject;
  try {
    // DIS §4.2: the device plugin's file is in place before the plugin runs, which may read it.
    const problem = copyDevicePluginInfo(conf.dpDeviceInfoDir, att);
    if (problem) problems.push(problem);
    result = await addNetwork(net, runtimeFor(ctx, att, env.netns, env.containerId), ctx.invoke);
  } catch (err) {
    const e = asCniError(err);
    throw new CniError(e.code, `network ${att.network} (${att.ifname}): ${e.message}`, e.details);
  }
  att.result = result;
  att.state = 'added';
  writeJournal(conf.cniDir, rec, false);
  cacheResult(ctx, att);
  log.phase('attached', { network: att.network, ifname: att.ifname });
}

/**
 * capabilityCheck lenient let a request through that no plugin declares: say so on the pod, so
 * the NAD gets fixed before the switch to strict.
 */
function warnUndeclared(ctx: Context, pod: PodRef | undefined, specs: NetworkSpec[]): void {
  if (ctx.conf.capabilityCheck !== 'lenient') return; // strict refused them in the plan
  for (const spec of specs) {
    const keys = undeclaredRequests(spec);
    if (keys.length === 0) continue;
    const caps = keys.map((k) => `"${k}": true`).join(', ');
    const message =
      `network-attachment-definition ${spec.network}: the pod requests ${keys.join(', ')} but no plugin of it declares the capability; ` +
      `passed as Multus does (${keys.map((k) => `${k}: ${lenientRoute(k)}`).join('; ')}) because capabilityCheck is "lenient". ` +
      `Declare "capabilities": {${caps}} in its plugin config`;
    log.warn(message, { network: spec.network });
    if (!pod) continue;
    void ctx
      .api()
      .then((api) => api?.podEvent(pod, { type: 'Warning', reason: 'UndeclaredCapability', message }))
      .catch(() => undefined);
  }
}

/** Its AddedInterface event, in the background; see announceAttachment. */
function announce(ctx: Context, rec: JournalRecord, att: AttachmentRecord): void {
  const pod = rec.pod;
  if (!pod) return;
  void ctx
    .api()
    .then((api) => api && announceAttachment(api, pod, att))
    .catch(() => undefined);
}

function refuseTakenNames(ctx: Context, attachments: AttachmentRecord[]): void {
  const present = ctx.linkNames(ctx.env.netns);
  for (const att of attachments) {
    if (present.has(att.ifname)) {
      throw new CniError(Code.InvalidConfig, `network ${att.network}: interface ${att.ifname} already exists in ${ctx.env.netns}`);
    }
  }
}

async function rollBack(ctx: Context, rec: JournalRecord, cause: CniError): Promise<CniError> {
  log.error('ADD failed, rolling back', { code: cause.code, error: cause.message });
  const failures = await teardown(ctx, rec, ctx.env.netns);
  if (failures.length === 0) return cause;
  const t = teardownError(failures, 'rollback');
  return new CniError(cause.code, `${cause.message}; ${t.message}`);
}

export async function cmdAdd(ctx: Context): Promise<JsonObject> {
  const { env, conf } = ctx;
  if (conf.readinessIndicatorFile) await waitForReadiness(conf.readinessIndicatorFile, conf.readinessTimeoutMs);
  if (readJournal(conf.cniDir, env.containerId)) {
    throw new CniError(Code.InvalidConfig, `container ${env.containerId} already has journaled attachments: DEL it before adding it again`);
  }
  const pod = await loadPod(ctx, podFromArgs(parseCniArgs(env.args)));
  log.phase('pod loaded', { fromApi: pod.info !== undefined });
  const cluster = await clusterNetwork(ctx, pod);
  const devices = deviceLookup(ctx, pod);
  const problems: DeviceInfoProblem[] = [];
  const elements = selectionOf(ctx, pod);
  const plan = (networks: NetworkSpec[]) =>
    planAttachments({
      containerId: env.containerId,
      ifname: env.ifname,
      args: env.args,
      runtimeConfig: conf.runtimeConfig,
      networks,
      deviceInfoDir: conf.deviceInfoDir,
      capabilityCheck: conf.capabilityCheck,
    });
  // The other networks' NADs are read from here on: the API's connection and TLS handshake and
  // the reads' round trips overlap the journal write and the cluster network's delegate.
  const othersP = otherNetworks(ctx, pod, elements);
  othersP.catch(() => undefined); // reported below, once the cluster network is done
  // A cluster network with a device (SR-IOV as the primary network) needs the kubelet first.
  const clusterAtt = plan(await withDevices([cluster], pod, devices))[0]!;
  refuseTakenNames(ctx, [clusterAtt]);
  const rec: JournalRecord = {
    kind: 'plexusJournal',
    version: 1,
    containerId: env.containerId,
    netns: env.netns,
    ifname: env.ifname,
    cniVersion: conf.cniVersion,
    pod: pod.ref,
    attachments: [clusterAtt],
  };
  writeJournal(conf.cniDir, rec);
  log.phase('cluster network journaled');
  try {
    // The cluster network's delegate runs in its own process while this one resolves the other
    // networks: the API's TLS set-up and NAD reads overlap the delegate's work instead of
    // preceding it. Each attachment is still journaled before its delegate runs, and they run
    // one at a time (NPWG §7.3).
    const [clusterDone, others] = await Promise.allSettled([attach(ctx, rec, clusterAtt, problems), othersP]);
    if (clusterDone.status === 'rejected') throw clusterDone.reason;
    if (others.status === 'rejected') throw others.reason;
    log.phase('networks resolved', { count: others.value.length + 1 });
    // Assigned over the whole list so the cluster network keeps the device it was given above.
    const rest = plan(await withDevices([cluster, ...others.value], pod, devices)).slice(1);
    refuseTakenNames(ctx, rest);
    rec.attachments.push(...rest);
    writeJournal(conf.cniDir, rec);
    // Events go out once the whole plan stands (a refused configuration announces nothing), each
    // as its attachment is done, overlapping the next delegates.
    warnUndeclared(ctx, pod.ref, others.value);
    announce(ctx, rec, clusterAtt);
    for (const att of rest) {
      await attach(ctx, rec, att, problems);
      announce(ctx, rec, att);
    }
    log.phase('delegates attached');
    if (rec.attachments.some((a) => a.defaultRoute !== undefined)) {
      await applyDefaultRoute(rec);
      writeJournal(conf.cniDir, rec, false);
      for (const att of rec.attachments) cacheResult(ctx, att);
    }
    const { infos, problems: unreadable } = readDeviceInfos(rec.attachments);
    problems.push(...unreadable);
    for (const p of problems) log.warn('device-info left out of network-status', { network: p.attachment.network, ifname: p.attachment.ifname, problem: p.message });
    if (pod.ref) {
      const api = await ctx.api();
      if (api) {
        await publishNetworkStatus(api, pod.ref, rec, (a) => infos.get(a));
        const ref = pod.ref;
        for (const p of problems) {
          const message = `network ${p.attachment.network} (${p.attachment.ifname}): device-info left out of network-status: ${p.message}`;
          void api.podEvent(ref, { type: 'Warning', reason: 'InvalidDeviceInfo', message }).catch(() => undefined);
        }
      }
      log.phase('network-status written');
    }
  } catch (err) {
    throw await rollBack(ctx, rec, asCniError(err));
  }
  if (!clusterAtt.result) throw new CniError(Code.Internal, 'cluster network produced no result');
  return clusterAtt.result;
}
