// PLACEHOLDER until the host-device plugin lands (being written now); replaced wholesale by its author.
import { CniError, Code } from '../../src/cni/errors';
import type { PluginHandlers } from '../../src/cni/skel';

const missing = async (): Promise<never> => {
  throw new CniError(Code.Internal, 'built-in host-device is not available in this build');
};
export const plugin: PluginHandlers = { add: missing, del: missing, check: missing, status: missing, gc: missing };
