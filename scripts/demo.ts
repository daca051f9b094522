// `make demo`: one pod attached to three networks by plexus, the way a node runs it, with plexus's
// own plugins as the delegates.
//
// The demo plays the cluster (a test Kubernetes API server in this process), the operator (it
// creates NetworkAttachmentDefinitions and a pod) and containerd (it runs dist/bin/plexus with
// CNI_* and the config on stdin for ADD, CHECK and DEL). It then shows the node is clean, and
// removes everything it created, also when a step fails or on Ctrl-C.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startApiServer, type FakeApi } from '../test/apiserver/server';
import { filesMentioning, hostLinkNames, hostNames, ip, ipDetached, linkExists, netnsNames, podInterfaces, reservations, tryIp } from './demo/host';
import { Kube, type Obj } from './demo/kube';
import { bad, block, bold, heading, ok, prettyJson, say, since, table } from './demo/print';
import { describeFailure, runPlexus, stopRunning, type CniCall } from './demo/plugin';

const ROOT = resolve(__dirname, '..');
const PLEXUS = join(ROOT, 'dist', 'bin', 'plexus');
// The delegates are found the way containerd finds them (CNI_PATH), on a node where plexus is
// installed: its own macvlan and bridge and their IPAM, host-local and static (links to
// dist/bin/plexus, run in-process). PLEXUS_DEMO_DELEGATES=reference uses only Debian's
// containernetworking-plugins.
const OUR_PLUGINS = join(ROOT, 'dist', 'bin');
const REFERENCE_PLUGINS = '/usr/lib/cni';
const REFERENCE_ONLY = process.env.PLEXUS_DEMO_DELEGATES === 'reference';
const BIN_DIR = REFERENCE_ONLY ? REFERENCE_PLUGINS : OUR_PLUGINS;
const PLUGIN_PATH = REFERENCE_ONLY ? REFERENCE_PLUGINS : `${OUR_PLUGINS}:${REFERENCE_PLUGINS}`;
const NETWORKS_ANNOTATION = 'k8s.v1.cni.cncf.io/networks';
const STATUS_ANNOTATION = 'k8s.v1.cni.cncf.io/network-status';
const POD_NS = 'demo';
const POD_NAME = 'web';
const STORAGE_IP = '10.77.0.10/24';

// Every name carries this run's pid: runs never clash with each other or with a test's links
// (tests use pxt/pxu/pxb), and a run killed with SIGKILL can be recognised and swept next time.
const RUN = process.pid.toString(36);
const PREFIX = `pxdemo${RUN}`;
const NAMES = {
  netns: `${PREFIX}-pod`,
  uplink: `${PREFIX}u`,
  uplinkPeer: `${PREFIX}p`,
  clusterBridge: `${PREFIX}c`,
  storageBridge: `${PREFIX}s`,
};
const STALE_LINK = /^pxdemo([0-9a-z]+)[upcs]$/;
const STALE_NETNS = /^pxdemo([0-9a-z]+)-pod$/;
const STALE_DIR = /^pxdemo([0-9a-z]+)-[A-Za-z0-9]{6}$/; // mkdtemp's six random characters

class DemoError extends Error {}

// ---- clean-up: everything created is registered here the moment it exists -------------------

interface Undo {
  what: string;
  /** Returns what it did, or undefined when there was nothing left to do. */
  run: () => string | undefined | Promise<string | undefined>;
}
const undo: Undo[] = [];
let interrupted: NodeJS.Signals | undefined;
let cleaningUp = false;

function onSignal(sig: NodeJS.Signals): void {
  // A second Ctrl-C during clean-up must not cut it short and leave links behind.
  if (cleaningUp || interrupted) {
    process.stderr.write(`\n(${sig}: ${cleaningUp ? 'still cleaning up' : 'already stopping, cleaning up next'}, one moment)\n`);
    return;
  }
  interrupted = sig;
  process.stderr.write(`\n(${sig}: stopping, then cleaning up)\n`);
  stopRunning();
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, onSignal);

/** Called between steps, so an interrupt stops the story at the next step boundary. */
function checkInterrupted(): void {
  if (interrupted) throw new DemoError(`interrupted by ${interrupted}`);
}

async function cleanup(): Promise<boolean> {
  cleaningUp = true;
  heading('Clean up everything the demo created');
  let clean = true;
  for (const u of undo.reverse()) {
    try {
      const did = await u.run();
      if (did) ok(did);
    } catch (err) {
      clean = false;
      bad(`${u.what}: ${(err as Error).message}`);
    }
  }
  const ours = new Set<string>(Object.values(NAMES));
  const host = await hostNames();
  const leftLinks = host.links.filter((n) => ours.has(n));
  const leftNetns = host.netns.filter((n) => ours.has(n));
  if (leftLinks.length || leftNetns.length) {
    clean = false;
    bad(`left behind: ${[...leftLinks, ...leftNetns.map((n) => `netns ${n}`)].join(', ')}`);
  } else {
    ok(`nothing left on the host: no ${PREFIX}* link or network namespace`);
  }
  return clean;
}

// ---- leftovers of a run that was killed with SIGKILL (no handler could run) ----------------

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pid a leftover name encodes, when that process is gone (else undefined: leave it). */
function deadOwner(re: RegExp, name: string): number | undefined {
  const m = re.exec(name);
  if (!m?.[1]) return undefined;
  const pid = parseInt(m[1], 36);
  return pid !== process.pid && !alive(pid) ? pid : undefined;
}

function sweepStale(): void {
  const swept: string[] = [];
  for (const n of netnsNames()) if (deadOwner(STALE_NETNS, n) !== undefined && tryIp('netns', 'del', n)) swept.push(`netns ${n}`);
  for (const n of hostLinkNames()) if (deadOwner(STALE_LINK, n) !== undefined && tryIp('link', 'del', n)) swept.push(`link ${n}`);
  for (const d of readdirSync(tmpdir())) {
    if (deadOwner(STALE_DIR, d) === undefined) continue;
    rmSync(join(tmpdir(), d), { recursive: true, force: true });
    swept.push(join(tmpdir(), d));
  }
  if (swept.length) say(`removed leftovers of an earlier demo that was killed: ${swept.join(', ')}`);
}

// ---- the story -----------------------------------------------------------------------------

function preflight(): void {
  if (process.getuid?.() !== 0) throw new DemoError('the demo creates network namespaces and links: run it as root');
  if (!existsSync(PLEXUS)) throw new DemoError(`${PLEXUS} is missing: run make build`);
  const needed = ['bridge', 'macvlan', 'host-local', 'static'];
  if (REFERENCE_ONLY) {
    for (const p of needed) {
      if (!existsSync(join(REFERENCE_PLUGINS, p))) throw new DemoError(`${join(REFERENCE_PLUGINS, p)} is missing: install containernetworking-plugins (make deps)`);
    }
  } else {
    for (const p of needed) if (!existsSync(join(OUR_PLUGINS, p))) throw new DemoError(`${join(OUR_PLUGINS, p)} is missing: run make build`);
  }
}

/** One CNI call; a failure throws with the plugin's CNI error and its stderr (the plexus log). */
async function cni(call: CniCall): Promise<string> {
  const start = process.hrtime.bigint();
  const out = await runPlexus(PLEXUS, call);
  checkInterrupted();
  if (out.status !== 0) {
    const log = out.stderr.trim() ? `\nplexus stderr:\n${out.stderr.trim()}` : '';
    throw new DemoError(`${call.command} failed: ${describeFailure(out)}${log}`);
  }
  say(`plexus ${call.command} answered in ${since(start)}`);
  return out.stdout;
}

interface StatusEntry {
  name?: string;
  interface?: string;
  ips?: string[];
  mac?: string;
  default?: boolean;
}

async function story(): Promise<void> {
  // 1. The cluster.
  heading('Start a Kubernetes API server (the test stand-in: TLS and a bearer token)');
  const token = randomBytes(16).toString('hex');
  // plexus's token is held to deploy/'s ClusterRole; the demo creates objects as an admin would.
  const adminToken = randomBytes(16).toString('hex');
  const api: FakeApi = await startApiServer({ tls: true, token, adminToken });
  undo.push({ what: 'stop the API server', run: async () => (await api.close(), `stopped the API server at ${api.url}`) });
  const kube = new Kube(api.url, api.caPem ?? '', adminToken);
  say(`listening on ${api.url}`);
  checkInterrupted();

  // 2. The node: a temp root laid out like a real node's directories.
  heading('Prepare the node: pod network namespace, uplink, kubeconfig, plexus config');
  const root = mkdtempSync(join(tmpdir(), `${PREFIX}-`));
  undo.push({ what: 'remove the temp dir', run: () => (rmSync(root, { recursive: true, force: true }), `removed ${root}`) });
  const dirs = {
    netd: join(root, 'etc/cni/net.d'), // the runtime's config dir
    confDir: join(root, 'etc/cni/multus/net.d'), // plexus looks up named networks here
    cniDir: join(root, 'var/lib/cni/multus'), // plexus's journal and libcni's result cache
    ipamDir: join(root, 'var/lib/cni/networks'), // host-local's reservations
    logDir: join(root, 'var/log'), // plexus's logFile
  };
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true, mode: 0o700 });

  // Each undo is registered before its object is made: if `ip` is killed half-way (Ctrl-C), the
  // object may exist although the call failed; deleting what is not there is a quiet no-op.
  undo.push({ what: 'delete the pod netns', run: async () => ((await ipDetached('netns', 'del', NAMES.netns)).ok ? `deleted netns ${NAMES.netns}` : undefined) });
  ip('netns', 'add', NAMES.netns);
  const netnsPath = `/var/run/netns/${NAMES.netns}`;
  say(`pod network namespace   ${netnsPath}`);

  // macvlan needs a parent device; a veth pair stands in for the node's NIC. Both ends up, so
  // the macvlan child has carrier and shows as up.
  undo.push({ what: 'delete the uplink', run: async () => ((await ipDetached('link', 'del', NAMES.uplink)).ok ? `deleted uplink veth ${NAMES.uplink} (and its peer)` : undefined) });
  ip('link', 'add', NAMES.uplink, 'type', 'veth', 'peer', 'name', NAMES.uplinkPeer);
  ip('link', 'set', NAMES.uplink, 'up');
  ip('link', 'set', NAMES.uplinkPeer, 'up');
  say(`uplink (macvlan parent) ${NAMES.uplink}, a veth pair standing in for a NIC`);

  // The bridge plugin creates both bridges at ADD and, like on a real node, never deletes them.
  for (const br of [NAMES.clusterBridge, NAMES.storageBridge]) {
    undo.push({ what: `delete bridge ${br}`, run: async () => ((await ipDetached('link', 'del', br)).ok ? `deleted bridge ${br}` : undefined) });
  }
  // isGateway makes the bridge plugin turn on IPv4 forwarding: put the host back as it was.
  const forwardFile = '/proc/sys/net/ipv4/ip_forward';
  const forwardBefore = readFileSync(forwardFile, 'utf8').trim();
  undo.push({
    what: 'restore net.ipv4.ip_forward',
    run: () => {
      if (readFileSync(forwardFile, 'utf8').trim() === forwardBefore) return undefined;
      writeFileSync(forwardFile, forwardBefore);
      return `restored net.ipv4.ip_forward=${forwardBefore}`;
    },
  });

  const kubeconfig = join(root, 'etc/cni/net.d/plexus.d/plexus.kubeconfig');
  api.writeKubeconfig(kubeconfig, { ca: 'data' });
  say(`kubeconfig              ${kubeconfig} (server, CA, token)`);

  const clusterNetwork = {
    cniVersion: '1.0.0',
    name: 'cluster',
    type: 'bridge',
    bridge: NAMES.clusterBridge,
    isGateway: true,
    ipam: { type: 'host-local', dataDir: dirs.ipamDir, ranges: [[{ subnet: '10.76.0.0/24' }]], routes: [{ dst: '0.0.0.0/0' }] },
  };
  const logFile = join(dirs.logDir, 'plexus.log');
  const plexusConf = {
    cniVersion: '1.1.0',
    name: 'plexus-demo',
    type: 'plexus',
    kubeconfig,
    confDir: dirs.confDir,
    cniDir: dirs.cniDir,
    binDir: BIN_DIR,
    // Debug lines in a file of the demo's, so it can show how each delegate ran.
    logLevel: 'debug',
    logFile: logFile,
    delegates: [clusterNetwork],
  };
  const confText = prettyJson(plexusConf);
  const confFile = join(dirs.netd, '00-plexus.conf');
  writeFileSync(confFile, confText + '\n');
  say(`plexus config           ${confFile}:`);
  block(confText);
  checkInterrupted();

  // 3. The networks a pod can ask for.
  heading('Create the NetworkAttachmentDefinitions (what kubectl apply would do)');
  const nads = {
    'macvlan-net': {
      cniVersion: '1.0.0',
      name: 'macvlan-net',
      type: 'macvlan',
      master: NAMES.uplink,
      mode: 'bridge',
      ipam: { type: 'host-local', dataDir: dirs.ipamDir, ranges: [[{ subnet: '10.78.0.0/24' }]] },
    },
    'storage-net': {
      cniVersion: '1.0.0',
      name: 'storage-net',
      type: 'bridge',
      bridge: NAMES.storageBridge,
      // Without this declaration a pod's "ips" request must be refused (NPWG): the plugin
      // receives the address as runtimeConfig.ips, and static IPAM assigns it.
      capabilities: { ips: true },
      ipam: { type: 'static' },
    },
  };
  for (const [name, config] of Object.entries(nads)) {
    await kube.create(`/apis/k8s.cni.cncf.io/v1/namespaces/${POD_NS}/network-attachment-definitions`, {
      apiVersion: 'k8s.cni.cncf.io/v1',
      kind: 'NetworkAttachmentDefinition',
      metadata: { name, namespace: POD_NS },
      spec: { config: JSON.stringify(config) },
    });
  }
  table(
    ['NAD', 'plugin', 'IPAM', 'notes'],
    [
      [`${POD_NS}/macvlan-net`, 'macvlan', 'host-local 10.78.0.0/24', `parent ${NAMES.uplink}, mode bridge`],
      [`${POD_NS}/storage-net`, 'bridge', 'static', `bridge ${NAMES.storageBridge}, capabilities {"ips": true}`],
    ],
  );
  checkInterrupted();

  // 4. The pod.
  heading(`Create pod ${POD_NS}/${POD_NAME}, selecting both networks`);
  const selection = JSON.stringify([{ name: 'macvlan-net' }, { name: 'storage-net', interface: 'storage0', ips: [STORAGE_IP] }]);
  const pod = await kube.create(`/api/v1/namespaces/${POD_NS}/pods`, {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: POD_NAME, namespace: POD_NS, annotations: { [NETWORKS_ANNOTATION]: selection } },
    spec: { containers: [{ name: 'web', image: 'nginx' }] },
  });
  const uid = String((pod.metadata as Obj | undefined)?.uid ?? '');
  say(`${NETWORKS_ANNOTATION}:`);
  block(selection);
  say(`macvlan-net by name (it gets net1), storage-net as storage0 with the fixed address ${STORAGE_IP}`);
  checkInterrupted();

  // 5. ADD, as containerd calls it for a new pod sandbox.
  heading('ADD: containerd asks plexus to attach the pod sandbox');
  say('a fresh plexus process, as for every CNI call, with this environment and the config on stdin:');
  const containerId = randomBytes(32).toString('hex'); // a sandbox id has 64 hex digits
  const call = (command: CniCall['command'], stdin: string): CniCall => ({
    command,
    containerId,
    netns: netnsPath,
    ifname: 'eth0',
    args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${POD_NS};K8S_POD_NAME=${POD_NAME};K8S_POD_INFRA_CONTAINER_ID=${containerId};K8S_POD_UID=${uid}`,
    path: PLUGIN_PATH,
    stdin,
  });
  const add = call('ADD', confText);
  for (const [k, v] of Object.entries({ CNI_COMMAND: add.command, CNI_CONTAINERID: add.containerId, CNI_NETNS: add.netns, CNI_IFNAME: add.ifname, CNI_ARGS: add.args, CNI_PATH: add.path })) {
    say(`${k.padEnd(16)}${v}`);
  }
  say(`${'stdin'.padEnd(16)}${confFile}`);
  // From here on a failure or Ctrl-C must still run DEL, so the journal is replayed and
  // host-local gives the addresses back, before the namespace and bridges are removed.
  let deleted = false;
  undo.push({
    what: 'DEL the pod (ADD ran, DEL did not finish)',
    run: async () => {
      if (deleted) return undefined;
      const out = await runPlexus(PLEXUS, call('DEL', confText));
      if (out.status !== 0) throw new Error(describeFailure(out));
      return 'ran plexus DEL for the half-finished pod';
    },
  });
  const resultText = await cni(add);
  const result = JSON.parse(resultText) as { cniVersion?: string; ips?: { address: string; gateway?: string; interface?: number }[]; interfaces?: { name: string }[] };
  const summary = (result.ips ?? []).map((a) => `${result.interfaces?.[a.interface ?? -1]?.name ?? '?'} ${a.address}${a.gateway ? ` via ${a.gateway}` : ''}`);
  say(`it returned the cluster network's result (CNI ${result.cniVersion}): ${summary.join(', ')}`);

  // How plexus ran each delegate, from its debug log: in-process or exec'd.
  say();
  say(`how plexus ran the delegates (its log, ${logFile}):`);
  const runs = delegateRuns(readFileSync(logFile, 'utf8'), 'ADD');
  if (runs.length === 0) throw new DemoError(`${logFile} records no delegate run for ADD`);
  table(['interface', 'plugin', 'ran'], runs.map((r) => [r.ifname, r.type, r.how]));
  checkInterrupted();

  // 6. What the kernel now has in the pod.
  heading("The pod's interfaces, read from its network namespace");
  const ifaces = podInterfaces(NAMES.netns);
  table(
    ['interface', 'kind', 'MAC', 'MTU', 'state', 'addresses'],
    ifaces.map((i) => [i.name, i.kind, i.mac, String(i.mtu), i.state, i.addrs.join(', ') || '-']),
  );
  const byName = new Map(ifaces.map((i) => [i.name, i]));
  const missing = ['eth0', 'net1', 'storage0'].filter((n) => !byName.has(n));
  if (missing.length) throw new DemoError(`expected interfaces missing from the pod: ${missing.join(', ')}`);
  if (!byName.get('storage0')?.addrs.includes(STORAGE_IP)) throw new DemoError(`storage0 does not have the requested ${STORAGE_IP}`);
  checkInterrupted();

  // 7. What the cluster now knows about the pod's networks.
  heading('The network-status annotation plexus wrote, read back from the API');
  const fetched = await kube.get(`/api/v1/namespaces/${POD_NS}/pods/${POD_NAME}`);
  const annotations = ((fetched.metadata as Obj | undefined)?.annotations ?? {}) as Record<string, string>;
  const rawStatus = annotations[STATUS_ANNOTATION];
  if (rawStatus === undefined) throw new DemoError(`pod ${POD_NS}/${POD_NAME} has no ${STATUS_ANNOTATION} annotation`);
  const entries = JSON.parse(rawStatus) as StatusEntry[];
  table(
    ['network', 'interface', 'ips', 'mac', 'default'],
    entries.map((e) => [e.name ?? '-', e.interface ?? '-', (e.ips ?? []).join(', ') || '-', e.mac ?? '-', e.default ? 'yes' : 'no']),
  );
  say();
  say(`raw ${STATUS_ANNOTATION}:`);
  block(rawStatus);
  // The events `kubectl describe pod` would list; plexus posts them best-effort, like Multus.
  const events = (await kube.get(`/api/v1/namespaces/${POD_NS}/events`)).items as Obj[] | undefined;
  const added = (events ?? []).filter((e) => e.reason === 'AddedInterface').map((e) => String(e.message));
  if (added.length) {
    say();
    say('pod events:');
    for (const m of added) block(`AddedInterface  ${m}`);
  }
  checkInterrupted();

  // libcni hands the cached ADD result to CHECK and DEL as prevResult.
  const withPrev = JSON.stringify({ ...plexusConf, prevResult: JSON.parse(resultText) as Obj });

  // 8. CHECK, as the runtime does to verify a running pod's networking.
  heading('CHECK: is everything still as ADD left it?');
  await cni(call('CHECK', withPrev));
  ok('CHECK passed: every attachment is present and its plugin agrees');

  // 9. DEL, as containerd calls it when the pod sandbox stops.
  heading('DEL: containerd asks plexus to detach the pod');
  await cni(call('DEL', withPrev));
  deleted = true;
  ok('DEL succeeded');
  checkInterrupted();

  // 10. Nothing may be left on the node.
  heading('The node is clean again');
  const failures: string[] = [];
  const expect = (good: boolean, what: string, detail: string) => {
    if (good) ok(what);
    else {
      bad(`${what}: ${detail}`);
      failures.push(what);
    }
  };
  const left = podInterfaces(NAMES.netns).map((i) => i.name);
  expect(left.length === 1 && left[0] === 'lo', 'the pod netns has only lo', `it has ${left.join(', ')}`);
  const held = reservations(dirs.ipamDir);
  expect(held.length === 0, 'host-local holds no addresses', held.map((r) => `${r.network}: ${r.ip}`).join(', '));
  const journal = join(dirs.cniDir, '_plexus', `${containerId}.json`);
  expect(!existsSync(journal), 'no journal record for the container', `${journal} exists`);
  const cached = filesMentioning(join(dirs.cniDir, 'results'), containerId);
  expect(cached.length === 0, "no libcni result cache file for the container", cached.join(', '));
  const ports = JSON.parse(ip('-j', 'link', 'show', 'master', NAMES.clusterBridge)) as unknown[];
  expect(ports.length === 0, `the host end of eth0's veth is gone (bridge ${NAMES.clusterBridge} has no ports)`, `${ports.length} port(s) left`);
  expect(!linkExists('net1', NAMES.netns) && !linkExists('storage0', NAMES.netns), 'macvlan and storage interfaces removed', 'still present');
  if (failures.length) throw new DemoError(`the node is not clean: ${failures.join('; ')}`);
  say(`(the pod object still carries ${STATUS_ANNOTATION}: plexus's DEL does not call the API)`);
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}

async function main(): Promise<number> {
  const start = process.hrtime.bigint();
  console.log(bold('plexus demo: one pod, a cluster network and two NetworkAttachmentDefinitions'));
  let failed = false;
  try {
    preflight();
    sweepStale();
    await story();
  } catch (err) {
    failed = true;
    // A Ctrl-C also kills the `ip` or `openssl` child a step was waiting on synchronously, and
    // that step's error arrives before the signal handler ran: let the event loop poll once
    // (a short timer guarantees a poll phase; setImmediate does not) so we report the cause.
    await new Promise((r) => setTimeout(r, 20));
    const msg = err instanceof DemoError ? err.message : ((err as Error).stack ?? String(err));
    console.log();
    if (!interrupted) bad(msg);
    else bad(`interrupted by ${interrupted}${err instanceof DemoError ? '' : ` (the step in progress saw: ${firstLine(msg)})`}`);
  } finally {
    if (!(await cleanup())) failed = true;
  }
  console.log();
  if (interrupted) console.log(bold(`demo interrupted by ${interrupted} after ${since(start)}; cleaned up`));
  else if (failed) console.log(bold(`demo FAILED after ${since(start)}`));
  else console.log(bold(`demo finished in ${since(start)}: ADD, CHECK and DEL worked and the node is clean`));
  return interrupted ? 130 : failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`demo: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);

/** The "delegate runs in-process" / "delegate exec" debug lines of one verb, in order. */
function delegateRuns(log: string, verb: string): { ifname: string; type: string; how: string }[] {
  const out: { ifname: string; type: string; how: string }[] = [];
  for (const line of log.split('\n')) {
    if (!line.startsWith('{')) continue;
    const l = JSON.parse(line) as Record<string, unknown>;
    if (l.verb !== verb || (l.msg !== 'delegate runs in-process' && l.msg !== 'delegate exec')) continue;
    const how = l.msg === 'delegate exec' ? `exec ${String(l.bin)}` : 'in-process (plexus built-in)';
    out.push({ ifname: String(l.ifname), type: String(l.type), how });
  }
  return out;
}
