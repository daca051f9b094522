// VM-only (bash scripts/vm/run.sh test/plugin-host-device.vm.test.ts): host-device by PCI address
// on a real PCI network function, the VM's virtio-net NIC (scripts/vm/run.sh; this host has no
// PCI NIC a test may take). End to end through the meta-plugin (dist/bin/plexus, built on the host
// before the run) with plexus's own host-device in-process: a NAD naming a device-plugin resource,
// a kubelet PodResources server saying the pod holds the NIC's PCI address, the device moved into
// the pod, reported as DIS `pci` device-info in network-status, and given back on DEL.
import { before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ip, tempDir, tryIp, uniq } from './helpers/host';
import { PLEXUS, requireBuild, REFERENCE_PLUGINS } from './helpers/plexus';
import { podResourcesServer } from './helpers/pod-resources';
import { startApiServer, type FakeApi } from './apiserver/server';
import { hostLocal, NETWORKS, networkStatus, POD_ANNOTATIONS, podArgs, putPod, TOKEN, world, type World } from './helpers/world';

/** scripts/vm/run.sh gives the VM's virtio-net function this MAC. */
const NIC_MAC = '52:54:00:a1:0c:01';
const RESOURCE = 'example.com/pci_nic';
const IN_VM = process.env.PLEXUS_IN_VM === '1';

/**
 * CNI_PATH: plexus's own host-device (a link to plexus, so the meta-plugin runs it in-process),
 * everything else the reference plugins, exec'd. The cluster network's bridge then runs in a
 * process of its own: in-process, its synchronous netlink work under TCG starved the meta-plugin's
 * concurrent NAD read (TLS handshake included) past the API's 1 s per-attempt timeout.
 */
function cniPath(t: TestContext): string {
  const bin = tempDir(t, 'plexus-vm-bin-');
  symlinkSync(PLEXUS, join(bin, 'host-device'));
  return `${bin}:${REFERENCE_PLUGINS}`;
}

interface Nic {
  name: string;
  pci: string;
}

/** The NIC in the root namespace: its netdev name and, through sysfs, its PCI address. */
function findNic(): Nic | undefined {
  for (const name of readdirSync('/sys/class/net')) {
    let mac = '';
    try {
      mac = readFileSync(`/sys/class/net/${name}/address`, 'utf8').trim();
    } catch {
      continue;
    }
    if (mac !== NIC_MAC) continue;
    // virtio-net: .../0000:00:05.0/virtio2 is the netdev's device; the PCI function is its parent
    const dev = realpathSync(`/sys/class/net/${name}/device`);
    const pci = basename(dev).startsWith('virtio') ? basename(dirname(dev)) : basename(dev);
    return { name, pci };
  }
  return undefined;
}

interface LinkJson {
  ifname: string;
  address: string;
  mtu: number;
  ifalias?: string;
  operstate: string;
  addr_info?: { local: string; prefixlen: number; family: string }[];
}

/** The NIC in the root namespace or in `ns`: `ip -j link` for the alias, `ip -j addr` for addresses. */
function linkByMac(ns?: string): LinkJson | undefined {
  const at = ns ? ['-n', ns] : [];
  const link = (JSON.parse(ip(...at, '-j', 'link', 'show')) as LinkJson[]).find((l) => l.address === NIC_MAC);
  if (!link) return undefined;
  const addrs = (JSON.parse(ip(...at, '-j', 'addr', 'show', 'dev', link.ifname)) as LinkJson[])[0]?.addr_info ?? [];
  return { ...link, addr_info: addrs };
}

/** Whatever a failed run left: the NIC back in the root namespace under its own name. */
function giveBack(t: TestContext, nic: Nic, podNs: string): void {
  t.after(() => {
    tryIp('-n', podNs, 'link', 'set', 'net1', 'netns', '1');
    const l = linkByMac();
    if (l && l.ifname !== nic.name) {
      tryIp('link', 'set', l.ifname, 'down');
      tryIp('link', 'set', l.ifname, 'name', nic.name);
    }
    tryIp('link', 'set', nic.name, 'alias', '');
  });
}

// Under TCG the guest pages executables in from the host over 9p on first touch: inside a plexus
// process that happens while its API reads run against a 1 s per-attempt timeout, and the first
// call of a boot timed out for that alone. Reading the files once puts them in the page cache.
before(() => {
  if (!IN_VM) return;
  for (const f of [PLEXUS, join(dirname(PLEXUS), 'plexus_netns.node'), join(REFERENCE_PLUGINS, 'host-local')]) {
    if (existsSync(f)) readFileSync(f);
  }
});

test('runs in the plexus test VM, which has a PCI network function', () => {
  assert.ok(IN_VM, 'run me with scripts/vm/run.sh: this host has no PCI NIC a test may move');
  const nic = findNic();
  assert.ok(nic, `no netdev with MAC ${NIC_MAC}: scripts/vm/run.sh adds a virtio-net-pci device`);
  assert.match(nic.pci, /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/, `PCI address of ${nic.name}`);
  assert.ok(existsSync(`/sys/bus/pci/devices/${nic.pci}`));
});

/**
 * The test API server without TLS. Under TCG a fresh process's TLS handshake alone can take most
 * of an API read's 1 s per-attempt timeout, and the reads then fail at random; what is tested
 * here is the device, not the API client (the host e2e suites cover it over TLS).
 */
async function plainApi(t: TestContext): Promise<FakeApi> {
  const api = await startApiServer({ tls: false, token: TOKEN });
  t.after(() => api.close());
  return api;
}

async function podWith(t: TestContext, w: World, nic: Nic, nad: string, config: object, dp?: object) {
  const podNs = uniq('pns');
  const kubelet = await podResourcesServer(t, [{ namespace: podNs, name: 'dpdk-app', containers: [{ name: 'app', devices: [{ resourceName: RESOURCE, deviceIds: [nic.pci] }] }] }]);
  const dir = tempDir(t, 'plexus-vm-devinfo-');
  if (dp) writeFileSync(join(dir, `example.com-pci_nic-${nic.pci}-device.json`), JSON.stringify(dp));
  w.api.putNad(podNs, nad, JSON.stringify({ cniVersion: '1.0.0', name: nad, type: 'host-device', ...config }), { 'k8s.v1.cni.cncf.io/resourceName': RESOURCE });
  const pod = putPod(w.api, podNs, 'dpdk-app', { [NETWORKS]: nad });
  // The runtime hands over the pod's annotations: one API read fewer, which matters under TCG,
  // where a fresh process's TLS handshake can take most of a read's 1 s.
  const conf = w.conf({
    podResourcesSocket: kubelet.socket,
    deviceInfoDir: join(dir, 'cni'),
    dpDeviceInfoDir: dir,
    runtimeConfig: { [POD_ANNOTATIONS]: { [NETWORKS]: nad } },
  });
  const id = uniq('ctr');
  const args = podArgs(pod, id);
  const env = { CNI_PATH: cniPath(t) };
  giveBack(t, nic, w.ns.name);
  t.after(() => w.run('DEL', id, args, conf, env));
  return { pod, conf, id, args, env, cniFile: join(dir, 'cni', `${podNs}-${nad}-${id}_net1`), kubelet };
}

test('host-device by PCI address: the pod\'s device moves in with its MTU and MAC, network-status has pci device-info, DEL gives it back', async (t) => {
  assert.ok(IN_VM, 'VM only');
  requireBuild();
  const nic = findNic();
  assert.ok(nic);
  const before = linkByMac();
  ip('link', 'set', nic.name, 'mtu', '1400');
  t.after(() => tryIp('link', 'set', nic.name, 'mtu', String(before?.mtu ?? 1500)));
  const w = await world(t, '10.215.0.0/24', await plainApi(t));
  const p = await podWith(t, w, nic, 'pcinet', { capabilities: { deviceID: true, CNIDeviceInfoFile: true }, ipam: hostLocal(w.ipamDir, '10.215.1.0/24') });

  const add = await w.run('ADD', p.id, p.args, p.conf, p.env);
  assert.equal(add.status, 0, add.stdout + add.stderr);
  assert.deepEqual(p.kubelet.calls, [`Get ${p.pod.namespace}/dpdk-app`]);
  assert.equal(linkByMac(), undefined, 'gone from the host');
  const inPod = linkByMac(w.ns.name);
  assert.deepEqual([inPod?.ifname, inPod?.mtu, inPod?.ifalias], ['net1', 1400, nic.name], 'in the pod as net1, MTU kept, its host name in the alias');
  assert.deepEqual(inPod?.addr_info?.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`), ['10.215.1.2/24']);
  const pci = { type: 'pci', version: '1.1.0', pci: { 'pci-address': nic.pci } };
  assert.deepEqual(JSON.parse(readFileSync(p.cniFile, 'utf8')), pci, 'host-device wrote CNIDeviceInfoFile');
  const entry = networkStatus(w.api, p.pod).find((s) => s.name === `${p.pod.namespace}/pcinet`);
  assert.deepEqual([entry?.interface, entry?.mac, entry?.['device-info']], ['net1', NIC_MAC, pci]);

  const del = await w.run('DEL', p.id, p.args, p.conf, p.env);
  assert.equal(del.status, 0, del.stdout + del.stderr);
  const back = linkByMac();
  // The kernel drops a device's addresses when it changes namespace: the pod's is gone with it.
  assert.deepEqual([back?.ifname, back?.mtu, back?.ifalias ?? '', back?.addr_info?.filter((a) => a.family === 'inet')], [nic.name, 1400, '', []]);
  assert.equal(linkByMac(w.ns.name), undefined);
  assert.equal(existsSync(p.cniFile), false, 'device-info file removed');
});

test('host-device by the injected pciBusID/deviceID alone (no capability); the device plugin\'s device-info in network-status', async (t) => {
  assert.ok(IN_VM, 'VM only');
  requireBuild();
  const nic = findNic();
  assert.ok(nic);
  const w = await world(t, '10.215.2.0/24', await plainApi(t));
  const dp = { type: 'pci', version: '1.1.0', pci: { 'pci-address': nic.pci, 'pf-pci-address': '0000:00:00.0' } };
  const p = await podWith(t, w, nic, 'pcinet2', { ipam: hostLocal(w.ipamDir, '10.215.3.0/24') }, dp);

  const add = await w.run('ADD', p.id, p.args, p.conf, p.env);
  assert.equal(add.status, 0, add.stdout + add.stderr);
  assert.equal(linkByMac(w.ns.name)?.ifname, 'net1');
  const entry = networkStatus(w.api, p.pod).find((s) => s.name === `${p.pod.namespace}/pcinet2`);
  assert.deepEqual(entry?.['device-info'], dp, "the device plugin's file, copied and read back");

  const del = await w.run('DEL', p.id, p.args, p.conf, p.env);
  assert.equal(del.status, 0, del.stdout + del.stderr);
  assert.equal(linkByMac()?.ifname, nic.name);
  assert.equal(existsSync(p.cniFile), false);
});
