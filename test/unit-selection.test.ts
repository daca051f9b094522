// src/delegates/selection.ts against NPWG v1.3 §4.1 (both formats, every key's rules), Multus's
// parsePodNetworkAnnotation (format detection, ns/name@ifname, interfaceRequest, deviceID) and
// its default-network override (tryLoadK8sPodDefaultNetwork).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CniError } from '../src/cni/errors';
import type { NetworkSelectionElement } from '../src/cni/types';
import { parseDefaultNetwork, parseNetworkSelection } from '../src/delegates/selection';

const ANN = 'k8s.v1.cni.cncf.io/networks';
const POD_NS = 'team-a';

function throwsCni(fn: () => unknown, code: number, ...patterns: RegExp[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof CniError, `want CniError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    for (const p of patterns) assert.match(err.message, p);
    return true;
  });
}
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
/** The error must start with the annotation path, e.g. at('[1].ips[0]'). */
const at = (path: string) => new RegExp(`^${esc(ANN + path)}: `);
const json = (v: unknown) => JSON.stringify(v);

test('empty or blank annotation selects nothing', () => {
  for (const v of ['', '   ', '\n\t']) assert.deepEqual(parseNetworkSelection(v, POD_NS), []);
  assert.deepEqual(parseNetworkSelection('[]', POD_NS), []);
});

test('comma format: name, ns/name, Multus ns/name@ifname, whitespace trimmed (§4.1.1)', () => {
  const cases: [string, NetworkSelectionElement[]][] = [
    ['net-a', [{ name: 'net-a', namespace: POD_NS }]],
    ['net-a,net-a', [{ name: 'net-a', namespace: POD_NS }, { name: 'net-a', namespace: POD_NS }]],
    [
      ' net-a , other-ns/net-b,net-c@eth9 ',
      [
        { name: 'net-a', namespace: POD_NS },
        { name: 'net-b', namespace: 'other-ns' },
        { name: 'net-c', namespace: POD_NS, interface: 'eth9' },
      ],
    ],
    ['ns1 / net1 @ if-1', [{ name: 'net1', namespace: 'ns1', interface: 'if-1' }]],
    ['0abc/9-x-0@vlan.100', [{ name: '9-x-0', namespace: '0abc', interface: 'vlan.100' }]],
  ];
  for (const [v, want] of cases) assert.deepEqual(parseNetworkSelection(v, POD_NS), want, v);
});

test('comma format errors: code 7 naming the element and part', () => {
  const bad: [string, RegExp, RegExp][] = [
    ['Net_A', at('[0].name'), /"Net_A" is not a valid network name: it must be a DNS-1123 label/],
    ['net-a,-b', at('[1].name'), /"-b" is not a valid network name/],
    ['net.a', at('[0].name'), /DNS-1123 label/],
    ['Team/net', at('[0].namespace'), /"Team" is not a valid namespace/],
    ['a/b/c', at('[0]'), /more than one "\/"/],
    ['a@b@c', at('[0]'), /more than one "@"/],
    ['net-a,', at('[1]'), /empty network reference/],
    ['net-a,,net-b', at('[1]'), /empty network reference/],
    ['/net', at('[0].namespace'), /namespace must not be empty/],
    ['ns/', at('[0].name'), /network name must not be empty/],
    ['net@', at('[0].interface'), /"" is not a valid Linux interface name: it is empty/],
    ['net@interface-too-long', at('[0].interface'), /longer than 15 bytes/],
    ['net@a:b', at('[0].interface'), /must not contain/],
    ['net@..', at('[0].interface'), /must not be "\." or "\.\."/],
    ['net-a@eth1,net-b@eth1', at('[1].interface'), /"eth1" is already requested by element 0/],
  ];
  for (const [v, where, what] of bad) throwsCni(() => parseNetworkSelection(v, POD_NS), 7, where, what);
});

test('format detection follows Multus: any [, { or " means JSON', () => {
  // A quote makes it JSON, so this is a JSON error rather than a bad name.
  throwsCni(() => parseNetworkSelection('net-a,"net-b"', POD_NS), 7, new RegExp(`^${esc(ANN)}: invalid JSON`));
  // Multus unmarshals into a list: a bare object fails there too; we say how to fix it.
  throwsCni(() => parseNetworkSelection('{"name":"net-a"}', POD_NS), 7, new RegExp(`^${esc(ANN)}: must be a JSON list`), /wrap the object in \[ \]/);
  throwsCni(() => parseNetworkSelection('"net-a"', POD_NS), 7, new RegExp(`^${esc(ANN)}: must be a JSON list`), /got string/);
  throwsCni(() => parseNetworkSelection('["net-a"]', POD_NS), 7, at('[0]'), /must be an object/);
  throwsCni(() => parseNetworkSelection('[{"name":"a"},]', POD_NS), 7, /invalid JSON/);
});

test('JSON format: every key validated and normalised', () => {
  const value = json([
    { name: 'net-a' },
    {
      name: 'net-b',
      namespace: 'other',
      interface: 'net-b0',
      ips: ['10.2.2.42/24', '2001:DB8::5'],
      mac: '02:23:45:67:89:AB',
      'cni-args': { foo: 'bar', n: 1 },
      portMappings: [{ hostPort: 8080, containerPort: 80 }, { hostPort: 53, containerPort: 5353, protocol: 'UDP', hostIP: '192.168.1.10' }, { hostPort: 1, containerPort: 65535, protocol: 'Sctp' }],
      bandwidth: { ingressRate: 1000000, ingressBurst: 2000000, egressRate: 5000 },
      'default-route': ['10.2.2.1', '2001:db8::1'],
      'infiniband-guid': 'C2:11:22:33:44:55:66:77',
      deviceID: '0000:04:00.5',
      'org.example.note': 'extension keys with a period are allowed and ignored',
    },
    { name: 'net-c', namespace: '', 'ipam-claim-reference': 'vm-a.net-c.eth2' },
  ]);
  assert.deepEqual(parseNetworkSelection(value, POD_NS), [
    { name: 'net-a', namespace: POD_NS },
    {
      name: 'net-b',
      namespace: 'other',
      interface: 'net-b0',
      ips: ['10.2.2.42/24', '2001:db8::5'],
      mac: '02:23:45:67:89:ab',
      cniArgs: { foo: 'bar', n: 1 },
      portMappings: [
        { hostPort: 8080, containerPort: 80, protocol: 'tcp' },
        { hostPort: 53, containerPort: 5353, protocol: 'udp', hostIP: '192.168.1.10' },
        { hostPort: 1, containerPort: 65535, protocol: 'sctp' },
      ],
      bandwidth: { ingressRate: 1000000, ingressBurst: 2000000, egressRate: 5000 },
      defaultRoute: ['10.2.2.1', '2001:db8::1'],
      infinibandGuid: 'c2:11:22:33:44:55:66:77',
      deviceID: '0000:04:00.5',
    },
    { name: 'net-c', namespace: POD_NS, ipamClaimReference: 'vm-a.net-c.eth2' },
  ]);
});

test('JSON format: Multus compatibility keys and Go-style null/empty values', () => {
  const cases: [unknown[], NetworkSelectionElement[]][] = [
    // pre-3.2 interfaceRequest is used when interface is not set; interface wins otherwise
    [[{ name: 'a', interfaceRequest: 'eth7' }], [{ name: 'a', namespace: POD_NS, interface: 'eth7' }]],
    [[{ name: 'a', interface: 'eth1', interfaceRequest: 'eth7' }], [{ name: 'a', namespace: POD_NS, interface: 'eth1' }]],
    // null is "not set", as for Go's unmarshal
    [[{ name: 'a', namespace: null, mac: null, ips: null, 'cni-args': null }], [{ name: 'a', namespace: POD_NS }]],
    [[{ name: 'a', interface: '', deviceID: '' }], [{ name: 'a', namespace: POD_NS }]],
    // a 20-byte IPoIB hardware address is a valid "mac" (§4.1.2.1.4)
    [
      [{ name: 'ib', mac: '80:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22' }],
      [{ name: 'ib', namespace: POD_NS, mac: '80:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22' }],
    ],
    // an empty default-route list still claims the default route (§4.1.2.1.9)
    [[{ name: 'a', 'default-route': [] }], [{ name: 'a', namespace: POD_NS, defaultRoute: [] }]],
    [[{ name: 'a', bandwidth: {} }], [{ name: 'a', namespace: POD_NS, bandwidth: {} }]],
  ];
  for (const [v, want] of cases) assert.deepEqual(parseNetworkSelection(json(v), POD_NS), want, json(v));
});

test('JSON format errors: code 7, message names the element index and field', () => {
  // The exact message for the common case.
  assert.throws(
    () => parseNetworkSelection(json([{ name: 'a' }, { name: 'b', ips: ['10.1.2.300/24'] }]), POD_NS),
    (err: unknown) => err instanceof CniError && err.code === 7 && err.message === `${ANN}[1].ips[0]: "10.1.2.300/24" is not an IP address (NPWG v1.3 §4.1.2.1.3)`,
  );
  const bad: [unknown, RegExp, ...RegExp[]][] = [
    [[{}], at('[0].name'), /must be a string, got nothing/],
    [[{ name: 7 }], at('[0].name'), /must be a string/],
    [[{ name: 'Net' }], at('[0].name'), /DNS-1123 label/],
    [[{ name: 'x'.repeat(254) }], at('[0].name'), /longer than 253/],
    [[{ name: 'a', namespace: 'n'.repeat(64) }], at('[0].namespace'), /longer than 63/],
    [[{ name: 'a', namespace: 'Kube_System' }], at('[0].namespace'), /not a valid namespace/],
    [[{ name: 'a', interface: 'a b' }], at('[0].interface'), /not a valid Linux interface name/],
    [[{ name: 'a', interfaceRequest: 'x'.repeat(16) }], at('[0].interfaceRequest'), /longer than 15 bytes/],
    [[{ name: 'a', interface: 'net1' }, { name: 'b', interfaceRequest: 'net1' }], at('[1].interface'), /"net1" is already requested by element 0/],
    [[{ name: 'a', ips: [] }], at('[0].ips'), /at least one address/],
    [[{ name: 'a', ips: '10.1.1.1' }], at('[0].ips'), /must be a list/],
    [[{ name: 'a', ips: ['10.1.1.1', 5] }], at('[0].ips[1]'), /must be a string, got number 5/],
    [[{ name: 'a', ips: ['10.1.1.1/33'] }], at('[0].ips[0]'), /"10\.1\.1\.1\/33" has an invalid prefix length \(want 0-32\)/],
    [[{ name: 'a', ips: ['fe80::1%eth0'] }], at('[0].ips[0]'), /is not an IP address/],
    [[{ name: 'a', mac: '02:23:45:67:89' }], at('[0].mac'), /not a 6-byte MAC/],
    [[{ name: 'a', mac: '00:11:22:33:44:55:66:77' }], at('[0].mac'), /not a 6-byte MAC/],
    [[{ name: 'a', 'infiniband-guid': '02:23:45:67:89:ab' }], at('[0].infiniband-guid'), /not an 8-byte GUID/],
    [[{ name: 'a', 'cni-args': ['x'] }], at('[0].cni-args'), /must be an object/],
    [[{ name: 'a', portMappings: [] }], at('[0].portMappings'), /at least one port mapping/],
    [[{ name: 'a', portMappings: [{ containerPort: 80 }] }], at('[0].portMappings[0].hostPort'), /must be an integer from 1 to 65535, got nothing/],
    [[{ name: 'a', portMappings: [{ hostPort: 0, containerPort: 80 }] }], at('[0].portMappings[0].hostPort'), /from 1 to 65535/],
    [[{ name: 'a', portMappings: [{ hostPort: 80, containerPort: 65536 }] }], at('[0].portMappings[0].containerPort'), /from 1 to 65535/],
    [[{ name: 'a', portMappings: [{ hostPort: 80, containerPort: '80' }] }], at('[0].portMappings[0].containerPort'), /got string/],
    [[{ name: 'a', portMappings: [{ hostPort: 80, containerPort: 80, protocol: 'icmp' }] }], at('[0].portMappings[0].protocol'), /"icmp" is not TCP, UDP or SCTP/],
    [[{ name: 'a', portMappings: [{ hostPort: 80, containerPort: 80, hostIP: 'localhost' }] }], at('[0].portMappings[0].hostIP'), /"localhost" is not an IP address/],
    [[{ name: 'a', portMappings: [{ hostport: 80, containerPort: 80 }] }], at('[0].portMappings[0].hostport'), /unknown key \(did you mean "hostPort"\?\)/],
    [[{ name: 'a', bandwidth: { ingressBurst: 10 } }], at('[0].bandwidth.ingressBurst'), /needs ingressRate/],
    [[{ name: 'a', bandwidth: { egressRate: 1, egressBurst: 10, ingressBurst: 5 } }], at('[0].bandwidth.ingressBurst'), /needs ingressRate/],
    [[{ name: 'a', bandwidth: { egressRate: 10, egressBurst: 0 } }], at('[0].bandwidth.egressBurst'), /from 1 to/],
    [[{ name: 'a', bandwidth: { ingressRate: 0 } }], at('[0].bandwidth.ingressRate'), /from 1 to/],
    [[{ name: 'a', bandwidth: { ingressRate: 1.5 } }], at('[0].bandwidth.ingressRate'), /must be an integer/],
    [[{ name: 'a', bandwidth: { rate: 1 } }], at('[0].bandwidth.rate'), /unknown key \(known keys: ingressRate, ingressBurst, egressRate, egressBurst\)/],
    [[{ name: 'a', 'default-route': ['10.0.0.1/24'] }], at('[0].default-route[0]'), /"10\.0\.0\.1\/24" is not an IP address/],
    [[{ name: 'a', 'default-route': '10.0.0.1' }], at('[0].default-route'), /must be a list/],
    [[{ name: 'a', 'default-route': ['10.0.0.1'] }, { name: 'b' }, { name: 'c', 'default-route': [] }], at('[2].default-route'), /only one element may set default-route, element 0 already does/],
    [[{ name: 'a', ips: ['10.0.0.5'], 'ipam-claim-reference': 'claim' }], at('[0].ipam-claim-reference'), /cannot be used together with ips/],
    [[{ name: 'a', 'ipam-claim-reference': '' }], at('[0].ipam-claim-reference'), /must not be empty/],
    [[{ name: 'a', address: '10.0.0.5' }], at('[0].address'), /unknown key: the NPWG spec reserves keys without a period/, /"org\.example\.address"/],
    [[{ Name: 'a' }], at('[0].Name'), /unknown key \(did you mean "name"\?\)/],
    [[{ name: 'a', ip: '10.0.0.5' }], at('[0].ip'), /unknown key \(did you mean "ips"\?\)/],
    [[{ name: 'a', defaultRoute: [] }], at('[0].defaultRoute'), /did you mean "default-route"/],
    [[{ name: 'a', infiniband_guid: 'x' }], at('[0].infiniband_guid'), /did you mean "infiniband-guid"/],
    [[{ name: 'a', macaddr: 'x' }], at('[0].macaddr'), /unknown key: the NPWG spec reserves/],
  ];
  for (const [v, where, ...what] of bad) throwsCni(() => parseNetworkSelection(json(v), POD_NS), 7, where, ...what);
});

test('v1.multus-cni.io/default-network: one reference, namespace defaults to multusNamespace', () => {
  const DN = 'v1.multus-cni.io/default-network';
  const cases: [string, NetworkSelectionElement][] = [
    ['calico', { name: 'calico', namespace: 'kube-system' }],
    [' other/cilium ', { name: 'cilium', namespace: 'other' }],
    ['[{"name":"ovn"}]', { name: 'ovn', namespace: 'kube-system' }],
    ['[{"name":"ovn","namespace":"ovn-kubernetes","interface":"eth0"}]', { name: 'ovn', namespace: 'ovn-kubernetes', interface: 'eth0' }],
  ];
  for (const [v, want] of cases) assert.deepEqual(parseDefaultNetwork(v, 'kube-system'), want, v);
  throwsCni(() => parseDefaultNetwork('a,b', 'kube-system'), 7, new RegExp(`^${esc(DN)}: must name exactly one network, got 2`));
  throwsCni(() => parseDefaultNetwork('[]', 'kube-system'), 7, new RegExp(`^${esc(DN)}: must name exactly one network, got 0`));
  throwsCni(() => parseDefaultNetwork('', 'kube-system'), 7, /got 0/);
  throwsCni(() => parseDefaultNetwork('Calico', 'kube-system'), 7, new RegExp(`^${esc(DN)}\\[0\\]\\.name: `));
  throwsCni(() => parseDefaultNetwork('{"name":"ovn"}', 'kube-system'), 7, new RegExp(`^${esc(DN)}: must be a JSON list`));
});
