// What `plexus validate` checks, as data in and problems out: the same parsers the meta-plugin
// runs on a real ADD (selection.ts, netconf.ts, config.ts), applied to a NAD, a CNI conf or
// conflist, the meta-plugin's own config, a pod's annotations, or a bare networks annotation.
import { CniError } from '../cni/errors';
import { parseNetworkConfig, type NetworkConfig } from '../cni/netconf';
import { describe, isObject, type Json, type JsonObject } from '../cni/validate';
import { LATEST_VERSION } from '../cni/version';
import { parseConf } from '../delegates/config';
import type { NetworkSpec } from '../delegates/networks';
import { planAttachments } from '../delegates/plan';
import { checkName, DEFAULT_NETWORK_ANNOTATION, NETWORKS_ANNOTATION, npwg, parseDefaultNetwork, parseNetworkSelection } from '../delegates/selection';

export interface Problem {
  /** The field, e.g. `spec.config.plugins[1].type` or `k8s.v1.cni.cncf.io/networks[0].ips[0]`. */
  path: string;
  message: string;
  /** The rule broken, e.g. `NPWG v1.3 §3.3` or `CNI spec §1`, when one applies. */
  rule?: string;
}

export interface DocumentReport {
  /** What the document was taken for: NetworkAttachmentDefinition, Pod, conflist, conf, networks annotation. */
  kind: string;
  /** `namespace/name` of an object, the `name` of a CNI configuration. */
  name?: string;
  problems: Problem[];
  /** Facts worth knowing that are not errors (a NAD without spec.config, say). */
  notes: string[];
}

const NAD_API_VERSION = 'k8s.cni.cncf.io/v1';
// The meta-plugin's own `type` values: their configs are checked as plexus reads them.
const META_TYPES = ['plexus', 'plexus-shim', 'multus', 'multus-shim'];
const CNI_CONFIG_RULE = 'CNI spec §1';
const CITED = / \((NPWG v[\d.]+ §[\d.]+)\)$/;

/** A validator's error as a problem: the path before the first ": ", the rule it cites, if any. */
export function problemOf(err: unknown, prefix = '', fallbackRule?: string): Problem {
  if (!(err instanceof CniError)) throw err;
  let message = err.message;
  let rule: string | undefined;
  const cited = CITED.exec(message);
  if (cited) {
    rule = cited[1];
    message = message.slice(0, cited.index);
  }
  const colon = message.indexOf(': ');
  let path = colon > 0 ? message.slice(0, colon) : '';
  if (colon > 0) message = message.slice(colon + 2);
  path = prefix && path ? `${prefix}.${path}` : prefix || path;
  const out: Problem = { path, message };
  const r = rule ?? fallbackRule;
  if (r) out.rule = r;
  return out;
}

function collect(problems: Problem[], check: () => void, prefix = '', fallbackRule?: string): void {
  try {
    check();
  } catch (err) {
    problems.push(problemOf(err, prefix, fallbackRule));
  }
}

function strMap(v: Json | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (isObject(v)) for (const [k, x] of Object.entries(v)) if (typeof x === 'string') out[k] = x;
  return out;
}

/** A CNI conf or conflist; a meta-plugin config (type plexus/multus) is checked as plexus reads it. */
export function checkNetworkConfig(obj: JsonObject, prefix = '', defaults: { name?: string; cniVersion?: string } = {}, rule = CNI_CONFIG_RULE): { name?: string; problems: Problem[] } {
  const problems: Problem[] = [];
  let net: NetworkConfig | undefined;
  collect(problems, () => void (net = parseNetworkConfig(JSON.stringify(obj), prefix, defaults)), '', rule);
  if (!net) return { problems };
  const { name, cniVersion, isList } = net;
  net.plugins.forEach((p, i) => {
    if (typeof p.type !== 'string' || !META_TYPES.includes(p.type)) return;
    // parseConf's paths are relative to the plugin object: say which one when it is in a list.
    const at = [prefix, isList ? `plugins[${i}]` : ''].filter(Boolean).join('.');
    collect(
      problems,
      () => {
        // libcni injects name and cniVersion into every plugin of a list before plexus sees it.
        const conf = parseConf(JSON.stringify({ ...p, name, cniVersion }));
        conf.delegates.forEach((d, j) => {
          collect(problems, () => void parseNetworkConfig(JSON.stringify(d), `delegates[${j}]`, { cniVersion: conf.cniVersion }), at, rule);
        });
      },
      at,
    );
  });
  return { name, problems };
}

function checkNad(obj: JsonObject): DocumentReport {
  const problems: Problem[] = [];
  const notes: string[] = [];
  const meta = isObject(obj.metadata) ? obj.metadata : undefined;
  if (obj.apiVersion !== NAD_API_VERSION) {
    problems.push({ path: 'apiVersion', message: `must be ${NAD_API_VERSION}, got ${describe(obj.apiVersion)}`, rule: npwg('3.1') });
  }
  const name = typeof meta?.name === 'string' ? meta.name : '';
  collect(problems, () => void checkName('metadata.name', name, 'network name'));
  const namespace = typeof meta?.namespace === 'string' ? meta.namespace : undefined;
  if (namespace !== undefined) collect(problems, () => void checkName('metadata.namespace', namespace, 'namespace'));
  for (const key of Object.keys(obj)) {
    if (!['apiVersion', 'kind', 'metadata', 'spec'].includes(key)) problems.push({ path: key, message: 'unknown key: a NetworkAttachmentDefinition has only spec', rule: npwg('3.2') });
  }
  const spec = obj.spec;
  let config: string | undefined;
  if (spec !== undefined && !isObject(spec)) problems.push({ path: 'spec', message: `must be an object, got ${describe(spec)}`, rule: npwg('3.2') });
  if (isObject(spec)) {
    for (const key of Object.keys(spec)) {
      if (key !== 'config') problems.push({ path: `spec.${key}`, message: 'unknown key: the spec has only config', rule: npwg('3.2') });
    }
    if (spec.config !== undefined && typeof spec.config !== 'string') {
      problems.push({ path: 'spec.config', message: `must be a string holding the CNI configuration as JSON, got ${describe(spec.config)}`, rule: npwg('3.2') });
    } else if (typeof spec.config === 'string') config = spec.config;
  }
  if (config === undefined || config.trim() === '') {
    notes.push(`no spec.config: plexus uses the configuration named ${JSON.stringify(name)} in confDir (${npwg('3.4.1')})`);
  } else {
    let parsed: unknown;
    try {
      parsed = JSON.parse(config);
    } catch (err) {
      problems.push({ path: 'spec.config', message: `invalid JSON: ${(err as Error).message}`, rule: npwg('3.2') });
    }
    if (parsed !== undefined && !isObject(parsed)) problems.push({ path: 'spec.config', message: `must be a JSON object, got ${describe(parsed)}`, rule: npwg('3.2') });
    if (isObject(parsed)) {
      // §3.4.2: a config without a name takes the NAD's; cniVersion is injected as plexus does.
      const r = checkNetworkConfig(parsed, 'spec.config', { name: name || 'unnamed', cniVersion: LATEST_VERSION }, npwg('3.2'));
      problems.push(...r.problems);
      if (typeof parsed.name === 'string' && parsed.name !== '' && parsed.name !== name) {
        notes.push(`spec.config.name ${JSON.stringify(parsed.name)} differs from the object's name (${npwg('3.4.3')} recommends they match)`);
      }
    }
  }
  return { kind: 'NetworkAttachmentDefinition', name: namespace ? `${namespace}/${name}` : name, problems, notes };
}

function checkPod(obj: JsonObject): DocumentReport {
  const meta = isObject(obj.metadata) ? obj.metadata : {};
  const namespace = typeof meta.namespace === 'string' && meta.namespace ? meta.namespace : 'default';
  const ann = strMap(meta.annotations);
  const problems: Problem[] = [];
  const prefix = 'metadata.annotations';
  if (ann[NETWORKS_ANNOTATION] !== undefined) collect(problems, () => void parseNetworkSelection(ann[NETWORKS_ANNOTATION] as string, namespace), prefix);
  if (ann[DEFAULT_NETWORK_ANNOTATION] !== undefined) collect(problems, () => void parseDefaultNetwork(ann[DEFAULT_NETWORK_ANNOTATION] as string, 'kube-system'), prefix);
  const notes = ann[NETWORKS_ANNOTATION] === undefined && ann[DEFAULT_NETWORK_ANNOTATION] === undefined ? ['the pod selects no networks'] : [];
  return { kind: 'Pod', name: `${namespace}/${String(meta.name ?? '')}`, problems, notes };
}

/** A networks annotation value (either format), as written in the pod. */
export function checkAnnotation(value: string): DocumentReport {
  const problems: Problem[] = [];
  let count = 0;
  collect(problems, () => void (count = parseNetworkSelection(value, 'default').length));
  return { kind: 'networks annotation', problems, notes: problems.length ? [] : [`${count} network(s) selected`] };
}

/** One parsed YAML/JSON document. */
export function checkDocument(doc: unknown): DocumentReport[] {
  if (Array.isArray(doc)) return [checkAnnotation(JSON.stringify(doc))];
  if (typeof doc === 'string') return [checkAnnotation(doc)];
  if (!isObject(doc)) return [{ kind: 'unknown', problems: [{ path: '', message: `not a NetworkAttachmentDefinition, a CNI configuration or a networks annotation: got ${describe(doc)}` }], notes: [] }];
  if (doc.kind === 'NetworkAttachmentDefinition') return [checkNad(doc)];
  if (doc.kind === 'Pod') return [checkPod(doc)];
  if (typeof doc.kind === 'string' && doc.kind.endsWith('List') && Array.isArray(doc.items)) return doc.items.flatMap((d) => checkDocument(d));
  if (doc.plugins !== undefined || doc.type !== undefined) {
    const r = checkNetworkConfig(doc);
    return [{ kind: doc.plugins !== undefined ? 'conflist' : 'conf', ...(r.name ? { name: r.name } : {}), problems: r.problems, notes: [] }];
  }
  const what = typeof doc.kind === 'string' ? `a ${doc.kind}` : 'an object without kind, type or plugins';
  return [{ kind: typeof doc.kind === 'string' ? doc.kind : 'unknown', problems: [{ path: typeof doc.kind === 'string' ? 'kind' : '', message: `${what} is not something plexus reads: want a NetworkAttachmentDefinition, a Pod, a CNI conf/conflist or a networks annotation` }], notes: [] }];
}

/** List kinds unpacked, so each object is one document. */
function flatten(docs: unknown[]): unknown[] {
  return docs.flatMap((d) => (isObject(d) && typeof d.kind === 'string' && d.kind.endsWith('List') && Array.isArray(d.items) ? flatten(d.items) : [d]));
}

/**
 * Several documents: each on its own, then every Pod against the NADs given with it, planned as
 * ADD plans them (src/delegates/plan.ts), which catches what no single document shows: a request
 * for ips/mac/... on a network whose plugins do not declare the capability (NPWG §4.1.2.1.3.2),
 * or an interface name the plan gives twice.
 */
export function checkDocuments(docs: unknown[]): DocumentReport[] {
  const flat = flatten(docs);
  const reports = flat.map((d) => checkDocument(d)[0] as DocumentReport);
  const nads = new Map<string, NetworkConfig>();
  flat.forEach((d, i) => {
    if (!isObject(d) || d.kind !== 'NetworkAttachmentDefinition' || reports[i]?.problems.length) return;
    const m = isObject(d.metadata) ? d.metadata : {};
    const config = isObject(d.spec) && typeof d.spec.config === 'string' ? d.spec.config : '';
    const name = String(m.name ?? '');
    if (config.trim() === '') return;
    nads.set(`${typeof m.namespace === 'string' && m.namespace ? m.namespace : 'default'}/${name}`, parseNetworkConfig(config, 'spec.config', { name, cniVersion: LATEST_VERSION }));
  });
  if (nads.size === 0) return reports;
  flat.forEach((d, i) => {
    const report = reports[i];
    if (!isObject(d) || d.kind !== 'Pod' || !report || report.problems.length) return;
    const meta = isObject(d.metadata) ? d.metadata : {};
    const namespace = typeof meta.namespace === 'string' && meta.namespace ? meta.namespace : 'default';
    const value = strMap(meta.annotations)[NETWORKS_ANNOTATION];
    if (value === undefined) return;
    const specs: NetworkSpec[] = [];
    for (const sel of parseNetworkSelection(value, namespace)) {
      const net = nads.get(`${sel.namespace}/${sel.name}`);
      if (!net) {
        report.notes.push(`${sel.namespace}/${sel.name} is not among the documents: not checked against the pod's request`);
        return;
      }
      specs.push({ network: `${sel.namespace}/${sel.name}`, net, isDefault: false, selection: sel });
    }
    const cluster = parseNetworkConfig('{"cniVersion":"1.1.0","name":"cluster","type":"cluster"}', 'cluster');
    collect(report.problems, () =>
      void planAttachments({ containerId: 'validate', ifname: 'eth0', args: '', runtimeConfig: {}, deviceInfoDir: '/validate', networks: [{ network: 'cluster', net: cluster, isDefault: true }, ...specs] }),
    );
  });
  return reports;
}
