// `make build`: src/main.ts → one minified CJS bundle → a Node single executable application
// (SEA) with a V8 code cache, injected into a stripped copy of this node (scripts/sea.mjs), plus the
// busybox-style plugin names as symlinks and the native addon beside it. Why: docs/decisions.md.
//
// Several people (and every `make test`) run this in the same checkout at once, so each output is
// written under a private temp name and renamed into place: nobody sees a half-written file.
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSea, toolEnv } from './sea.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BUILD = join(root, 'build');
const BIN = join(root, 'dist', 'bin');
const BUNDLE = join(BUILD, 'plexus.cjs');
const EXE = join(BIN, 'plexus');
const ADDON = 'plexus_netns.node';
// Names the one executable answers to (src/main.ts dispatches on its basename); `whereabouts` is
// the cluster pool IPAM. Only names a built-in plugin answers to: a link for a plugin plexus does
// not ship would shadow the real one on a delegate's path.
const PLUGIN_NAMES = ['macvlan', 'ipvlan', 'bridge', 'host-device', 'host-local', 'static', 'whereabouts'];

const t0 = process.hrtime.bigint();
const ms = (from) => Math.round(Number(process.hrtime.bigint() - from) / 1e6);
const tmpName = (p) => `${p}.tmp-${process.pid}`;
const kb = (n) => `${(n / 1024).toFixed(1)} KiB`;
const mb = (n) => `${(n / 1048576).toFixed(1)} MiB`;
const rel = (p) => relative(root, p);
const sizes = [];
const times = [];

function die(msg) {
  process.stderr.write(`build: ${msg}\n`);
  process.exit(1);
}

function replaceWith(path, write) {
  const tmp = tmpName(path);
  write(tmp);
  renameSync(tmp, path);
}

mkdirSync(BUILD, { recursive: true });
mkdirSync(BIN, { recursive: true });

// 1. Native addon, once scripts/build-addon.sh exists. A SEA loads a .node only from disk, so it
//    ships beside the binary (found at run time through process.execPath).
if (existsSync(join(root, 'scripts', 'build-addon.sh'))) {
  const t = process.hrtime.bigint();
  const r = spawnSync('bash', ['scripts/build-addon.sh'], { cwd: root, env: toolEnv(), stdio: 'inherit' });
  if (r.status !== 0) die(`scripts/build-addon.sh exited ${r.status ?? r.signal}`);
  const built = join(BUILD, ADDON);
  if (!existsSync(built)) die(`scripts/build-addon.sh succeeded but did not produce ${rel(built)}`);
  replaceWith(join(BIN, ADDON), (tmp) => {
    copyFileSync(built, tmp);
    chmodSync(tmp, 0o755);
  });
  sizes.push([rel(join(BIN, ADDON)), kb(statSync(built).size)]);
  const shim = join(BUILD, 'plexus-shim');
  if (existsSync(shim)) {
    replaceWith(join(BIN, 'plexus-shim'), (tmp) => {
      copyFileSync(shim, tmp);
      chmodSync(tmp, 0o755);
    });
    sizes.push([rel(join(BIN, 'plexus-shim')), kb(statSync(shim).size)]);
  }
  times.push(`addon ${ms(t)}`);
}

// `plexus version` reports these (src/cli/build-info.ts). PLEXUS_BUILD_COMMIT overrides git for
// builds from a tarball (the Dockerfile passes it); "-dirty" marks uncommitted changes.
function gitCommit() {
  if (process.env.PLEXUS_BUILD_COMMIT) return process.env.PLEXUS_BUILD_COMMIT;
  const head = spawnSync('git', ['rev-parse', '--short=12', 'HEAD'], { cwd: root, encoding: 'utf8' });
  if (head.status !== 0) return 'unknown';
  const dirty = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: root, encoding: 'utf8' });
  return head.stdout.trim() + (dirty.status === 0 && dirty.stdout.trim() !== '' ? '-dirty' : '');
}
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const buildDefine = JSON.stringify({ version: pkg.version, commit: gitCommit() });

// 2. Bundle. esbuild turns a dynamic import() of our ESM modules into a lazy `__esm` initialiser
//    and a require() of a CJS package into a lazy `__commonJS` one, so a verb evaluates only the
//    modules it reaches (verified: docs/decisions.md; guarded by test/build-version.test.ts).
const tBundle = process.hrtime.bigint();
// esbuild prints its own errors: its stack trace would add nothing
const result = await build({
  absWorkingDir: root,
  entryPoints: ['src/main.ts'],
  outfile: BUNDLE,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  minify: true,
  // A separate map without a sourceMappingURL comment (the SEA cannot use one): it decodes the
  // minified stack traces of a field report.
  sourcemap: 'external',
  define: { 'process.env.NODE_ENV': '"production"', __PLEXUS_BUILD__: buildDefine },
  // Addons are loaded from disk at run time (createRequire(process.execPath)); never inline them.
  external: ['*.node'],
  metafile: true,
  write: false, // we write, so that we can rename into place
  logLevel: 'warning',
}).catch(() => die('esbuild failed (errors above)'));
for (const f of result.outputFiles) replaceWith(f.path, (tmp) => writeFileSync(tmp, f.contents));
replaceWith(join(BUILD, 'plexus.meta.json'), (tmp) => writeFileSync(tmp, JSON.stringify(result.metafile)));
sizes.push([rel(BUNDLE), kb(statSync(BUNDLE).size)]);
times.push(`bundle ${ms(tBundle)}`);

// 3. SEA, skipped when nothing it is made of changed (bundle, this node, the recipe): saves ~3 s
//    on every `make test` after an edit that did not change the bundle.
const tSea = process.hrtime.bigint();
let sea;
try {
  sea = buildSea({
    main: BUNDLE,
    out: EXE,
    // the blob and the stamp stay out of dist/bin, which is what ships
    blob: join(BUILD, 'plexus.blob'),
    stamp: join(BUILD, 'plexus.sea-stamp'),
    useCodeCache: true,
    strip: true,
    // The new binary must answer VERSION (it needs nothing else) before it replaces a working one.
    verify(exe) {
      // argv0 'plexus': the entry dispatches on its name, and the temp file is not called that
      const r = spawnSync(exe, [], { argv0: 'plexus', env: toolEnv({ CNI_COMMAND: 'VERSION' }), encoding: 'utf8' });
      if (r.status !== 0 || !r.stdout.includes('supportedVersions')) {
        throw new Error(`the new binary failed CNI_COMMAND=VERSION (exit ${r.status ?? r.signal}): ${r.stderr}${r.stdout}`);
      }
    },
  });
} catch (err) {
  die(err.message);
}
if (sea.built) {
  sizes.push([rel(join(BUILD, 'plexus.blob')), kb(sea.blobBytes)]);
  sizes.push([rel(EXE), mb(sea.exeBytes)]);
  times.push(`sea ${ms(tSea)}`);
} else {
  sizes.push([rel(EXE), `${mb(sea.exeBytes)} (bundle unchanged: SEA step skipped)`]);
}

// 4. Busybox-style names: relative links, so dist/bin can be copied anywhere as a whole.
for (const name of PLUGIN_NAMES) {
  const path = join(BIN, name);
  let current;
  try {
    current = lstatSync(path).isSymbolicLink() ? readlinkSync(path) : undefined;
  } catch {
    /* absent */
  }
  if (current !== 'plexus') replaceWith(path, (tmp) => symlinkSync('plexus', tmp));
}
// A link an earlier build shipped but this one does not (a name that is no longer built in).
for (const name of readdirSync(BIN)) {
  const path = join(BIN, name);
  if (!PLUGIN_NAMES.includes(name) && lstatSync(path).isSymbolicLink() && readlinkSync(path) === 'plexus') unlinkSync(path);
}
sizes.push([`${rel(BIN)}/{${PLUGIN_NAMES.join(',')}}`, '→ plexus']);

const w = Math.max(...sizes.map(([p]) => p.length));
for (const [p, s] of sizes) process.stdout.write(`  ${p.padEnd(w)}  ${s}\n`);
process.stdout.write(`build: done in ${ms(t0)} ms (${times.join(', ')} ms)\n`);
