// The one benchmark helper: runs real executables the way a container runtime does (a fresh
// process, a clean environment) and compares variants measured in the same loop.
//
// Why interleaved: this machine drifts by ±5–10 ms on medians between batches (reference/deps.md),
// so variants measured one after the other can differ by the drift alone. Running variant A run i,
// B run i, C run i, ... puts every variant under the same conditions, and rotating which variant
// starts each round keeps any "runs right after X" effect from landing on one variant.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** One process of a multi-process variant (e.g. the floor: each reference plugin in turn). */
export interface Step {
  cmd: string;
  args?: string[];
  env?: Record<string, string>;
  input?: string | Buffer;
  argv0?: string;
  status?: number;
}

export interface Variant {
  name: string;
  /** Several processes run one after the other, timed together, instead of `cmd`. */
  steps?: Step[];
  /** Executable to run (a path; resolved against PATH of `env` only if it has no slash). */
  cmd?: string;
  args?: string[];
  /** Added to the clean environment (see cleanEnv): CNI_COMMAND, CNI_NETNS, ... */
  env?: Record<string, string>;
  /** Bytes for stdin (the network configuration). */
  input?: string | Buffer;
  /** argv[0] as the program sees it; default `cmd` (what libcni does: the full path). */
  argv0?: string;
  /** Expected exit status; default 0. A mismatch aborts the benchmark: a failing run measures nothing. */
  status?: number;
  /** Untimed work before each run (e.g. create the netns an ADD needs). `i` < 0 for warm-ups. */
  before?: (i: number) => void | Promise<void>;
  /** Untimed work after each run (e.g. DEL what the ADD made); sees the run's output. */
  after?: (i: number, r: SpawnSyncReturns<Buffer>) => void | Promise<void>;
}

export interface BenchOptions {
  title: string;
  variants: Variant[];
  /** Name of the variant every ratio is taken against; default the first. */
  baseline?: string;
  /** Untimed rounds first (page cache, CPU frequency); default 5. */
  warmup?: number;
  /** Timed rounds; default 30, at least 20 (fewer makes a p90 meaningless). */
  runs?: number;
}

export interface Stats {
  name: string;
  samples: number[]; // ms, in run order
  min: number;
  median: number;
  p90: number;
  /** this variant's statistic / the baseline's same statistic */
  ratioMin: number;
  ratioMedian: number;
  ratioP90: number;
  /**
   * Mean CPU time (user + system) of the timed processes and every process they waited for; not
   * of a server they talk to (a daemon, the test API), which the bench started and never reaps.
   */
  cpuMean: number;
  ratioCpu: number;
}

export interface BenchResult {
  title: string;
  baseline: string;
  runs: number;
  warmup: number;
  stats: Stats[];
  get(name: string): Stats;
}

/**
 * The environment a runtime gives a plugin: PATH and what the caller adds, nothing inherited from
 * this shell. In particular no NODE_EXTRA_CA_CERTS (set globally on this machine, +65 ms per node
 * start) and no NODE_OPTIONS.
 */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', ...extra };
}

/** Linear-interpolated percentile of sorted values, p in [0, 1]. */
function percentile(sorted: number[], p: number): number {
  const pos = (sorted.length - 1) * p;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

function spawnStep(v: Variant, step: Step): SpawnSyncReturns<Buffer> {
  const opts = { env: cleanEnv(step.env), input: step.input ?? '', argv0: step.argv0 ?? step.cmd, maxBuffer: 64 * 1024 * 1024 };
  const r = spawnSync(step.cmd, step.args ?? [], opts);
  // EPIPE: the program exited without reading all of stdin (Go plugins do for VERSION). libcni
  // ignores that too (os/exec does); anything else means the run did not happen.
  if (r.error && (r.error as NodeJS.ErrnoException).code !== 'EPIPE') throw new Error(`${v.name}: ${step.cmd}: ${r.error.message}`);
  const want = step.status ?? 0;
  if (r.status !== want) {
    throw new Error(`${v.name}: ${step.cmd} exit ${r.status ?? r.signal}, expected ${want}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  }
  return r;
}

// CPU time of this process's reaped children, from /proc/self/stat (cutime + cstime, in clock
// ticks of 10 ms). Per run that is coarse, but the deltas telescope: the total over all runs is
// exact to a tick, so the mean over 20 runs is good to 1 ms. Unlike wall time it barely moves
// with the machine's load, which makes it the figure to compare on a shared, busy machine.
function childCpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[13]) + Number(fields[14])) * 10;
}

async function runOnce(v: Variant, i: number): Promise<{ ms: number; cpu: number }> {
  await v.before?.(i);
  if (!v.steps && !v.cmd) throw new Error(`${v.name}: a variant needs cmd or steps`);
  const steps: Step[] = v.steps ?? [{ cmd: v.cmd!, args: v.args, env: v.env, input: v.input, argv0: v.argv0, status: v.status }];
  let r: SpawnSyncReturns<Buffer> | undefined;
  const cpu0 = childCpuMs();
  const t = process.hrtime.bigint();
  for (const step of steps) r = spawnStep(v, step);
  const elapsed = Number(process.hrtime.bigint() - t) / 1e6;
  const cpu = childCpuMs() - cpu0;
  await v.after?.(i, r!);
  return { ms: elapsed, cpu };
}

export async function bench(o: BenchOptions): Promise<BenchResult> {
  const warmup = o.warmup ?? 5;
  const runs = Math.max(20, o.runs ?? 30);
  const names = o.variants.map((v) => v.name);
  if (new Set(names).size !== names.length) throw new Error(`${o.title}: duplicate variant names`);
  const baseline = o.baseline ?? names[0];
  if (baseline === undefined || !names.includes(baseline)) throw new Error(`${o.title}: no baseline variant ${baseline}`);
  const samples = o.variants.map(() => [] as number[]);
  const cpu = o.variants.map(() => 0);
  const n = o.variants.length;
  for (let round = -warmup; round < runs; round++) {
    const start = ((round % n) + n) % n;
    for (let k = 0; k < n; k++) {
      const idx = (start + k) % n;
      const one = await runOnce(o.variants[idx]!, round);
      if (round >= 0) {
        samples[idx]!.push(one.ms);
        cpu[idx]! += one.cpu;
      }
    }
  }
  const raw = o.variants.map((v, idx) => {
    const sorted = [...samples[idx]!].sort((a, b) => a - b);
    return { name: v.name, samples: samples[idx]!, min: sorted[0]!, median: percentile(sorted, 0.5), p90: percentile(sorted, 0.9), cpuMean: cpu[idx]! / runs };
  });
  const base = raw.find((s) => s.name === baseline)!;
  const stats: Stats[] = raw.map((s) => ({
    ...s,
    ratioMin: s.min / base.min,
    ratioMedian: s.median / base.median,
    ratioP90: s.p90 / base.p90,
    ratioCpu: base.cpuMean > 0 ? s.cpuMean / base.cpuMean : NaN,
  }));
  const result: BenchResult = {
    title: o.title,
    baseline,
    runs,
    warmup,
    stats,
    get(name: string): Stats {
      const s = stats.find((x) => x.name === name);
      if (!s) throw new Error(`${o.title}: no variant ${name}`);
      return s;
    },
  };
  printTable(result);
  return result;
}

export function printTable(r: BenchResult): void {
  // ×min too: on a loaded machine the medians move with the load, the mins much less
  const head = ['variant', 'min', 'median', 'p90', '×min', '×median', '×p90', 'cpu', '×cpu'];
  const rows = r.stats.map((s) => [
    s.name === r.baseline ? `${s.name} (baseline)` : s.name,
    s.min.toFixed(1),
    s.median.toFixed(1),
    s.p90.toFixed(1),
    s.ratioMin.toFixed(2),
    s.ratioMedian.toFixed(2),
    s.ratioP90.toFixed(2),
    s.cpuMean.toFixed(1),
    s.ratioCpu.toFixed(2),
  ]);
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((row) => row[c]!.length)));
  const line = (cells: string[]) => cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ');
  const out = [`\n${r.title} — ms, ${r.runs} runs interleaved after ${r.warmup} warm-ups; cpu: mean CPU ms of the call's processes`, line(head), ...rows.map(line)];
  process.stdout.write(out.join('\n') + '\n');
}

export interface Limit {
  /** Most the variant's statistic may be, as a multiple of the baseline's same statistic. */
  ratio?: number;
  /** Most the variant's statistic may be, in ms. */
  ms?: number;
  /** Which statistic; default the median. */
  on?: 'min' | 'median' | 'p90';
}

/** Checks one variant against a target, prints `PASS`/`MISS` with the numbers, returns whether it was met. */
export function target(r: BenchResult, name: string, limit: Limit): boolean {
  const s = r.get(name);
  const on = limit.on ?? 'median';
  const value = s[on];
  const ratio = { min: s.ratioMin, median: s.ratioMedian, p90: s.ratioP90 }[on];
  const misses: string[] = [];
  const said: string[] = [];
  if (limit.ratio !== undefined) {
    said.push(`${ratio.toFixed(2)}× ${r.baseline} (target ≤ ${limit.ratio}×)`);
    if (ratio > limit.ratio) misses.push('ratio');
  }
  if (limit.ms !== undefined) {
    said.push(`${value.toFixed(1)} ms (target ≤ ${limit.ms} ms)`);
    if (value > limit.ms) misses.push('ms');
  }
  if (said.length === 0) throw new Error(`${r.title}: target for ${name} names no limit`);
  process.stdout.write(`${misses.length ? 'MISS' : 'PASS'}: ${r.title}: ${name} ${on} ${said.join(', ')}\n`);
  return misses.length === 0;
}
