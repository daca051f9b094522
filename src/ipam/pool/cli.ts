// `plexus ipam <command>`: the operator side of the pool IPAM. Today `gc`, the leak sweep the
// node agent also runs periodically (src/daemon/ipam-gc.ts; see gc.ts for what it frees and what
// it never touches).
import { CniError } from '../../cni/errors';
import { DEFAULT_NAMESPACE } from './layout';
import { PoolApi } from './store';

const USAGE = `usage: plexus ipam gc [--kubeconfig PATH] [--namespace NS] [--dry-run] [--grace-seconds N]
  Frees IPPool allocations whose pod no longer exists (or was re-created under the same name),
  and OverlappingRangeIPReservations no allocation holds. Prints a JSON report.
`;

function parseArgs(argv: string[]): { kubeconfig?: string; namespace?: string; dryRun: boolean; graceMs: number } {
  const out: { kubeconfig?: string; namespace?: string; dryRun: boolean; graceMs: number } = { dryRun: false, graceMs: 120_000 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--kubeconfig') out.kubeconfig = value();
    else if (a === '--namespace') out.namespace = value();
    else if (a === '--dry-run') out.dryRun = true;
    else if (a === '--grace-seconds') {
      const n = Number(value());
      if (!Number.isInteger(n) || n < 0) throw new Error('--grace-seconds must be a whole number');
      out.graceMs = n * 1000;
    } else throw new Error(`unknown argument ${JSON.stringify(a)}`);
  }
  return out;
}

/** Runs `plexus ipam ...`; returns the exit code. */
export async function runIpamCommand(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s), err: (s: string) => void = (s) => process.stderr.write(s)): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd !== 'gc') {
    err(USAGE);
    return 2;
  }
  let opts: ReturnType<typeof parseArgs>;
  try {
    opts = parseArgs(rest);
  } catch (e) {
    err(`plexus ipam gc: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  try {
    const [{ loadClusterAccess }, { KubeClient, destroyAgents }, { gcCluster }] = await Promise.all([import('../../k8s/kubeconfig'), import('../../k8s/client'), import('./gc')]);
    const access = loadClusterAccess(opts.kubeconfig ?? process.env.KUBECONFIG);
    const api = new PoolApi(new KubeClient(access, { userAgent: 'plexus-ipam-gc' }), opts.namespace ?? access.namespace ?? DEFAULT_NAMESPACE);
    try {
      const report = await gcCluster(api, { dryRun: opts.dryRun, graceMs: opts.graceMs });
      out(JSON.stringify({ namespace: api.namespace, dryRun: opts.dryRun, ...report }) + '\n');
    } finally {
      destroyAgents();
    }
    return 0;
  } catch (e) {
    err(`plexus ipam gc: ${e instanceof CniError ? e.message : (e as Error).stack ?? String(e)}\n`);
    return 1;
  }
}
