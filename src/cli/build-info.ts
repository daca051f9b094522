// Which build this is. scripts/build.mjs replaces __PLEXUS_BUILD__ with the package version and
// the git commit at build time; run from source (tsx) the same facts are read from the checkout.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LATEST_VERSION, SUPPORTED_VERSIONS } from '../cni/version';

declare const __PLEXUS_BUILD__: { version: string; commit: string } | undefined;

export interface BuildInfo {
  version: string;
  commit: string;
  cniVersion: string;
  cniVersions: string[];
}

function fromSource(): { version: string; commit: string } {
  const root = join(__dirname, '..', '..');
  let version = 'unknown';
  let commit = 'unknown';
  try {
    version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    // not in a checkout
  }
  try {
    commit = execFileSync('git', ['-C', root, 'rev-parse', '--short=12', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    // no git
  }
  return { version, commit };
}

export function buildInfo(): BuildInfo {
  const b = typeof __PLEXUS_BUILD__ !== 'undefined' ? __PLEXUS_BUILD__ : fromSource();
  return { version: b.version, commit: b.commit, cniVersion: LATEST_VERSION, cniVersions: [...SUPPORTED_VERSIONS] };
}
