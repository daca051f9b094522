// IPAM delegation as the reference plugins do it (pkg/ipam ExecAdd/ExecDel/...): the IPAM plugin
// named by ipam.type gets the whole config on stdin and the same CNI_* environment. When that
// type resolves on CNI_PATH to plexus itself (host-local, static), it runs in-process, by the
// rule the meta-plugin applies to its delegates (src/delegates/invoke.ts).
import type { CniEnv } from '../../src/cni/env';
import { CniError, Code } from '../../src/cni/errors';
import { parseIpamResult } from '../../src/cni/result';
import type { Result } from '../../src/cni/types';
import { loadNetConf } from './conf';

async function run(verb: string, type: string, env: CniEnv, stdin: string): Promise<Buffer> {
  const { invokePlugin } = await import('../../src/delegates/invoke');
  const r = { verb, containerId: env.containerId, netns: env.netns, ifname: env.ifname, args: env.args, path: env.path };
  return invokePlugin('ipam', type, verb, r, stdin, 'ipam.type: ');
}

export async function ipamAdd(type: string, env: CniEnv, stdin: string, cniVersion: string): Promise<Result> {
  const out = await run('ADD', type, env, stdin);
  let value: unknown;
  try {
    value = JSON.parse(out.toString('utf8'));
  } catch (err) {
    throw new CniError(Code.DecodeFailure, `ipam plugin ${type}: result is not JSON: ${(err as Error).message}`);
  }
  return parseIpamResult(value, { what: `ipam plugin ${type} result`, configVersion: cniVersion });
}

export async function ipamDel(type: string, env: CniEnv, stdin: string): Promise<void> {
  await run('DEL', type, env, stdin);
}

export async function ipamCheck(type: string, env: CniEnv, stdin: string): Promise<void> {
  await run('CHECK', type, env, stdin);
}

export async function ipamStatus(type: string, env: CniEnv, stdin: string): Promise<void> {
  await run('STATUS', type, env, stdin);
}

export async function ipamGc(type: string, env: CniEnv, stdin: string): Promise<void> {
  await run('GC', type, env, stdin);
}

/** STATUS of a plugin whose only dependency is its IPAM: the spec says STATUS MUST reach it. */
export async function forwardStatus(env: CniEnv, stdin: string): Promise<void> {
  const net = loadNetConf(stdin);
  if (net.ipamType) await ipamStatus(net.ipamType, env, stdin);
}

/** GC of a plugin that keeps no state of its own: its IPAM is what holds reservations. */
export async function forwardGc(env: CniEnv, stdin: string): Promise<void> {
  const net = loadNetConf(stdin);
  if (net.ipamType) await ipamGc(net.ipamType, env, stdin);
}
