// DEL: replay the journal in reverse. Works with the API down, the NAD or pod deleted and the
// netns gone, because everything it needs was journaled at ADD. Repeated DELs succeed.
import { CniError, Code } from '../cni/errors';
import { log } from '../log';
import type { Context } from './context';
import { quarantineJournal, readJournal } from './journal';
import { delFromMultusCache } from './migrate';
import { delFromResultCache } from './orphans';
import { teardown, teardownError } from './teardown';

export async function cmdDel(ctx: Context): Promise<void> {
  const { env, conf } = ctx;
  let rec;
  try {
    rec = readJournal(conf.cniDir, env.containerId);
  } catch (err) {
    if (!(err instanceof CniError) || err.code !== Code.DecodeFailure) throw err;
    // A damaged record is reported, never skipped: tear down what libcni's cache still knows.
    const moved = quarantineJournal(conf.cniDir, env.containerId);
    log.error('journal record is corrupt; tearing down from the result cache', { containerId: env.containerId, movedTo: moved, error: err.message });
    await delFromResultCache(ctx);
    return;
  }
  if (!rec) {
    if (await delFromMultusCache(ctx)) return;
    log.info('DEL: nothing journaled for this container, nothing to do', { containerId: env.containerId });
    return;
  }
  const failures = await teardown(ctx, rec, env.netns);
  if (failures.length > 0) throw teardownError(failures, 'DEL');
}
