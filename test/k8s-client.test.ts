// The Kubernetes client over real HTTP(S) against the test apiserver: authentication, TLS trust,
// typed errors, retries inside a budget, timeouts, connection reuse.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { CniError, Code } from '../src/cni/errors';
import { destroyAgents, JSON_PATCH, KubeApiError, KubeClient, MERGE_PATCH } from '../src/k8s/client';
import { inClusterAccess, loadKubeconfig, type ClusterAccess } from '../src/k8s/kubeconfig';
import { startApiServer, type FakeApi, type FakeApiOptions, type KubeconfigOptions } from './apiserver/server';

const POD = '/api/v1/namespaces/ns1/pods';

// The client's own behaviour, on requests plexus's flows never make: no RBAC.
async function server(t: TestContext, opts: FakeApiOptions = {}): Promise<FakeApi> {
  const api = await startApiServer({ rbac: false, ...opts });
  t.after(async () => {
    destroyAgents();
    await api.close();
  });
  return api;
}

function tmp(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'plexus-client-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function access(t: TestContext, api: FakeApi, o: KubeconfigOptions = {}): ClusterAccess {
  const path = join(tmp(t), 'kubeconfig');
  api.writeKubeconfig(path, o);
  return loadKubeconfig(path);
}

async function apiError(p: Promise<unknown>): Promise<KubeApiError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof KubeApiError, `expected KubeApiError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the call to fail');
}

test('bearer token over TLS with the CA from a file; a 404 is a typed NotFound', async (t) => {
  const api = await server(t, { tls: true, token: 'secret' });
  api.putPod({ metadata: { name: 'p', namespace: 'ns1' } });
  const client = new KubeClient(access(t, api));
  const pod = await client.get(`${POD}/p`);
  assert.equal((pod.metadata as { name: string }).name, 'p');
  const err = await apiError(client.get(`${POD}/x`, { budgetMs: 2000 }));
  assert.deepEqual([err.status, err.reason, err.message, err.attempts, err.code], [404, 'NotFound', 'pods "x" not found', 1, Code.IOFailure]);
  assert.equal(err.details, `GET ${POD}/x: HTTP 404 NotFound`);
  assert.equal(api.requests().length, 2, '404 is not retried');
});

test('401 is not retried and the error carries no token', async (t) => {
  const api = await server(t, { tls: true, token: 'right' });
  const client = new KubeClient(access(t, api, { token: 'wrong-token-value' }));
  const err = await apiError(client.get(POD, { budgetMs: 2000 }));
  assert.deepEqual([err.status, err.reason, err.attempts], [401, 'Unauthorized', 1]);
  assert.equal(api.requests().length, 1);
  assert.doesNotMatch(JSON.stringify({ m: err.message, d: err.details }), /wrong-token-value/);
});

test('tokenFile rotation: the same client sends the new token after the file changes', async (t) => {
  const api = await server(t, { tls: true, token: 'one' });
  const dir = tmp(t);
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, 'one\n');
  const client = new KubeClient(access(t, api, { token: null, tokenFile, relativePaths: false }));
  await client.get(POD);
  api.setToken('two');
  assert.equal((await apiError(client.get(POD))).status, 401, 'server rotated, file not yet');
  writeFileSync(tokenFile, 'two\n');
  await client.get(POD);
  assert.deepEqual(api.requests().map((r) => r.status), [200, 401, 200]);
});

test('client certificates as files and as data authenticate; a foreign one does not', async (t) => {
  const api = await server(t, { tls: true, requireAuth: true });
  const cert = await api.mintClientCert('system:node:n1', ['system:nodes']);
  await new KubeClient(access(t, api, { clientCert: cert })).get(POD);
  await new KubeClient(access(t, api, { clientCert: cert, clientCertData: true, ca: 'data' })).get(POD);
  assert.deepEqual(api.requests().map((r) => r.user), ['system:node:n1', 'system:node:n1']);
  const rogue = await api.mintRogueClientCert('system:node:n1');
  assert.equal((await apiError(new KubeClient(access(t, api, { clientCert: rogue })).get(POD))).status, 401);
});

test('TLS trust: CA data works, a different CA fails without retries, insecure-skip-tls-verify works', async (t) => {
  const api = await server(t, { tls: true });
  const other = await server(t, { tls: true });
  await new KubeClient(access(t, api, { ca: 'data' })).get(POD);
  const wrongCa: ClusterAccess = { ...access(t, api), ca: other.caPem };
  const err = await apiError(new KubeClient(wrongCa).get(POD, { budgetMs: 2000 }));
  assert.equal(err.status, 0);
  assert.equal(err.attempts, 1, 'a certificate error is not transient');
  assert.match(err.errno ?? '', /CERT|SIGNATURE|SELF_SIGNED/);
  const noCa = { ...access(t, api, { ca: 'none' }) };
  assert.equal((await apiError(new KubeClient(noCa).get(POD))).status, 0, 'system roots do not trust the test CA');
  await new KubeClient(access(t, api, { ca: 'none', insecureSkipTlsVerify: true })).get(POD);
  assert.equal(api.requests().length, 2);
});

test('in-cluster config reaches the server with the service account token and CA', async (t) => {
  const api = await server(t, { tls: true, token: 'sa' });
  const dir = tmp(t);
  writeFileSync(join(dir, 'token'), 'sa');
  writeFileSync(join(dir, 'ca.crt'), api.caPem ?? '');
  const a = inClusterAccess({ KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(api.port) }, dir);
  await new KubeClient(a).get(POD);
  assert.equal(api.requests()[0]?.status, 200);
});

test('503 twice, then success, within the budget', async (t) => {
  const api = await server(t);
  api.inject({ status: 503, times: 2 });
  const retries: number[] = [];
  await new KubeClient(access(t, api)).get(POD, { budgetMs: 3000, onRetry: (e) => retries.push(e.status) });
  assert.deepEqual(retries, [503, 503]);
  assert.deepEqual(api.requests().map((r) => r.status), [503, 503, 200]);
});

test('budget exhausted: the last error, transient code 11, after several attempts and on time', async (t) => {
  const api = await server(t);
  api.failAll(503);
  const started = Date.now();
  const err = await apiError(new KubeClient(access(t, api)).get(POD, { budgetMs: 400 }));
  const took = Date.now() - started;
  assert.deepEqual([err.status, err.reason, err.code], [503, 'ServiceUnavailable', Code.TryAgainLater]);
  assert.ok(err.attempts >= 2, `attempts ${err.attempts}`);
  assert.ok(took < 400 + 1000, `took ${took} ms for a 400 ms budget`);
  assert.equal(api.requests().length, err.attempts);
});

test('429 with Retry-After longer than the budget gives up at once', async (t) => {
  const api = await server(t);
  api.inject({ status: 429, times: 5 });
  const err = await apiError(new KubeClient(access(t, api)).get(POD, { budgetMs: 500 }));
  assert.deepEqual([err.status, err.reason, err.retryAfterMs, err.attempts], [429, 'TooManyRequests', 1000, 1]);
});

test('connection reset and per-attempt timeouts are retried; with no budget they fail at once', async (t) => {
  const api = await server(t);
  const client = new KubeClient(access(t, api));
  api.inject({ times: 1, reset: true });
  const seen: string[] = [];
  await client.get(POD, { budgetMs: 2000, onRetry: (e) => seen.push(`${e.reason}:${e.errno ?? ''}`) });
  assert.deepEqual(seen, ['ConnectionFailed:ECONNRESET']);
  api.inject({ times: 1, delayMs: 30_000 });
  const timeout = await apiError(client.get(POD, { timeoutMs: 100 }));
  assert.deepEqual([timeout.status, timeout.reason, timeout.code], [0, 'Timeout', Code.TryAgainLater]);
  api.inject({ times: 1, delayMs: 30_000 });
  await client.get(POD, { timeoutMs: 100, budgetMs: 3000 });
});

test('connection refused is retried until the budget ends', async (t) => {
  const api = await startApiServer({ rbac: false });
  const a = access(t, api);
  await api.close();
  const err = await apiError(new KubeClient(a).get(POD, { budgetMs: 300 }));
  assert.deepEqual([err.status, err.errno], [0, 'ECONNREFUSED']);
  assert.ok(err.attempts >= 2, `attempts ${err.attempts}`);
});

test('non-Status error bodies and non-JSON success bodies are reported, not crashed on', async (t) => {
  const api = await server(t);
  const client = new KubeClient(access(t, api));
  api.inject({ times: 1, status: 502, body: '<html>Bad Gateway</html>' });
  const err = await apiError(client.get(POD));
  assert.deepEqual([err.status, err.reason, err.message], [502, '', 'HTTP 502: <html>Bad Gateway</html>']);
  api.inject({ times: 1, status: 200, body: 'not json' });
  await assert.rejects(client.get(POD), (e: unknown) => e instanceof CniError && e.code === Code.DecodeFailure && /invalid JSON/.test(e.message));
});

test('one keep-alive connection serves consecutive calls; a path prefix in the server URL is kept', async (t) => {
  const api = await server(t, { tls: true });
  const client = new KubeClient(access(t, api));
  await client.get(POD);
  await client.get(POD);
  await new KubeClient(access(t, api)).get(POD);
  assert.equal(api.connections(), 1);
  const prefixed = new KubeClient(access(t, api, { server: `${api.url}/k8s/clusters/c1/` }));
  assert.equal((await apiError(prefixed.get(POD))).status, 404);
  assert.equal(api.requests().at(-1)?.path, `/k8s/clusters/c1${POD}`);
});

test('writes: PUT conflicts are typed and not retried by default; patches send their content type', async (t) => {
  const api = await server(t);
  const client = new KubeClient(access(t, api));
  const created = await client.post(POD, { metadata: { name: 'p', annotations: { a: '1' } } });
  await client.patch(`${POD}/p`, { metadata: { annotations: { b: '2' } } }, MERGE_PATCH);
  const conflict = await apiError(client.put(`${POD}/p`, created, { budgetMs: 2000 }));
  assert.deepEqual([conflict.status, conflict.reason, conflict.attempts], [409, 'Conflict', 1]);
  const failedTest = await apiError(client.patch(`${POD}/p`, [{ op: 'test', path: '/metadata/annotations/a', value: 'x' }], JSON_PATCH));
  assert.deepEqual([failedTest.status, failedTest.reason], [422, 'Invalid']);
  assert.deepEqual(api.requests().map((r) => r.contentType), ['application/json', MERGE_PATCH, 'application/json', JSON_PATCH]);
});
