// Where the API server is and how to authenticate to it: a kubeconfig file (what Multus's
// `kubeconfig` option names) or the in-cluster service account. Everything read from disk is
// validated here, and every error names the file and the field to fix.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { CniError, Code, errnoOf } from '../cni/errors';
import { Fields, isObject, type JsonObject } from '../cni/validate';
import { log } from '../log';
import { parseYamlLite } from './yaml-lite';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface ClusterAccess {
  /** Names the origin in errors: `kubeconfig /etc/...` or `in-cluster config`. */
  source: string;
  server: URL;
  /** PEM; when absent, Node's built-in roots verify the server. */
  ca?: string;
  insecureSkipTlsVerify: boolean;
  tlsServerName?: string;
  token?: string;
  /** Read again on every request, so a rotated token is picked up (never cached). */
  tokenFile?: { path: string; field: string };
  clientCert?: string;
  clientKey?: string;
  /** The current context's namespace, when it names one (Whereabouts keeps its objects there). */
  namespace?: string;
}

function readText(path: string, what: string, code: number = Code.IOFailure): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new CniError(code, `${what}: file ${path} not readable: ${errnoOf(err) ?? (err as Error).message}`);
  }
}

/** The bearer token to send now: the token file's current content, else the inline token. */
export function bearerToken(access: ClusterAccess): string | undefined {
  if (access.tokenFile) {
    const { path, field } = access.tokenFile;
    let text: string | undefined;
    try {
      text = readFileSync(path, 'utf8').trim();
    } catch (err) {
      // client-go falls back to the inline token when the file cannot be read.
      if (access.token) return access.token;
      throw new CniError(Code.IOFailure, `${access.source}: ${field}: file ${path} not readable: ${errnoOf(err) ?? (err as Error).message}`);
    }
    if (text) return text;
    if (access.token) return access.token;
    throw new CniError(Code.IOFailure, `${access.source}: ${field}: file ${path} is empty`);
  }
  return access.token;
}

function decodePem(f: Fields, key: string): string {
  const b64 = f.nonEmpty(key);
  const text = /^[A-Za-z0-9+/=\s]+$/.test(b64) ? Buffer.from(b64, 'base64').toString('utf8') : '';
  if (!text.includes('-----BEGIN ')) throw new CniError(Code.InvalidConfig, `${f.at(key)}: must be base64 of a PEM block`);
  return text;
}

/** Finds `name` in a kubeconfig list (`clusters`, `users`, `contexts`) and returns its body. */
function named(root: Fields, list: string, body: string, name: string, ref: string): Fields {
  const items = root.optArr(list) ?? [];
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    const at = `${list}[${i}]`;
    if (!isObject(item)) throw new CniError(Code.InvalidConfig, `${at}: must be an object`);
    const f = new Fields(item, at);
    if (f.optStr('name') === name) return f.has(body) ? f.obj_(body) : new Fields({}, `${at}.${body}`);
  }
  throw new CniError(Code.InvalidConfig, `${list}: no entry named ${JSON.stringify(name)} (referenced by ${ref})`);
}

function parseServer(raw: string, field: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new CniError(Code.InvalidConfig, `${field}: ${JSON.stringify(raw)} is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new CniError(Code.InvalidConfig, `${field}: scheme must be https or http, got ${url.protocol}`);
  }
  return url;
}

function fromKubeconfig(doc: JsonObject, baseDir: string): Omit<ClusterAccess, 'source'> {
  const root = new Fields(doc, '');
  const current = root.optStr('current-context');
  if (!current) throw new CniError(Code.InvalidConfig, 'current-context: must be set');
  const ctx = named(root, 'contexts', 'context', current, 'current-context');
  const clusterName = ctx.nonEmpty('cluster');
  const cluster = named(root, 'clusters', 'cluster', clusterName, ctx.at('cluster'));
  const userName = ctx.optStr('user');
  const user = userName ? named(root, 'users', 'user', userName, ctx.at('user')) : new Fields({}, 'user');
  const file = (f: Fields, key: string) => resolve(baseDir, f.nonEmpty(key));

  for (const key of ['proxy-url'] as const) {
    if (cluster.has(key)) throw new CniError(Code.InvalidConfig, `${cluster.at(key)}: not supported by plexus`);
  }
  for (const key of ['exec', 'auth-provider', 'username', 'password', 'as'] as const) {
    if (user.has(key)) throw new CniError(Code.InvalidConfig, `${user.at(key)}: not supported by plexus; use a token, tokenFile or client certificate`);
  }

  const out: Omit<ClusterAccess, 'source'> = {
    server: parseServer(cluster.nonEmpty('server'), cluster.at('server')),
    insecureSkipTlsVerify: cluster.bool('insecure-skip-tls-verify', false),
  };
  if (cluster.has('certificate-authority-data')) out.ca = decodePem(cluster, 'certificate-authority-data');
  else if (cluster.has('certificate-authority')) out.ca = readText(file(cluster, 'certificate-authority'), cluster.at('certificate-authority'));
  if (out.insecureSkipTlsVerify && out.ca) {
    // client-go refuses this combination too: it is never what the author meant.
    throw new CniError(Code.InvalidConfig, `${cluster.at('insecure-skip-tls-verify')}: cannot be combined with a certificate authority`);
  }
  const ns = ctx.optStr('namespace');
  if (ns) out.namespace = ns;
  const sni = cluster.optStr('tls-server-name');
  if (sni) out.tlsServerName = sni;

  const token = user.optStr('token');
  if (token) out.token = token.trim();
  if (user.has('tokenFile')) {
    out.tokenFile = { path: file(user, 'tokenFile'), field: user.at('tokenFile') };
    if (!out.token) readText(out.tokenFile.path, user.at('tokenFile')); // fail early, with the field's name
  }
  if (user.has('client-certificate-data')) out.clientCert = decodePem(user, 'client-certificate-data');
  else if (user.has('client-certificate')) out.clientCert = readText(file(user, 'client-certificate'), user.at('client-certificate'));
  if (user.has('client-key-data')) out.clientKey = decodePem(user, 'client-key-data');
  else if (user.has('client-key')) out.clientKey = readText(file(user, 'client-key'), user.at('client-key'));
  if (!!out.clientCert !== !!out.clientKey) {
    const missing = out.clientCert ? 'client-key' : 'client-certificate';
    throw new CniError(Code.InvalidConfig, `${user.at(missing)}: must be set together with ${out.clientCert ? 'client-certificate' : 'client-key'}`);
  }
  return out;
}

/** Parses the kubeconfig at `path`; relative file paths in it resolve against its directory. */
export function loadKubeconfig(path: string): ClusterAccess {
  const source = `kubeconfig ${path}`;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new CniError(Code.IOFailure, `${source}: not readable: ${errnoOf(err) ?? (err as Error).message}`);
  }
  try {
    let doc: unknown = parseYamlLite(text);
    try {
      if (doc === undefined) {
        // Outside the subset kubeconfigs are written in: js-yaml, loaded only then (~8 ms of CPU).
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const yaml = require('js-yaml') as typeof import('js-yaml');
        doc = yaml.load(text, { schema: yaml.CORE_SCHEMA, filename: path });
      }
    } catch (err) {
      // Only the position: js-yaml's message quotes the surrounding lines, which may hold a token.
      const e = err as { reason?: string; mark?: { line: number; column: number } };
      const at = e.mark ? ` at line ${e.mark.line + 1}, column ${e.mark.column + 1}` : '';
      throw new CniError(Code.InvalidConfig, `invalid YAML${at}: ${e.reason ?? 'parse error'}`);
    }
    if (!isObject(doc)) throw new CniError(Code.InvalidConfig, 'must be a YAML mapping');
    return { source, ...fromKubeconfig(doc, dirname(resolve(path))) };
  } catch (err) {
    if (err instanceof CniError) throw new CniError(err.code, `${source}: ${err.message}`, err.details);
    throw err;
  }
}

/** rest.InClusterConfig: the service host/port from the environment and the mounted account. */
export function inClusterAccess(env: NodeJS.ProcessEnv = process.env, saDir: string = SERVICE_ACCOUNT_DIR): ClusterAccess {
  const source = 'in-cluster config';
  const host = env.KUBERNETES_SERVICE_HOST ?? '';
  const port = env.KUBERNETES_SERVICE_PORT ?? '';
  if (!host || !port) {
    throw new CniError(Code.InvalidConfig, `${source}: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set (or configure a kubeconfig)`);
  }
  const server = parseServer(`https://${host.includes(':') ? `[${host}]` : host}:${port}`, `${source}: KUBERNETES_SERVICE_HOST/PORT`);
  const tokenPath = resolve(saDir, 'token');
  readText(tokenPath, `${source}: service account token`);
  const access: ClusterAccess = { source, server, insecureSkipTlsVerify: false, tokenFile: { path: tokenPath, field: 'service account token' } };
  try {
    access.ca = readFileSync(resolve(saDir, 'ca.crt'), 'utf8');
  } catch (err) {
    // client-go logs and goes on with the system roots; so do we.
    log.warn('in-cluster CA not readable, using the system roots', { file: resolve(saDir, 'ca.crt'), err: errnoOf(err) });
  }
  return access;
}

/** The kubeconfig when one is configured, else the in-cluster service account. */
export function loadClusterAccess(kubeconfig: string | undefined): ClusterAccess {
  return kubeconfig ? loadKubeconfig(kubeconfig) : inClusterAccess();
}
