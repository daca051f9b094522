// planAttachments (src/delegates/plan.ts), pure: the NPWG v1.3 rules that decide what each
// delegate is given, checked for every selection key (docs/conformance.md cites these).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Code } from '../src/cni/errors';
import { parseNetworkConfig } from '../src/cni/netconf';
import type { NetworkSelectionElement } from '../src/cni/types';
import type { JsonObject } from '../src/cni/validate';
import { planAttachments, type PlanInput } from '../src/delegates/plan';
import type { NetworkSpec } from '../src/delegates/networks';

const net = (name: string, capabilities?: JsonObject): NetworkSpec['net'] =>
  parseNetworkConfig(JSON.stringify({ cniVersion: '1.0.0', name, type: 'macvlan', ...(capabilities ? { capabilities } : {}) }), name);
const cluster: NetworkSpec = { network: 'cluster', net: net('cluster', { portMappings: true, bandwidth: true }), isDefault: true };
const secondary = (name: string, selection: Partial<NetworkSelectionElement> = {}, capabilities?: JsonObject): NetworkSpec => ({
  network: `ns/${name}`,
  net: net(name, capabilities),
  isDefault: false,
  selection: { name, namespace: 'ns', ...selection },
});
const plan = (networks: NetworkSpec[], extra: Partial<PlanInput> = {}) =>
  planAttachments({ containerId: 'c1', ifname: 'eth0', args: 'K8S_POD_NAME=p', runtimeConfig: {}, networks, deviceInfoDir: '/tmp/devinfo', ...extra });

// Each request key of a selection element, the capability that must be declared for it, and a valid value.
const REQUESTS: { key: keyof NetworkSelectionElement; capability: string; value: unknown; sent: unknown; section: string }[] = [
  { key: 'ips', capability: 'ips', value: ['10.1.1.5/24'], sent: ['10.1.1.5/24'], section: '4.1.2.1.3' },
  { key: 'mac', capability: 'mac', value: '02:11:22:33:44:55', sent: '02:11:22:33:44:55', section: '4.1.2.1.4' },
  { key: 'portMappings', capability: 'portMappings', value: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }], sent: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }], section: '4.1.2.1.7' },
  { key: 'bandwidth', capability: 'bandwidth', value: { ingressRate: 1000, ingressBurst: 2000 }, sent: { ingressRate: 1000, ingressBurst: 2000 }, section: '4.1.2.1.8' },
  { key: 'infinibandGuid', capability: 'infinibandGUID', value: '00:11:22:33:44:55:66:77', sent: '00:11:22:33:44:55:66:77', section: '4.1.2.1.10' },
];

for (const r of REQUESTS) {
  test(`NPWG §4.1.2.1: "${r.capability}" requested on a network that does not declare it fails with code 2; declared, it goes to runtimeConfig`, () => {
    const sel = { [r.key]: r.value } as Partial<NetworkSelectionElement>;
    assert.throws(
      () => plan([cluster, secondary('plain', sel)]),
      (e: { code?: number; message?: string }) => e.code === Code.UnsupportedField && e.message === `network ns/plain: the pod requests "${r.capability}" but no plugin of this network declares the "${r.capability}" capability (NPWG v1.3 §${r.section})`,
    );
    const [, att] = plan([cluster, secondary('able', sel, { [r.capability]: true })]);
    assert.deepEqual(att?.capabilityArgs, { [r.capability]: r.sent });
  });
}

test('NPWG §7.5: the kubelet runtimeConfig reaches the cluster network only, never a secondary that declares the same capabilities', () => {
  const kubelet = { portMappings: [{ hostPort: 80, containerPort: 8080, protocol: 'tcp' }], bandwidth: { egressRate: 5 } };
  const atts = plan([cluster, secondary('lan', {}, { portMappings: true, bandwidth: true })], { runtimeConfig: kubelet });
  assert.deepEqual(atts[0]?.capabilityArgs, kubelet);
  assert.deepEqual(atts[1]?.capabilityArgs, {});
});

test('NPWG §4.2/§4.2.1: the same network twice is two attachments; generated names net<index> are unique; the cluster network gets CNI_IFNAME', () => {
  const atts = plan([cluster, secondary('lan'), secondary('san', { interface: 'stor0' }), secondary('lan')]);
  assert.deepEqual(atts.map((a) => [a.network, a.ifname, a.index]), [['cluster', 'eth0', 0], ['ns/lan', 'net1', 1], ['ns/san', 'stor0', 2], ['ns/lan', 'net3', 3]]);
});

test('NPWG §4.1.2.1.5: an interface name already used by an earlier attachment fails the request (code 7)', () => {
  assert.throws(() => plan([cluster, secondary('lan', { interface: 'eth0' })]), (e: { code?: number; message?: string }) => e.code === Code.InvalidConfig && /"eth0" is already used by network cluster/.test(e.message ?? ''));
});
