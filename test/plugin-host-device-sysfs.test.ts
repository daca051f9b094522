// host-device's PCI, auxiliary-bus and kernelpath lookups, and DPDK detection, against fake sysfs
// trees in temp dirs (no machine running the tests has SR-IOV VFs or sub-functions). The plugin's
// verbs run in-process with the fake sysfs root; the netdev the fake tree names is a real veth on
// this host, so the move, the rename and the return are real.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { CniEnv, Verb } from '../src/cni/env';
import { CniError } from '../src/cni/errors';
import { cmdAdd, cmdCheck, cmdDel, loadConf } from '../plugins/host-device/host-device';
import { busNetdevs, hasDpdkDriver, kernelPathNetdevs, resolveDeviceId, USERSPACE_DRIVERS } from '../plugins/host-device/sysfs';
import { ip, netns, tempDir, tryIp, uniq } from './helpers/host';
import { reservedIps } from './helpers/ipam';

const PCI = '0000:3b:02.1';
const AUX = 'mlx5_core.sf.4';

/** A sysfs tree: bus/pci/devices/<PCI> bound to `driver`, and bus/auxiliary/devices/<AUX>. */
function fakeSys(t: TestContext, o: { driver?: string | null; pciNet?: string[]; virtioNet?: string[]; auxNet?: string[] } = {}): string {
  const sys = tempDir(t, 'plexus-sysfs-');
  const pci = join(sys, 'bus', 'pci', 'devices', PCI);
  mkdirSync(pci, { recursive: true });
  if (o.driver !== null) symlinkSync(`../../../bus/pci/drivers/${o.driver ?? 'iavf'}`, join(pci, 'driver'));
  for (const n of o.pciNet ?? []) mkdirSync(join(pci, 'net', n), { recursive: true });
  for (const n of o.virtioNet ?? []) mkdirSync(join(pci, 'virtio7', 'net', n), { recursive: true });
  const aux = join(sys, 'bus', 'auxiliary', 'devices', AUX);
  mkdirSync(aux, { recursive: true });
  for (const n of o.auxNet ?? []) mkdirSync(join(aux, 'net', n), { recursive: true });
  return sys;
}

function code(fn: () => unknown): number | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof CniError ? err.code : -1;
  }
  return undefined;
}

test('runtimeConfig.deviceID resolves to the PCI bus first, then the auxiliary bus', (t) => {
  const sys = fakeSys(t);
  assert.deepEqual(resolveDeviceId(sys, PCI), { bus: 'pci', id: PCI });
  assert.deepEqual(resolveDeviceId(sys, AUX), { bus: 'auxiliary', id: AUX });
  assert.throws(() => resolveDeviceId(sys, '0000:00:00.7'), /runtime config DeviceID 0000:00:00.7 not found or unsupported/);
  assert.equal(code(() => resolveDeviceId(sys, '0000:00:00.7')), 999);
  assert.equal(code(() => resolveDeviceId(sys, '../../../etc')), 7);
});

test('DPDK: vfio-pci, uio_pci_generic and igb_uio are userspace drivers; kernel drivers are not; no driver is an error', (t) => {
  for (const driver of USERSPACE_DRIVERS) assert.equal(hasDpdkDriver(fakeSys(t, { driver }), PCI), true, driver);
  for (const driver of ['iavf', 'mlx5_core', 'virtio-pci']) assert.equal(hasDpdkDriver(fakeSys(t, { driver }), PCI), false, driver);
  assert.throws(() => hasDpdkDriver(fakeSys(t, { driver: null }), PCI), /no driver bound/);
  assert.throws(() => hasDpdkDriver(fakeSys(t), '0000:00:00.7'), /no PCI device/);
});

test('netdevs of a bus device: net/ sorted, virtio*/net/ for virtio-net, the auxiliary bus, none', (t) => {
  assert.deepEqual(busNetdevs(fakeSys(t, { pciNet: ['ens2f1v1', 'ens2f1v0'] }), { bus: 'pci', id: PCI }), ['ens2f1v0', 'ens2f1v1']);
  assert.deepEqual(busNetdevs(fakeSys(t, { virtioNet: ['eth3'] }), { bus: 'pci', id: PCI }), ['eth3']);
  assert.deepEqual(busNetdevs(fakeSys(t, { auxNet: ['enp59s0f1s4'] }), { bus: 'auxiliary', id: AUX }), ['enp59s0f1s4']);
  assert.throws(() => busNetdevs(fakeSys(t), { bus: 'pci', id: PCI }), /no net directory under pci device 0000:3b:02.1/);
});

test('kernelpath: absolute under /sys/devices, the device with net/ or the netdev folder itself', (t) => {
  const sys = tempDir(t, 'plexus-sysfs-');
  mkdirSync(join(sys, 'devices', 'pci0000:00', PCI, 'net', 'eth1'), { recursive: true });
  writeFileSync(join(sys, 'devices', 'pci0000:00', PCI, 'net', 'eth1', 'ifindex'), '7\n');
  assert.deepEqual(kernelPathNetdevs(sys, `/sys/devices/pci0000:00/${PCI}`), ['eth1']);
  assert.deepEqual(kernelPathNetdevs(sys, `/sys/devices/pci0000:00/${PCI}/net/eth1`), ['eth1']);
  assert.throws(() => kernelPathNetdevs(sys, `sys/devices/pci0000:00/${PCI}`), /must be absolute and begin with \/sys\/devices\//);
  assert.throws(() => kernelPathNetdevs(sys, '/sys/devices/../../etc'), /must be absolute/);
  assert.throws(() => kernelPathNetdevs(sys, '/sys/devices/pci0000:00'), /failed to find network devices/);
});

test('loadConf: exactly one selector; deviceID overrides pciBusID but not another selector', () => {
  const c = (extra: object): string => JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'host-device', ...extra });
  assert.deepEqual(loadConf(c({ device: 'eth1' })).selector, { by: 'device', name: 'eth1' });
  assert.deepEqual(loadConf(c({ pciBusID: PCI, runtimeConfig: { deviceID: AUX } })).selector, { by: 'deviceID', id: AUX });
  assert.equal(code(() => loadConf(c({}))), 999);
  assert.equal(code(() => loadConf(c({ device: 'eth1', kernelpath: '/sys/devices/x' }))), 7);
  assert.equal(code(() => loadConf(c({ device: 'eth1', runtimeConfig: { deviceID: PCI } }))), 7);
  assert.equal(code(() => loadConf(c({ pciBusID: '../../x' }))), 7);
  assert.equal(code(() => loadConf(c({ device: 7 }))), 7);
});

test('loadConf: the config\'s own deviceID (as Multus and plexus inject it, with pciBusID) selects the device', () => {
  const c = (extra: object): string => JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'host-device', ...extra });
  assert.deepEqual(loadConf(c({ deviceID: PCI, pciBusID: PCI })).selector, { by: 'deviceID', id: PCI });
  assert.deepEqual(loadConf(c({ deviceID: AUX })).selector, { by: 'deviceID', id: AUX });
  // runtimeConfig.deviceID wins over the config's, as it wins over pciBusID
  assert.deepEqual(loadConf(c({ deviceID: PCI, pciBusID: PCI, runtimeConfig: { deviceID: AUX } })).selector, { by: 'deviceID', id: AUX });
  // two different devices in the config itself: nothing says which one is meant
  assert.throws(() => loadConf(c({ deviceID: PCI, pciBusID: '0000:3b:02.2' })), /deviceID "0000:3b:02.1" conflicts with pciBusID/);
  assert.equal(code(() => loadConf(c({ deviceID: PCI, device: 'eth1' }))), 7);
  assert.equal(code(() => loadConf(c({ deviceID: '../x' }))), 7);
  assert.equal(code(() => loadConf(c({ pciBusID: PCI, runtimeConfig: { CNIDeviceInfoFile: 'relative/file' } }))), 7);
});

// --- the verbs, in-process, with a fake sysfs naming a real veth on this host ---------------------

interface Lab {
  dev: string;
  ifname: string;
  ct: { name: string; path: string };
  env: (command: Verb, netnsPath?: string) => CniEnv;
  dataDir: string;
}

function lab(t: TestContext): Lab {
  const dev = uniq('hdp');
  // A unique ifname too: the host-side cleanup may delete a link under it, never someone else's.
  const ifname = uniq('hdi');
  ip('link', 'add', dev, 'type', 'veth', 'peer', 'name', uniq('hdq'));
  for (const n of [dev, ifname]) t.after(() => tryIp('link', 'del', n));
  const ct = netns(t, 'hdc');
  const dataDir = join(tempDir(t, 'plexus-hd-ipam-'), 'ipam');
  const env = (command: Verb, netnsPath = ct.path): CniEnv => ({ command, containerId: 'ctr-sysfs', netns: netnsPath, ifname, args: '', path: ['/usr/lib/cni'] });
  return { dev, ifname, ct, env, dataDir };
}

const conf = (l: Lab, extra: object): string =>
  JSON.stringify({ cniVersion: '1.0.0', name: 'sriov-net', type: 'host-device', ipam: { type: 'host-local', dataDir: l.dataDir, ranges: [[{ subnet: '10.233.0.0/24' }]] }, ...extra });

function hostLink(name: string): { ifname: string; ifalias?: string; address?: string } | undefined {
  return (JSON.parse(ip('-j', 'link', 'show')) as { ifname: string; ifalias?: string; address?: string }[]).find((x) => x.ifname === name);
}

test('pciBusID and deviceID (PCI with virtio layout, auxiliary): ADD moves the netdev sysfs names, CHECK, DEL returns it', async (t) => {
  const l = lab(t);
  const mac = hostLink(l.dev)?.address;
  const cases: [string, string, object][] = [
    ['pciBusID', fakeSys(t, { pciNet: [l.dev] }), { pciBusID: PCI }],
    ['deviceID on the PCI bus, virtio-net layout', fakeSys(t, { virtioNet: [l.dev], driver: 'virtio-pci' }), { runtimeConfig: { deviceID: PCI } }],
    ['deviceID on the auxiliary bus', fakeSys(t, { auxNet: [l.dev] }), { runtimeConfig: { deviceID: AUX } }],
  ];
  for (const [what, sys, selector] of cases) {
    const stdin = conf(l, selector);
    const result = JSON.parse(await cmdAdd(l.env('ADD'), stdin, sys)) as { interfaces: object[]; ips: { address: string }[] };
    assert.deepEqual(result.interfaces, [{ name: l.ifname, mac, sandbox: l.ct.path }], what);
    assert.equal(hostLink(l.dev), undefined, what);
    const moved = (JSON.parse(ip('-n', l.ct.name, '-j', 'link', 'show', l.ifname)) as { ifalias?: string }[])[0];
    assert.equal(moved?.ifalias, l.dev, what);
    await cmdCheck(l.env('CHECK'), JSON.stringify({ ...(JSON.parse(stdin) as object), prevResult: result }), sys);
    await cmdDel(l.env('DEL'), stdin, sys);
    assert.equal(hostLink(l.dev)?.address, mac, what);
    assert.deepEqual(reservedIps(l.dataDir, 'sriov-net'), [], what);
  }
});

test('device-info: a PCI function handed over is reported in CNIDeviceInfoFile (DIS pci), a device plugin\'s file kept, removed on DEL', async (t) => {
  const l = lab(t);
  const dir = tempDir(t, 'plexus-hd-devinfo-');
  const file = join(dir, 'cni', 'ns-net-ctr_net1');
  const cases: [string, string, object, object | undefined][] = [
    ['pciBusID', fakeSys(t, { pciNet: [l.dev] }), { pciBusID: PCI }, { type: 'pci', version: '1.1.0', pci: { 'pci-address': PCI } }],
    ['deviceID in the config', fakeSys(t, { pciNet: [l.dev] }), { deviceID: PCI, pciBusID: PCI }, { type: 'pci', version: '1.1.0', pci: { 'pci-address': PCI } }],
    ['DPDK-bound, no netdev', fakeSys(t, { driver: 'vfio-pci', pciNet: [l.dev] }), { pciBusID: PCI }, { type: 'pci', version: '1.1.0', pci: { 'pci-address': PCI } }],
    // an auxiliary device has no PCI address of its own to report
    ['auxiliary', fakeSys(t, { auxNet: [l.dev] }), { runtimeConfig: { deviceID: AUX } }, undefined],
  ];
  for (const [what, sys, selector, want] of cases) {
    const sel = selector as { runtimeConfig?: object };
    const stdin = conf(l, { ...selector, runtimeConfig: { ...sel.runtimeConfig, CNIDeviceInfoFile: file } });
    await cmdAdd(l.env('ADD'), stdin, sys);
    assert.deepEqual(existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : undefined, want, what);
    await cmdDel(l.env('DEL'), stdin, sys);
    assert.equal(existsSync(file), false, `${what}: removed on DEL`);
  }
  // a file already there (copied from the device plugin) knows more: left as it is
  const dp = { type: 'pci', version: '1.1.0', pci: { 'pci-address': PCI, 'rdma-device': 'mlx5_3' } };
  mkdirSync(join(dir, 'cni'), { recursive: true });
  writeFileSync(file, JSON.stringify(dp));
  const sys = fakeSys(t, { pciNet: [l.dev] });
  const stdin = conf(l, { pciBusID: PCI, runtimeConfig: { CNIDeviceInfoFile: file } });
  await cmdAdd(l.env('ADD'), stdin, sys);
  assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), dp);
  await cmdDel(l.env('DEL'), stdin, sys);
  assert.equal(hostLink(l.dev)?.ifname, l.dev);
});

test('DPDK-bound function: nothing is moved, IPAM only (addresses for the application), DEL releases them', async (t) => {
  const l = lab(t);
  const sys = fakeSys(t, { driver: 'vfio-pci', pciNet: [l.dev] });
  const stdin = conf(l, { pciBusID: PCI });
  const result = JSON.parse(await cmdAdd(l.env('ADD'), stdin, sys)) as Record<string, unknown>;
  assert.equal(result.interfaces, undefined);
  assert.deepEqual(result.ips, [{ address: '10.233.0.2/24', gateway: '10.233.0.1' }]);
  assert.notEqual(hostLink(l.dev), undefined, 'the netdev the tree lists is left alone');
  await cmdCheck(l.env('CHECK'), JSON.stringify({ ...(JSON.parse(stdin) as object), prevResult: result }), sys);
  await cmdDel(l.env('DEL'), stdin, sys);
  assert.deepEqual(reservedIps(l.dataDir, 'sriov-net'), []);
  assert.notEqual(hostLink(l.dev), undefined);
});

test('netns gone, a PCI device handed back under its container name: found through sysfs and renamed back', async (t) => {
  const l = lab(t);
  const sys = fakeSys(t, { pciNet: [l.dev] });
  const stdin = conf(l, { pciBusID: PCI });
  await cmdAdd(l.env('ADD'), stdin, sys);
  // What the kernel does when the namespace dies, and what sysfs then lists under the function.
  ip('-n', l.ct.name, 'link', 'set', l.ifname, 'netns', '1');
  ip('netns', 'del', l.ct.name);
  renameSync(join(sys, 'bus', 'pci', 'devices', PCI, 'net', l.dev), join(sys, 'bus', 'pci', 'devices', PCI, 'net', l.ifname));
  await cmdDel(l.env('DEL'), stdin, sys);
  assert.deepEqual([hostLink(l.dev)?.ifname, hostLink(l.dev)?.ifalias, hostLink(l.ifname)], [l.dev, undefined, undefined]);
  assert.deepEqual(reservedIps(l.dataDir, 'sriov-net'), []);
  // Repeated: nothing left to do, and it says so by succeeding.
  await cmdDel(l.env('DEL'), stdin, sys);
  assert.equal(hostLink(l.dev)?.ifname, l.dev);
});
