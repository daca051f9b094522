// GC (CNI 1.1): tear down every journaled container the runtime no longer lists as valid, then
// forward GC to each network's plugins with the attachments that are still valid for them.
import { existsSync } from 'node:fs';
import { gcNetwork, type RuntimeConf } from '../cni/api';
import { asCniError, CniError, Code } from '../cni/errors';
import { parseNetworkConfig, type NetworkConfig } from '../cni/netconf';
import { log } from '../log';
import type { Context } from './context';
import { listJournaledContainers, readJournal } from './journal';
import { teardown, teardownError } from './teardown';
import { inlineDelegate, namedNetwork } from './networks';

interface NetworkValid {
  net: NetworkConfig;
  valid: { containerID: string; ifname: string }[];
}

export async function cmdGc(ctx: Context): Promise<void> {
  const { conf } = ctx;
  if (!conf.validAttachments) {
    throw new CniError(Code.InvalidConfig, 'cni.dev/valid-attachments: missing from the GC request');
  }
  const valid = new Set(conf.validAttachments.map((a) => `${a.containerId}\u0000${a.ifname}`));
  const errors: CniError[] = [];
  const networks = new Map<string, NetworkValid>();
  const remember = (net: NetworkConfig, containerID: string, ifname: string | undefined) => {
    const nv = networks.get(net.name) ?? { net, valid: [] };
    if (ifname !== undefined) nv.valid.push({ containerID, ifname });
    networks.set(net.name, nv);
  };

  try {
    const cluster = conf.delegates.length > 0 ? inlineDelegate(conf, 0) : await namedNetwork(conf.clusterNetwork ?? '', conf, await ctx.api(), true, 'clusterNetwork');
    remember(cluster.net, '', undefined);
  } catch (err) {
    errors.push(asCniError(err));
  }

  for (const containerId of listJournaledContainers(conf.cniDir)) {
    let rec;
    try {
      rec = readJournal(conf.cniDir, containerId);
    } catch (err) {
      errors.push(asCniError(err));
      continue;
    }
    if (!rec) continue;
    if (valid.has(`${rec.containerId}\u0000${rec.ifname}`)) {
      for (const att of rec.attachments) {
        try {
          remember(parseNetworkConfig(att.config, `journal ${containerId}`), containerId, att.ifname);
        } catch (err) {
          errors.push(asCniError(err));
        }
      }
      continue;
    }
    log.info('GC: tearing down a stale container', { containerId, attachments: rec.attachments.length });
    // The runtime may already have removed the namespace; delegates then clean up what they can.
    const failures = await teardown(ctx, rec, existsSync(rec.netns) ? rec.netns : '');
    if (failures.length > 0) errors.push(teardownError(failures, `GC of container ${containerId}`));
  }

  // A valid container without a record (attached by Multus before plexus, say) has attachments
  // plexus cannot name: a delegate's GC would take its addresses for leaks. Forward nothing then.
  const journaled = new Set(listJournaledContainers(conf.cniDir));
  const unknown = [...new Set(conf.validAttachments.map((a) => a.containerId))].filter((id) => !journaled.has(id));
  if (unknown.length > 0) {
    log.warn('GC: not forwarded to the delegates: valid containers without a plexus record', { containers: unknown });
    networks.clear();
  }
  const rt: RuntimeConf = { containerId: '', netns: '', ifname: '', args: '', capabilityArgs: {}, path: [conf.binDir, ...ctx.env.path] };
  for (const { net, valid: v } of networks.values()) {
    errors.push(...(await gcNetwork(net, rt, ctx.invoke, v)));
  }
  if (errors.length > 0) {
    throw new CniError(errors[0]!.code, `GC: ${errors.length} error(s): ${errors.map((e) => e.message).join('; ')}`);
  }
}
