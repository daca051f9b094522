// Device-plugin networks end to end: NADs naming a resource (k8s.v1.cni.cncf.io/resourceName), a
// kubelet PodResources server on a unix socket saying which devices the pod holds, the built
// binary handing one to each attachment as deviceID (config, pciBusID, runtimeConfig), device-info
// files copied, reported in network-status and removed on DEL, and the failures a user can meet.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test, type TestContext } from 'node:test';
import { restoreHostSysctlsAfter, tempDir, uniq, uplink } from './helpers/host';
import { delegateBin, named, requireBuild, requireInProcessDelegates } from './helpers/plexus';
import { podResourcesServer, type FakePod, type PodResourcesOptions } from './helpers/pod-resources';
import { EMPTY, hostLocal, NETWORKS, networkStatus, podArgs, podEvents, putPod, spied, spyPlugin, world, type PodRef, type World } from './helpers/world';

requireBuild();
requireInProcessDelegates();

// Each world puts the forwarding sysctls back after its test, but a cluster-network ADD whose
// kubelet lookup times out can finish after that: the file puts them back once more at its end.
restoreHostSysctlsAfter({ after: (fn: () => unknown) => after(async () => void (await fn())) });
const CLUSTER = '10.214.0.0/24';
const VF = 'intel.com/sriov_vf';
const RDMA = 'example.com/rdma';
const RESOURCE = 'k8s.v1.cni.cncf.io/resourceName';

interface Lab {
  w: World;
  up: string;
  podNs: string;
  devinfo: { cni: string; dp: string };
  spy: string;
  conf(extra?: object): string;
}

/** A world whose NADs are spied macvlans on one uplink, with device-info dirs of its own. */
async function lab(t: TestContext, pods: (ns: string) => FakePod[], opts: PodResourcesOptions = {}): Promise<Lab & { kubelet: Awaited<ReturnType<typeof podResourcesServer>> }> {
  const w = await world(t, CLUSTER);
  const up = uplink(t);
  const podNs = uniq('pns');
  const kubelet = await podResourcesServer(t, pods(podNs), opts);
  const dir = tempDir(t, 'plexus-devinfo-');
  const devinfo = { cni: join(dir, 'cni'), dp: join(dir, 'dp') };
  mkdirSync(devinfo.dp);
  const spy = spyPlugin(w.binDir, w.spyDir, 'spy-macvlan', 'macvlan');
  const conf = (extra: object = {}) =>
    w.conf({ podResourcesSocket: kubelet.socket, podResourcesTimeoutSeconds: 1, deviceInfoDir: devinfo.cni, dpDeviceInfoDir: devinfo.dp, ...extra });
  return { w, up, podNs, devinfo, spy, conf, kubelet };
}

let subnet = 0;
function vfNad(l: Lab, name: string, resource: string | undefined, caps: object = {}): void {
  const conf = { cniVersion: '1.0.0', name, type: l.spy, master: l.up, mode: 'bridge', ipam: hostLocal(l.w.ipamDir, `10.214.${++subnet % 200 + 10}.0/24`), ...caps };
  l.w.api.putNad(l.podNs, name, JSON.stringify(conf), resource ? { [RESOURCE]: resource } : {});
}

const holding = (name: string, devices: Record<string, string[]>) => (ns: string): FakePod[] => [
  { namespace: ns, name, containers: [{ name: 'app', devices: Object.entries(devices).map(([resourceName, deviceIds]) => ({ resourceName, deviceIds })) }] },
  // another pod on the node holding devices of the same resources
  { namespace: ns, name: `${name}-neighbour`, containers: [{ name: 'app', devices: [{ resourceName: VF, deviceIds: ['0000:3b:0f.0'] }] }] },
];

async function addPod(l: Lab, pod: PodRef, conf: string, t: TestContext) {
  const id = uniq('ctr');
  const args = podArgs(pod, id);
  t.after(() => l.w.run('DEL', id, args, conf));
  return { id, args, add: await l.w.run('ADD', id, args, conf) };
}

test(named('each network of a resource gets its own device of the pod, in config, pciBusID and runtimeConfig; DEL gets the same'), async (t) => {
  const l = await lab(t, holding('web', { [VF]: ['0000:3b:02.2', '0000:3b:02.1'], [RDMA]: ['rdma-7'] }));
  vfNad(l, 'vf-a', VF, { capabilities: { deviceID: true } });
  vfNad(l, 'vf-b', VF);
  vfNad(l, 'rdma', RDMA);
  vfNad(l, 'plain', undefined);
  const pod = putPod(l.w.api, l.podNs, 'web', { [NETWORKS]: 'vf-a,plain,rdma,vf-b' });
  const conf = l.conf();
  const { id, args, add } = await addPod(l, pod, conf, t);
  assert.equal(add.status, 0, add.stdout + add.stderr);

  const seen = (ifname: string) => {
    const req = spied(l.w.spyDir, 'ADD', ifname);
    return [req.deviceID, req.pciBusID, (req.runtimeConfig as { deviceID?: string } | undefined)?.deviceID];
  };
  // sorted per resource, taken in network order; runtimeConfig only where the capability is declared
  assert.deepEqual(seen('net1'), ['0000:3b:02.1', '0000:3b:02.1', '0000:3b:02.1']);
  assert.deepEqual(seen('net2'), [undefined, undefined, undefined]);
  assert.deepEqual(seen('net3'), ['rdma-7', 'rdma-7', undefined]);
  assert.deepEqual(seen('net4'), ['0000:3b:02.2', '0000:3b:02.2', undefined]);
  assert.deepEqual(l.kubelet.calls, [`Get ${l.podNs}/web`], 'one kubelet call for the whole pod');

  assert.equal((await l.w.run('DEL', id, args, conf)).status, 0);
  for (const [ifname, device] of [['net1', '0000:3b:02.1'], ['net4', '0000:3b:02.2']]) {
    const del = spied(l.w.spyDir, 'DEL', ifname!);
    assert.deepEqual([del.deviceID, del.pciBusID], [device, device], `DEL of ${ifname} names the device ADD had`);
  }
  assert.deepEqual(l.kubelet.calls.length, 1, 'DEL does not ask the kubelet');
  assert.deepEqual(l.w.footprint([l.up]), EMPTY);
});

test(named('device-info: the device plugin\'s file copied for the plugin, in network-status, removed on DEL; a corrupt one is a warning'), async (t) => {
  const l = await lab(t, holding('db', { [VF]: ['0000:3b:02.1', '0000:3b:02.2'] }), { get: 'disabled' });
  vfNad(l, 'vf-a', VF, { capabilities: { CNIDeviceInfoFile: true } });
  vfNad(l, 'vf-b', VF);
  const info = { type: 'pci', version: '1.1.0', pci: { 'pci-address': '0000:3b:02.1', 'pf-pci-address': '0000:3b:00.0' } };
  writeFileSync(join(l.devinfo.dp, 'intel.com-sriov_vf-0000:3b:02.1-device.json'), JSON.stringify(info));
  writeFileSync(join(l.devinfo.dp, 'intel.com-sriov_vf-0000:3b:02.2-device.json'), '{"type": "pci", "version": "1.1.0", "pci": {');
  const pod = putPod(l.w.api, l.podNs, 'db', { [NETWORKS]: 'vf-a,vf-b' });
  const conf = l.conf();
  const { id, args, add } = await addPod(l, pod, conf, t);
  assert.equal(add.status, 0, add.stdout + add.stderr);
  assert.deepEqual(l.kubelet.calls, [`Get ${l.podNs}/db`, 'List'], 'Get disabled on this kubelet: List answers');

  const file = join(l.devinfo.cni, `${l.podNs}-vf-a-${id}_net1`);
  assert.equal(spied(l.w.spyDir, 'ADD', 'net1').runtimeConfig && (spied(l.w.spyDir, 'ADD', 'net1').runtimeConfig as { CNIDeviceInfoFile?: string }).CNIDeviceInfoFile, file);
  assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), info);
  const status = networkStatus(l.w.api, pod);
  assert.deepEqual(status.map((s) => [s.name, s['device-info']]), [
    ['cluster', undefined],
    [`${l.podNs}/vf-a`, info],
    [`${l.podNs}/vf-b`, undefined],
  ]);
  const warnings = podEvents(l.w.api, pod).filter((e) => e.reason === 'InvalidDeviceInfo');
  assert.equal(warnings.length, 1);
  assert.match(String(warnings[0]!.message), /^network .*\/vf-b \(net2\): device-info left out of network-status: device-info file .*intel\.com-sriov_vf-0000:3b:02\.2-device\.json: not JSON/);
  assert.deepEqual(readdirSync(l.devinfo.cni), [`${l.podNs}-vf-a-${id}_net1`], 'nothing copied for the corrupt file');

  assert.equal((await l.w.run('DEL', id, args, conf)).status, 0);
  assert.deepEqual(readdirSync(l.devinfo.cni), []);
  assert.equal(existsSync(join(l.devinfo.dp, 'intel.com-sriov_vf-0000:3b:02.1-device.json')), true, "the device plugin's file is its own");
  assert.deepEqual(l.w.footprint([l.up]), EMPTY);
});

test(named('device-info written by the plugin itself is reported, and a plugin writing garbage only costs the entry'), async (t) => {
  const l = await lab(t, holding('cache', {}));
  // A plugin that writes its own CNIDeviceInfoFile (as a vhost-user or SR-IOV plugin does), then
  // is the real macvlan. $1 is what it writes.
  const writer = (name: string, content: string) => {
    const path = join(l.w.binDir, name);
    writeFileSync(
      path,
      `#!/bin/sh\nin=$(cat)\nf=$(printf '%s' "$in" | sed -n 's/.*"CNIDeviceInfoFile":"\\([^"]*\\)".*/\\1/p')\n` +
        `[ "$CNI_COMMAND" = ADD ] && [ -n "$f" ] && mkdir -p "$(dirname "$f")" && printf '%s' '${content}' > "$f"\n` +
        `printf '%s' "$in" | exec ${delegateBin('macvlan')}\n`,
    );
    chmodSync(path, 0o755);
    return name;
  };
  const vhost = { type: 'vhost-user', version: '1.1.0', 'vhost-user': { mode: 'server', path: '/var/run/vhost/sock0' } };
  for (const [name, type] of [['vhost', writer('vhost-writer', JSON.stringify(vhost))], ['junk', writer('junk-writer', '[1, 2')]]) {
    const conf = { cniVersion: '1.0.0', name, type, master: l.up, mode: 'bridge', capabilities: { CNIDeviceInfoFile: true }, ipam: hostLocal(l.w.ipamDir, `10.214.${++subnet % 200 + 10}.0/24`) };
    l.w.api.putNad(l.podNs, name!, JSON.stringify(conf));
  }
  const pod = putPod(l.w.api, l.podNs, 'cache', { [NETWORKS]: 'vhost,junk' });
  const conf = l.conf();
  const { id, args, add } = await addPod(l, pod, conf, t);
  assert.equal(add.status, 0, add.stdout + add.stderr);
  assert.deepEqual(networkStatus(l.w.api, pod).map((s) => s['device-info']), [undefined, vhost, undefined]);
  assert.deepEqual(podEvents(l.w.api, pod).filter((e) => e.reason === 'InvalidDeviceInfo').map((e) => String(e.message).replace(/:.*/, '')), [`network ${l.podNs}/junk (net2)`]);
  assert.deepEqual(l.kubelet.calls, [], 'no resource named: the kubelet is not asked');
  assert.equal((await l.w.run('DEL', id, args, conf)).status, 0);
  assert.deepEqual(existsSync(l.devinfo.cni) ? readdirSync(l.devinfo.cni) : [], []);
  assert.deepEqual(l.w.footprint([l.up]), EMPTY);
});

test(named('a pod holding no device of the resource, or a kubelet that does not answer: a clear error, nothing left'), async (t) => {
  const l = await lab(t, holding('lonely', { [RDMA]: ['rdma-1'] }));
  vfNad(l, 'vf-a', VF);
  const pod = putPod(l.w.api, l.podNs, 'lonely', { [NETWORKS]: 'vf-a' });
  const { add } = await addPod(l, pod, l.conf(), t);
  assert.equal(add.status, 1);
  const err = add.json();
  assert.equal(err.code, 7);
  assert.match(String(err.msg), new RegExp(`^network ${l.podNs}/vf-a: .*resource "intel\\.com/sriov_vf" .*pod ${l.podNs}/lonely holds no device of it`));
  assert.deepEqual(l.w.footprint([l.up]), EMPTY, 'the cluster network attached first is rolled back');

  const hung = await lab(t, holding('slow', { [VF]: ['0000:3b:02.1'] }), { hang: true });
  vfNad(hung, 'vf-a', VF);
  const slowPod = putPod(hung.w.api, hung.podNs, 'slow', { [NETWORKS]: 'vf-a' });
  const slow = await addPod(hung, slowPod, hung.conf(), t);
  assert.equal(slow.add.status, 1);
  const e = slow.add.json();
  assert.equal(e.code, 11, 'try again later');
  assert.match(String(e.msg), new RegExp(`^network ${hung.podNs}/vf-a \\(resource "intel\\.com/sriov_vf"\\): cannot learn the pod's devices: kubelet PodResources API at .*: /v1.PodResourcesLister/Get: DEADLINE_EXCEEDED: no answer .* within \\d+ ms`));
  assert.deepEqual(hung.w.footprint([hung.up]), EMPTY);
});

test(named('the gRPC client is loaded only for a pod whose networks name a resource'), async (t) => {
  const l = await lab(t, holding('sriov', { [VF]: ['0000:3b:02.1'] }));
  vfNad(l, 'vf-a', VF);
  vfNad(l, 'plain', undefined);
  // Which of node's modules the meta-plugin process loaded, reported at its exit.
  const dir = tempDir(t, 'plexus-probe-');
  const probe = join(dir, 'probe.cjs');
  writeFileSync(
    probe,
    `process.on('exit', () => require('fs').writeFileSync(process.env.PLEXUS_PROBE_OUT + '-' + process.pid, JSON.stringify(process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice(13)))));\n`,
  );
  const loaded = async (podName: string, networks: string): Promise<boolean> => {
    const pod = putPod(l.w.api, l.podNs, podName, { [NETWORKS]: networks });
    const out = join(dir, podName);
    const env = { NODE_OPTIONS: `--require=${probe}`, PLEXUS_PROBE_OUT: out };
    const id = uniq('ctr');
    const args = podArgs(pod, id);
    t.after(() => l.w.run('DEL', id, args, l.conf()));
    const add = await l.w.run('ADD', id, args, l.conf(), env);
    assert.equal(add.status, 0, add.stdout + add.stderr);
    assert.equal((await l.w.run('DEL', id, args, l.conf())).status, 0);
    // one report per process of this pod's ADD and DEL (an exec'd plexus delegate writes its own)
    const reports = readdirSync(dir).filter((f) => f.startsWith(`${podName}-`)).map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as string[]);
    assert.ok(reports.length > 0);
    return reports.some((mods) => mods.includes('http2'));
  };
  assert.equal(await loaded('ordinary', 'plain'), false, 'an ordinary pod pays nothing for gRPC');
  assert.equal(await loaded('sriov', 'vf-a'), true, 'the probe sees the client when it is used');
});
