// One recipe for every single executable this repo makes (the product in scripts/build.mjs, the
// comparison binaries in bench/), so a benchmark compares like with like.
// Inputs: a CJS file that needs nothing but node's built-ins. Output: a copy of this node with the
// file (and optionally its V8 code cache) injected, optionally stripped of symbols.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// The fuse string node's SEA loader looks for; fixed for every node release that has SEA.
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
const POSTJECT = join(dirname(fileURLToPath(import.meta.url)), '..', 'node_modules', 'postject', 'dist', 'cli.js');

/** This environment for the tools we spawn, less the machine's global CA bundle (it only slows node's start). */
export function toolEnv(extra = {}) {
  const env = { ...process.env, ...extra };
  delete env.NODE_EXTRA_CA_CERTS;
  return env;
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, { env: toolEnv(), encoding: 'utf8' });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}${r.error.code === 'ENOENT' && cmd === 'strip' ? ' (install binutils: make deps)' : ''}`);
  // quiet on success (postject prints harmless LIEF warnings on a stripped ELF); all of it on failure
  if (r.status !== 0) throw new Error(`${[cmd, ...args].join(' ')} exited ${r.status ?? r.signal}\n${r.stdout}${r.stderr}`);
}

/**
 * Builds `out` from `main` unless the stamp beside it says nothing changed. Every file is written
 * under a private temp name and renamed into place, so concurrent builds in one checkout never see
 * half a binary. `verify(tmpExe)` may throw to keep a broken binary from replacing a working one.
 */
export function buildSea({ main, out, blob = `${out}.blob`, stamp = `${out}.stamp`, useCodeCache = true, strip = true, verify }) {
  const node = process.execPath;
  const config = { main, output: blob, disableExperimentalSEAWarning: true, useCodeCache };
  const nodeStat = statSync(node);
  const key = createHash('sha256')
    .update(readFileSync(main))
    .update(JSON.stringify({ config, strip, node, version: process.version, size: nodeStat.size, mtime: nodeStat.mtimeMs }))
    .update(readFileSync(fileURLToPath(import.meta.url)))
    .digest('hex');
  if (existsSync(out) && existsSync(stamp) && readFileSync(stamp, 'utf8') === key) {
    return { built: false, exeBytes: statSync(out).size };
  }
  const tmp = `.tmp-${process.pid}`;
  const cfgPath = `${blob}.sea-config.json${tmp}`;
  const blobTmp = `${blob}${tmp}`;
  const exe = `${out}${tmp}`;
  try {
    writeFileSync(cfgPath, JSON.stringify({ ...config, output: blobTmp }));
    run(node, ['--experimental-sea-config', cfgPath]);
    copyFileSync(node, exe);
    chmodSync(exe, 0o755);
    // strip drops ~13 MB of symbols: a smaller file to map on every cold start.
    if (strip) run('strip', [exe]);
    run(node, [POSTJECT, exe, 'NODE_SEA_BLOB', blobTmp, '--sentinel-fuse', SEA_FUSE]);
    chmodSync(exe, 0o755);
    verify?.(exe);
    const blobBytes = statSync(blobTmp).size;
    renameSync(blobTmp, blob);
    renameSync(exe, out);
    writeFileSync(`${stamp}${tmp}`, key);
    renameSync(`${stamp}${tmp}`, stamp);
    return { built: true, blobBytes, exeBytes: statSync(out).size };
  } finally {
    for (const f of [cfgPath, blobTmp, exe]) rmSync(f, { force: true });
  }
}
