// The three patch formats kube-apiserver accepts for JSON resources. Pure functions over JSON
// values; the caller maps PatchError to the Status the real server returns (400 or 422).
//
// Strategic merge patch is emulated only as far as plexus and its tests need it: maps merge as in
// RFC 7386 (null deletes a key), a map may carry `$patch: replace` or `$patch: delete`, and lists
// are replaced whole. The real server merges some lists by key (containers by name, conditions by
// type); any other `$` directive is refused with 400 so a test never passes by accident.
import { isObject, type Json, type JsonObject } from '../../src/cni/validate';

export class PatchError extends Error {
  /** true: the patch document itself is malformed (400); false: it did not apply (422). */
  readonly malformed: boolean;
  constructor(message: string, malformed: boolean) {
    super(message);
    this.malformed = malformed;
  }
}

function clone<T extends Json>(v: T): T {
  return structuredClone(v);
}

/** RFC 7386 JSON Merge Patch. */
export function mergePatch(target: Json | undefined, patch: Json): Json {
  if (!isObject(patch)) return clone(patch);
  const out: JsonObject = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** The subset of strategic merge patch described at the top of this file. */
export function strategicMergePatch(target: Json | undefined, patch: Json): Json | undefined {
  if (!isObject(patch)) return clone(patch);
  const directive = patch.$patch;
  if (directive !== undefined) {
    if (directive === 'delete') return undefined;
    if (directive !== 'replace') throw new PatchError(`unknown patch type: ${JSON.stringify(directive)}`, true);
  }
  const out: JsonObject = directive === 'replace' || !isObject(target) ? {} : { ...target };
  for (const [k, v] of Object.entries(patch)) {
    if (k === '$patch') continue;
    if (k.startsWith('$')) throw new PatchError(`strategic merge patch directive ${k} is not supported by the test apiserver`, true);
    if (v === null) {
      delete out[k];
      continue;
    }
    const merged = strategicMergePatch(out[k], v);
    if (merged === undefined) delete out[k];
    else out[k] = merged;
  }
  return out;
}

// ---- RFC 6902 JSON Patch ----

function parsePointer(ptr: string): string[] {
  if (ptr === '') return [];
  if (!ptr.startsWith('/')) throw new PatchError(`invalid JSON pointer ${JSON.stringify(ptr)}`, false);
  return ptr
    .slice(1)
    .split('/')
    .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function arrayIndex(arr: Json[], token: string, forInsert: boolean, ptr: string): number {
  if (forInsert && token === '-') return arr.length;
  if (!/^(0|[1-9][0-9]*)$/.test(token)) throw new PatchError(`doc is missing path: ${JSON.stringify(ptr)}: invalid array index`, false);
  const i = Number(token);
  if (i > arr.length || (!forInsert && i === arr.length)) throw new PatchError(`doc is missing path: ${JSON.stringify(ptr)}: index out of range`, false);
  return i;
}

function get(doc: Json, tokens: string[], ptr: string): Json {
  let cur: Json = doc;
  for (const t of tokens) {
    if (Array.isArray(cur)) cur = cur[arrayIndex(cur, t, false, ptr)] as Json;
    else if (isObject(cur) && Object.hasOwn(cur, t)) cur = cur[t] as Json;
    else throw new PatchError(`doc is missing path: ${JSON.stringify(ptr)}: missing value`, false);
  }
  return cur;
}

/** The container that holds the last token, which must exist. */
function parentOf(doc: Json, tokens: string[], ptr: string): Json {
  return get(doc, tokens.slice(0, -1), ptr);
}

function add(doc: Json, tokens: string[], value: Json, ptr: string): Json {
  if (tokens.length === 0) return value;
  const parent = parentOf(doc, tokens, ptr);
  const last = tokens[tokens.length - 1] as string;
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, last, true, ptr), 0, value);
  else if (isObject(parent)) parent[last] = value;
  else throw new PatchError(`doc is missing path: ${JSON.stringify(ptr)}: parent is not a container`, false);
  return doc;
}

function remove(doc: Json, tokens: string[], ptr: string): Json {
  if (tokens.length === 0) throw new PatchError('unable to remove the whole document', false);
  const parent = parentOf(doc, tokens, ptr);
  const last = tokens[tokens.length - 1] as string;
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, last, false, ptr), 1);
  else if (isObject(parent) && Object.hasOwn(parent, last)) delete parent[last];
  else throw new PatchError(`doc is missing path: ${JSON.stringify(ptr)}: missing value`, false);
  return doc;
}

export function jsonEqual(a: Json | undefined, b: Json | undefined): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => jsonEqual(v, b[i]));
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && jsonEqual(a[k], b[k]));
  }
  return false;
}

/** RFC 6902, applied atomically: the input is never modified. */
export function applyJsonPatch(doc: Json, ops: Json): Json {
  if (!Array.isArray(ops)) throw new PatchError('json: cannot unmarshal object into Go value of type jsonpatch.Patch', true);
  let out = clone(doc);
  ops.forEach((op, i) => {
    if (!isObject(op) || typeof op.op !== 'string' || typeof op.path !== 'string') {
      throw new PatchError(`operation ${i} must be an object with string "op" and "path"`, true);
    }
    const ptr = op.path;
    const tokens = parsePointer(ptr);
    const needValue = () => {
      if (!Object.hasOwn(op, 'value')) throw new PatchError(`${op.op} operation ${i} has no "value"`, true);
      return clone(op.value as Json);
    };
    const from = () => {
      if (typeof op.from !== 'string') throw new PatchError(`${op.op} operation ${i} has no "from"`, true);
      return op.from;
    };
    switch (op.op) {
      case 'add':
        out = add(out, tokens, needValue(), ptr);
        break;
      case 'remove':
        out = remove(out, tokens, ptr);
        break;
      case 'replace':
        get(out, tokens, ptr);
        out = tokens.length === 0 ? needValue() : add(remove(out, tokens, ptr), tokens, needValue(), ptr);
        break;
      case 'move': {
        const f = from();
        if (ptr.startsWith(f + '/')) throw new PatchError(`move operation ${i}: "from" is a prefix of "path"`, false);
        const ft = parsePointer(f);
        const v = get(out, ft, f);
        out = add(remove(out, ft, f), tokens, v, ptr);
        break;
      }
      case 'copy': {
        const f = from();
        out = add(out, tokens, clone(get(out, parsePointer(f), f)), ptr);
        break;
      }
      case 'test': {
        const want = needValue();
        // kube-apiserver's json-patch (evanphx v4): a key missing from an object that exists
        // tests equal to null, so `test {path, value: null}` asserts absence (Whereabouts relies
        // on it); a missing parent or array element still fails.
        let have: Json | undefined;
        try {
          have = get(out, tokens, ptr);
        } catch {
          let parent: Json | undefined;
          try {
            parent = tokens.length ? parentOf(out, tokens, ptr) : undefined;
          } catch {
            parent = undefined;
          }
          if (!isObject(parent)) throw new PatchError(`testing value ${ptr} failed: doc is missing path`, false);
          have = null;
        }
        if (!jsonEqual(have, want)) throw new PatchError(`testing value ${ptr} failed: test failed`, false);
        break;
      }
      default:
        throw new PatchError(`Unexpected kind: ${op.op}`, true);
    }
  });
  return out;
}
