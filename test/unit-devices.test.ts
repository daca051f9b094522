// Device-plugin networks: the pure planning (which attachment gets which device, the injected
// config, the file paths, what a device-info file must hold) and the kubelet PodResources client
// against a PodResources server speaking v1 on a unix socket (test/helpers/pod-resources.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CniError } from '../src/cni/errors';
import { parseNetworkConfig } from '../src/cni/netconf';
import { copyDevicePluginInfo, readDeviceInfos } from '../src/delegates/device-info';
import { assignDevices, cniDeviceInfoPath, dpDeviceInfoPath, parseDeviceInfo, withDeviceID } from '../src/delegates/devices';
import type { AttachmentRecord } from '../src/delegates/journal';
import type { NetworkSpec } from '../src/delegates/networks';
import { planAttachments } from '../src/delegates/plan';
import { podDevices } from '../src/kubelet/pod-resources';
import { tempDir } from './helpers/host';
import { podResourcesServer, type FakePod } from './helpers/pod-resources';

const VF = 'intel.com/sriov_vf';
const RDMA = 'mellanox.com/rdma';

function spec(network: string, resourceName?: string, config: object = { cniVersion: '1.0.0', name: network.replace('/', '-'), type: 'sriov' }): NetworkSpec {
  return { network, net: parseNetworkConfig(JSON.stringify(config), network), isDefault: false, resourceName };
}

test('assignDevices: each network of a resource takes the next device, in network order; others get none', () => {
  const held = new Map([
    [VF, ['0000:3b:02.0', '0000:3b:02.1', '0000:3b:02.2']],
    [RDMA, ['mlx5_3']],
  ]);
  const ids = assignDevices([spec('cluster'), spec('a/vf1', VF), spec('a/rdma', RDMA), spec('a/plain'), spec('a/vf2', VF)], held, 'a/web');
  assert.deepEqual(ids, [undefined, '0000:3b:02.0', 'mlx5_3', undefined, '0000:3b:02.1']);
  // no resource anywhere: nothing to do, and the held map may be empty
  assert.deepEqual(assignDevices([spec('a/x'), spec('a/y')], new Map(), 'a/web'), [undefined, undefined]);
});

test('assignDevices: a pod holding none, or too few, of the resource is a config error naming network, resource and pod', () => {
  const held = new Map([[VF, ['0000:3b:02.0']]]);
  assert.throws(() => assignDevices([spec('a/rdma', RDMA)], held, 'a/web'), (err: CniError) => {
    assert.equal(err.code, 7);
    assert.match(err.message, /^network a\/rdma: .*resource "mellanox\.com\/rdma".* pod a\/web holds no device of it/);
    return true;
  });
  assert.throws(() => assignDevices([spec('a/vf1', VF), spec('a/vf2', VF)], held, 'a/web'), /network a\/vf2: .*"intel\.com\/sriov_vf".*holds 1 device\(s\) of it, all taken/);
});

test('withDeviceID: deviceID and pciBusID in the conf, or in every plugin of a conflist, the rest untouched', () => {
  const conf = JSON.parse(withDeviceID(JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'sriov', vlan: 7, ipam: { type: 'static' } }), '0000:3b:02.1')) as object;
  assert.deepEqual(conf, { cniVersion: '1.0.0', name: 'n', type: 'sriov', vlan: 7, ipam: { type: 'static' }, deviceID: '0000:3b:02.1', pciBusID: '0000:3b:02.1' });
  const list = JSON.parse(
    withDeviceID(JSON.stringify({ cniVersion: '1.0.0', name: 'n', plugins: [{ type: 'sriov', deviceID: 'stale' }, { type: 'tuning', sysctl: {} }] }), 'mlx5_3'),
  ) as { plugins: object[] };
  assert.deepEqual(list.plugins, [
    { type: 'sriov', deviceID: 'mlx5_3', pciBusID: 'mlx5_3' },
    { type: 'tuning', sysctl: {}, deviceID: 'mlx5_3', pciBusID: 'mlx5_3' },
  ]);
});

test('device-info paths: Multus\'s CNI file name and the device plugin\'s, "/" made "-"', () => {
  assert.equal(cniDeviceInfoPath('/run/devinfo/cni', 'team-a/sriov-net', 'abc123', 'net1'), '/run/devinfo/cni/team-a-sriov-net-abc123_net1');
  assert.equal(dpDeviceInfoPath('/run/devinfo/dp', VF, '0000:3b:02.1'), '/run/devinfo/dp/intel.com-sriov_vf-0000:3b:02.1-device.json');
  assert.equal(dpDeviceInfoPath('/d', 'x/y', 'a/b'), '/d/x-y-a-b-device.json');
});

test('planAttachments: the device goes into the config, runtimeConfig.deviceID and a CNIDeviceInfoFile; the journal record names it', () => {
  const caps = { cniVersion: '1.0.0', name: 'vf', type: 'sriov', capabilities: { deviceID: true, CNIDeviceInfoFile: true } };
  const atts = planAttachments({
    containerId: 'cid',
    ifname: 'eth0',
    args: '',
    runtimeConfig: {},
    deviceInfoDir: '/dev-info',
    networks: [
      { ...spec('cluster'), isDefault: true },
      { ...spec('a/vf', VF, caps), deviceID: '0000:3b:02.1', selection: { name: 'vf', namespace: 'a', deviceID: 'asked-for' } },
      { ...spec('a/plain-vf', VF), deviceID: '0000:3b:02.2' },
      spec('a/other'),
    ],
  });
  const [cluster, vf, plainVf, other] = atts as [AttachmentRecord, AttachmentRecord, AttachmentRecord, AttachmentRecord];
  assert.equal(cluster.deviceInfoFile, undefined);
  // the resource's device wins over the selection element's deviceID, as in Multus
  assert.deepEqual(vf.capabilityArgs, { deviceID: '0000:3b:02.1', CNIDeviceInfoFile: '/dev-info/a-vf-cid_net1' });
  assert.equal((JSON.parse(vf.config) as { pciBusID: string }).pciBusID, '0000:3b:02.1');
  assert.deepEqual([vf.resourceName, vf.deviceID, vf.deviceInfoFile], [VF, '0000:3b:02.1', '/dev-info/a-vf-cid_net1']);
  // no capability declared: the file is still planned (the DP copy goes there) but not offered
  assert.equal(plainVf.deviceInfoFile, '/dev-info/a-plain-vf-cid_net2');
  assert.equal((JSON.parse(plainVf.config) as { deviceID: string }).deviceID, '0000:3b:02.2');
  assert.deepEqual([other.deviceInfoFile, other.deviceID, other.config], [undefined, undefined, other.config]);
  assert.equal((JSON.parse(other.config) as { deviceID?: string }).deviceID, undefined);
});

test('parseDeviceInfo: DIS 1.1 type and version required, pci needs pci-address; unknown fields kept', () => {
  const ok = { type: 'pci', version: '1.1.0', pci: { 'pci-address': '0000:3b:02.1', 'rdma-device': 'mlx5_3' }, 'org.example/x': 1 };
  assert.deepEqual(parseDeviceInfo(JSON.stringify(ok), 'f'), ok);
  assert.deepEqual(parseDeviceInfo('{"type":"vhost-user","version":"1.0.0","vhost-user":{"mode":"server","path":"/s"}}', 'f').type, 'vhost-user');
  const bad: [string, RegExp][] = [
    ['{"type":"pci",', /not JSON/],
    ['[1]', /must be a JSON object, got a list/],
    ['{"version":"1.1.0"}', /type: must be one of pci, vdpa, vhost-user, memif/],
    ['{"type":"gpu","version":"1.1.0"}', /type: must be one of/],
    ['{"type":"memif"}', /version: must be a non-empty string/],
    ['{"type":"pci","version":"1.1.0"}', /pci\.pci-address: required/],
    ['{"type":"pci","version":"1.1.0","pci":"0000:3b:02.1"}', /pci: must be an object/],
  ];
  for (const [text, msg] of bad) {
    assert.throws(() => parseDeviceInfo(text, '/x/f.json'), (err: CniError) => {
      assert.equal(err.code, 6, text);
      assert.match(err.message, /^device-info file \/x\/f\.json: /);
      assert.match(err.message, msg, text);
      return true;
    });
  }
});

test('device-info files: the DP file is copied to the CNI file, read back; absent is skipped, corrupt is a problem not a throw', (t) => {
  const dir = tempDir(t, 'plexus-devinfo-');
  const dp = join(dir, 'dp');
  mkdirSync(dp);
  const att = (id: string, ifname: string): AttachmentRecord => ({
    index: 1, network: 'a/vf', ifname, isDefault: false, config: '{}', capabilityArgs: {}, args: '', state: 'planned',
    deviceInfoFile: join(dir, 'cni', `a-vf-cid_${ifname}`), resourceName: VF, deviceID: id,
  });
  const info = { type: 'pci', version: '1.1.0', pci: { 'pci-address': '0000:3b:02.1' } };
  writeFileSync(dpDeviceInfoPath(dp, VF, '0000:3b:02.1'), JSON.stringify(info));
  writeFileSync(dpDeviceInfoPath(dp, VF, '0000:3b:02.2'), '{"type": "pci", "vers');

  const good = att('0000:3b:02.1', 'net1');
  assert.equal(copyDevicePluginInfo(dp, good), undefined);
  assert.deepEqual(JSON.parse(readFileSync(good.deviceInfoFile!, 'utf8')), info);
  assert.equal(statSync(good.deviceInfoFile!).mode & 0o777, 0o444);

  const corrupt = att('0000:3b:02.2', 'net2');
  const problem = copyDevicePluginInfo(dp, corrupt);
  assert.match(problem?.message ?? '', /intel\.com-sriov_vf-0000:3b:02\.2-device\.json: not JSON.*; not copied/);

  const absent = att('0000:3b:02.3', 'net3');
  assert.equal(copyDevicePluginInfo(dp, absent), undefined);

  // a plugin that wrote garbage to its CNIDeviceInfoFile
  const byPlugin = { ...att('0000:3b:02.4', 'net4'), resourceName: undefined, deviceID: undefined };
  writeFileSync(byPlugin.deviceInfoFile!, 'garbage');
  const read = readDeviceInfos([good, corrupt, absent, byPlugin]);
  assert.deepEqual([...read.infos.entries()].map(([a, i]) => [a.ifname, i]), [['net1', info]]);
  assert.deepEqual(read.problems.map((p) => p.attachment.ifname), ['net4']);
  assert.match(read.problems[0]!.message, /a-vf-cid_net4: not JSON/);
});

// ---- the kubelet client against a PodResources server ----

const PODS: FakePod[] = [
  { namespace: 'a', name: 'other', containers: [{ name: 'c', devices: [{ resourceName: VF, deviceIds: ['0000:3b:02.7'] }] }] },
  {
    namespace: 'a',
    name: 'web',
    containers: [
      // unsorted, and split over containers: the client sorts what the pod holds per resource
      { name: 'app', devices: [{ resourceName: VF, deviceIds: ['0000:3b:02.3', '0000:3b:02.1'] }, { resourceName: RDMA, deviceIds: ['mlx5_3'] }] },
      { name: 'sidecar', devices: [{ resourceName: VF, deviceIds: ['0000:3b:02.2'] }] },
    ],
  },
  { namespace: 'b', name: 'web', containers: [{ name: 'c', devices: [{ resourceName: VF, deviceIds: ['0000:3b:02.9'] }] }] },
];

const WEB_DEVICES = new Map([
  [VF, ['0000:3b:02.1', '0000:3b:02.2', '0000:3b:02.3']],
  [RDMA, ['mlx5_3']],
]);

test('podDevices: Get for the pod, every container\'s devices by resource, sorted', async (t) => {
  const srv = await podResourcesServer(t, PODS);
  assert.deepEqual(await podDevices(srv.socket, { namespace: 'a', name: 'web' }, 5000), WEB_DEVICES);
  assert.deepEqual(srv.calls, ['Get a/web']);
});

test('podDevices: falls back to List when Get is unimplemented (kubelet < 1.27) or disabled (1.27-1.33)', async (t) => {
  for (const get of ['unimplemented', 'disabled'] as const) {
    const srv = await podResourcesServer(t, PODS, { get });
    assert.deepEqual(await podDevices(srv.socket, { namespace: 'a', name: 'web' }, 5000), WEB_DEVICES, get);
    assert.deepEqual(srv.calls, ['Get a/web', 'List'], get);
    // List: a pod it does not list holds nothing
    assert.deepEqual(await podDevices(srv.socket, { namespace: 'c', name: 'web' }, 5000), new Map());
  }
});

test('podDevices: the kubelet not knowing the pod, no socket, a hang: CNI errors naming the socket', async (t) => {
  const srv = await podResourcesServer(t, PODS);
  await assert.rejects(podDevices(srv.socket, { namespace: 'a', name: 'gone' }, 5000), (err: CniError) => {
    assert.equal(err.code, 5);
    assert.ok(err.message.startsWith(`kubelet PodResources API at ${srv.socket}: /v1.PodResourcesLister/Get: UNKNOWN: pod gone in namespace a not found`), err.message);
    return true;
  });
  const missing = join(tempDir(t), 'kubelet.sock');
  await assert.rejects(podDevices(missing, { namespace: 'a', name: 'web' }, 5000), (err: CniError) => {
    assert.equal(err.code, 11, 'try again: the kubelet may be restarting');
    assert.match(err.message, /UNAVAILABLE: connect ENOENT .*kubelet\.sock$/);
    return true;
  });
  const hung = await podResourcesServer(t, PODS, { hang: true });
  await assert.rejects(podDevices(hung.socket, { namespace: 'a', name: 'web' }, 300), (err: CniError) => {
    assert.equal(err.code, 11);
    assert.match(err.message, /DEADLINE_EXCEEDED: no answer from .* within 300 ms/);
    return true;
  });
});
