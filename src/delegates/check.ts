// CHECK: every journaled attachment must still be there (its interface in the netns) and pass
// its own plugins' CHECK against the result it returned at ADD.
import { checkNetwork } from '../cni/api';
import { CniError, Code } from '../cni/errors';
import { parseNetworkConfig, type NetworkConfig } from '../cni/netconf';
import { isObject, type JsonObject } from '../cni/validate';
import { runtimeFor, type Context } from './context';
import { readJournal } from './journal';

export async function cmdCheck(ctx: Context): Promise<void> {
  const { env, conf } = ctx;
  const rec = readJournal(conf.cniDir, env.containerId);
  if (!rec) throw new CniError(Code.UnknownContainer, `CHECK: nothing is journaled for container ${env.containerId}`);
  const links = ctx.linkNames(env.netns);
  for (const att of rec.attachments) {
    if (att.state !== 'added' || !att.result) {
      throw new CniError(Code.Internal, `CHECK: network ${att.network} (${att.ifname}) never finished ADD`);
    }
    if (!links.has(att.ifname)) {
      throw new CniError(Code.Internal, `CHECK: network ${att.network}: interface ${att.ifname} is missing from ${env.netns}`);
    }
    const net = parseNetworkConfig(att.config, `journal network ${att.network}`);
    await checkNetwork(net, runtimeFor(ctx, att, env.netns, env.containerId), ctx.invoke, await withoutBridgeMacDrift(net, att.result));
  }
}

/**
 * The ADD result to CHECK a bridge network against, without the bridge's MAC when the kernel has
 * moved it since: a bridge whose address was never set takes the lowest MAC of its ports, and the
 * reference bridge plugin's CHECK compares it with the result, failing a healthy pod whenever
 * another pod's port with a lower MAC joined (plexus's own bridge tolerates this itself). A MAC
 * someone set is left in, so a real change still fails. Nothing is read unless a bridge is in the
 * chain.
 */
async function withoutBridgeMacDrift(net: NetworkConfig, result: JsonObject): Promise<JsonObject> {
  const bridges = new Set(net.plugins.filter((p) => p.type === 'bridge').map((p) => (typeof p.bridge === 'string' && p.bridge !== '' ? p.bridge : 'cni0')));
  const ifs = Array.isArray(result.interfaces) ? result.interfaces : [];
  const recorded = ifs.filter((i): i is JsonObject => isObject(i) && typeof i.name === 'string' && bridges.has(i.name) && !i.sandbox && typeof i.mac === 'string');
  if (recorded.length === 0) return result;
  const { Netns, listLinks, bridgeMacFollowsPorts } = await import('../netns');
  const links = Netns.with(null, (host) => listLinks(host));
  const drifted = new Set(
    recorded.filter((i) => {
      const br = links.find((l) => l.name === i.name && l.kind === 'bridge');
      return br !== undefined && br.mac !== String(i.mac).toLowerCase() && bridgeMacFollowsPorts(links, br);
    }),
  );
  if (drifted.size === 0) return result;
  const withoutMac = ({ mac: _mac, ...rest }: JsonObject): JsonObject => rest;
  return { ...result, interfaces: ifs.map((i) => (drifted.has(i as JsonObject) ? withoutMac(i as JsonObject) : i)) };
}
