// A few lines of kubectl: the demo creates and reads objects over HTTPS with the bearer token,
// the same way plexus reaches the API, so the demo shows what a cluster would really hold.
import * as https from 'node:https';

export type Obj = Record<string, unknown>;

export class Kube {
  constructor(
    private readonly url: string,
    private readonly ca: string,
    private readonly token: string,
  ) {}

  async create(path: string, obj: Obj): Promise<Obj> {
    return this.request('POST', path, obj);
  }

  async get(path: string): Promise<Obj> {
    return this.request('GET', path);
  }

  private request(method: string, path: string, body?: Obj): Promise<Obj> {
    const text = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = https.request(
        new URL(path, this.url),
        {
          method,
          ca: this.ca,
          // No keep-alive agent: nothing may hold the event loop open once the demo is done.
          agent: false,
          timeout: 10_000,
          headers: {
            Authorization: `Bearer ${this.token}`,
            Accept: 'application/json',
            ...(text === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) }),
          },
        },
        (res) => {
          let data = '';
          res.setEncoding('utf8').on('data', (c: string) => (data += c));
          res.on('end', () => {
            let parsed: Obj;
            try {
              parsed = JSON.parse(data) as Obj;
            } catch {
              reject(new Error(`${method} ${path}: HTTP ${res.statusCode}, not JSON: ${data.slice(0, 200)}`));
              return;
            }
            const code = res.statusCode ?? 0;
            if (code >= 400) reject(new Error(`${method} ${path}: HTTP ${code}: ${String(parsed.message ?? data)}`));
            else resolve(parsed);
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer in 10 s`)));
      req.on('error', reject);
      req.end(text);
    });
  }
}
