// Writes kubeconfig files pointing at the test apiserver, in the shapes clusters hand out:
// CA as a file or inline data, token inline or as a file, client certificate as files or data.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, relative } from 'node:path';
import { dump } from 'js-yaml';

export interface KubeconfigOptions {
  /** Inline token; defaults to the server's current token. null writes none. */
  token?: string | null;
  tokenFile?: string;
  clientCert?: { certFile: string; keyFile: string; certPem: string; keyPem: string };
  /** Embed the client certificate as *-data instead of file paths. */
  clientCertData?: boolean;
  /** How the CA is given; default 'file' on TLS servers. */
  ca?: 'file' | 'data' | 'none';
  insecureSkipTlsVerify?: boolean;
  /** Write file paths relative to the kubeconfig's directory. */
  relativePaths?: boolean;
  server?: string;
  /** The context's namespace (Whereabouts keeps its pools there). */
  namespace?: string;
}

export interface ServerFacts {
  server: string;
  caFile?: string;
  caPem?: string;
  token?: string;
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

export function writeKubeconfigFile(path: string, facts: ServerFacts, o: KubeconfigOptions): void {
  const p = (file: string) => (o.relativePaths ? relative(dirname(path), file) : file);
  const cluster: Record<string, string | boolean> = { server: o.server ?? facts.server };
  const caMode = o.ca ?? (facts.caFile ? 'file' : 'none');
  if (caMode === 'file' && facts.caFile) cluster['certificate-authority'] = p(facts.caFile);
  if (caMode === 'data' && facts.caPem) cluster['certificate-authority-data'] = b64(facts.caPem);
  if (o.insecureSkipTlsVerify) cluster['insecure-skip-tls-verify'] = true;

  const user: Record<string, string> = {};
  const token = o.token === undefined ? facts.token : o.token;
  if (token) user.token = token;
  if (o.tokenFile) user.tokenFile = p(o.tokenFile);
  if (o.clientCert && o.clientCertData) {
    user['client-certificate-data'] = b64(o.clientCert.certPem);
    user['client-key-data'] = b64(o.clientCert.keyPem);
  } else if (o.clientCert) {
    user['client-certificate'] = p(o.clientCert.certFile);
    user['client-key'] = p(o.clientCert.keyFile);
  }
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'test', cluster }],
    users: [{ name: 'plexus', user }],
    contexts: [{ name: 'plexus@test', context: { cluster: 'test', user: 'plexus', ...(o.namespace ? { namespace: o.namespace } : {}) } }],
    'current-context': 'plexus@test',
  };
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, dump(doc, { lineWidth: -1 }), { mode: 0o600 });
}
