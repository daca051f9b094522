// TLS to the API server without Node 20's root store. The first SecureContext built with a `ca`
// (or with none) parses Node's ~140 bundled root certificates: ~25 ms of CPU in every one-shot ADD
// (docs/decisions.md §6), spent on certificates a kubeconfig's CA never needs. A context built
// with `ca: []` skips that (~1.5 ms), but then OpenSSL has no trust anchor and cannot verify.
//
// So the handshake runs with an empty store and the chain is checked here, before the socket is
// handed to HTTP, so not a byte (no bearer token) is written to an unverified server. The check is
// a fast path that only ever accepts what OpenSSL would accept: the Kubernetes case, a server
// certificate signed directly by a CA of the kubeconfig, with only the common extensions and
// algorithms. Anything else it cannot prove (intermediates, unusual extensions, a wrong CA, a
// wrong name) goes to the standard path: a second handshake with Node's own verification, whose
// verdict and error stand. Never a weaker check; at worst the cost of today's path.
import { X509Certificate } from 'node:crypto';
import * as tls from 'node:tls';
import type { Duplex } from 'node:stream';

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
// Extensions whose meaning the checks below cover. Any other critical one, and name constraints
// or Netscape cert types even when not critical, send the connection to the standard path.
const UNDERSTOOD = new Set(['2.5.29.19', '2.5.29.15', '2.5.29.37', '2.5.29.17', '2.5.29.14', '2.5.29.35']);
const REFUSED_ANYWHERE = new Set(['2.5.29.30', '2.16.840.1.113730.1.1']);
// Signature algorithms OpenSSL accepts at every security level: SHA-2 with RSA or ECDSA, Ed25519.
const SIGNATURES = new Set([
  '1.2.840.113549.1.1.11', '1.2.840.113549.1.1.12', '1.2.840.113549.1.1.13',
  '1.2.840.10045.4.3.2', '1.2.840.10045.4.3.3', '1.2.840.10045.4.3.4',
  '1.3.101.112',
]);
// keyUsage bits OpenSSL's TLS-server purpose accepts in a leaf: digitalSignature, keyEncipherment, keyAgreement.
const KU_TLS = 0x80 | 0x20 | 0x08;

interface Tlv {
  tag: number;
  start: number; // first content byte
  end: number;
}

function tlv(b: Buffer, at: number): Tlv {
  const tag = b[at]!;
  let len = b[at + 1]!;
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new Error('DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + b[start + i]!;
    start += n;
  }
  if (start + len > b.length) throw new Error('DER overrun');
  return { tag, start, end: start + len };
}

function children(b: Buffer, t: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = t.start; at < t.end; ) {
    const c = tlv(b, at);
    out.push(c);
    at = c.end;
  }
  return out;
}

function oid(b: Buffer, t: Tlv): string {
  const first = b[t.start]!;
  const parts = [Math.min(2, Math.floor(first / 40)), first - Math.min(2, Math.floor(first / 40)) * 40];
  let v = 0;
  for (let i = t.start + 1; i < t.end; i++) {
    v = v * 128 + (b[i]! & 0x7f);
    if (!(b[i]! & 0x80)) {
      parts.push(v);
      v = 0;
    }
  }
  return parts.join('.');
}

export interface CertFacts {
  signature: string;
  extensions: Array<{ id: string; critical: boolean; value: Buffer }>;
}

/** The signature algorithm and the extensions of a DER certificate (RFC 5280 §4.1). */
export function certFacts(der: Buffer): CertFacts {
  const cert = children(der, tlv(der, 0));
  const [tbs, sigAlg] = cert;
  if (!tbs || !sigAlg) throw new Error('not a certificate');
  const signature = oid(der, children(der, sigAlg)[0]!);
  const extensions: CertFacts['extensions'] = [];
  const exts = children(der, tbs).find((c) => c.tag === 0xa3);
  if (exts) {
    for (const e of children(der, children(der, exts)[0]!)) {
      const f = children(der, e);
      const critical = f.length === 3 && f[1]!.tag === 0x01 && der[f[1]!.start] !== 0;
      const value = f[f.length - 1]!;
      extensions.push({ id: oid(der, f[0]!), critical, value: der.subarray(value.start, value.end) });
    }
  }
  return { signature, extensions };
}

/** keyUsage bits of the first byte, or undefined when the extension is absent. */
function keyUsage(facts: CertFacts): number | undefined {
  const ku = facts.extensions.find((e) => e.id === '2.5.29.15');
  if (!ku) return undefined;
  const bits = tlv(ku.value, 0);
  return bits.end - bits.start >= 2 ? ku.value[bits.start + 1]! : 0;
}

function current(x: X509Certificate, now: number): boolean {
  return Date.parse(x.validFrom) <= now && now <= Date.parse(x.validTo);
}

function plainCert(x: X509Certificate, facts: CertFacts): string | undefined {
  if (!SIGNATURES.has(facts.signature)) return `signature algorithm ${facts.signature}`;
  for (const e of facts.extensions) {
    if (REFUSED_ANYWHERE.has(e.id) || (e.critical && !UNDERSTOOD.has(e.id))) return `extension ${e.id}`;
  }
  if (x.keyUsage && !x.keyUsage.includes(SERVER_AUTH)) return 'extended key usage without serverAuth';
  const key = x.publicKey;
  if (key.asymmetricKeyType === 'rsa') {
    if ((key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) return 'RSA key under 2048 bits';
  } else if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve ?? '';
    if (!['prime256v1', 'secp384r1', 'secp521r1'].includes(curve)) return `EC curve ${curve}`;
  } else if (key.asymmetricKeyType !== 'ed25519') {
    return `key type ${key.asymmetricKeyType}`;
  }
  return undefined;
}

/** The CA certificates of a PEM bundle. */
export function parseAnchors(pem: string): X509Certificate[] {
  return (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((p) => new X509Certificate(p));
}

/**
 * Why the fast path cannot vouch for this server (undefined: verified). Accepts only a leaf that
 * is current, names `host`, is fit for a TLS server, and is signed directly by a current CA
 * certificate among `anchors` (or is one of them, self-signed).
 */
export function fastVerdict(leaf: X509Certificate, peer: tls.PeerCertificate, anchors: X509Certificate[], host: string, now = Date.now()): string | undefined {
  const leafFacts = certFacts(leaf.raw);
  const odd = plainCert(leaf, leafFacts);
  if (odd) return `server certificate: ${odd}`;
  const ku = keyUsage(leafFacts);
  if (ku !== undefined && !(ku & KU_TLS)) return 'server certificate: key usage not for TLS';
  if (!current(leaf, now)) return 'server certificate: not valid now';
  const nameError = tls.checkServerIdentity(host, peer);
  if (nameError) return `server certificate: ${nameError.message}`;
  for (const a of anchors) {
    if (a.fingerprint256 === leaf.fingerprint256) {
      if (leaf.checkIssued(leaf) && leaf.verify(leaf.publicKey)) return undefined;
      continue;
    }
    if (!a.ca || !current(a, now) || plainCert(a, certFacts(a.raw))) continue;
    if (leaf.checkIssued(a) && leaf.verify(a.publicKey)) return undefined;
  }
  return 'not signed directly by a CA of the kubeconfig';
}

export interface AnchoredTls {
  ca: string;
  cert?: string;
  key?: string;
  /** Called when the fast path gives way to Node's verification, with why. */
  onFallback?: (why: string) => void;
}

type ConnectCallback = (err: Error | null, socket?: Duplex) => void;

/**
 * An https.Agent `createConnection` that verifies the server against `ca` without loading the root
 * store, and falls back to Node's own verification when it cannot. The socket reaches the agent
 * (and HTTP writes) only once verified.
 */
export function anchoredConnect(o: AnchoredTls): (options: tls.ConnectionOptions, cb: ConnectCallback) => undefined {
  const anchors = parseAnchors(o.ca);
  const identity = { ...(o.cert && o.key ? { cert: o.cert, key: o.key } : {}) };
  let fast: tls.SecureContext | undefined;
  let slow: tls.SecureContext | undefined;
  return (options, cb) => {
    fast ??= tls.createSecureContext({ ca: [], ...identity });
    const host = options.servername || options.host || 'localhost';
    let done = false;
    const finish = (err: Error | null, s?: Duplex) => {
      if (done) return;
      done = true;
      cb(err, s);
    };
    const standard = () => {
      slow ??= tls.createSecureContext({ ca: o.ca, ...identity });
      const s = tls.connect({ ...options, secureContext: slow, rejectUnauthorized: true });
      s.once('secureConnect', () => finish(null, s));
      s.once('error', (err) => finish(err));
    };
    const s = tls.connect({ ...options, secureContext: fast, rejectUnauthorized: false });
    s.once('error', (err) => finish(err));
    s.once('secureConnect', () => {
      let why: string | undefined;
      try {
        // Not getPeerX509Certificate(): in Node 20 calling it first empties getPeerCertificate().
        const peer = s.getPeerCertificate();
        why = peer.raw ? fastVerdict(new X509Certificate(peer.raw), peer, anchors, host) : 'no server certificate';
      } catch (err) {
        why = `unreadable certificate: ${(err as Error).message}`;
      }
      if (!why) return finish(null, s);
      s.destroy();
      o.onFallback?.(why);
      standard();
    });
    return undefined;
  };
}
