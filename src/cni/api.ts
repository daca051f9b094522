// The runtime side of CNI for one network, as libcni's api.go does it: build each plugin's
// request config, run the plugins in order (reverse for DEL), chain prevResult, convert results.
import { CniError, Code, PluginNotFoundError } from './errors';
import type { PluginRun } from './exec';
import type { NetworkConfig } from './netconf';
import { formatResult, parseResult } from './result';
import { atLeast } from './version';
import { isObject, type JsonObject } from './validate';
import type { Result } from './types';

export interface RuntimeConf {
  containerId: string;
  netns: string;
  ifname: string;
  /** CNI_ARGS for the delegates, as a `K=V;K=V` string. */
  args: string;
  /** Capability args offered to the plugins; each plugin receives only those it declares. */
  capabilityArgs: JsonObject;
  /** Merged into every plugin's `args.cni` (NPWG cni-args; the annotation wins). */
  cniArgs?: JsonObject;
  /** Plugin search path (binDir first, then CNI_PATH). */
  path: string[];
}

/** Runs one plugin binary (or, for built-in plugins, in-process) and returns its stdout. */
export type PluginInvoker = (type: string, verb: string, run: PluginRun, stdin: string) => Promise<Buffer>;

export interface RequestExtras {
  prevResult?: JsonObject;
  validAttachments?: { containerID: string; ifname: string }[];
}

/** The exact stdin a plugin receives (SPEC.md §3 "Deriving request configuration"). */
export function buildPluginRequest(plugin: JsonObject, net: NetworkConfig, rt: RuntimeConf, extras: RequestExtras = {}): string {
  const req: JsonObject = { ...plugin, name: net.name, cniVersion: net.cniVersion };
  const caps = isObject(plugin.capabilities) ? plugin.capabilities : {};
  // The spec reserves `capabilities` for the on-disk config: the request carries runtimeConfig instead.
  delete req.capabilities;
  delete req.runtimeConfig;
  const runtimeConfig: JsonObject = {};
  for (const [key, on] of Object.entries(caps)) {
    const v = rt.capabilityArgs[key];
    if (on === true && v !== undefined) runtimeConfig[key] = v;
  }
  if (Object.keys(runtimeConfig).length > 0) req.runtimeConfig = runtimeConfig;
  if (rt.cniArgs && Object.keys(rt.cniArgs).length > 0) {
    const args = isObject(plugin.args) ? plugin.args : {};
    const cni = isObject(args.cni) ? args.cni : {};
    req.args = { ...args, cni: { ...cni, ...rt.cniArgs } };
  }
  if (extras.prevResult) req.prevResult = extras.prevResult;
  if (extras.validAttachments) {
    req['cni.dev/valid-attachments'] = extras.validAttachments;
    req['cni.dev/attachments'] = extras.validAttachments;
  }
  return JSON.stringify(req);
}

function runOf(rt: RuntimeConf): PluginRun {
  return { verb: '', containerId: rt.containerId, netns: rt.netns, ifname: rt.ifname, args: rt.args, path: rt.path };
}

function pluginType(plugin: JsonObject): string {
  return typeof plugin.type === 'string' ? plugin.type : '';
}

function parseOutput(out: Buffer, net: NetworkConfig, type: string): Result {
  const text = out.toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new CniError(Code.DecodeFailure, `plugin ${type} of network ${net.name}: result is not JSON: ${(err as Error).message}`);
  }
  return parseResult(value, `plugin ${type} of network ${net.name}: result`);
}

/** ADD through the whole chain; returns the final result in the network's cniVersion. */
export async function addNetwork(net: NetworkConfig, rt: RuntimeConf, invoke: PluginInvoker): Promise<JsonObject> {
  let prev: JsonObject | undefined;
  for (const plugin of net.plugins) {
    const type = pluginType(plugin);
    const out = await invoke(type, 'ADD', runOf(rt), buildPluginRequest(plugin, net, rt, { prevResult: prev }));
    prev = formatResult(parseOutput(out, net, type), net.cniVersion);
  }
  if (!prev) throw new CniError(Code.Internal, `network ${net.name} has no plugins`);
  return prev;
}

/** DEL in reverse order with the cached result as prevResult (only for configs >= 0.4.0). */
export async function delNetwork(net: NetworkConfig, rt: RuntimeConf, invoke: PluginInvoker, cached?: JsonObject): Promise<void> {
  const prevResult = cached && atLeast(net.cniVersion, '0.4.0') ? cached : undefined;
  // A plugin that cannot be found did nothing to undo here; the plugins before it in the chain may
  // have, so their DEL still runs. The not-found error is reported once the chain is done.
  let missing: PluginNotFoundError | undefined;
  for (const plugin of [...net.plugins].reverse()) {
    try {
      await invoke(pluginType(plugin), 'DEL', runOf(rt), buildPluginRequest(plugin, net, rt, { prevResult }));
    } catch (err) {
      if (!(err instanceof PluginNotFoundError)) throw err;
      missing ??= err;
    }
  }
  if (missing) throw missing;
}

/** CHECK in order; a no-op when the network disables it or predates CHECK (< 0.4.0). */
export async function checkNetwork(net: NetworkConfig, rt: RuntimeConf, invoke: PluginInvoker, cached: JsonObject | undefined): Promise<void> {
  if (net.disableCheck || !atLeast(net.cniVersion, '0.4.0')) return;
  if (!cached) throw new CniError(Code.InvalidConfig, `network ${net.name}: no cached result to CHECK against`);
  for (const plugin of net.plugins) {
    await invoke(pluginType(plugin), 'CHECK', runOf(rt), buildPluginRequest(plugin, net, rt, { prevResult: cached }));
  }
}

/** STATUS of every plugin (1.1.0+ only); the first failure is the answer, as libcni does. */
export async function statusNetwork(net: NetworkConfig, rt: RuntimeConf, invoke: PluginInvoker): Promise<void> {
  if (!atLeast(net.cniVersion, '1.1.0')) return;
  for (const plugin of net.plugins) {
    await invoke(pluginType(plugin), 'STATUS', runOf(rt), buildPluginRequest(plugin, net, rt));
  }
}

/** GC to every plugin (1.1.0+ only); continues past failures and returns them all. */
export async function gcNetwork(
  net: NetworkConfig,
  rt: RuntimeConf,
  invoke: PluginInvoker,
  valid: { containerID: string; ifname: string }[],
): Promise<CniError[]> {
  if (net.disableGC || !atLeast(net.cniVersion, '1.1.0')) return [];
  const errors: CniError[] = [];
  for (const plugin of net.plugins) {
    try {
      await invoke(pluginType(plugin), 'GC', runOf(rt), buildPluginRequest(plugin, net, rt, { validAttachments: valid }));
    } catch (err) {
      errors.push(err instanceof CniError ? err : new CniError(Code.Internal, String(err)));
    }
  }
  return errors;
}
