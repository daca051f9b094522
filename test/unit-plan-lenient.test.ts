// src/delegates/plan.ts: the capability check of NPWG v1.3 §4.1.2.1.3-10 and its Multus-compatible
// lenient mode (config key capabilityCheck), pure: networks in, attachment records out.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CniError } from '../src/cni/errors';
import { parseNetworkConfig } from '../src/cni/netconf';
import type { NetworkSpec } from '../src/delegates/networks';
import { planAttachments, undeclaredRequests, type CapabilityCheck } from '../src/delegates/plan';
import { parseNetworkSelection } from '../src/delegates/selection';

const net = (name: string, capabilities?: Record<string, boolean>): NetworkSpec['net'] =>
  parseNetworkConfig(JSON.stringify({ cniVersion: '1.0.0', name, type: 'bridge', ...(capabilities ? { capabilities } : {}) }), name);

function plan(specs: NetworkSpec[], capabilityCheck?: CapabilityCheck) {
  const cluster: NetworkSpec = { network: 'cluster', net: net('cluster'), isDefault: true };
  return planAttachments({
    containerId: 'c1',
    ifname: 'eth0',
    args: 'K8S_POD_NAME=p',
    runtimeConfig: { portMappings: [] },
    networks: [cluster, ...specs],
    deviceInfoDir: '/nonexistent',
    ...(capabilityCheck ? { capabilityCheck } : {}),
  });
}

const [selection] = parseNetworkSelection(
  JSON.stringify([{ name: 'legacy', ips: ['10.1.0.5/24', 'fd00::5/64'], mac: '0a:58:0a:01:00:05', portMappings: [{ hostPort: 80, containerPort: 8080, protocol: 'tcp' }], 'infiniband-guid': 'c2:11:22:33:44:55:66:77' }]),
  'ns',
);
const legacy: NetworkSpec = { network: 'ns/legacy', net: net('legacy'), isDefault: false, selection };

test('strict (the default): the first undeclared request fails the plan, naming network and capability', () => {
  for (const mode of [undefined, 'strict'] as const) {
    assert.throws(
      () => plan([legacy], mode),
      (err: unknown) => err instanceof CniError && err.code === 2 && err.message === 'network ns/legacy: the pod requests "ips" but no plugin of this network declares the "ips" capability (NPWG v1.3 §4.1.2.1.3)',
    );
  }
  assert.deepEqual(undeclaredRequests(legacy), ['ips', 'mac', 'portMappings', 'infinibandGUID']);
});

test('lenient: ips and mac become CNI_ARGS IP=/MAC= as Multus sends them; the rest is dropped as libcni drops it', () => {
  const [, att] = plan([legacy], 'lenient');
  assert.equal(att?.args, 'IgnoreUnknown=1;K8S_POD_NAME=p;IP=10.1.0.5/24,fd00::5/64;MAC=0a:58:0a:01:00:05');
  assert.deepEqual(att?.capabilityArgs, {}, 'nothing undeclared is left to journal as a capability arg');
});

test('lenient changes nothing for declared capabilities: they travel in runtimeConfig only', () => {
  const declared: NetworkSpec = { ...legacy, net: net('legacy', { ips: true, mac: true, portMappings: true, infinibandGUID: true }) };
  assert.deepEqual(undeclaredRequests(declared), []);
  for (const mode of ['strict', 'lenient'] as const) {
    const [cluster, att] = plan([declared], mode);
    assert.equal(att?.args, 'IgnoreUnknown=1;K8S_POD_NAME=p');
    assert.deepEqual(Object.keys(att?.capabilityArgs ?? {}).sort(), ['infinibandGUID', 'ips', 'mac', 'portMappings']);
    assert.deepEqual(cluster?.capabilityArgs, { portMappings: [] }, 'the cluster network gets the kubelet runtimeConfig, unchecked');
  }
  const partly: NetworkSpec = { ...legacy, net: net('legacy', { ips: true }) };
  const [, att] = plan([partly], 'lenient');
  assert.equal(att?.args, 'IgnoreUnknown=1;K8S_POD_NAME=p;MAC=0a:58:0a:01:00:05', 'only the undeclared one goes to CNI_ARGS');
  assert.deepEqual(att?.capabilityArgs, { ips: ['10.1.0.5/24', 'fd00::5/64'] });
});
