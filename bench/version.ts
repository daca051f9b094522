// VERSION latency: the cost of starting plexus at all, which every CNI call pays.
// Target: plexus ≤ 1.3× a bare SEA "hello" built the same way (so the gap is what our bundle adds
// on the way to VERSION, not node's own start). The other rows keep the build decision
// (docs/decisions.md) reproducible: the same bundle run by node, as a SEA without code cache, as a
// SEA with code cache on an unstripped node; and the Go reference plugin for scale.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { buildSea } from '../scripts/sea.mjs';
import { bench, target, type Variant } from './lib';

const root = resolve(__dirname, '..');
const out = join(root, 'build', 'bench');
const bundle = join(root, 'build', 'plexus.cjs');
const plexus = join(root, 'dist', 'bin', 'plexus');
const GO_MACVLAN = '/usr/lib/cni/macvlan';

export default async function versionBench(): Promise<boolean> {
  if (!existsSync(plexus) || !existsSync(bundle)) throw new Error('run `make build` first');
  mkdirSync(out, { recursive: true });
  // The same answer plexus gives, in one statement: what node costs before any of our code runs.
  const helloJs = join(out, 'hello.cjs');
  writeFileSync(helloJs, `process.stdout.write('{"cniVersion":"1.1.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}\\n');\n`);
  const hello = join(out, 'hello');
  const seaPlain = join(out, 'plexus-sea-plain');
  const seaCache = join(out, 'plexus-sea-codecache');
  // Cached by content hash: only the first run (or a changed bundle) pays ~3 s per binary.
  buildSea({ main: helloJs, out: hello, useCodeCache: true, strip: true });
  buildSea({ main: bundle, out: seaPlain, useCodeCache: false, strip: false });
  buildSea({ main: bundle, out: seaCache, useCodeCache: true, strip: false });

  const env = { CNI_COMMAND: 'VERSION' };
  const input = '{"cniVersion":"1.1.0"}'; // what libcni sends with VERSION
  const variants: Variant[] = [
    { name: 'sea hello', cmd: hello, env, input },
    { name: 'plexus', cmd: plexus, env, input },
    // argv[0] 'plexus': the entry dispatches on process.argv0, which would otherwise be 'node'
    { name: 'node plexus.cjs', cmd: process.execPath, args: [bundle], argv0: 'plexus', env, input },
    { name: 'sea, no code cache', cmd: seaPlain, env, input },
    { name: 'sea + code cache, unstripped', cmd: seaCache, env, input },
  ];
  if (existsSync(GO_MACVLAN)) variants.push({ name: 'go macvlan', cmd: GO_MACVLAN, env, input });

  const r = await bench({ title: 'CNI_COMMAND=VERSION', baseline: 'sea hello', variants, warmup: 5, runs: 30 });
  return target(r, 'plexus', { ratio: 1.3 });
}
