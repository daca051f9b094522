// NPWG v1.3 §8 IPAMClaim (k8s.cni.cncf.io/v1alpha1, github.com/k8snetworkplumbingwg/ipamclaims):
// spec {network, interface}, status {ips: ["ip/prefix"], ownerPod: {name}}. The claim exists before
// the pod (its owner creates it); the IPAM reads status.ips to give the same address again and
// writes them after the first allocation, through the status subresource.
import { CniError, Code } from '../../cni/errors';
import { isObject, type JsonObject } from '../../cni/validate';
import { KubeApiError, MERGE_PATCH, type KubeClient } from '../../k8s/client';
import { CLAIMS_PATH } from './layout';

export interface Claim {
  namespace: string;
  name: string;
  ips: string[];
  ownerPod?: string;
}

function path(ns: string, name: string): string {
  return `${CLAIMS_PATH}/namespaces/${encodeURIComponent(ns)}/ipamclaims/${encodeURIComponent(name)}`;
}

export async function getClaim(client: KubeClient, ns: string, name: string): Promise<Claim | undefined> {
  let obj: JsonObject;
  try {
    obj = await client.get(path(ns, name), { budgetMs: 10_000 });
  } catch (err) {
    if (err instanceof KubeApiError && err.status === 404) return undefined;
    throw err;
  }
  const status = isObject(obj.status) ? obj.status : {};
  const ips = Array.isArray(status.ips) ? status.ips.filter((x): x is string => typeof x === 'string') : [];
  const owner = isObject(status.ownerPod) && typeof status.ownerPod.name === 'string' ? status.ownerPod.name : undefined;
  return { namespace: ns, name, ips, ...(owner ? { ownerPod: owner } : {}) };
}

export async function requireClaim(client: KubeClient, ns: string, name: string): Promise<Claim> {
  const c = await getClaim(client, ns, name);
  if (!c) throw new CniError(Code.InvalidConfig, `ipam-claim-reference: IPAMClaim ${ns}/${name} does not exist`);
  return c;
}

export async function writeClaimStatus(client: KubeClient, c: Claim, ips: string[], pod: string): Promise<void> {
  if (c.ips.length === ips.length && c.ips.every((x, i) => x === ips[i]) && c.ownerPod === pod) return;
  await client.patch(`${path(c.namespace, c.name)}/status`, { status: { ips, ownerPod: { name: pod } } }, MERGE_PATCH, { budgetMs: 10_000 });
}
