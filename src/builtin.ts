// Built-in plugins by the name the executable runs as (busybox-style). Each is loaded only when
// that name is asked for, so one plugin's code never costs another's start-up.
import type { PluginHandlers } from './cni/skel';

const loaders: Record<string, () => Promise<PluginHandlers>> = {
  macvlan: async () => (await import('../plugins/macvlan/macvlan')).plugin,
  ipvlan: async () => (await import('../plugins/ipvlan/ipvlan')).plugin,
  bridge: async () => (await import('../plugins/bridge/bridge')).plugin,
  'host-device': async () => (await import('../plugins/host-device/host-device')).plugin,
  'host-local': async () => (await import('../plugins/host-local/host-local')).plugin,
  static: async () => (await import('../plugins/static/static')).plugin,
  whereabouts: async () => (await import('../plugins/whereabouts/whereabouts')).plugin,
};

/** The names `plexus install` links to the executable. */
export const BUILTIN_NAMES: readonly string[] = Object.freeze(Object.keys(loaders));

export function isBuiltin(name: string): boolean {
  return Object.hasOwn(loaders, name);
}

export async function builtinPlugin(name: string): Promise<PluginHandlers | undefined> {
  const load = loaders[name];
  return load ? load() : undefined;
}
