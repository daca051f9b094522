// When a journal record is damaged, libcni's result cache still names every network that finished
// ADD for the container, with its config and result: enough to DEL them.
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { delNetwork } from '../cni/api';
import { asCniError, CniError, Code, errnoOf } from '../cni/errors';
import { parseNetworkConfig } from '../cni/netconf';
import { log } from '../log';
import type { Context } from './context';
import { parseLibcniCache } from './multus-cache';

export function resultCacheFiles(cniDir: string, containerId: string): string[] {
  const dir = join(cniDir, 'results');
  try {
    return readdirSync(dir)
      .filter((f) => f.includes(`-${containerId}-`))
      .map((f) => join(dir, f));
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return [];
    throw err;
  }
}

export async function delFromResultCache(ctx: Context): Promise<void> {
  const { env, conf } = ctx;
  const entries = [];
  const errors: string[] = [];
  for (const file of resultCacheFiles(conf.cniDir, env.containerId)) {
    try {
      const e = parseLibcniCache(readFileSync(file, 'utf8'));
      if (e.containerId === env.containerId) entries.push({ file, e });
    } catch (err) {
      errors.push(`${file}: ${(err as Error).message}`);
    }
  }
  // Secondary networks were attached after the cluster network: remove them first.
  entries.sort((a, b) => Number(a.e.ifName === env.ifname) - Number(b.e.ifName === env.ifname));
  for (const { file, e } of entries) {
    try {
      const net = parseNetworkConfig(e.config, file);
      const args = e.cniArgs.map(([k, v]) => `${k}=${v}`).join(';');
      await delNetwork(
        net,
        { containerId: env.containerId, netns: env.netns, ifname: e.ifName, args, capabilityArgs: e.capabilityArgs, path: [conf.binDir, ...env.path] },
        ctx.invoke,
        e.result,
      );
      rmSync(file, { force: true });
    } catch (err) {
      errors.push(`${e.networkName} (${e.ifName}): ${asCniError(err).message}`);
    }
  }
  if (errors.length > 0) {
    log.error('DEL from the result cache left errors', { errors });
    throw new CniError(Code.TryAgainLater, `DEL: the journal record was corrupt and ${errors.length} cached attachment(s) could not be removed: ${errors.join('; ')}`);
  }
}
