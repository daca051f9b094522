// CHECK: every journaled attachment must still be there (its interface in the netns) and pass
// its own plugins' CHECK against the result it returned at ADD.
import { checkNetwork } from '../cni/api';
import { CniError, Code } from '../cni/errors';
import { parseNetworkConfig } from '../cni/netconf';
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
    await checkNetwork(net, runtimeFor(ctx, att, env.netns, env.containerId), ctx.invoke, att.result);
  }
}
