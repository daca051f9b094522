// Built-in plugins by the name the executable runs as. Filled in as plugins/ grows.
import type { PluginHandlers } from './cni/skel';

export function builtinPlugin(name: string): PluginHandlers | undefined {
  void name;
  return undefined;
}
