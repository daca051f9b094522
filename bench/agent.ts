// The node agent: ADD of bench/pod.ts's pod (cluster + macvlan + 2 bridges, annotations read from
// the API as Multus thin does) through the C shim into `plexus daemon` with watch caches, into the
// same daemon without caches (today's), the daemon with plexus's own plugins in-process (what
// `plexus install` deploys; the ADD target applies to it), and one-shot, against the
// reference-plugin floor in one
// interleaved loop. Counts the daemon's API reads per ADD from its /metrics, and compares how a
// 4-pod burst stretches latency for the floor and for the daemon.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { bench, target, type Step, type Variant } from './lib';
import { podNetworks } from './pod';
import { post, startApi, type Api, type Net } from './podsetup';

const ROOT = resolve(__dirname, '..');
const PLEXUS = join(ROOT, 'dist', 'bin', 'plexus');
const SHIM = join(ROOT, 'dist', 'bin', 'plexus-shim');
const REF = '/usr/lib/cni';
// plexus's own plugins (bridge, macvlan, host-local, static) first: what `plexus install` gives a
// node, run in-process by the daemon.
const OURS = `${join(ROOT, 'dist', 'bin')}:${REF}`;
const NODE = 'bench-node';
const PODS = 4;
const PATH_ENV = '/usr/sbin:/usr/bin:/sbin:/bin';

const quiet = (cmd: string, ...args: string[]) => spawnSync(cmd, args, { stdio: 'ignore' });
function sh(cmd: string, ...args: string[]): void {
  if (spawnSync(cmd, args, { stdio: 'ignore' }).status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed`);
}

interface Daemon {
  proc: ChildProcess;
  sockDir: string;
  metrics(): Promise<string>;
}

async function startDaemon(dir: string, config: object): Promise<Daemon> {
  mkdirSync(dir, { recursive: true });
  const sockDir = join(dir, 'run');
  const metricsSocket = join(dir, 'metrics.sock');
  writeFileSync(join(dir, 'daemon.json'), JSON.stringify({ socketDir: sockDir, metricsSocket, ...config }));
  const proc = spawn(PLEXUS, ['daemon', '--config', join(dir, 'daemon.json')], { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: PATH_ENV, PLEXUS_NODE_NAME: NODE } });
  await new Promise<void>((res, rej) => {
    let err = '';
    proc.stderr!.on('data', (c: Buffer) => {
      err += c.toString();
      if (err.includes('listening on')) res();
    });
    proc.on('exit', (code) => rej(new Error(`plexus daemon exited with ${code}: ${err}`)));
  });
  const metrics = () =>
    new Promise<string>((res, rej) => {
      http.get({ socketPath: metricsSocket, path: '/metrics', agent: false }, (r) => {
        let t = '';
        r.on('data', (c: Buffer) => (t += c.toString()));
        r.on('end', () => res(t));
      }).on('error', rej);
    });
  // Ready = caches listed and watching (or none configured).
  for (let i = 0; i < 500; i++) {
    const ok = await new Promise<boolean>((res) => http.get({ socketPath: metricsSocket, path: '/readyz', agent: false }, (r) => (r.resume(), res(r.statusCode === 200))).on('error', () => res(false)));
    if (ok) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  return { proc, sockDir, metrics };
}

/** Sum of plexus_api_requests_total samples with method GET (gets and lists). */
function apiReads(text: string): number {
  let n = 0;
  for (const m of text.matchAll(/^plexus_api_requests_total\{method="GET",status="\d+"\} (\d+)$/gm)) n += Number(m[1]);
  return n;
}

export default async function run(): Promise<boolean> {
  const dir = mkdtempSync(join(tmpdir(), 'plexus-bench-agent-'));
  const ipam = join(dir, 'ipam');
  mkdirSync(ipam);
  const up = 'pxagent-up';
  let api: Api | undefined;
  const daemons: Daemon[] = [];
  const nsName = (i: number) => `pxagent${i}`;
  try {
    quiet('ip', 'link', 'del', up);
    sh('ip', 'link', 'add', up, 'type', 'veth', 'peer', 'name', `${up}p`);
    sh('ip', 'link', 'set', up, 'up');
    const { cluster, secondaries } = podNetworks(ipam, up);
    api = await startApi(join(dir, 'api'));
    const annotations = { 'k8s.v1.cni.cncf.io/networks': secondaries.map((n) => n.name).join(',') };
    for (const n of secondaries) {
      await post(api, '/apis/k8s.cni.cncf.io/v1/namespaces/bench/network-attachment-definitions', { apiVersion: 'k8s.cni.cncf.io/v1', kind: 'NetworkAttachmentDefinition', metadata: { name: n.name, namespace: 'bench' }, spec: { config: JSON.stringify(n.conf) } });
    }
    const uids: string[] = [];
    for (let i = 0; i < PODS; i++) {
      const pod = await post(api, '/api/v1/namespaces/bench/pods', { apiVersion: 'v1', kind: 'Pod', metadata: { name: `pod${i}`, namespace: 'bench', annotations }, spec: { nodeName: NODE } });
      uids.push(pod.metadata.uid);
    }
    const cached = await startDaemon(join(dir, 'cached'), { kubeconfig: api.kubeconfig });
    const plain = await startDaemon(join(dir, 'plain'), { watchCaches: false });
    daemons.push(cached, plain);

    const id = (i: number) => `agentpod${i}`;
    const env = (command: string, i: number, ifname: string, path = REF) => ({
      CNI_COMMAND: command, CNI_CONTAINERID: id(i), CNI_NETNS: `/var/run/netns/${nsName(i)}`, CNI_IFNAME: ifname, CNI_PATH: path,
      CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=pod${i};K8S_POD_INFRA_CONTAINER_ID=${id(i)};K8S_POD_UID=${uids[i]}`,
    });
    const conf = (sockDir?: string) =>
      JSON.stringify({ cniVersion: '1.0.0', name: 'plexus', type: 'plexus', kubeconfig: api!.kubeconfig, cniDir: join(dir, 'cni'), binDir: '/nonexistent', ...(sockDir ? { daemonSocketDir: sockDir } : {}), delegates: [cluster.conf] });
    const direct = (command: string, i: number): Step[] => {
      const nets: Net[] = [cluster, ...secondaries];
      return (command === 'DEL' ? [...nets].reverse() : nets).map((n) => ({ cmd: join(REF, String(n.conf.type)), env: env(command, i, n.ifname), input: JSON.stringify(n.conf) }));
    };
    const ways: Record<string, (command: string, i: number) => Step[]> = {
      'floor: reference plugins direct': direct,
      'plexus one-shot': (c, i) => [{ cmd: PLEXUS, env: env(c, i, 'eth0'), input: conf() }],
      'plexus-shim + daemon, no caches (today)': (c, i) => [{ cmd: SHIM, env: env(c, i, 'eth0'), input: conf(plain.sockDir) }],
      'plexus-shim + daemon, watch caches': (c, i) => [{ cmd: SHIM, env: env(c, i, 'eth0'), input: conf(cached.sockDir) }],
      'plexus-shim + daemon, watch caches, built-in plugins': (c, i) => [{ cmd: SHIM, env: env(c, i, 'eth0', OURS), input: conf(cached.sockDir) }],
    };
    const exec = (steps: Step[]) => {
      for (const s of steps) {
        const r = spawnSync(s.cmd, [], { env: { PATH: PATH_ENV, ...s.env }, input: s.input });
        if (r.status !== 0) throw new Error(`${s.cmd}: ${r.stdout}${r.stderr}`);
      }
    };
    const freshNs = (n: number) => {
      for (let i = 0; i < n; i++) {
        quiet('ip', 'netns', 'del', nsName(i));
        sh('ip', 'netns', 'add', nsName(i));
      }
    };
    const runs = Number(process.env.BENCH_RUNS ?? 20);
    const before = [apiReads(await cached.metrics()), apiReads(await plain.metrics())];
    const add = await bench({
      title: 'agent: pod ADD (cluster + 3 secondary networks, annotations from the API)',
      runs,
      warmup: 3,
      variants: Object.entries(ways).map(([name, way]): Variant => ({
        name,
        steps: way('ADD', 0),
        before: () => freshNs(1),
        after: () => {
          exec(way('DEL', 0));
          quiet('ip', 'netns', 'del', nsName(0));
        },
      })),
    });
    const adds = runs + 3;
    const readsCached = (apiReads(await cached.metrics()) - before[0]!) / adds;
    const readsPlain = (apiReads(await plain.metrics()) - before[1]!) / adds;

    // A burst: 4 pods at once, each its own chain of processes, against the same pod alone.
    const script = (name: string, lines: string[]) => {
      const f = join(dir, `${name}.sh`);
      writeFileSync(f, `${lines.join('\n')}\n`);
      return f;
    };
    const chain = (way: string, i: number): string =>
      ways[way]!('ADD', i)
        // A failing plugin prints its CNI error on stdout: pass it to stderr so the bench says why.
        .map((s) => `out=$(${Object.entries(s.env ?? {}).map(([k, v]) => `${k}='${v}'`).join(' ')} ${s.cmd} <<'EOF'\n${String(s.input)}\nEOF\n) || { echo "${s.cmd}: $out" >&2; exit 1; }`)
        .join('\n');
    const burstVariants: Variant[] = [];
    for (const way of ['floor: reference plugins direct', 'plexus-shim + daemon, watch caches']) {
      const one = script(`one-${burstVariants.length}`, [`(\n${chain(way, 0)}\n) || exit 1`]);
      const four = script(`four-${burstVariants.length}`, [...Array.from({ length: PODS }, (_, i) => `(\n${chain(way, i)}\n) & p${i}=$!`), ...Array.from({ length: PODS }, (_, i) => `wait $p${i} || exit 1`)]);
      const undo = (n: number) => {
        for (let i = 0; i < n; i++) exec(ways[way]!('DEL', i));
        for (let i = 0; i < n; i++) quiet('ip', 'netns', 'del', nsName(i));
      };
      burstVariants.push(
        { name: `${way}: 1 pod`, cmd: '/bin/sh', args: [one], before: () => freshNs(1), after: () => undo(1) },
        { name: `${way}: ${PODS} pods at once`, cmd: '/bin/sh', args: [four], before: () => freshNs(PODS), after: () => undo(PODS) },
      );
    }
    const burst = await bench({ title: `agent: ${PODS}-pod burst vs one pod`, runs, warmup: 3, variants: burstVariants });

    const FLOOR = 'floor: reference plugins direct';
    const CACHED = 'plexus-shim + daemon, watch caches';
    const PLAIN = 'plexus-shim + daemon, no caches (today)';
    const BUILTIN = 'plexus-shim + daemon, watch caches, built-in plugins';
    const ratio = (a: string) => add.get(a).median / add.get(FLOOR).median;
    const say = (ok: boolean, what: string) => (process.stdout.write(`${ok ? 'PASS' : 'MISS'}: ${what}\n`), ok);
    // The target is the deployment plexus installs (its own plugins in-process); the same daemon
    // exec'ing the reference plugins is printed beside it.
    let met = target(add, BUILTIN, { ratio: 0.8 });
    process.stdout.write(`ratio: ADD ${CACHED} / floor = ${ratio(CACHED).toFixed(2)}; ${PLAIN} / floor = ${ratio(PLAIN).toFixed(2)}; plexus one-shot / floor = ${ratio('plexus one-shot').toFixed(2)}; watch caches / no caches = ${(add.get(CACHED).median / add.get(PLAIN).median).toFixed(2)}\n`);
    met = say(readsCached <= 1, `API reads per ADD through the daemon with watch caches: ${readsCached.toFixed(2)} (target <= 1; without caches ${readsPlain.toFixed(2)})`) && met;
    const growth = (way: string) => burst.get(`${way}: ${PODS} pods at once`).median / burst.get(`${way}: 1 pod`).median;
    met = say(growth(CACHED) <= growth(FLOOR), `${PODS}-pod burst / 1 pod: daemon ${growth(CACHED).toFixed(2)}x, floor ${growth(FLOOR).toFixed(2)}x (target: daemon's growth <= floor's)`) && met;
    return met;
  } finally {
    for (const d of daemons) d.proc.kill('SIGTERM');
    for (let i = 0; i < PODS; i++) quiet('ip', 'netns', 'del', nsName(i));
    for (const l of [up, 'pxbench-br0', 'pxbench-br1', 'pxbench-br2']) quiet('ip', 'link', 'del', l);
    api?.proc.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}
