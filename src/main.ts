// The one executable. It dispatches on the name it was run as (busybox-style): `plexus` is the
// meta-plugin, a link named after a built-in plugin is that plugin, `plexus <command>` is the CLI.
// Everything is imported lazily so VERSION loads next to nothing.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

async function main(): Promise<void> {
  const name = basename(process.argv0 || 'plexus');
  if (process.env.CNI_COMMAND === 'VERSION') {
    // Runtimes probe every plugin with VERSION: answer before loading anything a verb needs.
    const { versionInfo } = await import('./cni/version');
    process.stdout.write(JSON.stringify(versionInfo()) + '\n');
    return;
  }
  if (name === 'plexus' || name.startsWith('plexus')) {
    // A runtime always sets CNI_COMMAND: then it is a CNI call whatever argv holds, and no CLI
    // code is loaded. No arguments and other CNI_* variables set is a runtime's call without
    // CNI_COMMAND: it gets the CNI error (code 4). Otherwise argv is a command for people.
    if (process.env.CNI_COMMAND || (process.argv.length <= 2 && Object.keys(process.env).some((k) => k.startsWith('CNI_')))) {
      await meta();
      return;
    }
    const { runCli } = await import('./cli/index');
    process.exitCode = await runCli(process.argv.slice(2));
    return;
  }
  const { pluginMain } = await import('./cni/skel');
  const { builtinPlugin } = await import('./builtin');
  const handlers = await builtinPlugin(name);
  if (!handlers) {
    process.stderr.write(`plexus: unknown plugin name ${JSON.stringify(name)}\n`);
    process.exitCode = 1;
    return;
  }
  process.exitCode = await pluginMain(handlers);
}

/** The meta-plugin: forwarded to a resident daemon when the config names one and it answers. */
async function meta(): Promise<void> {
  let stdin = '';
  try {
    stdin = process.env.CNI_COMMAND ? readFileSync(0, 'utf8') : '';
  } catch {
    // no stdin at all: the meta-plugin reports the empty configuration
  }
  const { daemonSocketOf, forward } = await import('./daemon/shim');
  // PLEXUS_NO_DAEMON: the C shim running a DEL itself after the daemon died mid-call.
  const socket = process.env.PLEXUS_NO_DAEMON === '1' ? undefined : daemonSocketOf(stdin);
  const reply = socket ? await forward(socket, process.env, stdin) : undefined;
  if (reply) {
    process.stdout.write(reply.stdout);
    process.exitCode = reply.status;
    return;
  }
  const [{ pluginMain, processIO }, { metaPlugin }] = await Promise.all([import('./cni/skel'), import('./delegates/meta')]);
  process.exitCode = await pluginMain(metaPlugin, { ...processIO, readStdin: () => stdin });
}

// A CNI call's process ends when its event loop is empty: the result is written, the events are
// sent, the kernel has finished the last netlink request. Node would then free the V8 heap piece
// by piece before exiting, ~10-50 ms that nobody waits for but the runtime; exit() at that point
// leaves the freeing to the kernel. Not for the daemon, which never runs out of work.
if (process.argv[2] !== 'daemon') process.once('beforeExit', () => process.exit());

main().catch((err: unknown) => {
  process.stderr.write(`plexus: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
