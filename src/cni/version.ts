// CNI spec versions: which ones plexus speaks, how they compare, which verbs each allows, and how
// a configuration's version is chosen. Behaviour follows libcni (pkg/version, libcni/conf.go,
// pkg/skel) so a runtime sees the same answers from plexus as from a reference plugin.
import { CniError, Code } from './errors';
import { Fields, type JsonObject } from './validate';

/** Oldest first. 0.1.0/0.2.0 (ip4/ip6 results) are not spoken. */
export const SUPPORTED_VERSIONS: readonly string[] = Object.freeze(['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']);

/** The spec version plexus implements; libcni's version.Current() of the same spec. */
export const LATEST_VERSION = '1.1.0';

export type Verb = 'ADD' | 'DEL' | 'CHECK' | 'STATUS' | 'GC' | 'VERSION';

/** First version in which each verb exists (skel refuses it on older configs). */
const VERB_SINCE: Record<Verb, string> = {
  ADD: '0.1.0',
  DEL: '0.1.0',
  VERSION: '0.1.0',
  CHECK: '0.4.0',
  STATUS: '1.1.0',
  GC: '1.1.0',
};

const SUPPORTED_LIST = SUPPORTED_VERSIONS.join(', ');

/**
 * Parses "major[.minor[.micro]]" like libcni's version.ParseVersion: missing parts are 0 and an
 * empty string means 0.1.0 (a config without cniVersion). Anything else is a code-1 error.
 */
export function parseVersion(v: string): [number, number, number] {
  if (v === '') return [0, 1, 0];
  if (!/^[0-9]+(\.[0-9]+){0,2}$/.test(v)) {
    throw new CniError(Code.IncompatibleVersion, `invalid CNI version ${JSON.stringify(v)}: want major.minor.micro`);
  }
  const [a = 0, b = 0, c = 0] = v.split('.').map(Number);
  return [a, b, c];
}

/** Semver order of two versions: negative, zero or positive. Throws code 1 on a malformed version. */
export function compareVersions(a: string, b: string): number {
  const x = parseVersion(a);
  const y = parseVersion(b);
  for (let i = 0; i < 3; i++) {
    const d = (x[i] as number) - (y[i] as number);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

/** a ≥ b in semver order (throws code 1 on a malformed version). */
export function atLeast(a: string, b: string): boolean {
  return compareVersions(a, b) >= 0;
}

/** Exact membership, as skel's reconciler checks it ("1.0" is not "1.0.0"). */
export function isSupported(v: string): boolean {
  return SUPPORTED_VERSIONS.includes(v);
}

/** Whether plexus can run `verb` for a config of `version`. */
export function supports(verb: Verb, version: string): boolean {
  if (verb === 'VERSION') return true;
  return isSupported(version) && compareVersions(version, VERB_SINCE[verb]) >= 0;
}

/** Throws code 1 naming the version (and the field, `at`) when plexus does not speak it. */
export function requireSupported(version: string, at = 'cniVersion'): string {
  if (isSupported(version)) return version;
  const shown = version === '' ? 'missing (which means 0.1.0)' : JSON.stringify(version);
  throw new CniError(
    Code.IncompatibleVersion,
    `${at}: incompatible CNI version: ${shown}, plexus supports ${SUPPORTED_LIST}`,
  );
}

/** Throws code 1 when the config version does not allow the verb (skel's guards). */
export function requireVerb(verb: Verb, version: string): void {
  if (verb === 'VERSION') return;
  requireSupported(version);
  if (!supports(verb, version)) {
    throw new CniError(
      Code.IncompatibleVersion,
      `config version ${JSON.stringify(version)} does not allow ${verb}: it needs cniVersion ${VERB_SINCE[verb]} or later`,
    );
  }
}

/**
 * The version a configuration runs at (`at` names the cniVersion field in errors). Without `cniVersions` it is `cniVersion` as written. With
 * it, the spec says to take the highest version we support from cniVersion ∪ cniVersions; like
 * libcni, versions newer than the spec we implement are dropped first, and a malformed entry is an
 * error rather than silently skipped.
 */
export function chooseVersion(cniVersion: string | undefined, cniVersions?: readonly string[], at = 'cniVersion'): string {
  if (cniVersions === undefined) return requireSupported(cniVersion ?? '', at);
  const listAt = at.endsWith('cniVersion') ? `${at}s` : 'cniVersions';
  const candidates: string[] = [];
  const checked = (v: string, where: string): void => {
    try {
      parseVersion(v);
    } catch (err) {
      throw new CniError(Code.IncompatibleVersion, `${where}: ${(err as Error).message}`);
    }
    candidates.push(v);
  };
  cniVersions.forEach((v, i) => checked(v, `${listAt}[${i}]`));
  if (cniVersion !== undefined && cniVersion !== '') checked(cniVersion, at);
  let best: string | undefined;
  for (const v of candidates) {
    // Skips versions newer than the spec we implement (libcni drops those) and ones we do not speak.
    if (!isSupported(v)) continue;
    if (best === undefined || compareVersions(v, best) > 0) best = v;
  }
  if (best === undefined) {
    const shown = candidates.length ? candidates.map((v) => JSON.stringify(v)).join(', ') : 'nothing';
    throw new CniError(
      Code.IncompatibleVersion,
      `${listAt}: incompatible CNI versions: config offers ${shown}, plexus supports ${SUPPORTED_LIST}`,
    );
  }
  return best;
}

/** chooseVersion on a parsed config object; wrong types are code 7 naming the key. */
export function configVersionOf(conf: JsonObject): string {
  const f = new Fields(conf, '', Code.InvalidConfig);
  return chooseVersion(f.optStr('cniVersion'), f.optStrList('cniVersions'));
}

/** The VERSION verb's answer. */
export function versionInfo(): { cniVersion: string; supportedVersions: string[] } {
  return { cniVersion: LATEST_VERSION, supportedVersions: [...SUPPORTED_VERSIONS] };
}
