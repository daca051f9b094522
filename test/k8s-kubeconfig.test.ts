// Kubeconfig and in-cluster parsing: what is read, from where, and errors that name the field.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { dump } from 'js-yaml';
import { CniError, Code } from '../src/cni/errors';
import { bearerToken, inClusterAccess, loadKubeconfig } from '../src/k8s/kubeconfig';

const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const b64 = (s: string) => Buffer.from(s).toString('base64');

function tmp(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'plexus-kubeconfig-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

type Obj = Record<string, unknown>;

function write(dir: string, cluster: Obj, user: Obj | undefined, extra: Obj = {}): string {
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'other', cluster: { server: 'https://wrong:1' } }, { name: 'c', cluster }],
    users: user ? [{ name: 'u', user }] : [],
    contexts: [{ name: 'ctx', context: { cluster: 'c', ...(user ? { user: 'u' } : {}) } }],
    'current-context': 'ctx',
    ...extra,
  };
  const path = join(dir, 'kubeconfig');
  writeFileSync(path, dump(doc));
  return path;
}

function rejectsWith(fn: () => unknown, code: number, message: string | RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CniError, `expected CniError, got ${String(e)}`);
    assert.equal(e.code, code);
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
}

test('current context selects cluster and user; CA and client cert files resolve against the kubeconfig dir', (t) => {
  const dir = tmp(t);
  mkdirSync(join(dir, 'pki'));
  writeFileSync(join(dir, 'pki', 'ca.crt'), PEM);
  writeFileSync(join(dir, 'pki', 'c.crt'), 'CERT');
  writeFileSync(join(dir, 'pki', 'c.key'), 'KEY');
  const path = write(dir, { server: 'https://10.0.0.1:6443/prefix', 'certificate-authority': 'pki/ca.crt', 'tls-server-name': 'api.local' }, {
    'client-certificate': 'pki/c.crt',
    'client-key': join(dir, 'pki', 'c.key'),
    token: ' abc \n',
  });
  const a = loadKubeconfig(path);
  assert.equal(a.source, `kubeconfig ${path}`);
  assert.equal(a.server.href, 'https://10.0.0.1:6443/prefix');
  assert.equal(a.ca, PEM);
  assert.equal(a.tlsServerName, 'api.local');
  assert.deepEqual([a.clientCert, a.clientKey, a.token, a.insecureSkipTlsVerify], ['CERT', 'KEY', 'abc', false]);
});

test('*-data fields are decoded; data wins over a file', (t) => {
  const dir = tmp(t);
  const path = write(dir, { server: 'https://h:1', 'certificate-authority-data': b64(PEM), 'certificate-authority': 'missing.crt' }, {
    'client-certificate-data': b64('-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----'),
    'client-key-data': b64('-----BEGIN EC PRIVATE KEY-----\nY\n-----END EC PRIVATE KEY-----'),
  });
  const a = loadKubeconfig(path);
  assert.equal(a.ca, PEM);
  assert.match(a.clientCert ?? '', /BEGIN CERTIFICATE/);
  assert.match(a.clientKey ?? '', /BEGIN EC PRIVATE KEY/);
});

test('tokenFile is read on every call, so a rotated token is used at once', (t) => {
  const dir = tmp(t);
  writeFileSync(join(dir, 'token'), 'first\n');
  const a = loadKubeconfig(write(dir, { server: 'http://h:1' }, { tokenFile: 'token' }));
  assert.equal(bearerToken(a), 'first');
  writeFileSync(join(dir, 'token'), 'second');
  assert.equal(bearerToken(a), 'second');
  rmSync(join(dir, 'token'));
  rejectsWith(() => bearerToken(a), Code.IOFailure, new RegExp(`users\\[0\\]\\.user\\.tokenFile: file ${dir}/token not readable: ENOENT`));
  // With an inline token as well, client-go falls back to it when the file is unreadable.
  const both = loadKubeconfig(write(dir, { server: 'http://h:1' }, { tokenFile: 'token', token: 'inline' }));
  assert.equal(bearerToken(both), 'inline');
});

test('errors name the kubeconfig file and the field', (t) => {
  const dir = tmp(t);
  const cases: [Obj, Obj | undefined, Obj, number, string | RegExp][] = [
    [{ server: 'https://h:1' }, { 'client-certificate': 'c.crt', 'client-key': 'nope.key' }, {}, Code.IOFailure, /users\[0\]\.user\.client-certificate: file .*c\.crt not readable: ENOENT/],
    [{ server: 'https://h:1' }, {}, { 'current-context': '' }, Code.InvalidConfig, 'current-context: must be set'],
    [{ server: 'https://h:1' }, {}, { 'current-context': 'gone' }, Code.InvalidConfig, 'contexts: no entry named "gone" (referenced by current-context)'],
    [{}, {}, {}, Code.InvalidConfig, 'clusters[1].cluster.server: must be a string, got nothing'],
    [{ server: 'ftp://h' }, {}, {}, Code.InvalidConfig, 'clusters[1].cluster.server: scheme must be https or http, got ftp:'],
    [{ server: 'https://h:1', 'certificate-authority-data': 'not base64!' }, {}, {}, Code.InvalidConfig, 'clusters[1].cluster.certificate-authority-data: must be base64 of a PEM block'],
    [{ server: 'https://h:1', 'certificate-authority-data': b64(PEM), 'insecure-skip-tls-verify': true }, {}, {}, Code.InvalidConfig, /clusters\[1\]\.cluster\.insecure-skip-tls-verify: cannot be combined/],
    [{ server: 'https://h:1' }, { exec: { command: 'aws' } }, {}, Code.InvalidConfig, /users\[0\]\.user\.exec: not supported by plexus/],
    [{ server: 'https://h:1' }, { 'client-certificate-data': b64(PEM) }, {}, Code.InvalidConfig, 'users[0].user.client-key: must be set together with client-certificate'],
    [{ server: 'https://h:1' }, { token: 42 }, {}, Code.InvalidConfig, 'users[0].user.token: must be a string, got number 42'],
  ];
  for (const [cluster, user, extra, code, msg] of cases) {
    const path = write(dir, cluster, user, extra);
    const want = typeof msg === 'string' ? `kubeconfig ${path}: ${msg}` : new RegExp(`^kubeconfig ${path}: ${msg.source}`);
    rejectsWith(() => loadKubeconfig(path), code, want);
  }
  writeFileSync(join(dir, 'kubeconfig'), 'users: [\n  token: secret-value\n');
  assert.throws(() => loadKubeconfig(join(dir, 'kubeconfig')), (e: unknown) => {
    assert.ok(e instanceof CniError && /invalid YAML at line \d+/.test(e.message), String(e));
    assert.doesNotMatch(e.message, /secret-value/, 'YAML errors must not quote the file');
    return true;
  });
  rejectsWith(() => loadKubeconfig(join(dir, 'absent')), Code.IOFailure, `kubeconfig ${join(dir, 'absent')}: not readable: ENOENT`);
});

test('in-cluster: service host/port from env, token and CA from the service account dir', (t) => {
  const dir = tmp(t);
  writeFileSync(join(dir, 'token'), 'sa-token\n');
  writeFileSync(join(dir, 'ca.crt'), PEM);
  const a = inClusterAccess({ KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' }, dir);
  assert.equal(a.server.href, 'https://[fd00::1]/');
  assert.equal(a.ca, PEM);
  assert.equal(bearerToken(a), 'sa-token');
  writeFileSync(join(dir, 'token'), 'rotated');
  assert.equal(bearerToken(a), 'rotated');
  rejectsWith(() => inClusterAccess({}, dir), Code.InvalidConfig, /KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set/);
  rmSync(join(dir, 'ca.crt'));
  assert.equal(inClusterAccess({ KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' }, dir).ca, undefined, 'no CA: system roots');
  rmSync(join(dir, 'token'));
  rejectsWith(() => inClusterAccess({ KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' }, dir), Code.IOFailure, /service account token: file .*token not readable/);
});
