// `plexus explain CONTAINER-ID|NAMESPACE/POD`: a pod's attachments as recorded (plexus's journal,
// or Multus's cache for a pod Multus attached), as live in its netns, and as its network-status
// says, side by side. Exit 1 when they disagree or nothing is recorded, 2 on bad arguments.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { asCniError } from '../cni/errors';
import { DEFAULTS } from '../delegates/config';
import { listJournaledContainers, readJournal } from '../delegates/journal';
import { libcniCachePath, parseLibcniCache, parseMultusScratch } from '../delegates/multus-cache';
import { compare, fromJournal, parseNetworkStatus, resultFacts, type IfaceFacts, type Recorded, type Row, type StatusEntry } from './explain-model';
import { confFiles, plexusConf } from './doctor-checks';
import { EXIT, parseOptions, table, UsageError, type Io } from './output';

const NETWORK_STATUS = 'k8s.v1.cni.cncf.io/network-status';
const OPTIONS = { 'cni-dir': { type: 'string' }, kubeconfig: { type: 'string' }, 'conf-dir': { type: 'string' } } as const;

/** plexus's own config on this node, for the cniDir and kubeconfig it uses; undefined when absent. */
function nodeConf(confDir: string): { cniDir: string; kubeconfig?: string } | undefined {
  try {
    const ours = confFiles(confDir).find((f) => f.types.some((t) => t === 'plexus' || t === 'plexus-shim'));
    const conf = ours ? plexusConf(ours).conf : undefined;
    return conf ? { cniDir: conf.cniDir, ...(conf.kubeconfig ? { kubeconfig: conf.kubeconfig } : {}) } : undefined;
  } catch {
    return undefined;
  }
}

function multusRecord(cniDir: string, containerId: string): Recorded {
  const scratch = join(cniDir, containerId);
  const delegates = parseMultusScratch(readFileSync(scratch, 'utf8'), containerId, 'eth0', { source: scratch });
  let netns = '';
  let pod: Recorded['pod'];
  const attachments = delegates.map((d) => {
    const path = libcniCachePath(cniDir, d.networkName, containerId, d.ifname);
    let facts: IfaceFacts = { ips: [] };
    if (existsSync(path)) {
      const e = parseLibcniCache(readFileSync(path, 'utf8'), { source: path, networkName: d.networkName, containerId, ifName: d.ifname });
      netns ||= e.netns;
      const args = new Map(e.cniArgs);
      if (!pod && args.get('K8S_POD_NAMESPACE') && args.get('K8S_POD_NAME')) pod = { namespace: args.get('K8S_POD_NAMESPACE') as string, name: args.get('K8S_POD_NAME') as string };
      facts = resultFacts(e.result, d.ifname);
    }
    return { network: d.name, ifname: d.ifname, isDefault: d.isMaster, state: 'added', ...facts };
  });
  return { source: 'Multus cache', containerId, netns, ...(pod ? { pod } : {}), attachments };
}

/** Multus's scratch files: plain files named by container ID directly in cniDir. */
function multusIds(cniDir: string): string[] {
  try {
    return readdirSync(cniDir).filter((f) => /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(f) && statSync(join(cniDir, f)).isFile());
  } catch {
    return [];
  }
}

function records(cniDir: string, target: string): Recorded[] {
  const journaled = listJournaledContainers(cniDir);
  const multus = multusIds(cniDir).filter((id) => !journaled.includes(id));
  const load = (id: string): Recorded | undefined => {
    if (journaled.includes(id)) {
      const r = readJournal(cniDir, id);
      return r ? fromJournal(r) : undefined;
    }
    return multusRecord(cniDir, id);
  };
  if (target.includes('/')) {
    const [ns, name] = target.split('/');
    return [...journaled, ...multus].flatMap((id) => {
      try {
        const r = load(id);
        return r?.pod && r.pod.namespace === ns && r.pod.name === name ? [r] : [];
      } catch {
        return []; // an unreadable record of some other pod
      }
    });
  }
  // A container ID, or a unique prefix of one (people paste crictl's short IDs).
  const all = [...journaled, ...multus];
  const hits = all.includes(target) ? [target] : all.filter((id) => id.startsWith(target));
  if (hits.length > 1) throw new UsageError(`${JSON.stringify(target)} matches ${hits.length} containers: ${hits.map((h) => h.slice(0, 16)).join(', ')}`);
  return hits.flatMap((id) => {
    const r = load(id);
    return r ? [r] : [];
  });
}

async function liveFacts(netns: string): Promise<Map<string, IfaceFacts> | undefined> {
  if (netns === '' || !existsSync(netns)) return undefined;
  const { Netns, listLinks, listAddrs } = await import('../netns/index');
  return Netns.with(netns, (ns) => {
    const addrs = listAddrs(ns).filter((a) => a.scope === 0);
    const out = new Map<string, IfaceFacts>();
    for (const l of listLinks(ns)) {
      if (l.name === 'lo') continue;
      out.set(l.name, { ips: addrs.filter((a) => a.index === l.index).map((a) => a.cidr), ...(l.mac ? { mac: l.mac } : {}) });
    }
    return out;
  });
}

async function networkStatus(kubeconfig: string | undefined, pod: Recorded['pod']): Promise<{ entries?: StatusEntry[]; note: string }> {
  if (!pod) return { note: 'the record names no pod' };
  if (kubeconfig === undefined) return { note: 'not read: no kubeconfig (--kubeconfig, or plexus config in --conf-dir)' };
  const [{ KubeClient, destroyAgents }, { loadClusterAccess }, { getPod }] = await Promise.all([import('../k8s/client'), import('../k8s/kubeconfig'), import('../k8s/pods')]);
  try {
    const p = await getPod(new KubeClient(loadClusterAccess(kubeconfig), { userAgent: 'plexus-explain' }), pod.namespace, pod.name, { budgetMs: 3000 });
    if (pod.uid && p.uid !== pod.uid) return { note: `pod ${pod.namespace}/${pod.name} now has uid ${p.uid}, the record ${pod.uid}: the pod was re-created` };
    const text = p.annotations[NETWORK_STATUS];
    if (text === undefined) return { entries: [], note: `pod ${pod.namespace}/${pod.name} has no ${NETWORK_STATUS}` };
    return { entries: parseNetworkStatus(text), note: 'read from the API' };
  } catch (err) {
    return { note: `not read: ${asCniError(err).message}` };
  } finally {
    destroyAgents();
  }
}

export interface Explanation {
  containerId: string;
  source: Recorded['source'];
  pod?: Recorded['pod'];
  netns: string;
  netnsPresent: boolean;
  networkStatus: string;
  rows: Row[];
  problems: string[];
}

export async function explain(cniDir: string, target: string, kubeconfig?: string): Promise<Explanation[]> {
  const out: Explanation[] = [];
  for (const rec of records(cniDir, target)) {
    const live = await liveFacts(rec.netns);
    const status = await networkStatus(kubeconfig, rec.pod);
    const rows = compare(rec, live, status.entries);
    const problems: string[] = [];
    if (!live) problems.push(`network namespace ${rec.netns || '(none recorded)'} is gone: the record waits for a DEL`);
    if (status.entries && status.entries.length === 0 && rec.attachments.length) problems.push(status.note);
    out.push({ containerId: rec.containerId, source: rec.source, ...(rec.pod ? { pod: rec.pod } : {}), netns: rec.netns, netnsPresent: !!live, networkStatus: status.note, rows, problems });
  }
  return out;
}

const cell = (f: IfaceFacts | undefined, missing: string) => (f ? [f.ips.join(' ') || '-', f.mac ?? ''].filter(Boolean).join(' ') : missing);

function render(e: Explanation): string {
  const head = `container ${e.containerId} (${e.source})${e.pod ? `  pod ${e.pod.namespace}/${e.pod.name}` : ''}\nnetns ${e.netns || '-'}${e.netnsPresent ? '' : ' (gone)'}  network-status: ${e.networkStatus}\n`;
  const rows = e.rows.map((r) => [
    r.ifname,
    r.network,
    r.recorded ? `${cell(r.recorded, '')}${r.recorded.state === 'added' ? '' : ` [${r.recorded.state}]`}` : '-',
    cell(r.live, e.netnsPresent ? 'MISSING' : '-'),
    r.status ? r.status.ips.join(' ') || '-' : '-',
    r.problems.join('; ') || 'ok',
  ]);
  const problems = e.problems.map((p) => `problem: ${p}\n`).join('');
  return head + table(['IFNAME', 'NETWORK', 'RECORDED', 'LIVE', 'NETWORK-STATUS', 'VERDICT'], rows) + problems;
}

export async function run(args: string[], io: Io): Promise<number> {
  const { values, positionals, json } = parseOptions(args, OPTIONS);
  if (positionals.length !== 1) throw new UsageError('name one container ID (or a unique prefix) or NAMESPACE/POD');
  const target = positionals[0] as string;
  // Flags first; else what plexus's config on this node says; else plexus's defaults.
  const node = nodeConf(typeof values['conf-dir'] === 'string' ? values['conf-dir'] : '/etc/cni/net.d');
  const cniDir = typeof values['cni-dir'] === 'string' ? values['cni-dir'] : (node?.cniDir ?? DEFAULTS.cniDir);
  const kubeconfig = typeof values.kubeconfig === 'string' ? values.kubeconfig : node?.kubeconfig;
  const found = await explain(cniDir, target, kubeconfig);
  const bad = found.length === 0 || found.some((e) => e.problems.length > 0 || e.rows.some((r) => r.problems.length > 0));
  if (json) io.out(JSON.stringify({ ok: !bad, target, cniDir, containers: found }, null, 2) + '\n');
  else if (found.length === 0) io.out(`nothing recorded for ${target} in ${cniDir} (plexus journal or Multus cache)\n`);
  else io.out(found.map(render).join('\n') + (bad ? 'mismatches found\n' : 'journal, interfaces and network-status agree\n'));
  return bad ? EXIT.problems : EXIT.ok;
}
