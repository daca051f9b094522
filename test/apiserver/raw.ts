// Bare HTTP(S) requests for testing the test apiserver itself, independent of src/k8s.
import * as http from 'node:http';
import * as https from 'node:https';
import { isObject, type JsonObject } from '../../src/cni/validate';

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  /** The body as an object; {} when it is not a JSON object. */
  json: JsonObject;
}

export interface RawOptions {
  body?: string | object;
  contentType?: string;
  token?: string;
  cert?: { certPem: string; keyPem: string };
  /** A keep-alive agent to reuse connections; by default every request gets its own. */
  agent?: http.Agent;
}

export function rawRequest(api: { url: string; caPem?: string }, method: string, path: string, o: RawOptions = {}): Promise<RawResponse> {
  const url = new URL(path, api.url);
  const body = o.body === undefined ? undefined : typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
  const headers: http.OutgoingHttpHeaders = {};
  if (o.token !== undefined) headers.Authorization = `Bearer ${o.token}`;
  if (body !== undefined) {
    headers['Content-Type'] = o.contentType ?? 'application/json';
    headers['Content-Length'] = Buffer.byteLength(body);
  }
  const tls = url.protocol === 'https:';
  const options: https.RequestOptions = { method, headers, agent: o.agent ?? false };
  if (tls) {
    if (api.caPem) options.ca = api.caPem;
    if (o.cert) Object.assign(options, { cert: o.cert.certPem, key: o.cert.keyPem });
  }
  return new Promise((resolve, reject) => {
    const req = (tls ? https : http).request(url, options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: JsonObject = {};
        try {
          const v: unknown = JSON.parse(text);
          if (isObject(v)) json = v;
        } catch {
          // not JSON: callers look at text
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}
