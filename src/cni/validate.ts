// Small validators for untrusted JSON. Each failure names the field path, so the CNI error a
// user sees says exactly what to fix. Hand-written rather than zod: see docs/decisions.md.
import { CniError, Code, type CniCode } from './errors';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };

export class Fields {
  constructor(
    readonly obj: JsonObject,
    readonly path: string,
    readonly code: CniCode = Code.InvalidConfig,
  ) {}

  private fail(key: string, want: string): never {
    throw new CniError(this.code, `${this.at(key)}: ${want}, got ${describe(this.obj[key])}`);
  }

  at(key: string): string {
    return this.path ? `${this.path}.${key}` : key;
  }

  has(key: string): boolean {
    return this.obj[key] !== undefined && this.obj[key] !== null;
  }

  str(key: string): string {
    const v = this.obj[key];
    if (typeof v !== 'string') this.fail(key, 'must be a string');
    return v;
  }

  optStr(key: string): string | undefined {
    return this.has(key) ? this.str(key) : undefined;
  }

  nonEmpty(key: string): string {
    const v = this.str(key);
    if (v === '') this.fail(key, 'must not be empty');
    return v;
  }

  bool(key: string, dflt: boolean): boolean {
    const v = this.obj[key];
    if (v === undefined || v === null) return dflt;
    // libcni's readBool accepts "true"/"false" strings too.
    if (v === 'true') return true;
    if (v === 'false') return false;
    if (typeof v !== 'boolean') this.fail(key, 'must be a boolean');
    return v;
  }

  int(key: string, min: number, max: number): number {
    const v = this.obj[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      this.fail(key, `must be an integer from ${min} to ${max}`);
    }
    return v;
  }

  optInt(key: string, min: number, max: number): number | undefined {
    return this.has(key) ? this.int(key, min, max) : undefined;
  }

  obj_(key: string): Fields {
    const v = this.obj[key];
    if (!isObject(v)) this.fail(key, 'must be an object');
    return new Fields(v, this.at(key), this.code);
  }

  optObj(key: string): Fields | undefined {
    return this.has(key) ? this.obj_(key) : undefined;
  }

  arr(key: string): Json[] {
    const v = this.obj[key];
    if (!Array.isArray(v)) this.fail(key, 'must be a list');
    return v;
  }

  optArr(key: string): Json[] | undefined {
    return this.has(key) ? this.arr(key) : undefined;
  }

  strList(key: string): string[] {
    return this.arr(key).map((v, i) => {
      if (typeof v !== 'string') throw new CniError(this.code, `${this.at(key)}[${i}]: must be a string, got ${describe(v)}`);
      return v;
    });
  }

  optStrList(key: string): string[] | undefined {
    return this.has(key) ? this.strList(key) : undefined;
  }
}

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'an object';
  const s = JSON.stringify(v);
  return s.length > 40 ? `${typeof v} ${s.slice(0, 40)}…` : `${typeof v} ${s}`;
}

/** Parses JSON text that must be an object; `what` names the source in the error. */
export function parseObject(text: string, what: string, code: CniCode = Code.DecodeFailure): JsonObject {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new CniError(code, `${what}: invalid JSON: ${(err as Error).message}`);
  }
  if (!isObject(v)) throw new CniError(code, `${what}: must be a JSON object, got ${describe(v)}`);
  return v;
}
