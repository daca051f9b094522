// Multus scratch files and libcni result-cache files, as real Multus and libcni write them.
//
// Where each fixture comes from:
//  - ISSUE416: a scratch file written by a real Multus v3.x, copied from its saveScratchNetConf debug
//    log line (k8snetworkplumbingwg/multus-cni issue #416; the log prints the exact bytes written).
//  - ISSUE1488: a cniCacheV1 file a real Multus left in /var/lib/cni/multus/results (issue #1488).
//  - FAASD_LEGACY: a pre-cniCacheV1 libcni file, a bare result (openfaas/faasd PR #165).
//  - ISSUE1446: the CNI_ARGS containerd passed to a Multus DEL and the args Multus logged (issue #1446).
//  - The v3.9–v4.2.0 and v4.2.1–v4.3.0 files are written out by hand the way Go's encoding/json
//    marshals []*DelegateNetConf: field order and tags from MUL pkg/types/types.go, Conf/ConfList from
//    the CNI types' tags (ipam and dns are structs, so always present), Bytes base64, and
//    CNINetworkConfigList from libcni's NetworkConfigList (v1.3: no tags, Plugins[].Bytes sorted).
//  - pkg/multus/multus_test.go has no literal scratch contents (it builds them with CmdAdd and only
//    stats the file, "Verify the cache is created in dataDir"); its scenarios "executes delegates" and
//    "executes confListDel without error" give the configs and ifnames used below.
//  - libcni itself (the runtime side) is not installed here, only containernetworking-plugins
//    (/usr/lib/cni). So the cniCacheV1 fixture is built field by field from libcni/api.go
//    (cachedInfo, cacheAdd), cross-checked byte for byte against ISSUE1488, and its result is the real
//    Go-encoded output of /usr/lib/cni/static.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { CniError } from '../src/cni/errors';
import {
  formatLibcniCache, goJsonMarshal, libcniCachePath, multusCniArgs, multusScratchPath, parseLibcniCache,
  parseMultusScratch,
} from '../src/delegates/multus-cache';

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64'); // Go base64.StdEncoding
const CID = '9f1c2d3e4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff';

const ISSUE416 =
  '[{"Conf":{"cniVersion":"0.2.0","name":"cbr0","ipam":{},"dns":{}},"ConfList":{"cniVersion":"0.2.0","name":"cbr0","plugins":[{"type":"flannel","ipam":{},"dns":{}},{"type":"portmap","capabilities":{"portMappings":true},"ipam":{},"dns":{}}]},"Bytes":"eyJjbmlWZXJzaW9uIjoiMC4yLjAiLCJuYW1lIjoiY2JyMCIsInBsdWdpbnMiOlt7ImRlbGVnYXRlIjp7ImhhaXJwaW5Nb2RlIjp0cnVlLCJpc0RlZmF1bHRHYXRld2F5Ijp0cnVlfSwidHlwZSI6ImZsYW5uZWwifSx7ImNhcGFiaWxpdGllcyI6eyJwb3J0TWFwcGluZ3MiOnRydWV9LCJ0eXBlIjoicG9ydG1hcCJ9XX0="},{"Conf":{"cniVersion":"0.3.0","name":"ipvlan-conf2","type":"ipvlan","ipam":{"type":"static"},"dns":{}},"ConfList":{},"ipRequest":"192.168.205.195/24","Bytes":"eyJjbmlWZXJzaW9uIjoiMC4zLjAiLCJpcGFtIjp7InR5cGUiOiJzdGF0aWMifSwibWFzdGVyIjoidmxhbjEwIiwibW9kZSI6ImwyIiwibmFtZSI6Imlwdmxhbi1jb25mMiIsInR5cGUiOiJpcHZsYW4ifQ=="}]';

// v3.9–v4.2.0: flannel conflist from /etc/cni/net.d as cluster network (raw file bytes), then NADs.
// One NAD asks for default-route, so CheckGatewayConfig set IsFilter* on every delegate.
const FLANNEL_FILE = '{\n  "name": "cbr0",\n  "cniVersion": "0.3.1",\n  "plugins": [\n    { "type": "flannel", "delegate": { "hairpinMode": true, "isDefaultGateway": true } },\n    { "type": "portmap", "capabilities": { "portMappings": true } }\n  ]\n}\n';
const MACVLAN_NAD = '{ "cniVersion": "0.3.1", "name": "macvlan-conf", "type": "macvlan", "master": "eth0", "mode": "bridge", "ipam": { "type": "host-local", "subnet": "10.1.1.0/24" } }';
const BRIDGE_NAD = '{"cniVersion":"1.0.0","name":"bridge-gw","plugins":[{"type":"bridge","bridge":"br-gw","ipam":{"type":"static"}},{"type":"tuning","capabilities":{"mac":true}}]}';
// delegateAddDeviceID re-marshals a map: sorted keys, deviceID and pciBusID added.
const SRIOV_BYTES = '{"cniVersion":"0.3.1","deviceID":"0000:3b:02.1","ipam":{"type":"host-local"},"name":"sriov-net","pciBusID":"0000:3b:02.1","type":"sriov","vlan":100}';
const V4_FILE = `[${[
  `{"Conf":{"cniVersion":"0.3.1","name":"cbr0","ipam":{},"dns":{}},"ConfList":{"cniVersion":"0.3.1","name":"cbr0","plugins":[{"type":"flannel","ipam":{},"dns":{}},{"type":"portmap","capabilities":{"portMappings":true},"ipam":{},"dns":{}}]},"Name":"cbr0","IsFilterV4Gateway":true,"IsFilterV6Gateway":true,"Bytes":"${b64(FLANNEL_FILE)}"}`,
  `{"Conf":{"cniVersion":"0.3.1","name":"macvlan-conf","type":"macvlan","ipam":{"type":"host-local"},"dns":{}},"ConfList":{},"Name":"default/macvlan-conf","IsFilterV4Gateway":true,"IsFilterV6Gateway":true,"Bytes":"${b64(MACVLAN_NAD)}"}`,
  `{"Conf":{"cniVersion":"1.0.0","name":"bridge-gw","ipam":{},"dns":{}},"ConfList":{"cniVersion":"1.0.0","name":"bridge-gw","plugins":[{"type":"bridge","ipam":{"type":"static"},"dns":{}},{"type":"tuning","capabilities":{"mac":true},"ipam":{},"dns":{}}]},"Name":"default/bridge-gw","ifnameRequest":"ext0","macRequest":"02:00:00:00:00:10","ipRequest":["10.2.0.10/24"],"default-route":["10.2.0.1"],"IsFilterV4Gateway":false,"IsFilterV6Gateway":true,"Bytes":"${b64(BRIDGE_NAD)}"}`,
  `{"Conf":{"cniVersion":"0.3.1","name":"sriov-net","type":"sriov","ipam":{"type":"host-local"},"dns":{}},"ConfList":{},"Name":"default/sriov-net","IsFilterV4Gateway":true,"IsFilterV6Gateway":true,"deviceID":"0000:3b:02.1","resourceName":"intel.com/intel_sriov_netdevice","Bytes":"${b64(SRIOV_BYTES)}"}`,
].join(',')}]`;

test('a real Multus v3 scratch file (issue #416): conflist master on CNI_IFNAME, conf on net1', () => {
  const ds = parseMultusScratch(ISSUE416, 'ada692b80ba6', 'eth0');
  assert.equal(ds.length, 2);
  const [cbr0, ipvlan] = ds;
  assert.ok(cbr0 && ipvlan);
  assert.deepEqual([cbr0.ifname, cbr0.isMaster, cbr0.isConflist, cbr0.networkName], ['eth0', true, true, 'cbr0']);
  assert.equal(cbr0.configBytes, '{"cniVersion":"0.2.0","name":"cbr0","plugins":[{"delegate":{"hairpinMode":true,"isDefaultGateway":true},"type":"flannel"},{"capabilities":{"portMappings":true},"type":"portmap"}]}');
  assert.deepEqual([ipvlan.ifname, ipvlan.isMaster, ipvlan.isConflist, ipvlan.name], ['net1', false, false, '']);
  assert.equal(JSON.parse(ipvlan.configBytes).master, 'vlan10');
  // That release stored ipRequest as a single string; Multus hands it on as the ips capability.
  assert.deepEqual(ipvlan.runtimeConfig, { ips: ['192.168.205.195/24'] });
});

test('v3.9–v4.2.0 layout: exact bytes, ifnames, named interfaces and per-delegate runtimeConfig', () => {
  const portMappings = [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }];
  const ds = parseMultusScratch(V4_FILE, CID, 'eth0', { runtimeConfig: { portMappings, unknownCap: true } });
  assert.deepEqual(ds.map((d) => d.ifname), ['eth0', 'net1', 'ext0', 'net3']);
  assert.deepEqual(ds.map((d) => d.name), ['cbr0', 'default/macvlan-conf', 'default/bridge-gw', 'default/sriov-net']);
  assert.deepEqual(ds.map((d) => d.networkName), ['cbr0', 'macvlan-conf', 'bridge-gw', 'sriov-net']);
  assert.deepEqual(ds.map((d) => d.isConflist), [true, false, true, false]);
  assert.deepEqual(ds.map((d) => d.isMaster), [true, false, false, false]);
  // The config is the cached text, byte for byte: whitespace and key order of the file or the NAD.
  assert.deepEqual(ds.map((d) => d.configBytes), [FLANNEL_FILE, MACVLAN_NAD, BRIDGE_NAD, SRIOV_BYTES]);
  const [master, macvlan, bridge, sriov] = ds;
  assert.ok(master && macvlan && bridge && sriov);
  // The meta conf's runtimeConfig reaches every delegate; only keys Multus's RuntimeConfig knows.
  assert.deepEqual(master.runtimeConfig, { portMappings });
  assert.deepEqual(macvlan.runtimeConfig, { portMappings });
  assert.deepEqual(bridge.runtimeConfig, { portMappings, ips: ['10.2.0.10/24'], mac: '02:00:00:00:00:10' });
  assert.deepEqual(sriov.runtimeConfig, {
    portMappings,
    deviceID: '0000:3b:02.1',
    CNIDeviceInfoFile: `/var/run/k8s.cni.cncf.io/devinfo/cni/default-sriov-net-${CID}_net3`,
  });
  assert.ok(ds.every((d) => d.configSource === 'Bytes'));
});

test('multus_test.go "executes delegates": delegates list, master eth0 and net1', () => {
  // LoadNetConf re-marshals each entry of "delegates" from a map, so Bytes has sorted keys.
  const weave = '{"cniVersion":"0.2.0","name":"weave1","type":"weave-net"}';
  const other = '{"cniVersion":"0.2.0","name":"other1","type":"other-plugin"}';
  const file = `[{"Conf":{"cniVersion":"0.2.0","name":"weave1","type":"weave-net","ipam":{},"dns":{}},"ConfList":{},"Name":"weave1","IsFilterV4Gateway":false,"IsFilterV6Gateway":false,"Bytes":"${b64(weave)}"},{"Conf":{"cniVersion":"0.2.0","name":"other1","type":"other-plugin","ipam":{},"dns":{}},"ConfList":{},"Name":"other1","IsFilterV4Gateway":false,"IsFilterV6Gateway":false,"Bytes":"${b64(other)}"}]`;
  const ds = parseMultusScratch(file, '123456789', 'eth0');
  assert.deepEqual(ds.map((d) => [d.ifname, d.configBytes]), [['eth0', weave], ['net1', other]]);
  assert.deepEqual(ds.map((d) => d.runtimeConfig), [{}, {}]);
});

test('multus_test.go "executes confListDel without error": conflist master gets portMappings', () => {
  const list = '{"cniVersion":"0.3.1","name":"mynet-confList","plugins":[{"capabilities":{"portMappings":true},"type":"firstPlugin"}]}';
  const file = `[{"Conf":{"cniVersion":"0.3.1","name":"mynet-confList","ipam":{},"dns":{}},"ConfList":{"cniVersion":"0.3.1","name":"mynet-confList","plugins":[{"type":"firstPlugin","capabilities":{"portMappings":true},"ipam":{},"dns":{}}]},"Name":"mynet-confList","IsFilterV4Gateway":false,"IsFilterV6Gateway":false,"Bytes":"${b64(list)}"}]`;
  const portMappings = [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }];
  const [d] = parseMultusScratch(file, '123456789', 'eth0', { runtimeConfig: { portMappings } });
  assert.ok(d);
  assert.deepEqual([d.isConflist, d.ifname, d.configBytes], [true, 'eth0', list]);
  assert.deepEqual(d.runtimeConfig, { portMappings });
});

test('a conflist without cniVersion gets the meta cniVersion, losing nothing (master InjectCNIVersionInConfList)', () => {
  const list = '{"name":"calico","plugins":[{"type":"calico","datastore_type":"kubernetes","mtu":1440}]}';
  const file = `[{"Conf":{"name":"calico","ipam":{},"dns":{}},"ConfList":{"name":"calico","plugins":[{"type":"calico","ipam":{},"dns":{}}]},"Name":"calico","IsFilterV4Gateway":false,"IsFilterV6Gateway":false,"Bytes":"${b64(list)}"}]`;
  const [d] = parseMultusScratch(file, CID, 'eth0', { cniVersion: '0.3.1' });
  assert.equal(d?.configBytes, '{"cniVersion":"0.3.1","name":"calico","plugins":[{"datastore_type":"kubernetes","mtu":1440,"type":"calico"}]}');
  const [kept] = parseMultusScratch(file, CID, 'eth0');
  assert.equal(kept?.configBytes, list);
});

// v4.2.1–v4.3.0: LoadDelegateNetConfFromConfList kept the libcni list (lossless per-plugin Bytes) and
// stored a lossy json.Marshal(NetConfList) in Bytes, then deviceID and cni-args injected into that.
const CALICO_FILE = '{\n  "name": "k8s-pod-network",\n  "cniVersion": "0.3.1",\n  "plugins": [\n    {\n      "type": "calico",\n      "datastore_type": "kubernetes",\n      "mtu": 1440,\n      "ipam": { "type": "calico-ipam" },\n      "kubernetes": { "kubeconfig": "/etc/cni/net.d/calico-kubeconfig" }\n    },\n    { "type": "portmap", "snat": true, "capabilities": { "portMappings": true } }\n  ]\n}\n';
const CALICO_P0 = '{"datastore_type":"kubernetes","ipam":{"type":"calico-ipam"},"kubernetes":{"kubeconfig":"/etc/cni/net.d/calico-kubeconfig"},"mtu":1440,"type":"calico"}';
const CALICO_P1 = '{"capabilities":{"portMappings":true},"snat":true,"type":"portmap"}';
const CALICO_NET = ['{"type":"calico","ipam":{"type":"calico-ipam"},"dns":{}}', '{"type":"portmap","capabilities":{"portMappings":true},"ipam":{},"dns":{}}'];
const CALICO_LOSSY = `{"cniVersion":"0.3.1","name":"k8s-pod-network","plugins":[${CALICO_NET.join(',')}]}`;
const SRIOV_LIST = '{"cniVersion":"1.0.0","name":"sriov-list","plugins":[{"type":"sriov","vlan":100,"args":{"cni":{"keep":"yes"}},"ipam":{"type":"whereabouts","range":"10.56.0.0/24"}},{"type":"tuning","sysctl":{"net.ipv4.conf.IFNAME.arp_notify":"1"}}]}';
const SRIOV_P0 = '{"args":{"cni":{"keep":"yes"}},"ipam":{"range":"10.56.0.0/24","type":"whereabouts"},"type":"sriov","vlan":100}';
const SRIOV_P1 = '{"sysctl":{"net.ipv4.conf.IFNAME.arp_notify":"1"},"type":"tuning"}';
const SRIOV_HOUSEKEEPING = '{"cniVersion":"1.0.0","name":"sriov-list","plugins":[{"args":{"cni":{"vf-name":"x"}},"deviceID":"0000:3b:02.1","dns":{},"ipam":{"type":"whereabouts"},"pciBusID":"0000:3b:02.1","type":"sriov"},{"args":{"cni":{"vf-name":"x"}},"deviceID":"0000:3b:02.1","dns":{},"ipam":{},"pciBusID":"0000:3b:02.1","type":"tuning"}]}';
const EMPTY_LIST = '"CNINetworkConfigList":{"Name":"","CNIVersion":"","DisableCheck":false,"DisableGC":false,"LoadOnlyInlinedPlugins":false,"Plugins":null,"Bytes":null}';
const libcniList = (name: string, ver: string, file: string, net: string[], raw: string[]): string =>
  `"CNINetworkConfigList":{"Name":"${name}","CNIVersion":"${ver}","DisableCheck":false,"DisableGC":false,"LoadOnlyInlinedPlugins":false,"Plugins":[${net.map((n, i) => `{"Network":${n},"Bytes":"${b64(raw[i] ?? '')}"}`).join(',')}],"Bytes":"${b64(file)}"}`;
const V43_FILE = `[${[
  `{"Conf":{"ipam":{},"dns":{}},"ConfList":{"cniVersion":"0.3.1","name":"k8s-pod-network","plugins":[${CALICO_NET.join(',')}]},${libcniList('k8s-pod-network', '0.3.1', CALICO_FILE, CALICO_NET, [CALICO_P0, CALICO_P1])},"Name":"k8s-pod-network","IsFilterV4Gateway":false,"IsFilterV6Gateway":false,"Bytes":"${b64(CALICO_LOSSY)}"}`,
  `{"Conf":{"cniVersion":"0.3.1","name":"macvlan-conf","type":"macvlan","ipam":{"type":"host-local"},"dns":{}},"ConfList":{},${EMPTY_LIST},"Name":"default/macvlan-conf","IsFilterV4Gateway":false,"IsFilterV6Gateway":false,"Bytes":"${b64(MACVLAN_NAD)}"}`,
  `{"Conf":{"ipam":{},"dns":{}},"ConfList":{"cniVersion":"1.0.0","name":"sriov-list","plugins":[{"type":"sriov","ipam":{"type":"whereabouts"},"dns":{}},{"type":"tuning","ipam":{},"dns":{}}]},${libcniList('sriov-list', '1.0.0', SRIOV_LIST, ['{"type":"sriov","ipam":{"type":"whereabouts"},"dns":{}}', '{"type":"tuning","ipam":{},"dns":{}}'], [SRIOV_P0, SRIOV_P1])},"Name":"default/sriov-list","IsFilterV4Gateway":false,"IsFilterV6Gateway":false,"deviceID":"0000:3b:02.1","resourceName":"intel.com/intel_sriov_netdevice","Bytes":"${b64(SRIOV_HOUSEKEEPING)}"}`,
].join(',')}]`;

test('v4.2.1–v4.3.0 CNINetworkConfigList: DEL gets the lossless conflist, not the lossy Bytes (PR #1521)', () => {
  const [calico, macvlan, sriov] = parseMultusScratch(V43_FILE, CID, 'eth0');
  assert.ok(calico && macvlan && sriov);
  // What master's UnmarshalJSON rebuilds: list keys from the file, plugins from their raw bytes.
  assert.equal(calico.configBytes, `{"cniVersion":"0.3.1","name":"k8s-pod-network","plugins":[${CALICO_P0},${CALICO_P1}]}`);
  assert.equal(JSON.parse(calico.configBytes).plugins[0].datastore_type, 'kubernetes'); // the IP-leak fix
  assert.deepEqual([calico.configSource, calico.ifname, calico.isConflist], ['CNINetworkConfigList', 'eth0', true]);
  // A conf delegate carried an empty CNINetworkConfigList: its Bytes stay the source.
  assert.deepEqual([macvlan.configSource, macvlan.configBytes], ['Bytes', MACVLAN_NAD]);
  // deviceID, pciBusID and args.cni come from the housekeeping Bytes (mergeConfListBytes).
  assert.equal(sriov.configBytes, '{"cniVersion":"1.0.0","name":"sriov-list","plugins":[{"args":{"cni":{"keep":"yes","vf-name":"x"}},"deviceID":"0000:3b:02.1","ipam":{"range":"10.56.0.0/24","type":"whereabouts"},"pciBusID":"0000:3b:02.1","type":"sriov","vlan":100},{"args":{"cni":{"vf-name":"x"}},"deviceID":"0000:3b:02.1","pciBusID":"0000:3b:02.1","sysctl":{"net.ipv4.conf.IFNAME.arp_notify":"1"},"type":"tuning"}]}');
  assert.equal(sriov.runtimeConfig['CNIDeviceInfoFile'], `/var/run/k8s.cni.cncf.io/devinfo/cni/default-sriov-list-${CID}_net2`);
});

function assertCorrupt(fn: () => unknown, field: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof CniError, `expected CniError, got ${String(err)}`);
    assert.equal(err.code, 6);
    assert.match(err.message, field);
    return true;
  });
}

test('a corrupt scratch file is a code-6 error naming the field, never a skip', () => {
  const src = { source: `/var/lib/cni/multus/${CID}` };
  // Truncated by a reboot mid-write (issue #1087): Multus returned success and leaked the IPs.
  assertCorrupt(() => parseMultusScratch(V4_FILE.slice(0, 700), CID, 'eth0', src), /multus\/9f1c.*invalid JSON/);
  assertCorrupt(() => parseMultusScratch('[]', CID, 'eth0'), /lists no delegates/);
  assertCorrupt(() => parseMultusScratch('{}', CID, 'eth0'), /must be a JSON list/);
  const d = JSON.parse(V4_FILE) as Record<string, unknown>[];
  const mutate = (i: number, patch: Record<string, unknown>): string =>
    JSON.stringify(d.map((x, j) => (j === i ? { ...x, ...patch } : x)));
  assertCorrupt(() => parseMultusScratch(mutate(1, { Bytes: 'not base64!' }), CID, 'eth0'), /\[1\]\.Bytes: is not valid base64/);
  assertCorrupt(() => parseMultusScratch(mutate(0, { Bytes: null }), CID, 'eth0'), /\[0\]\.Bytes: is missing/);
  assertCorrupt(() => parseMultusScratch(mutate(0, { Bytes: b64(MACVLAN_NAD) }), CID, 'eth0'), /\[0\]\.Bytes \(decoded\).*no plugins/);
  assertCorrupt(() => parseMultusScratch(mutate(1, { Bytes: b64('{"name":"x"') }), CID, 'eth0'), /\[1\]\.Bytes \(decoded\): invalid JSON/);
  assertCorrupt(() => parseMultusScratch(mutate(2, { Name: 5 }), CID, 'eth0'), /\[2\]\.Name: must be a string/);
  assertCorrupt(() => parseMultusScratch(mutate(2, { ifnameRequest: '../x' }), CID, 'eth0'), /\[2\]\.ifnameRequest/);
  assertCorrupt(() => parseMultusScratch(mutate(3, { IsFilterV4Gateway: 'yes' }), CID, 'eth0'), /\[3\]\.IsFilterV4Gateway/);
  assertCorrupt(() => parseMultusScratch(mutate(0, { ConfList: { plugins: 'x' } }), CID, 'eth0'), /\[0\]\.ConfList\.plugins/);
  const v43 = JSON.parse(V43_FILE) as Record<string, Record<string, unknown>>[];
  const cnl = { ...v43[0]?.['CNINetworkConfigList'], Plugins: [] };
  assertCorrupt(() => parseMultusScratch(JSON.stringify([{ ...v43[0], CNINetworkConfigList: cnl }]), CID, 'eth0'), /\[0\]\.Bytes \(decoded\): has 2 plugins/);
});

test('CNI_ARGS on DEL: Multus\'s five pairs, then every CNI_ARGS pair (issue #1446 log)', () => {
  const cniArgs = 'K8S_POD_UID=e49218d4-1c54-4d5e-bcc3-2af84887427c;IgnoreUnknown=1;K8S_POD_NAMESPACE=multus;K8S_POD_NAME=samplepod-no-multus-896fdb9db-2gq4s;K8S_POD_INFRA_CONTAINER_ID=b54a511ce85259553e468996bc90ce0f9abd18bedc25806b6b7c7211c68ea6a7';
  const uid = ['K8S_POD_UID', 'e49218d4-1c54-4d5e-bcc3-2af84887427c'];
  const ns = ['K8S_POD_NAMESPACE', 'multus'];
  const name = ['K8S_POD_NAME', 'samplepod-no-multus-896fdb9db-2gq4s'];
  const infra = ['K8S_POD_INFRA_CONTAINER_ID', 'b54a511ce85259553e468996bc90ce0f9abd18bedc25806b6b7c7211c68ea6a7'];
  // As logged by conflistDel in the issue: [[IgnoreUnknown true] ns name infra uid uid [IgnoreUnknown 1] ns name infra].
  assert.deepEqual(multusCniArgs(cniArgs), [['IgnoreUnknown', 'true'], ns, name, infra, uid, uid, ['IgnoreUnknown', '1'], ns, name, infra]);
  // The thick daemon has no CNI_ARGS environment: only the five, as the ISSUE1488 cache shows.
  assert.deepEqual(multusCniArgs(cniArgs, { thick: true }), [['IgnoreUnknown', 'true'], ns, name, infra, uid]);
  // A missing K8S value leaves an empty slot that a later pair fills instead of appending.
  assert.deepEqual(multusCniArgs('K8S_POD_NAME=p;FOO=a=b'), [['IgnoreUnknown', 'true'], ['K8S_POD_NAMESPACE', ''], ['K8S_POD_NAME', 'p'], ['K8S_POD_INFRA_CONTAINER_ID', ''], ['K8S_POD_UID', ''], ['K8S_POD_NAME', 'p'], ['FOO', 'a=b']]);
});

const ISSUE1488 =
  '{"kind":"cniCacheV1","containerId":"0539c85548a7b33981de5478dcea6d97314fba4ed2c4a8afbba54271465a0fce","config":"CnsKICAiY25pVmVyc2lvbiI6ICIwLjMuMSIsCiAgIm5hbWUiOiAiY2lsaXVtIiwKICAicGx1Z2lucyI6IFsKICAgIHsKICAgICAgICJ0eXBlIjogImNpbGl1bS1jbmkiLAogICAgICAgImVuYWJsZS1kZWJ1ZyI6IGZhbHNlLAogICAgICAgImxvZy1maWxlIjogIi92YXIvcnVuL2NpbGl1bS9jaWxpdW0tY25pLmxvZyIKICAgIH0KICBdCn0=","ifName":"eth0","networkName":"cilium","netns":"/var/run/netns/cni-c54a077d-d037-cfee-9539-3d00c421cced","cniArgs":[["IgnoreUnknown","true"],["K8S_POD_NAMESPACE","vc-prod-brandlift-hu"],["K8S_POD_NAME","ingress-public-kubernetes-ingress-c8kxx-x-ingress-x-vcluster"],["K8S_POD_INFRA_CONTAINER_ID","0539c85548a7b33981de5478dcea6d97314fba4ed2c4a8afbba54271465a0fce"],["K8S_POD_UID","066d422b-2c4f-4848-b206-9da12d2e0de9"]],"result":{"cniVersion":"0.3.1","dns":{},"interfaces":[{"mac":"26:8a:ea:05:69:3f","name":"lxce751ef859f45"},{"mac":"26:3f:72:06:1b:b2","name":"eth0","sandbox":"/var/run/netns/cni-c54a077d-d037-cfee-9539-3d00c421cced"}],"ips":[{"address":"10.15.64.3/32","gateway":"10.207.0.92","interface":1,"version":"4"}],"routes":[{"dst":"10.207.0.92/32"},{"dst":"0.0.0.0/0","gw":"10.207.0.92"}]}}';

test('a real libcni file Multus wrote (issue #1488) reads, and writes back byte for byte', () => {
  const e = parseLibcniCache(ISSUE1488);
  assert.equal(e.kind, 'cniCacheV1');
  assert.deepEqual([e.containerId.slice(0, 8), e.ifName, e.networkName], ['0539c855', 'eth0', 'cilium']);
  assert.match(e.config, /^\n\{\n {2}"cniVersion": "0\.3\.1",\n {2}"name": "cilium"/); // the conflist file, verbatim
  assert.equal(e.cniArgs.length, 5); // thick plugin: no CNI_ARGS env in the daemon, so only Multus's five
  assert.deepEqual(e.capabilityArgs, {});
  assert.equal(e.result?.['cniVersion'], '0.3.1');
  assert.equal(formatLibcniCache(e), ISSUE1488);
  // Multus rewrites the file through a map when it edits default routes (netutils.DeleteDefaultGWCache),
  // which sorts the top-level keys: still the same record.
  const sorted = goJsonMarshal(JSON.parse(ISSUE1488));
  assert.notEqual(sorted, ISSUE1488);
  assert.deepEqual(parseLibcniCache(sorted), e);
});

test('cniCacheV1 built field by field from libcni/api.go, with a real Go result from /usr/lib/cni/static', (t) => {
  const plugin = '/usr/lib/cni/static';
  if (!existsSync(plugin)) return t.skip('containernetworking-plugins not installed');
  const config = '{"cniVersion":"1.0.0","name":"macvlan-net","type":"macvlan","master":"eth0","ipam":{"type":"static","addresses":[{"address":"10.10.0.5/24","gateway":"10.10.0.1"}],"routes":[{"dst":"0.0.0.0/0"}],"dns":{"nameservers":["10.10.0.1"]}}}';
  const run = spawnSync(plugin, [], {
    input: config,
    env: { CNI_COMMAND: 'ADD', CNI_CONTAINERID: CID, CNI_NETNS: '/var/run/netns/cni-1', CNI_IFNAME: 'net1', CNI_PATH: '/usr/lib/cni' },
  });
  assert.equal(run.status, 0, run.stderr.toString() + run.stdout.toString());
  const result = JSON.parse(run.stdout.toString()) as Record<string, never>;
  const cniArgs: [string, string][] = [['IgnoreUnknown', 'true'], ['K8S_POD_NAMESPACE', 'default'], ['K8S_POD_NAME', 'web-0'], ['K8S_POD_INFRA_CONTAINER_ID', CID], ['K8S_POD_UID', 'u-1']];
  const text = formatLibcniCache({
    containerId: CID, ifName: 'net1', networkName: 'macvlan-net', netns: '/var/run/netns/cni-1', config, cniArgs,
    capabilityArgs: { mac: '02:00:00:00:00:10', ips: ['10.10.0.5/24'] }, result,
  });
  const expected = '{' + [
    '"kind":"cniCacheV1"', // Kind: CNICacheV1
    `"containerId":"${CID}"`, // rt.ContainerID
    `"config":"${b64(config)}"`, // []byte: base64 of the exact config bytes
    '"ifName":"net1"',
    '"networkName":"macvlan-net"',
    '"netns":"/var/run/netns/cni-1"', // omitempty
    `"cniArgs":[["IgnoreUnknown","true"],["K8S_POD_NAMESPACE","default"],["K8S_POD_NAME","web-0"],["K8S_POD_INFRA_CONTAINER_ID","${CID}"],["K8S_POD_UID","u-1"]]`,
    '"capabilityArgs":{"ips":["10.10.0.5/24"],"mac":"02:00:00:00:00:10"}', // a Go map: keys sorted
    // RawResult: the typed result re-read into map[string]interface{}, so every level is sorted.
    '"result":{"cniVersion":"1.0.0","dns":{"nameservers":["10.10.0.1"]},"ips":[{"address":"10.10.0.5/24","gateway":"10.10.0.1"}],"routes":[{"dst":"0.0.0.0/0"}]}',
  ].join(',') + '}';
  assert.equal(text, expected);
  const back = parseLibcniCache(text);
  assert.equal(back.config, config);
  assert.deepEqual(back.result, result);
  // Empty optional fields are left out, as omitempty does; config is always written.
  assert.equal(formatLibcniCache({ containerId: 'c', ifName: 'eth0', networkName: 'n', config: '' }),
    '{"kind":"cniCacheV1","containerId":"c","config":"","ifName":"eth0","networkName":"n"}');
});

test('the legacy bare-result file (faasd PR #165) still reads, named from its path', () => {
  const legacy = '{"cniVersion":"0.3.1","interfaces":[{"name":"lo","mac":"00:00:00:00:00:00","sandbox":"/proc/3571/ns/net"}],"ips":[{"version":"4","interface":0,"address":"127.0.0.1/8"},{"version":"6","interface":0,"address":"::1/128"}],"dns":{}}';
  const e = parseLibcniCache(legacy, { networkName: 'cni-loopback', containerId: 'gateway-3571', ifName: 'lo' });
  assert.deepEqual([e.kind, e.networkName, e.containerId, e.ifName, e.config], ['legacy', 'cni-loopback', 'gateway-3571', 'lo', '']);
  assert.deepEqual(e.result, JSON.parse(legacy));
});

test('a corrupt libcni file is a code-6 error naming the field', () => {
  const src = { source: '/var/lib/cni/multus/results/cilium-x-eth0' };
  const v1 = JSON.parse(ISSUE1488) as Record<string, unknown>;
  const bad = (patch: Record<string, unknown>): string => JSON.stringify({ ...v1, ...patch });
  assertCorrupt(() => parseLibcniCache(ISSUE1488.slice(0, 200), src), /results\/cilium-x-eth0: invalid JSON/);
  assertCorrupt(() => parseLibcniCache(bad({ config: '***' }), src), /cilium-x-eth0\.config: is not valid base64/);
  assertCorrupt(() => parseLibcniCache(bad({ kind: 'cniCacheV2' })), /\.kind: must be "cniCacheV1"/);
  assertCorrupt(() => parseLibcniCache(bad({ kind: undefined })), /\.kind: is missing/);
  assertCorrupt(() => parseLibcniCache(bad({ cniArgs: [['IgnoreUnknown']] })), /\.cniArgs\[0\]/);
  assertCorrupt(() => parseLibcniCache(bad({ ifName: '' })), /\.ifName: must not be empty/);
  assertCorrupt(() => parseLibcniCache('{"hello":1}'), /neither a cniCacheV1 record nor a CNI result/);
});

test('Go encoding: HTML-safe escapes, sorted map keys, -0', () => {
  assert.equal(goJsonMarshal({ b: '<a&b>', a: '\u2028\b\f\u0001', c: -0, d: [true, null, 1.5e-7] }),
    '{"a":"\\u2028\\b\\f\\u0001","b":"\\u003ca\\u0026b\\u003e","c":-0,"d":[true,null,1.5e-7]}');
  const e = parseLibcniCache(formatLibcniCache({ containerId: 'c', ifName: 'i', networkName: 'n', netns: '/x<y>', config: '{"é":"\u2029"}' }));
  assert.deepEqual([e.netns, e.config], ['/x<y>', '{"é":"\u2029"}']);
});

test('cache paths as Multus and libcni build them', () => {
  assert.equal(multusScratchPath('/var/lib/cni/multus', CID), `/var/lib/cni/multus/${CID}`);
  assert.equal(libcniCachePath('/var/lib/cni/multus', 'cbr0', CID, 'eth0'), `/var/lib/cni/multus/results/cbr0-${CID}-eth0`);
  assert.throws(() => multusScratchPath('/var/lib/cni/multus', '../etc'), (e: unknown) => e instanceof CniError && e.code === 4);
  assert.throws(() => libcniCachePath('/c', '', CID, 'eth0'), (e: unknown) => e instanceof CniError && e.code === 7);
  assert.throws(() => libcniCachePath('/c', 'n', CID, 'a/b'), (e: unknown) => e instanceof CniError && e.code === 4);
});
