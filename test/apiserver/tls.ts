// A throwaway PKI made with the openssl CLI: a CA, a server certificate for 127.0.0.1/localhost,
// and client certificates on demand. EC P-256 keys keep generation to a few tens of ms.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface CertFiles {
  certFile: string;
  keyFile: string;
  certPem: string;
  keyPem: string;
}

export interface TestPki {
  dir: string;
  caFile: string;
  caPem: string;
  server: CertFiles;
}

async function openssl(dir: string, args: string[]): Promise<void> {
  try {
    await run('openssl', args, { cwd: dir });
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`openssl ${args[0]} failed: ${e.stderr ?? e.message}`);
  }
}

function files(dir: string, base: string): CertFiles {
  const certFile = join(dir, `${base}.crt`);
  const keyFile = join(dir, `${base}.key`);
  return { certFile, keyFile, certPem: readFileSync(certFile, 'utf8'), keyPem: readFileSync(keyFile, 'utf8') };
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** Signs a new key pair with the CA at dir/ca.{crt,key}; `ext` lines go into the certificate. */
async function issue(dir: string, base: string, subject: string, ext: string[]): Promise<CertFiles> {
  await openssl(dir, ['req', '-new', ...EC, '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', subject]);
  writeFileSync(join(dir, `${base}.ext`), ext.join('\n') + '\n');
  await openssl(dir, [
    'x509', '-req', '-in', `${base}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key',
    '-set_serial', '0x' + randomBytes(8).toString('hex'), '-days', '2', '-out', `${base}.crt`, '-extfile', `${base}.ext`,
  ]);
  return files(dir, base);
}

export async function createPki(dir: string): Promise<TestPki> {
  await openssl(dir, [
    'req', '-x509', ...EC, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=plexus-test-ca',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  const server = await issue(dir, 'server', '/CN=kube-apiserver', [
    'subjectAltName=IP:127.0.0.1,DNS:localhost',
    'basicConstraints=CA:FALSE',
    'keyUsage=critical,digitalSignature',
    'extendedKeyUsage=serverAuth',
  ]);
  const caFile = join(dir, 'ca.crt');
  return { dir, caFile, caPem: readFileSync(caFile, 'utf8'), server };
}

let clientSeq = 0;

/** A client certificate the way kube-apiserver reads it: CN is the user, each O a group. */
export async function issueClientCert(pki: TestPki, user: string, groups: string[] = []): Promise<CertFiles> {
  const subject = '/' + [...groups.map((g) => `O=${g}`), `CN=${user}`].join('/');
  return issue(pki.dir, `client-${++clientSeq}`, subject, ['basicConstraints=CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=clientAuth']);
}

/** A client certificate no CA of ours signed: the server must refuse it. */
export async function selfSignedClientCert(pki: TestPki, user: string): Promise<CertFiles> {
  const base = `rogue-${++clientSeq}`;
  await openssl(pki.dir, ['req', '-x509', ...EC, '-keyout', `${base}.key`, '-out', `${base}.crt`, '-days', '2', '-subj', `/CN=${user}`]);
  return files(pki.dir, base);
}
