// `plexus <command>` for people, on the built executable: help and version answer in text (not as
// a CNI error), a runtime's call is never taken for a command, exit codes are 0 / 1 / 2 as
// documented, and `validate` names the exact field and NPWG rule for each broken input.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { SUPPORTED_VERSIONS } from '../src/cni/version';
import { cli } from './helpers/cli';
import { tempDir } from './helpers/host';
import { requireBuild, ROOT } from './helpers/plexus';

requireBuild();

interface Problem {
  path: string;
  message: string;
  rule?: string;
}
interface Report {
  file: string;
  valid: boolean;
  documents: { kind: string; name?: string; problems: Problem[]; notes: string[] }[];
}

const NAD = (name: string, config: unknown, extra = '') =>
  `apiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\nmetadata:\n  name: ${name}\n  namespace: team-a\n${extra}spec:\n  config: '${typeof config === 'string' ? config : JSON.stringify(config)}'\n`;
const MACVLAN = { cniVersion: '1.0.0', plugins: [{ type: 'macvlan', master: 'eth0', ipam: { type: 'host-local', subnet: '10.1.0.0/24' } }, { type: 'tuning' }] };

test('help: --help, -h and help print the commands on stdout and exit 0', async () => {
  for (const args of [['--help'], ['-h'], ['help']]) {
    const r = await cli(args);
    assert.equal(r.status, 0, r.stderr);
    for (const cmd of ['validate', 'explain', 'doctor', 'version', 'daemon']) assert.match(r.stdout, new RegExp(`^  ${cmd} `, 'm'), `${args[0]} lists ${cmd}`);
    assert.match(r.stdout, /Exit codes: 0 all good, 1 problems found, 2 usage error/);
    assert.equal(r.stderr, '');
  }
});

test('version: the package version, the commit it was built from, the CNI versions; text and -o json', async () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const head = execFileSync('git', ['-C', ROOT, 'rev-parse', '--short=12', 'HEAD'], { encoding: 'utf8' }).trim();
  const j = await cli(['version', '-o', 'json']);
  assert.equal(j.status, 0, j.stderr);
  const v = j.json<{ version: string; commit: string; cniVersion: string; cniVersions: string[] }>();
  assert.equal(v.version, pkg.version);
  // built from this checkout, possibly with uncommitted changes; the binary may predate HEAD
  assert.match(v.commit, /^[0-9a-f]{12}(-dirty)?$/);
  const built = v.commit.replace(/-dirty$/, '');
  assert.doesNotThrow(() => execFileSync('git', ['-C', ROOT, 'merge-base', '--is-ancestor', built, head]), `commit ${built} is HEAD ${head} or an ancestor of it`);
  assert.deepEqual(v.cniVersions, [...SUPPORTED_VERSIONS]);
  const t = await cli(['version']);
  assert.equal(t.status, 0);
  assert.equal(t.stdout, `plexus ${v.version}\ncommit ${v.commit}\nCNI versions ${v.cniVersions.join(', ')} (latest ${v.cniVersion})\n`);
  assert.equal((await cli(['--version'])).stdout, t.stdout);
});

test('no arguments, no CNI_*: what a reference plugin prints without CNI_COMMAND (about on stderr, exit 0)', async () => {
  const r = await cli([]);
  assert.equal(r.status, 0);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /^CNI plugin plexus \S+ \(commit \S+\)\nCNI protocol versions supported: /);
  assert.ok(r.stderr.includes(SUPPORTED_VERSIONS.join(', ')));
});

test("a runtime's call is never a command: CNI_COMMAND wins over argv, CNI_* without it is code 4", async () => {
  const v = await cli(['validate', '/nonexistent'], { env: { CNI_COMMAND: 'VERSION' } });
  assert.equal(v.status, 0);
  assert.deepEqual(v.json(), { cniVersion: '1.1.0', supportedVersions: [...SUPPORTED_VERSIONS] });
  const missing = await cli([], { env: { CNI_CONTAINERID: 'abc', CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin' }, stdin: '{"cniVersion":"1.1.0"}' });
  assert.equal(missing.status, 1);
  assert.deepEqual(missing.json(), { cniVersion: '1.1.0', code: 4, msg: 'CNI_COMMAND is not set' });
});

test('usage errors exit 2 and say what is wrong; the command is named', async () => {
  const cases: [string[], RegExp][] = [
    [['frobnicate'], /^plexus: unknown command "frobnicate"; run "plexus help" for the list\n$/],
    [['validate'], /^plexus validate: name a file, or - for stdin\nusage: plexus validate /],
    [['validate', '/nonexistent/nad.yaml'], /^plexus validate: cannot read \/nonexistent\/nad\.yaml: ENOENT/],
    [['validate', '--frob', 'x'], /^plexus validate: Unknown option '--frob'/],
    [['version', '-o', 'yaml'], /^plexus version: -o "yaml": want json or table\n/],
    [['doctor', 'extra'], /^plexus doctor: unexpected argument "extra"\n/],
    [['explain'], /^plexus explain: name one container ID/],
  ];
  for (const [args, err] of cases) {
    const r = await cli(args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, err, args.join(' '));
    assert.equal(r.stdout, '');
  }
});

test('validate: good inputs of every kind exit 0 with -o json valid', async (t) => {
  const dir = tempDir(t);
  const files: [string, string, string[]][] = [
    ['nad.yaml', NAD('macvlan-conf', MACVLAN), ['NetworkAttachmentDefinition']],
    ['two.yaml', `${NAD('a', { cniVersion: '1.0.0', type: 'bridge' })}---\n${NAD('b', { cniVersion: '0.3.1', type: 'macvlan', master: 'eth0' })}`, ['NetworkAttachmentDefinition', 'NetworkAttachmentDefinition']],
    ['nad-noconfig.json', JSON.stringify({ apiVersion: 'k8s.cni.cncf.io/v1', kind: 'NetworkAttachmentDefinition', metadata: { name: 'on-disk' } }), ['NetworkAttachmentDefinition']],
    ['10-bridge.conflist', JSON.stringify({ cniVersion: '1.1.0', name: 'cbr0', plugins: [{ type: 'bridge', ipam: { type: 'host-local', subnet: '10.9.0.0/16' } }, { type: 'portmap', capabilities: { portMappings: true } }] }), ['conflist']],
    ['00-plexus.conflist', JSON.stringify({ cniVersion: '1.1.0', name: 'multus-cni-network', plugins: [{ type: 'plexus', clusterNetwork: '/etc/cni/net.d/10-bridge.conflist', kubeconfig: '/etc/kubeconfig' }] }), ['conflist']],
    ['comma.txt', 'macvlan-conf, team-b/lan@net7\n', ['networks annotation']],
    ['json.txt', JSON.stringify([{ name: 'lan', ips: ['10.1.1.5/24'], mac: '02:00:00:00:00:01', 'default-route': ['10.1.1.1'] }]), ['networks annotation']],
    ['pod.yaml', 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  annotations:\n    k8s.v1.cni.cncf.io/networks: lan@net1\n', ['Pod']],
  ];
  for (const [name, text, kinds] of files) {
    writeFileSync(join(dir, name), text);
    const r = await cli(['validate', join(dir, name), '-o', 'json']);
    assert.equal(r.status, 0, `${name}: ${r.stdout}${r.stderr}`);
    const rep = r.json<Report>();
    assert.equal(rep.valid, true, name);
    assert.deepEqual(rep.documents.map((d) => d.kind), kinds, name);
    assert.deepEqual(rep.documents.flatMap((d) => d.problems), [], name);
  }
  // The same from stdin, and the table a person reads.
  const r = await cli(['validate', '-'], { stdin: NAD('macvlan-conf', MACVLAN) });
  assert.equal(r.status, 0);
  assert.match(r.stdout, /^DOCUMENT +FIELD +RULE +PROBLEM\nNetworkAttachmentDefinition team-a\/macvlan-conf +ok\n-: valid\n$/);
});

test('validate: each broken input names the exact field, the rule and the problem, exit 1', async (t) => {
  const dir = tempDir(t);
  const ann = (v: unknown) => JSON.stringify(v);
  const cases: { name: string; text: string; want: Problem }[] = [
    { name: 'a plugin without type', text: NAD('macvlan-conf', { ...MACVLAN, plugins: [MACVLAN.plugins[0], { tipe: 'tuning' }] }), want: { path: 'spec.config.plugins[1].type', message: 'must be a string, got nothing', rule: 'NPWG v1.3 §3.2' } },
    {
      name: 'a NAD name that is not a DNS-1123 label',
      text: NAD('Bad_Name', { cniVersion: '1.0.0', type: 'bridge' }),
      want: { path: 'metadata.name', message: '"Bad_Name" is not a valid network name: it must be a DNS-1123 label (lower-case letters, digits and "-", starting and ending with a letter or digit)', rule: 'NPWG v1.3 §3.3' },
    },
    { name: 'the wrong apiVersion', text: NAD('lan', { cniVersion: '1.0.0', type: 'bridge' }).replace('k8s.cni.cncf.io/v1', 'k8s.cni.cncf.io/v2'), want: { path: 'apiVersion', message: 'must be k8s.cni.cncf.io/v1, got string "k8s.cni.cncf.io/v2"', rule: 'NPWG v1.3 §3.1' } },
    { name: 'a spec key the NAD does not have', text: NAD('lan', { cniVersion: '1.0.0', type: 'bridge' }).replace('spec:\n', 'spec:\n  configs: x\n'), want: { path: 'spec.configs', message: 'unknown key: the spec has only config', rule: 'NPWG v1.3 §3.2' } },
    { name: 'an address that is not one', text: ann([{ name: 'lan', ips: ['10.1.1.300/24'] }]), want: { path: 'k8s.v1.cni.cncf.io/networks[0].ips[0]', message: '"10.1.1.300/24" is not an IP address', rule: 'NPWG v1.3 §4.1.2.1.3' } },
    { name: 'default-route twice', text: ann([{ name: 'a', 'default-route': ['10.0.0.1'] }, { name: 'b', 'default-route': [] }]), want: { path: 'k8s.v1.cni.cncf.io/networks[1].default-route', message: 'only one element may set default-route, element 0 already does', rule: 'NPWG v1.3 §4.1.2.1.9' } },
    { name: 'ips with an IPAMClaim', text: ann([{ name: 'a', ips: ['10.0.0.5'], 'ipam-claim-reference': 'c' }]), want: { path: 'k8s.v1.cni.cncf.io/networks[0].ipam-claim-reference', message: 'cannot be used together with ips', rule: 'NPWG v1.3 §4.1.2.1.11' } },
    { name: 'a comma-form reference with two slashes', text: 'lan,a//b', want: { path: 'k8s.v1.cni.cncf.io/networks[1]', message: '"a//b" has more than one "/"; want [namespace/]name[@interface]', rule: 'NPWG v1.3 §4.1.1' } },
    { name: 'hostPort 0', text: ann([{ name: 'a', portMappings: [{ hostPort: 0, containerPort: 80 }] }]), want: { path: 'k8s.v1.cni.cncf.io/networks[0].portMappings[0].hostPort', message: 'must be an integer from 1 to 65535, got number 0', rule: 'NPWG v1.3 §4.1.2.1.7' } },
    { name: 'a conflist at an unsupported version', text: JSON.stringify({ cniVersion: '9.9.9', name: 'n', plugins: [{ type: 'bridge' }] }), want: { path: 'cniVersion', message: 'incompatible CNI version: "9.9.9", plexus supports 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0', rule: 'CNI spec §1' } },
    {
      name: 'a plexus config with a delegate that is neither conf nor conflist',
      text: JSON.stringify({ cniVersion: '1.1.0', name: 'm', plugins: [{ type: 'plexus', delegates: [{ name: 'x' }] }] }),
      want: { path: 'plugins[0].delegates[0]', message: 'must have "type" (a conf) or "plugins" (a conflist)' },
    },
    {
      name: 'a pod asking for one interface name twice',
      text: 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: team-a\n  annotations:\n    k8s.v1.cni.cncf.io/networks: lan@net1,lan2@net1\n',
      want: { path: 'metadata.annotations.k8s.v1.cni.cncf.io/networks[1].interface', message: '"net1" is already requested by element 0', rule: 'NPWG v1.3 §4.1.2.1.5' },
    },
  ];
  for (const [i, c] of cases.entries()) {
    const file = join(dir, `case-${i}`);
    writeFileSync(file, c.text);
    const r = await cli(['validate', file, '-o', 'json']);
    assert.equal(r.status, 1, `${c.name}: ${r.stdout}${r.stderr}`);
    const rep = r.json<Report>();
    assert.equal(rep.valid, false, c.name);
    assert.deepEqual(rep.documents.flatMap((d) => d.problems), [c.want], c.name);
  }
});

test('validate: spec.config that is not JSON says so in the parser words', async (t) => {
  const file = join(tempDir(t), 'nad.yaml');
  writeFileSync(file, NAD('lan', '{"cniVersion":"1.0.0",'));
  const r = await cli(['validate', file, '-o', 'json']);
  assert.equal(r.status, 1);
  const [p, ...more] = r.json<Report>().documents.flatMap((d) => d.problems);
  assert.deepEqual(more, []);
  // the text after "invalid JSON: " is V8's and varies with the Node version the binary embeds
  assert.deepEqual({ ...p, message: p?.message.replace(/^(invalid JSON: ).+$/, '$1…') }, { path: 'spec.config', message: 'invalid JSON: …', rule: 'NPWG v1.3 §3.2' });
});

test('validate: several documents are judged one by one; the table names field, rule and problem', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'nads.yaml');
  writeFileSync(file, `${NAD('good', { cniVersion: '1.0.0', type: 'bridge' })}---\n${NAD('bad', { cniVersion: '1.0.0' })}`);
  const j = await cli(['validate', file, '-o', 'json']);
  assert.equal(j.status, 1);
  assert.deepEqual(
    j.json<Report>().documents.map((d) => [d.name, d.problems.map((p) => p.path)]),
    [['team-a/good', []], ['team-a/bad', ['spec.config.type']]],
  );
  const r = await cli(['validate', file]);
  assert.equal(r.status, 1);
  const lines = r.stdout.trimEnd().split('\n');
  assert.match(lines[0]!, /^DOCUMENT +FIELD +RULE +PROBLEM$/);
  assert.match(lines[1]!, /^NetworkAttachmentDefinition team-a\/good +ok$/);
  assert.match(lines[2]!, /^NetworkAttachmentDefinition team-a\/bad +spec\.config\.type +NPWG v1\.3 §3\.2 +must be a string, got nothing$/);
  assert.equal(lines[3], `${file}: 1 problem(s)`);
});

test('the CLI is out of every CNI call: only src/main.ts reaches src/cli, by a dynamic import after the CNI_COMMAND check', () => {
  // esbuild's record of the bundle (scripts/build.mjs): a dynamic import is a lazy initialiser,
  // so nothing under src/cli is evaluated unless main.ts takes the CLI branch.
  const meta = JSON.parse(readFileSync(join(ROOT, 'build', 'plexus.meta.json'), 'utf8')) as { inputs: Record<string, { imports: { path: string; kind: string }[] }> };
  const edges = Object.entries(meta.inputs).flatMap(([from, i]) => i.imports.filter((x) => x.path.startsWith('src/cli/') && !from.startsWith('src/cli/')).map((x) => `${from} ${x.kind} ${x.path}`));
  assert.deepEqual(edges, ['src/main.ts dynamic-import src/cli/index.ts']);
  const main = readFileSync(join(ROOT, 'src', 'main.ts'), 'utf8');
  assert.ok(main.indexOf("import('./cli/index')") > main.indexOf('process.env.CNI_COMMAND ||'), 'the CLI import comes after the CNI check');
});

test('validate: a pod given with the NADs it selects is planned as ADD plans it (capabilities, interface names)', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'app.yaml');
  const pod = (networks: unknown) => `apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: team-a\n  annotations:\n    k8s.v1.cni.cncf.io/networks: '${JSON.stringify(networks)}'\n`;
  const lan = NAD('lan', { cniVersion: '1.0.0', type: 'macvlan', master: 'eth0', ipam: { type: 'static' } });
  const withIps = NAD('lan-ips', { cniVersion: '1.0.0', type: 'macvlan', master: 'eth0', capabilities: { ips: true }, ipam: { type: 'static', capabilities: { ips: true } } });
  writeFileSync(file, `${lan}---\n${pod([{ name: 'lan', ips: ['10.1.1.5/24'] }])}`);
  let r = await cli(['validate', file, '-o', 'json']);
  assert.equal(r.status, 1, r.stdout);
  assert.deepEqual(r.json<Report>().documents.map((d) => [d.kind, d.problems]), [
    ['NetworkAttachmentDefinition', []],
    ['Pod', [{ path: 'network team-a/lan', message: 'the pod requests "ips" but no plugin of this network declares the "ips" capability', rule: 'NPWG v1.3 §4.1.2.1.3' }]],
  ]);
  // the capability declared: valid; the same NAD twice without interface names: net1, net2
  writeFileSync(file, `${withIps}---\n${pod([{ name: 'lan-ips', ips: ['10.1.1.5/24'] }, { name: 'lan-ips' }])}`);
  r = await cli(['validate', file, '-o', 'json']);
  assert.equal(r.status, 0, r.stdout);
  // the plan's own rule: a requested name equal to a generated one
  writeFileSync(file, `${withIps}---\n${pod([{ name: 'lan-ips' }, { name: 'lan-ips', interface: 'net1' }])}`);
  r = await cli(['validate', file, '-o', 'json']);
  assert.equal(r.status, 1, r.stdout);
  assert.deepEqual(r.json<Report>().documents[1]?.problems, [{ path: 'network team-a/lan-ips', message: 'interface name "net1" is already used by network team-a/lan-ips' }]);
});
