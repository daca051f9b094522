// deploy/: every manifest against its kind's schema (test/helpers/manifests.ts), the references
// between them, the CRDs against what the API server serves, and RBAC: the test API server
// enforces deploy/'s ClusterRole on every request (test/apiserver/rbac.ts), so the e2e suites prove
// it grants every call plexus makes; here, that the enforcement is real and matches kube-apiserver.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadAll } from 'js-yaml';
import { isObject, type JsonObject } from '../src/cni/validate';
import { rawRequest } from './apiserver/raw';
import { allows, loadClusterRole, requestAttributes, type PolicyRule } from './apiserver/rbac';
import { startApiServer } from './apiserver/server';
import { PODS, RESOURCE_TYPES } from './apiserver/store';
import { check, checkObject, checkStructural, KINDS } from './helpers/manifests';
import { ROOT } from './helpers/plexus';

const DEPLOY = join(ROOT, 'deploy');
const files = readdirSync(DEPLOY).filter((f) => f.endsWith('.yaml')).sort();
const docs: { file: string; doc: JsonObject }[] = files.flatMap((file) =>
  loadAll(readFileSync(join(DEPLOY, file), 'utf8'))
    .filter((d) => d !== null && d !== undefined)
    .map((doc) => {
      assert.ok(isObject(doc), `${file}: every document is an object`);
      return { file, doc };
    }),
);
const of = (kind: string) => docs.filter((d) => d.doc.kind === kind).map((d) => d.doc);
const meta = (o: JsonObject) => o.metadata as JsonObject;
const get = (o: unknown, ...path: (string | number)[]): unknown => path.reduce<unknown>((v, k) => (isObject(v) || Array.isArray(v) ? (v as Record<string | number, unknown>)[k] : undefined), o);

test('every manifest in deploy/ is a known kind that passes its schema', () => {
  assert.ok(docs.length >= 8, `found ${docs.length} documents in ${files.join(', ')}`);
  const problems = docs.flatMap(({ file, doc }) => checkObject(doc, file));
  assert.deepEqual(problems, []);
  for (const kind of ['Namespace', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'DaemonSet', 'CustomResourceDefinition']) assert.ok(of(kind).length > 0, `deploy/ has a ${kind}`);
});

test('the schema check finds typos, missing fields, wrong types and enums (it can fail)', () => {
  const ds = structuredClone(of('DaemonSet')[0]) as JsonObject;
  const c = get(ds, 'spec', 'template', 'spec', 'containers', 0) as JsonObject;
  (c.volumeMounts as JsonObject[])[0]!.mountPropogation = 'HostToContainer';
  delete c.name;
  (get(ds, 'spec', 'template', 'spec') as JsonObject).hostNetwork = 'yes';
  (get(ds, 'spec', 'template', 'spec') as JsonObject).dnsPolicy = 'ClusterFirstWithHostNetwork';
  (c.resources as JsonObject).requests = { cpu: 'lots' };
  assert.deepEqual(checkObject(ds, 'x'), [
    'x DaemonSet.spec.template.spec.hostNetwork: must be a boolean, got "yes"',
    'x DaemonSet.spec.template.spec.dnsPolicy: "ClusterFirstWithHostNetwork" is not one of ClusterFirst, ClusterFirstWithHostNet, Default, None',
    'x DaemonSet.spec.template.spec.containers[0].name: required',
    'x DaemonSet.spec.template.spec.containers[0].resources.requests.cpu: "lots" does not match /^[0-9]+(\\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/',
    'x DaemonSet.spec.template.spec.containers[0].volumeMounts[0].mountPropogation: unknown field',
  ]);
  assert.deepEqual(checkObject({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' } }, 'y'), [`y: kind "Pod" is not one deploy/ may use (${Object.keys(KINDS).join(', ')})`]);
  assert.deepEqual(checkStructural({ type: 'object', properties: { spec: { properties: { a: { type: 'array' } }, required: ['b'] } } }, 's'), [
    's.properties.spec: type is required in a structural schema',
    's.properties.spec.required: "b" is not a property',
    's.properties.spec.properties.a: an array needs items',
  ]);
  assert.deepEqual(check({ type: 'object', props: {}, required: ['a'] }, {}, 'z'), ['z.a: required']);
});

test('CRDs: named plural.group, one storage version, structural schemas', () => {
  for (const crd of of('CustomResourceDefinition')) {
    const spec = crd.spec as JsonObject;
    const names = spec.names as JsonObject;
    assert.equal(meta(crd).name, `${String(names.plural)}.${String(spec.group)}`);
    const versions = spec.versions as JsonObject[];
    assert.equal(versions.filter((v) => v.storage === true).length, 1, `${String(meta(crd).name)}: one storage version`);
    for (const v of versions) assert.deepEqual(checkStructural(get(v, 'schema', 'openAPIV3Schema'), `${String(meta(crd).name)} ${String(v.name)}`), []);
  }
});

test('CRDs: every custom resource the API server serves plexus is defined, with the same group, version, kind and scope', () => {
  const crds = of('CustomResourceDefinition');
  // Groups kube-apiserver serves itself (not CRDs): events.k8s.io, and coordination.k8s.io whose
  // Leases the test server keeps for replaying Whereabouts' protocol in bench/ipam-pool.ts.
  const builtIn = new Set(['events.k8s.io', 'coordination.k8s.io']);
  const custom = RESOURCE_TYPES.filter((t) => t.group !== '' && !builtIn.has(t.group));
  assert.ok(custom.length >= 1);
  for (const t of custom) {
    const crd = crds.find((c) => get(c, 'spec', 'group') === t.group && get(c, 'spec', 'names', 'plural') === t.resource);
    assert.ok(crd, `deploy/ defines ${t.resource}.${t.group}`);
    assert.equal(get(crd, 'spec', 'names', 'kind'), t.kind);
    assert.equal(get(crd, 'spec', 'scope'), 'Namespaced');
    const served = (get(crd, 'spec', 'versions') as JsonObject[]).find((v) => v.name === t.version);
    assert.equal(served?.served, true, `${t.resource}.${t.group} ${t.version} is served`);
  }
  // NPWG v1.3 §3.2: spec.config is optional (a NAD without it names a config on the node).
  const nad = crds.find((c) => meta(c).name === 'network-attachment-definitions.k8s.cni.cncf.io');
  const specSchema = get(nad, 'spec', 'versions', 0, 'schema', 'openAPIV3Schema', 'properties', 'spec') as JsonObject;
  assert.equal(get(specSchema, 'properties', 'config', 'type'), 'string');
  assert.equal(specSchema.required, undefined);
  assert.deepEqual(get(nad, 'spec', 'names', 'shortNames'), ['net-attach-def', 'nad']);
  for (const name of ['ippools.whereabouts.cni.cncf.io', 'overlappingrangeipreservations.whereabouts.cni.cncf.io', 'nodeslicepools.whereabouts.cni.cncf.io', 'ipamclaims.k8s.cni.cncf.io']) {
    assert.ok(crds.some((c) => meta(c).name === name), `deploy/ defines ${name}`);
  }
});

test('references: namespace, service account, role binding, selector, volumes, config map, probe port, node name', () => {
  const [ns] = of('Namespace');
  const nsName = meta(ns!).name;
  // The sweeper's Lease Role and its binding live in the pool namespace the agents sweep (the
  // daemon config's ipamGcNamespace, else kube-system); everything else in plexus's own.
  const daemonCfg = JSON.parse(String(get(of('ConfigMap')[0], 'data', 'daemon-config.json'))) as { ipamGcNamespace?: string };
  const poolNs = daemonCfg.ipamGcNamespace ?? 'kube-system';
  for (const { file, doc } of docs) {
    if (!KINDS[String(doc.kind)]?.namespaced) continue;
    const want = doc.kind === 'Role' || doc.kind === 'RoleBinding' ? poolNs : nsName;
    assert.equal(meta(doc).namespace, want, `${file} ${String(doc.kind)} ${String(meta(doc).name)} is in ${String(want)}`);
  }
  const [sa] = of('ServiceAccount');
  for (const rb of of('RoleBinding')) {
    assert.ok(of('Role').some((r) => meta(r).name === get(rb, 'roleRef', 'name') && meta(r).namespace === meta(rb).namespace), `RoleBinding ${String(meta(rb).name)} binds a Role of its namespace`);
    assert.deepEqual(rb.subjects, [{ kind: 'ServiceAccount', name: meta(sa!).name, namespace: nsName }]);
  }
  const [role] = of('ClusterRole');
  const [binding] = of('ClusterRoleBinding');
  assert.deepEqual(binding!.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: meta(role!).name });
  assert.deepEqual(binding!.subjects, [{ kind: 'ServiceAccount', name: meta(sa!).name, namespace: nsName }]);
  const [ds] = of('DaemonSet');
  const pod = get(ds, 'spec', 'template', 'spec') as JsonObject;
  assert.equal(pod.serviceAccountName, meta(sa!).name);
  assert.equal(pod.hostNetwork, true);
  const labels = get(ds, 'spec', 'template', 'metadata', 'labels') as JsonObject;
  for (const [k, v] of Object.entries(get(ds, 'spec', 'selector', 'matchLabels') as JsonObject)) assert.equal(labels[k], v, `the selector matches the template's ${k}`);
  const volumes = new Map((pod.volumes as JsonObject[]).map((v) => [v.name as string, v]));
  const containers = [...(pod.initContainers as JsonObject[]), ...(pod.containers as JsonObject[])];
  assert.equal(new Set(containers.map((c) => c.name)).size, containers.length, 'container names are unique');
  for (const c of containers) {
    for (const m of (c.volumeMounts as JsonObject[] | undefined) ?? []) assert.ok(volumes.has(m.name as string), `${String(c.name)} mounts volume ${String(m.name)}, which exists`);
  }
  for (const v of volumes.values()) {
    const cm = get(v, 'configMap', 'name');
    if (cm !== undefined) assert.ok(of('ConfigMap').some((c) => meta(c).name === cm), `config map ${String(cm)} exists`);
  }
  // The host paths plexus uses, at the same paths inside the agent (the config's paths are host paths).
  const agent = (pod.containers as JsonObject[]).find((c) => (c.args as string[])[0] === 'daemon') as JsonObject;
  const mounts = new Map((agent.volumeMounts as JsonObject[]).map((m) => [m.mountPath as string, m]));
  for (const p of ['/opt/cni/bin', '/etc/cni/net.d', '/run/netns', '/var/lib/cni', '/run/plexus', '/var/lib/kubelet/pod-resources']) {
    const m = mounts.get(p);
    assert.ok(m, `the agent mounts ${p}`);
    assert.equal(get(volumes.get(m.name as string), 'hostPath', 'path'), p, `${p} is the host's ${p}`);
  }
  assert.equal(mounts.get('/run/netns')?.mountPropagation, 'HostToContainer');
  assert.equal(get(agent, 'securityContext', 'privileged'), true);
  for (const name of ['PLEXUS_NODE_NAME', 'MULTUS_NODE_NAME']) {
    assert.deepEqual((agent.env as JsonObject[]).find((e) => e.name === name)?.valueFrom, { fieldRef: { fieldPath: 'spec.nodeName' } }, `${name} from the downward API`);
  }
  assert.ok(get(agent, 'resources', 'requests', 'cpu') && get(agent, 'resources', 'requests', 'memory'), 'the agent requests resources');
  const daemonConfig = JSON.parse(String(get(of('ConfigMap')[0], 'data', 'daemon-config.json'))) as { metricsPort: number; socketDir: string };
  assert.equal(get(agent, 'livenessProbe', 'httpGet', 'path'), '/healthz');
  assert.equal(get(agent, 'livenessProbe', 'httpGet', 'port'), daemonConfig.metricsPort, 'the probe port is the daemon config metricsPort');
  // The agent reads the ConfigMap's daemon-config.json, mounted where --config points, and its
  // socket dir is one of the host paths mounted above.
  const args = agent.args as string[];
  assert.equal(args[1], '--config');
  const configPath = args[2] ?? '';
  const configMount = mounts.get(configPath.slice(0, configPath.lastIndexOf('/')));
  assert.ok(configMount, `the agent mounts the dir of ${configPath}`);
  assert.equal(get(volumes.get(configMount.name as string), 'configMap', 'name'), meta(of('ConfigMap')[0]!).name);
  assert.equal(configPath.slice(configPath.lastIndexOf('/') + 1), 'daemon-config.json');
  assert.ok(mounts.has(daemonConfig.socketDir), `the agent mounts its socketDir ${daemonConfig.socketDir}`);
  const install = (pod.initContainers as JsonObject[])[0] as JsonObject;
  assert.equal((install.args as string[])[0], 'install');
  const dockerfile = readFileSync(join(DEPLOY, 'Dockerfile'), 'utf8');
  for (const c of containers) assert.ok(dockerfile.includes(`ln -s /usr/local/lib/plexus/plexus ${String((c.command as string[])[0])}`), `the image provides ${String((c.command as string[])[0])}`);
});

test('RBAC attributes are computed from the request as kube-apiserver does', () => {
  const at = (method: string, path: string) => {
    const a = requestAttributes(method, new URL(path, 'http://x'));
    return [a.isResource, a.verb, a.apiGroup, a.resource, a.subresource, a.namespace, a.name].join('|');
  };
  assert.equal(at('GET', '/api/v1/namespaces/ns/pods/web'), 'true|get||pods||ns|web');
  assert.equal(at('GET', '/api/v1/namespaces/ns/pods'), 'true|list||pods||ns|');
  assert.equal(at('GET', '/api/v1/pods?watch=true&fieldSelector=spec.nodeName%3Dn1'), 'true|watch||pods|||');
  assert.equal(at('GET', '/api/v1/watch/namespaces/ns/pods'), 'true|watch||pods||ns|');
  assert.equal(at('PATCH', '/api/v1/namespaces/ns/pods/web/status'), 'true|patch||pods|status|ns|web');
  assert.equal(at('PUT', '/api/v1/namespaces/ns/pods/web/status'), 'true|update||pods|status|ns|web');
  assert.equal(at('POST', '/api/v1/namespaces/ns/events'), 'true|create||events||ns|');
  assert.equal(at('DELETE', '/api/v1/namespaces/ns/pods'), 'true|deletecollection||pods||ns|');
  assert.equal(at('GET', '/api/v1/namespaces/ns'), 'true|get||namespaces|||ns');
  assert.equal(at('GET', '/apis/k8s.cni.cncf.io/v1/namespaces/ns/network-attachment-definitions/lan'), 'true|get|k8s.cni.cncf.io|network-attachment-definitions||ns|lan');
  assert.equal(at('PUT', '/apis/whereabouts.cni.cncf.io/v1alpha1/namespaces/kube-system/ippools/p'), 'true|update|whereabouts.cni.cncf.io|ippools||kube-system|p');
  assert.equal(at('GET', '/version'), 'false|get|||||');
  const rules: PolicyRule[] = [{ verbs: ['get'], apiGroups: [''], resources: ['pods', 'nodes/*'], resourceNames: [], nonResourceURLs: [] }];
  const ok = (method: string, path: string) => allows(rules, requestAttributes(method, new URL(path, 'http://x')));
  assert.equal(ok('GET', '/api/v1/namespaces/a/pods/p'), true);
  assert.equal(ok('GET', '/api/v1/namespaces/a/pods/p/status'), false, 'a subresource needs its own rule');
  assert.equal(ok('GET', '/api/v1/nodes/n/proxy'), true, 'resource/* covers subresources');
  assert.equal(ok('GET', '/api/v1/namespaces/a/pods'), false, 'get does not grant list');
  assert.equal(ok('GET', '/apis/apps/v1/namespaces/a/pods/p'), false, 'the API group must match');
  assert.equal(ok('GET', '/version'), true, 'public info is readable by everyone');
});

test('the test API server enforces deploy/10-rbac.yaml by default: granted calls pass, others are 403 as in a cluster', async (t) => {
  const api = await startApiServer({ tls: true, token: 'T', tokenUser: 'system:serviceaccount:plexus:plexus', adminToken: 'A' });
  t.after(() => api.close());
  api.putPod({ metadata: { name: 'web', namespace: 'ns1' } });
  const call = (method: string, path: string, body?: string, contentType = 'application/json') =>
    rawRequest({ url: api.url, caPem: api.caPem }, method, path, { token: 'T', ...(body ? { body, contentType } : {}) });
  assert.equal((await call('GET', '/api/v1/namespaces/ns1/pods/web')).status, 200);
  assert.equal((await call('PATCH', '/api/v1/namespaces/ns1/pods/web/status', '{"metadata":{"annotations":{"a":"b"}}}', 'application/merge-patch+json')).status, 200);
  assert.equal((await call('GET', '/apis/k8s.cni.cncf.io/v1/namespaces/ns1/network-attachment-definitions/x')).status, 404);
  // The agent's caches list pods; nothing in plexus lists events.
  assert.equal((await call('GET', '/api/v1/namespaces/ns1/pods')).status, 200);
  const list = await call('GET', '/api/v1/namespaces/ns1/events');
  assert.equal(list.status, 403);
  assert.equal(
    list.json.message,
    'events is forbidden: User "system:serviceaccount:plexus:plexus" cannot list resource "events" in API group "" in the namespace "ns1"',
  );
  const del = await call('DELETE', '/api/v1/namespaces/ns1/pods/web');
  assert.equal(del.status, 403);
  assert.match(String(del.json.message), /^pods "web" is forbidden: .* cannot delete resource "pods"/);
  assert.equal((await call('POST', '/apis/events.k8s.io/v1/namespaces/ns1/events', '{"metadata":{"name":"e"}}')).status, 403);
  assert.equal(api.getPod('ns1', 'web') !== undefined, true, 'the denied DELETE changed nothing');
  // The admin who sets the world up (kubectl's system:masters) is not held to plexus's role.
  const admin = await rawRequest({ url: api.url, caPem: api.caPem }, 'GET', '/api/v1/namespaces/ns1/pods', { token: 'A' });
  assert.equal(admin.status, 200);
  assert.equal(api.requests().at(-1)?.user, 'kubernetes-admin');
  assert.equal(PODS.resource, 'pods');
});

test('the sweeper Lease is granted in the pool namespace only, and only that Lease is read or renewed', () => {
  const rules = loadClusterRole();
  const ok = (method: string, path: string) => allows(rules, requestAttributes(method, new URL(path, 'http://x')));
  const leases = '/apis/coordination.k8s.io/v1/namespaces';
  assert.equal(ok('GET', `${leases}/kube-system/leases/plexus-ipam-gc`), true);
  assert.equal(ok('PUT', `${leases}/kube-system/leases/plexus-ipam-gc`), true);
  assert.equal(ok('POST', `${leases}/kube-system/leases`), true);
  assert.equal(ok('GET', `${leases}/default/leases/plexus-ipam-gc`), false, 'a Role grants nothing outside its namespace');
  assert.equal(ok('PUT', `${leases}/kube-system/leases/kube-controller-manager`), false, 'another component\'s Lease is not ours to renew');
  assert.equal(ok('DELETE', `${leases}/kube-system/leases/plexus-ipam-gc`), false);
  assert.equal(ok('GET', `${leases}/kube-system/leases`), false, 'no list');
});

test('every ClusterRole rule names a resource the code uses (no rule kept for code that is gone)', () => {
  const src: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(dir, e.name));
      else if (e.name.endsWith('.ts')) src.push(readFileSync(join(dir, e.name), 'utf8'));
    }
  };
  walk(join(ROOT, 'src'));
  walk(join(ROOT, 'plugins'));
  const code = src.join('\n');
  for (const rule of loadClusterRole()) {
    for (const r of rule.resources) {
      const [resource, sub] = r.split('/');
      assert.ok(code.includes(`/${resource}`), `some code builds a path with /${resource} (rule ${r})`);
      if (sub) assert.ok(code.includes(`'${sub}'`), `some code names the ${sub} subresource (rule ${r})`);
      for (const g of rule.apiGroups) if (g) assert.ok(code.includes(`/apis/${g}/`), `some code calls API group ${g}`);
    }
  }
});
