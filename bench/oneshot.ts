// The Multus-style one-shot comparison (issue 9): `"type": "plexus"` with nothing else changed, a
// fresh process per CNI call and no daemon, against the reference-plugin floor on one pod, in one
// interleaved loop. The pod: the cluster network (bridge + host-local), a macvlan, a bridge with
// host-local and a bridge with static IPAM that the pod asks for an address and a MAC; the API is
// the test server over TLS; the runtime hands over the pod's annotations. Multus thin measured
// 1.55–1.65× this floor on ADD and ~1.3× on DEL, so the targets are ADD ≤ 1.6× and DEL ≤ 0.65×.
// After the timed loop a few untimed runs with `logLevel: debug` give the phase breakdown and the
// API requests per ADD. On a machine busy with other work, wall times of Node processes suffer
// far more than Go ones; `chrt -f 20 make bench` (or the bench/run.ts line under chrt) gives
// figures close to a quiet machine's, and the cpu column moves less with load than wall time.
// BENCH_ONESHOT_BASELINE_BIN=<a copy of an older dist/bin> adds that build to the loop.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bench, target, type Step, type Variant } from './lib';
import { createPod, directSteps, freshNs, OURS, PATH_ENV, PLEXUS, quiet, REF, runSteps, sh, startApi, type Api, type Net } from './podsetup';

const NS = 'pxoneshot';
const NS_PATH = `/var/run/netns/${NS}`;
const ID = 'oneshotpod01';
const UP = 'pxone-up';
const BRIDGES = ['pxone-br0', 'pxone-br1', 'pxone-br2'];
const FLOOR = 'floor: reference plugins direct';
const BUILTIN = 'plexus one-shot, built-in delegates';
const REFDEL = 'plexus one-shot, reference delegates';
const OLDER = 'plexus one-shot, built-in delegates, baseline build';

interface Phase {
  name: string;
  ms: number[];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = (s.length - 1) / 2;
  return (s[Math.floor(m)]! + s[Math.ceil(m)]!) / 2;
}

/** Phase lines (`phase X`, uptimeMs) and API calls of the debug log of one call, in order. */
function parseLog(text: string): { phases: Array<[string, number]>; api: string[] } {
  const phases: Array<[string, number]> = [];
  const api: string[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const o = JSON.parse(line) as { msg?: string; uptimeMs?: number; method?: string; path?: string; network?: string };
    if (o.msg?.startsWith('phase ') && typeof o.uptimeMs === 'number') phases.push([o.msg.slice(6) + (o.network ? ` ${o.network}` : ''), o.uptimeMs]);
    if (o.msg === 'kubernetes API call' && o.method && o.path) api.push(`${o.method} ${o.path.replace(/\/namespaces\/[^/]+/, '/namespaces/*')}`);
  }
  return { phases, api };
}

/** Median uptime at each phase over several calls, and the process's wall time at the end. */
function printBreakdown(what: string, runs: Array<{ phases: Array<[string, number]>; wallMs: number }>): void {
  const order: Phase[] = [];
  for (const r of runs) {
    r.phases.forEach(([name, ms]) => {
      let p = order.find((x) => x.name === name);
      if (!p) order.push((p = { name, ms: [] }));
      p.ms.push(ms);
    });
  }
  order.sort((a, b) => median(a.ms) - median(b.ms));
  const lines = order.map((p) => `  ${median(p.ms).toFixed(0).padStart(5)} ms  ${p.name}`);
  lines.push(`  ${median(runs.map((r) => r.wallMs)).toFixed(0).padStart(5)} ms  process exited (wall time seen by the runtime)`);
  process.stdout.write(`\n${what}: phase breakdown (median time since process start over ${runs.length} debug-logged calls)\n${lines.join('\n')}\n`);
}

export default async function run(): Promise<boolean> {
  const dir = mkdtempSync(join(tmpdir(), 'plexus-oneshot-'));
  const ipam = join(dir, 'ipam');
  const cniDir = join(dir, 'cni');
  mkdirSync(ipam);
  let api: Api | undefined;
  try {
    quiet('ip', 'link', 'del', UP);
    sh('ip', 'link', 'add', UP, 'type', 'veth', 'peer', 'name', `${UP}p`);
    sh('ip', 'link', 'set', UP, 'up');
    const hl = (subnet: string) => ({ type: 'host-local', dataDir: ipam, ranges: [[{ subnet }]] });
    const cluster: Net = { name: 'cluster', ifname: 'eth0', conf: { cniVersion: '1.0.0', name: 'cluster', type: 'bridge', bridge: BRIDGES[0], isGateway: true, ipam: { ...hl('10.190.0.0/24'), routes: [{ dst: '0.0.0.0/0' }] } } };
    const request = { ips: ['10.193.0.9/24'], mac: '0a:58:0a:c1:00:09' };
    const secondaries: Net[] = [
      { name: 'macvlan-net', ifname: 'net1', conf: { cniVersion: '1.0.0', name: 'macvlan-net', type: 'macvlan', master: UP, mode: 'bridge', ipam: hl('10.191.0.0/24') } },
      { name: 'storage-a', ifname: 'net2', conf: { cniVersion: '1.0.0', name: 'storage-a', type: 'bridge', bridge: BRIDGES[1], ipam: hl('10.192.0.0/24') } },
      {
        name: 'storage-b',
        ifname: 'net3',
        conf: { cniVersion: '1.0.0', name: 'storage-b', type: 'bridge', bridge: BRIDGES[2], capabilities: { ips: true, mac: true }, ipam: { type: 'static' } },
        request,
      },
    ];
    api = await startApi(join(dir, 'api'));
    const selection = secondaries.map((n) => ({ name: n.name, ...(n.request ?? {}) }));
    const annotations = { 'k8s.v1.cni.cncf.io/networks': JSON.stringify(selection) };
    const uid = await createPod(api, 'bench', 'pod', annotations, secondaries);
    const ARGS = `IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=pod;K8S_POD_INFRA_CONTAINER_ID=${ID};K8S_POD_UID=${uid}`;
    const cni = (command: string, ifname: string) => ({ CNI_COMMAND: command, CNI_CONTAINERID: ID, CNI_NETNS: NS_PATH, CNI_IFNAME: ifname, CNI_ARGS: ARGS, CNI_PATH: REF });
    const plexusConf = (binDir: string, extra: Record<string, unknown> = {}) =>
      JSON.stringify({
        cniVersion: '1.0.0',
        name: 'plexus',
        type: 'plexus',
        kubeconfig: api!.kubeconfig,
        cniDir,
        binDir,
        delegates: [cluster.conf],
        runtimeConfig: { 'io.kubernetes.cri.pod-annotations': annotations },
        ...extra,
      });
    const plexus = (command: string, binDir: string, extra?: Record<string, unknown>): Step[] => [{ cmd: PLEXUS, env: cni(command, 'eth0'), input: plexusConf(binDir, extra) }];
    const nets = [cluster, ...secondaries];
    const ways: Record<string, (command: string) => Step[]> = {
      [FLOOR]: (c) => directSteps(nets, c, REF, cni),
      [BUILTIN]: (c) => plexus(c, OURS),
      [REFDEL]: (c) => plexus(c, '/nonexistent'),
    };
    // Before/after in one loop: BENCH_ONESHOT_BASELINE_BIN=<a copy of an older dist/bin> adds that
    // build's one-shot run, with its own plugins in-process, as one more variant.
    const older = process.env.BENCH_ONESHOT_BASELINE_BIN;
    if (older) ways[OLDER] = (c) => [{ ...plexus(c, older)[0]!, cmd: join(older, 'plexus') }];
    const variants = (verb: 'ADD' | 'DEL'): Variant[] =>
      Object.entries(ways).map(([name, steps]) => ({
        name,
        steps: steps(verb),
        before: () => {
          freshNs(NS);
          if (verb === 'DEL') runSteps(steps('ADD'));
        },
        after: () => {
          if (verb === 'ADD') runSteps(steps('DEL'));
          quiet('ip', 'netns', 'del', NS);
        },
      }));
    const runs = Number(process.env.BENCH_RUNS ?? 20);
    const add = await bench({ title: 'one-shot pod ADD (cluster + macvlan + 2 bridges, static ips/mac)', variants: variants('ADD'), runs, warmup: 3 });
    const del = await bench({ title: 'one-shot pod DEL', variants: variants('DEL'), runs, warmup: 3 });

    // Untimed, debug-logged calls: where the time goes, and what the API sees.
    const logFile = join(dir, 'debug.log');
    const debugged = { logLevel: 'debug', logFile, logToStderr: false };
    const traced: Record<'ADD' | 'DEL', Array<{ phases: Array<[string, number]>; wallMs: number }>> = { ADD: [], DEL: [] };
    const apiPerAdd: string[][] = [];
    for (let i = 0; i < 5; i++) {
      freshNs(NS);
      for (const verb of ['ADD', 'DEL'] as const) {
        writeFileSync(logFile, '');
        const [step] = plexus(verb, OURS, debugged);
        const t = process.hrtime.bigint();
        const r = spawnSync(step!.cmd, [], { env: { PATH: PATH_ENV, ...step!.env }, input: step!.input });
        const wallMs = Number(process.hrtime.bigint() - t) / 1e6;
        if (r.status !== 0) throw new Error(`debug ${verb}: ${r.stdout}${r.stderr}`);
        const parsed = parseLog(readFileSync(logFile, 'utf8'));
        traced[verb].push({ phases: parsed.phases, wallMs });
        if (verb === 'ADD') apiPerAdd.push(parsed.api);
      }
      quiet('ip', 'netns', 'del', NS);
    }
    printBreakdown(`${BUILTIN} ADD`, traced.ADD);
    printBreakdown(`${BUILTIN} DEL`, traced.DEL);
    const calls = apiPerAdd[0] ?? [];
    process.stdout.write(`\nAPI requests per ADD: ${calls.length} (${[...new Set(calls)].map((c) => `${calls.filter((x) => x === c).length}× ${c}`).join(', ')})\n`);

    const [a, d] = [add.get(BUILTIN), del.get(BUILTIN)];
    process.stdout.write(
      `one-shot ADD ${a.ratioMedian.toFixed(2)}× and DEL ${d.ratioMedian.toFixed(2)}× the floor (median wall time; Multus thin: ~1.6× and ~1.3×); ` +
        `CPU ${a.ratioCpu.toFixed(2)}× and ${d.ratioCpu.toFixed(2)}× (the API server's CPU not counted)\n`,
    );
    if (older) {
      const ratio = (r: typeof add, f: 'median' | 'cpuMean') => (r.get(BUILTIN)[f] / r.get(OLDER)[f]).toFixed(2);
      process.stdout.write(`this build / baseline build: ADD ${ratio(add, 'median')} (CPU ${ratio(add, 'cpuMean')}), DEL ${ratio(del, 'median')} (CPU ${ratio(del, 'cpuMean')})\n`);
    }
    let met = target(add, BUILTIN, { ratio: 1.6 });
    met = target(del, BUILTIN, { ratio: 0.65 }) && met;
    return met;
  } finally {
    quiet('ip', 'netns', 'del', NS);
    for (const l of [UP, ...BRIDGES]) quiet('ip', 'link', 'del', l);
    api?.proc.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}
