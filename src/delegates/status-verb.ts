// STATUS (CNI 1.1): ready only when the default network is: its readiness file exists, the
// journal directory is usable, and the cluster network's own plugins report ready.
import { accessSync, constants, mkdirSync } from 'node:fs';
import { statusNetwork } from '../cni/api';
import { asCniError, CniError, Code } from '../cni/errors';
import type { Context } from './context';
import { journalDir } from './journal';
import { inlineDelegate, namedNetwork } from './networks';
import { isReady } from './readiness';

export async function cmdStatus(ctx: Context): Promise<void> {
  const { conf } = ctx;
  if (!isReady(conf.readinessIndicatorFile)) {
    throw new CniError(Code.NotAvailable, `readinessindicatorfile ${conf.readinessIndicatorFile} does not exist: the default network is not ready`);
  }
  try {
    mkdirSync(journalDir(conf.cniDir), { recursive: true, mode: 0o700 });
    accessSync(journalDir(conf.cniDir), constants.W_OK);
  } catch (err) {
    throw new CniError(Code.NotAvailable, `cniDir ${conf.cniDir}: cannot keep the journal there: ${(err as Error).message}`);
  }
  try {
    const cluster = conf.delegates.length > 0 ? inlineDelegate(conf, 0) : await namedNetwork(conf.clusterNetwork ?? '', conf, await ctx.api(), true, 'clusterNetwork');
    const path = [conf.binDir, ...ctx.env.path];
    await statusNetwork(cluster.net, { containerId: '', netns: '', ifname: '', args: '', capabilityArgs: {}, path }, ctx.invoke);
  } catch (err) {
    const e = asCniError(err);
    if (e.code === Code.NotAvailable || e.code === Code.LimitedConnectivity) throw e;
    throw new CniError(Code.NotAvailable, `cluster network is not ready: ${e.message}`);
  }
}
