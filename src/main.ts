// The one executable. It dispatches on the name it was run as (busybox-style): `plexus` is the
// meta-plugin, a link named after a built-in plugin is that plugin, `plexus <command>` is the CLI.
// Everything is imported lazily so VERSION loads next to nothing.
import { basename } from 'node:path';

async function main(): Promise<void> {
  const name = basename(process.argv0 || 'plexus');
  if (process.env.CNI_COMMAND === 'VERSION') {
    // Runtimes probe every plugin with VERSION: answer before loading anything a verb needs.
    const { versionInfo } = await import('./cni/version');
    process.stdout.write(JSON.stringify(versionInfo()) + '\n');
    return;
  }
  const { pluginMain } = await import('./cni/skel');
  if (name === 'plexus' || name.startsWith('plexus')) {
    const { metaPlugin } = await import('./delegates/meta');
    process.exitCode = await pluginMain(metaPlugin);
    return;
  }
  const { builtinPlugin } = await import('./builtin');
  const handlers = await builtinPlugin(name);
  if (!handlers) {
    process.stderr.write(`plexus: unknown plugin name ${JSON.stringify(name)}\n`);
    process.exitCode = 1;
    return;
  }
  process.exitCode = await pluginMain(handlers);
}

main().catch((err: unknown) => {
  process.stderr.write(`plexus: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
