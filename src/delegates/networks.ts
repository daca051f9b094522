// Resolving which networks a pod gets: the cluster network, `defaultNetworks`, the default-network
// override and the selection annotation, each to a network configuration (NPWG §3.4.1 order).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CniError, Code, errnoOf } from '../cni/errors';
import { parseNetworkConfig, type NetworkConfig } from '../cni/netconf';
import type { NetworkSelectionElement } from '../cni/types';
import type { ClusterApi } from './cluster';
import type { PlexusConf } from './config';
import { RESOURCE_NAME_ANNOTATION } from './devices';

export interface NetworkSpec {
  /** The name network-status reports. */
  network: string;
  net: NetworkConfig;
  isDefault: boolean;
  selection?: NetworkSelectionElement;
  /** The NAD's k8s.v1.cni.cncf.io/resourceName. */
  resourceName?: string;
  /** The pod's device of that resource given to this network (assigned before planning). */
  deviceID?: string;
}

const CONF_EXT = ['.conf', '.json'];

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new CniError(Code.InvalidConfig, `${what}: cannot read ${path}: ${(err as Error).message}`);
  }
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return [];
    throw new CniError(Code.IOFailure, `cannot list ${dir}: ${(err as Error).message}`);
  }
}

function nameOf(text: string): string | undefined {
  try {
    const v: unknown = JSON.parse(text);
    if (v && typeof v === 'object' && 'name' in v && typeof (v as { name: unknown }).name === 'string') return (v as { name: string }).name;
  } catch {
    // a file that is not JSON cannot be the one we look for
  }
  return undefined;
}

/** A config in `dir` whose `name` is `name`: conflists first, then confs (NPWG 3.4.1 (2), (3)). */
export function configFromDir(dir: string, name: string, cniVersion: string): NetworkConfig | undefined {
  const files = listDir(dir);
  const ordered = [...files.filter((f) => f.endsWith('.conflist')), ...files.filter((f) => CONF_EXT.some((e) => f.endsWith(e)))];
  for (const f of ordered) {
    const path = join(dir, f);
    const text = readText(path, 'confDir');
    if (nameOf(text) === name) return parseNetworkConfig(text, path, { cniVersion });
  }
  return undefined;
}

/** The alphabetically first conf/conflist in a directory, as Multus picks a clusterNetwork dir. */
function firstConfigIn(dir: string, cniVersion: string): NetworkConfig {
  const f = listDir(dir).find((n) => n.endsWith('.conflist') || CONF_EXT.some((e) => n.endsWith(e)));
  if (!f) throw new CniError(Code.InvalidConfig, `clusterNetwork: no .conf, .conflist or .json file in ${dir}`);
  const path = join(dir, f);
  return parseNetworkConfig(readText(path, 'clusterNetwork'), path, { cniVersion });
}

export async function nadNetwork(
  api: ClusterApi,
  namespace: string,
  name: string,
  conf: PlexusConf,
  selection?: NetworkSelectionElement,
): Promise<NetworkSpec | null> {
  const nad = await api.getNad(namespace, name);
  if (!nad) return null;
  const where = `network-attachment-definition ${namespace}/${name}`;
  let net: NetworkConfig | undefined;
  if (nad.config !== undefined && nad.config.trim() !== '') {
    net = parseNetworkConfig(nad.config, `${where} spec.config`, { name, cniVersion: conf.cniVersion });
  } else {
    net = configFromDir(conf.confDir, name, conf.cniVersion);
    if (!net) {
      throw new CniError(Code.InvalidConfig, `${where} has no spec.config and no configuration named ${JSON.stringify(name)} exists in ${conf.confDir}`);
    }
  }
  return { network: `${namespace}/${name}`, net, isDefault: false, selection, resourceName: nad.annotations[RESOURCE_NAME_ANNOTATION] || undefined };
}

/**
 * A network named in `clusterNetwork` / `defaultNetworks`: a NAD in multusNamespace, else a
 * config named so in confDir, else a directory or file path (Multus getNetDelegate order).
 */
export async function namedNetwork(value: string, conf: PlexusConf, api: ClusterApi | undefined, isDefault: boolean, field: string): Promise<NetworkSpec> {
  if (!value.startsWith('/')) {
    if (api) {
      const spec = await nadNetwork(api, conf.multusNamespace, value, conf);
      if (spec) return { ...spec, isDefault, network: isDefault ? spec.net.name : spec.network };
    }
    const net = configFromDir(conf.confDir, value, conf.cniVersion);
    if (net) return { network: net.name, net, isDefault };
    throw new CniError(
      Code.InvalidConfig,
      `${field}: ${JSON.stringify(value)} is neither a network-attachment-definition in ${conf.multusNamespace}${api ? '' : ' (no kubeconfig to look it up)'} nor a configuration named so in ${conf.confDir}`,
    );
  }
  let isDir: boolean;
  try {
    isDir = statSync(value).isDirectory();
  } catch (err) {
    throw new CniError(Code.InvalidConfig, `${field}: ${value}: ${(err as Error).message}`);
  }
  const net = isDir ? firstConfigIn(value, conf.cniVersion) : parseNetworkConfig(readText(value, field), value, { cniVersion: conf.cniVersion });
  return { network: net.name, net, isDefault };
}

export function inlineDelegate(conf: PlexusConf, i: number): NetworkSpec {
  const d = conf.delegates[i];
  if (!d) throw new CniError(Code.InvalidConfig, `delegates[${i}]: missing`);
  const net = parseNetworkConfig(JSON.stringify(d), `delegates[${i}]`, { cniVersion: conf.cniVersion });
  return { network: net.name, net, isDefault: i === 0 };
}
