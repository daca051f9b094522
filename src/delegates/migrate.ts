// Pods attached by Multus before plexus replaced it: Multus's scratch file <cniDir>/<containerID>
// lists the delegates it ran, and libcni's cache beside it holds their results.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { delNetwork } from '../cni/api';
import { asCniError, CniError, Code } from '../cni/errors';
import { parseNetworkConfig } from '../cni/netconf';
import type { JsonObject } from '../cni/validate';
import { log } from '../log';
import type { Context } from './context';
import { formatCniArgs } from '../cni/args';
import { libcniCachePath, multusCniArgs, parseLibcniCache, parseMultusScratch } from './multus-cache';

function cachedResult(path: string): { result?: JsonObject; capabilityArgs?: JsonObject; cniArgs?: [string, string][] } {
  if (!existsSync(path)) return {};
  try {
    const e = parseLibcniCache(readFileSync(path, 'utf8'), { source: path });
    return { result: e.result, capabilityArgs: e.capabilityArgs, cniArgs: e.cniArgs.length > 0 ? e.cniArgs : undefined };
  } catch (err) {
    log.warn('unreadable libcni cache entry; DEL without prevResult', { path, error: (err as Error).message });
    return {};
  }
}

/** DELs what Multus attached; false when Multus left nothing for this container. */
export async function delFromMultusCache(ctx: Context): Promise<boolean> {
  const { env, conf } = ctx;
  const scratch = join(conf.cniDir, env.containerId);
  if (!existsSync(scratch)) return false;
  const delegates = parseMultusScratch(readFileSync(scratch, 'utf8'), env.containerId, env.ifname, {
    cniVersion: conf.cniVersion,
    runtimeConfig: conf.runtimeConfig,
    source: scratch,
  });
  log.info('DEL: tearing down a pod attached by Multus', { containerId: env.containerId, delegates: delegates.length });
  const errors: string[] = [];
  for (const d of [...delegates].reverse()) {
    const cachePath = libcniCachePath(conf.cniDir, d.networkName, env.containerId, d.ifname);
    try {
      const net = parseNetworkConfig(d.configBytes, `${scratch} delegate ${d.name}`, { cniVersion: conf.cniVersion });
      const cached = cachedResult(cachePath);
      // The args Multus actually used are in libcni's cache; thin and thick Multus built them differently.
      const args = cached.cniArgs ? formatCniArgs(cached.cniArgs) : formatCniArgs(multusCniArgs(env.args));
      const rt = {
        containerId: env.containerId,
        netns: env.netns,
        ifname: d.ifname,
        args,
        capabilityArgs: cached.capabilityArgs ?? d.runtimeConfig,
        path: [conf.binDir, ...env.path],
      };
      await delNetwork(net, rt, ctx.invoke, cached.result);
      rmSync(cachePath, { force: true });
    } catch (err) {
      errors.push(`${d.name} (${d.ifname}): ${asCniError(err).message}`);
    }
  }
  if (errors.length > 0) {
    throw new CniError(Code.TryAgainLater, `DEL of a Multus-attached pod: ${errors.length} delegate(s) failed, ${scratch} kept for a retry: ${errors.join('; ')}`);
  }
  rmSync(scratch, { force: true });
  return true;
}
