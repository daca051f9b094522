// A network configuration as libcni sees it: a single plugin conf or a conflist, kept as the
// exact bytes it arrived as (only `name`/`cniVersion` injection re-serialises, as NPWG 3.4.2 asks).
import { CniError, Code } from './errors';
import { Fields, isObject, parseObject, type JsonObject } from './validate';
import { chooseVersion } from './version';

export interface NetworkConfig {
  name: string;
  cniVersion: string;
  isList: boolean;
  disableCheck: boolean;
  disableGC: boolean;
  plugins: JsonObject[];
  /** The exact text to journal and to rebuild every request from. */
  bytes: string;
}

export interface NetconfDefaults {
  /** Injected when the config has no `name` (NPWG 3.4.2: the NAD's name). */
  name?: string;
  /** Injected when the config has no `cniVersion` (Multus injects its own). */
  cniVersion?: string;
}

export function parseNetworkConfig(text: string, where: string, defaults: NetconfDefaults = {}): NetworkConfig {
  const obj = parseObject(text, where, Code.InvalidConfig);
  let changed = false;
  if ((obj.name === undefined || obj.name === '') && defaults.name) {
    obj.name = defaults.name;
    changed = true;
  }
  if ((obj.cniVersion === undefined || obj.cniVersion === '') && defaults.cniVersion) {
    obj.cniVersion = defaults.cniVersion;
    changed = true;
  }
  const f = new Fields(obj, where);
  const name = f.nonEmpty('name');
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(name)) {
    throw new CniError(Code.InvalidConfig, `${f.at('name')}: ${JSON.stringify(name)} must match [a-zA-Z0-9][a-zA-Z0-9_.-]*`);
  }
  const isList = obj.plugins !== undefined;
  let plugins: JsonObject[];
  if (isList) {
    const list = f.arr('plugins');
    if (list.length === 0) throw new CniError(Code.InvalidConfig, `${f.at('plugins')}: must list at least one plugin`);
    plugins = list.map((p, i) => {
      if (!isObject(p)) throw new CniError(Code.InvalidConfig, `${f.at('plugins')}[${i}]: must be an object`);
      new Fields(p, `${f.at('plugins')}[${i}]`).nonEmpty('type');
      return p;
    });
  } else {
    f.nonEmpty('type');
    plugins = [obj];
  }
  const declared = f.nonEmpty('cniVersion');
  const cniVersion = chooseVersion(declared, f.optStrList('cniVersions'), f.at('cniVersion'));
  return {
    name,
    cniVersion,
    isList,
    disableCheck: f.bool('disableCheck', false),
    disableGC: f.bool('disableGC', false),
    plugins,
    bytes: changed ? JSON.stringify(obj) : text,
  };
}

/** Capabilities the plugins of a network declare (`capabilities: {ips: true}`). */
export function declaredCapabilities(net: NetworkConfig): Set<string> {
  const caps = new Set<string>();
  for (const p of net.plugins) {
    if (isObject(p.capabilities)) {
      for (const [k, v] of Object.entries(p.capabilities)) if (v === true) caps.add(k);
    }
  }
  return caps;
}
