// The one executable. It dispatches on the name it was run as (busybox-style): `plexus` is the
// meta-plugin, a link named after a built-in plugin is that plugin, `plexus <command>` is the CLI.
import { basename } from 'node:path';

const SUPPORTED = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'];

function main(): void {
  const name = basename(process.argv0 || process.argv[1] || 'plexus');
  if (process.env.CNI_COMMAND === 'VERSION') {
    process.stdout.write(JSON.stringify({ cniVersion: '1.1.0', supportedVersions: SUPPORTED }) + '\n');
    return;
  }
  process.stderr.write(`plexus (${name}): not implemented yet\n`);
  process.exitCode = 1;
}

main();
