// How plexus runs another plugin (a meta-plugin delegate, or a plugin's IPAM): in-process when
// the binary CNI_PATH resolves for its type is this very executable (a busybox link to plexus),
// otherwise exec'd exactly as libcni does. The behaviour is the same either way; only the cost of
// a process start differs. One rule for delegates and IPAM alike.
import type { PluginInvoker } from '../cni/api';
import type { CniEnv, Verb } from '../cni/env';
import { PluginNotFoundError } from '../cni/errors';
import { execPlugin, findPlugin, realpathOrSelf, type PluginRun } from '../cni/exec';
import { dispatch } from '../cni/skel';
import { builtinPlugin, isBuiltin } from '../builtin';
import { log } from '../log';

let self: string | undefined;
function selfPath(): string {
  return (self ??= realpathOrSelf(process.execPath));
}

/** Whether a plugin of `type` found on `path` would run inside this process. */
export function runsInProcess(type: string, path: readonly string[]): boolean {
  if (!isBuiltin(type)) return false;
  const bin = findPlugin(type, path);
  return bin !== undefined && realpathOrSelf(bin) === selfPath();
}

/**
 * Runs plugin `type` for `verb`; `role` names it in logs ("delegate", "ipam") and `field` prefixes
 * the not-found error with the config key that named it.
 */
export async function invokePlugin(role: 'delegate' | 'ipam', type: string, verb: string, run: PluginRun, stdin: string, field = ''): Promise<Buffer> {
  const bin = findPlugin(type, run.path);
  if (!bin) {
    throw new PluginNotFoundError(type, run.path, field);
  }
  if (isBuiltin(type) && realpathOrSelf(bin) === selfPath()) {
    const handlers = await builtinPlugin(type);
    if (handlers) {
      log.debug(`${role} runs in-process`, { type, verb, ifname: run.ifname });
      const env: CniEnv = { command: verb as Verb, containerId: run.containerId, netns: run.netns, ifname: run.ifname, args: run.args, path: run.path };
      return Buffer.from(await dispatch(handlers, env, stdin));
    }
  }
  log.debug(`${role} exec`, { type, verb, bin, ifname: run.ifname });
  return execPlugin(bin, { ...run, verb }, stdin);
}

export const delegateInvoker: PluginInvoker = (type, verb, run, stdin) => invokePlugin('delegate', type, verb, run, stdin);
