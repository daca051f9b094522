// `make bench`: runs each benchmark module in order (all, or those named on the command line:
// `node --import tsx bench/run.ts version`). A module's default export runs its benchmark, prints
// its table and PASS/MISS lines, and returns whether every target was met. Add new ones here.
import { readFileSync, writeFileSync } from 'node:fs';

type BenchModule = { default: () => Promise<boolean> };

const FORWARDING = ['/proc/sys/net/ipv4/ip_forward', '/proc/sys/net/ipv6/conf/all/forwarding'];

const benches: Array<[name: string, load: () => Promise<BenchModule>]> = [
  ['version', () => import('./version')],
  ['pod', () => import('./pod')],
  ['ipam-pool', () => import('./ipam-pool')],
  ['grpc', () => import('./grpc')],
  ['agent', () => import('./agent')],
  ['oneshot', () => import('./oneshot')],
];

async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  const unknown = wanted.filter((w) => !benches.some(([name]) => name === w));
  if (unknown.length) throw new Error(`unknown benchmark ${unknown.join(', ')}; have ${benches.map(([n]) => n).join(', ')}`);
  if (process.env.NODE_EXTRA_CA_CERTS) {
    // lib.ts never passes it to what it times; this only says that this process itself is slowed.
    process.stderr.write('bench: note: NODE_EXTRA_CA_CERTS is set in this shell; timed processes do not inherit it\n');
  }
  const summary: string[] = [];
  // The pod's cluster bridge is an isGateway bridge in the host namespace, so the plugins turn on
  // forwarding: put the host's sysctls back as they were, whatever happens.
  const saved = FORWARDING.map((f) => [f, readFileSync(f, 'utf8')] as const);
  try {
    for (const [name, load] of benches) {
      if (wanted.length && !wanted.includes(name)) continue;
      const met = await (await load()).default();
      summary.push(`${met ? 'PASS' : 'MISS'} ${name}`);
    }
  } finally {
    for (const [f, v] of saved) writeFileSync(f, v);
  }
  process.stdout.write(`\nbench: ${summary.join(', ')}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
