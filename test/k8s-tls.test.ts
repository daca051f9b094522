// The API server checked against the kubeconfig's CA without Node's root store (src/k8s/tls.ts):
// the fast path accepts the usual Kubernetes certificate, refuses every other one to the standard
// path, and nothing (no token) reaches a server that fails verification.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import * as tls from 'node:tls';
import { destroyAgents, KubeApiError, KubeClient } from '../src/k8s/client';
import { loadKubeconfig } from '../src/k8s/kubeconfig';
import { anchoredConnect, fastVerdict, parseAnchors } from '../src/k8s/tls';
import { startApiServer, type FakeApi } from './apiserver/server';

const POD = '/api/v1/namespaces/ns1/pods';

async function server(t: TestContext): Promise<FakeApi> {
  const api = await startApiServer({ tls: true, token: 'secret' });
  t.after(async () => {
    destroyAgents();
    await api.close();
  });
  return api;
}

function tmp(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'plexus-tls-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The server's certificate as a client sees it, from a handshake that verifies nothing. */
async function peerOf(api: FakeApi): Promise<tls.PeerCertificate> {
  const u = new URL(api.url);
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port: Number(u.port), ca: [], rejectUnauthorized: false }, () => {
      const peer = s.getPeerCertificate();
      s.destroy();
      resolve(peer);
    });
    s.on('error', reject);
  });
}

test('fast path: the test PKI server certificate is verified for its IP and DNS name, nothing else', async (t) => {
  const api = await server(t);
  const other = await server(t);
  const peer = await peerOf(api);
  const leaf = new X509Certificate(peer.raw);
  const anchors = parseAnchors(api.caPem!);
  assert.equal(fastVerdict(leaf, peer, anchors, '127.0.0.1'), undefined);
  assert.equal(fastVerdict(leaf, peer, anchors, 'localhost'), undefined);
  assert.match(fastVerdict(leaf, peer, anchors, 'evil.example') ?? '', /evil\.example/);
  assert.match(fastVerdict(leaf, peer, anchors, '127.0.0.2') ?? '', /127\.0\.0\.2/);
  assert.equal(fastVerdict(leaf, peer, parseAnchors(other.caPem!), '127.0.0.1'), 'not signed directly by a CA of the kubeconfig');
  assert.equal(fastVerdict(leaf, peer, [], '127.0.0.1'), 'not signed directly by a CA of the kubeconfig');
  const later = Date.parse(leaf.validTo) + 1000;
  assert.match(fastVerdict(leaf, peer, anchors, '127.0.0.1', later) ?? '', /not valid now/);
  // A bundle of several CAs: the right one anywhere in it is enough.
  assert.equal(fastVerdict(leaf, peer, parseAnchors(other.caPem! + api.caPem!), '127.0.0.1'), undefined);
});

test('a server that fails verification gets no request: a wrong CA, a wrong server name', async (t) => {
  const api = await server(t);
  const other = await server(t);
  const dir = tmp(t);
  const path = join(dir, 'kubeconfig');
  api.writeKubeconfig(path, { ca: 'data' });
  const good = loadKubeconfig(path);
  await new KubeClient(good).get(POD);
  assert.equal(api.connections(), 1, 'verified by the fast path: one handshake, no second one by the standard path');

  const wrongCa = new KubeClient({ ...good, ca: other.caPem! });
  const caErr = await wrongCa.get(POD).then(() => assert.fail('a wrong CA must fail'), (e: unknown) => e);
  assert.ok(caErr instanceof KubeApiError);
  assert.match(caErr.errno ?? '', /CERT|SIGNATURE|ISSUER/, 'the standard path gives OpenSSL\'s own error');

  const wrongName = new KubeClient({ ...good, tlsServerName: 'evil.example' });
  const nameErr = await wrongName.get(POD).then(() => assert.fail('a wrong name must fail'), (e: unknown) => e);
  assert.ok(nameErr instanceof KubeApiError);
  assert.match(nameErr.message, /evil\.example/);
  assert.equal(api.requests().length, 1, 'only the verified client sent a request');
});

function openssl(dir: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

test('a chain through an intermediate CA: the fast path steps aside, the standard path verifies it', async (t) => {
  const dir = tmp(t);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(dir, 'req', '-x509', ...ec, '-keyout', 'root.key', '-out', 'root.crt', '-days', '2', '-subj', '/CN=root',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign');
  writeFileSync(join(dir, 'int.ext'), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n');
  openssl(dir, 'req', '-new', ...ec, '-keyout', 'int.key', '-out', 'int.csr', '-subj', '/CN=intermediate');
  openssl(dir, 'x509', '-req', '-in', 'int.csr', '-CA', 'root.crt', '-CAkey', 'root.key', '-set_serial', '2', '-days', '2', '-out', 'int.crt', '-extfile', 'int.ext');
  writeFileSync(join(dir, 'leaf.ext'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  openssl(dir, 'req', '-new', ...ec, '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', '/CN=server');
  openssl(dir, 'x509', '-req', '-in', 'leaf.csr', '-CA', 'int.crt', '-CAkey', 'int.key', '-set_serial', '3', '-days', '2', '-out', 'leaf.crt', '-extfile', 'leaf.ext');
  const read = (f: string) => readFileSync(join(dir, f), 'utf8');
  const srv = tls.createServer({ key: read('leaf.key'), cert: read('leaf.crt') + read('int.crt') }, (c) => c.end('ok'));
  let connections = 0;
  srv.on('connection', () => connections++);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.after(() => srv.close());
  const port = (srv.address() as { port: number }).port;
  const why: string[] = [];
  const connect = anchoredConnect({ ca: read('root.crt'), onFallback: (w) => why.push(w) });
  const reply = await new Promise<string>((resolve, reject) => {
    connect({ host: '127.0.0.1', port }, (err, s) => {
      if (err || !s) return reject(err ?? new Error('no socket'));
      let text = '';
      s.on('data', (c: Buffer) => (text += c.toString()));
      s.on('end', () => resolve(text));
      s.on('error', reject);
    });
  });
  assert.equal(reply, 'ok');
  assert.deepEqual(why, ['not signed directly by a CA of the kubeconfig']);
  assert.equal(connections, 2, 'one connection by each path');

  // The server's own (non-CA) certificate as the only anchor: refused by the standard path too.
  const refused = anchoredConnect({ ca: read('leaf.crt') });
  const err = await new Promise<Error | null>((resolve) => refused({ host: '127.0.0.1', port }, (e) => resolve(e)));
  assert.ok(err, 'a leaf that is not a CA anchors nothing');
});
