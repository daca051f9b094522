// RBAC as kube-apiserver applies it, for the test server: the request's attributes from its path
// (k8s.io/apiserver endpoints/request RequestInfoFactory) and rbac/v1 rule matching
// (plugin/pkg/auth/authorizer/rbac RuleAllows). By default the server enforces the ClusterRole in
// deploy/10-rbac.yaml on every authenticated request, so any API call plexus makes that the
// deployment does not grant fails its test with 403, whoever adds the call.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadAll } from 'js-yaml';
import { isObject } from '../../src/cni/validate';

export interface PolicyRule {
  verbs: string[];
  apiGroups: string[];
  resources: string[];
  resourceNames: string[];
  nonResourceURLs: string[];
  /** A Role's rule (granted by a RoleBinding): it allows requests in this namespace only. */
  namespace?: string;
}

export interface RequestAttributes {
  isResource: boolean;
  verb: string;
  apiGroup: string;
  resource: string;
  subresource: string;
  namespace: string;
  name: string;
  path: string;
}

export const DEPLOY_RBAC = join(__dirname, '..', '..', 'deploy', '10-rbac.yaml');

// Readable by every authenticated user in a real cluster (system:public-info-viewer,
// system:discovery): no ClusterRole of ours grants them.
const PUBLIC_PATHS = ['/version', '/version/', '/healthz', '/livez', '/readyz', '/api', '/api/', '/apis', '/apis/', '/openapi/*'];

const VERBS: Record<string, string> = { POST: 'create', GET: 'get', HEAD: 'get', PUT: 'update', PATCH: 'patch', DELETE: 'delete' };

/** RequestInfoFactory.NewRequestInfo for the /api and /apis prefixes. */
export function requestAttributes(method: string, url: URL): RequestAttributes {
  const path = url.pathname;
  const verb0 = VERBS[method.toUpperCase()] ?? method.toLowerCase();
  const nonResource: RequestAttributes = { isResource: false, verb: verb0, apiGroup: '', resource: '', subresource: '', namespace: '', name: '', path };
  let parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  let apiGroup = '';
  if (parts[0] === 'api') {
    if (parts.length < 3) return nonResource;
    parts = parts.slice(2);
  } else if (parts[0] === 'apis') {
    if (parts.length < 4) return nonResource;
    apiGroup = parts[1] ?? '';
    parts = parts.slice(3);
  } else return nonResource;
  let verb = verb0;
  // the deprecated /watch/ path prefix
  if (parts[0] === 'watch') {
    verb = 'watch';
    parts = parts.slice(1);
  }
  let namespace = '';
  if (parts[0] === 'namespaces' && parts.length > 1) {
    namespace = parts[1] ?? '';
    // /namespaces/{ns} alone is the namespace object itself
    parts = parts.length > 2 ? parts.slice(2) : ['namespaces', namespace];
    if (parts[0] === 'namespaces') namespace = '';
  }
  const [resource = '', name = '', subresource = ''] = parts;
  if (verb === 'get' && name === '') {
    const w = url.searchParams.get('watch');
    verb = w === 'true' || w === '1' ? 'watch' : 'list';
  }
  if (verb === 'delete' && name === '') verb = 'deletecollection';
  return { isResource: true, verb, apiGroup, resource, subresource, namespace, name, path };
}

const has = (list: string[], v: string) => list.includes('*') || list.includes(v);

function resourceMatches(rule: PolicyRule, a: RequestAttributes): boolean {
  const combined = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  return rule.resources.some((r) => r === '*' || r === combined || (a.subresource !== '' && (r === `*/${a.subresource}` || r === `${a.resource}/*`)));
}

function nonResourceMatches(rule: PolicyRule, path: string): boolean {
  return rule.nonResourceURLs.some((u) => u === '*' || u === path || (u.endsWith('*') && path.startsWith(u.slice(0, -1))));
}

export function ruleAllows(rule: PolicyRule, a: RequestAttributes): boolean {
  if (!has(rule.verbs, a.verb)) return false;
  if (rule.namespace !== undefined && a.namespace !== rule.namespace) return false;
  if (!a.isResource) return nonResourceMatches(rule, a.path);
  return has(rule.apiGroups, a.apiGroup) && resourceMatches(rule, a) && (rule.resourceNames.length === 0 || (a.name !== '' && rule.resourceNames.includes(a.name)));
}

export function allows(rules: readonly PolicyRule[], a: RequestAttributes): boolean {
  if (!a.isResource && a.verb === 'get' && PUBLIC_PATHS.some((p) => p === a.path || (p.endsWith('*') && a.path.startsWith(p.slice(0, -1))))) return true;
  return rules.some((r) => ruleAllows(r, a));
}

function strings(v: unknown, what: string): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) throw new Error(`${what}: must be a list of strings`);
  return v;
}

/** The rules of a ClusterRole object (as parsed from YAML). */
export function rulesOf(role: unknown, where = 'ClusterRole'): PolicyRule[] {
  if (!isObject(role) || !Array.isArray(role.rules)) throw new Error(`${where}: no rules`);
  return role.rules.map((r, i) => {
    const at = `${where}.rules[${i}]`;
    if (!isObject(r)) throw new Error(`${at}: must be an object`);
    return {
      verbs: strings(r.verbs, `${at}.verbs`),
      apiGroups: strings(r.apiGroups, `${at}.apiGroups`),
      resources: strings(r.resources, `${at}.resources`),
      resourceNames: strings(r.resourceNames, `${at}.resourceNames`),
      nonResourceURLs: strings(r.nonResourceURLs, `${at}.nonResourceURLs`),
    };
  });
}

/**
 * What a manifest file grants: its (first) ClusterRole's rules cluster-wide, plus the rules of each
 * Role a RoleBinding of the file binds, in that Role's namespace only (as kube-apiserver scopes a
 * RoleBinding). The name stays for the server's import; the Roles came with the sweeper's Lease.
 */
export function loadClusterRole(file = DEPLOY_RBAC): PolicyRule[] {
  const docs = loadAll(readFileSync(file, 'utf8')).filter(isObject);
  const role = docs.find((d) => d.kind === 'ClusterRole');
  if (!role) throw new Error(`${file}: no ClusterRole`);
  const ns = (d: unknown) => (isObject(d) && isObject(d.metadata) && typeof d.metadata.namespace === 'string' ? d.metadata.namespace : '');
  const name = (d: unknown) => (isObject(d) && isObject(d.metadata) && typeof d.metadata.name === 'string' ? d.metadata.name : '');
  const bound = docs.filter((d) => d.kind === 'RoleBinding' && isObject(d.roleRef) && d.roleRef.kind === 'Role');
  const roles = docs.filter((d) => d.kind === 'Role' && ns(d) !== '' && bound.some((b) => ns(b) === ns(d) && isObject(b.roleRef) && b.roleRef.name === name(d)));
  return [...rulesOf(role, `${file} ClusterRole`), ...roles.flatMap((r) => rulesOf(r, `${file} Role ${ns(r)}/${name(r)}`).map((rule) => ({ ...rule, namespace: ns(r) })))];
}

/** kube-apiserver's Forbidden message for these attributes. */
export function forbiddenMessage(user: string, a: RequestAttributes): string {
  if (!a.isResource) return `forbidden: User "${user}" cannot ${a.verb} path "${a.path}"`;
  const qualified = a.apiGroup ? `${a.resource}.${a.apiGroup}` : a.resource;
  const subject = a.name ? `${qualified} "${a.name}"` : qualified;
  const res = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  const scope = a.namespace ? `in the namespace "${a.namespace}"` : 'at the cluster scope';
  return `${subject} is forbidden: User "${user}" cannot ${a.verb} resource "${res}" in API group "${a.apiGroup}" ${scope}`;
}
