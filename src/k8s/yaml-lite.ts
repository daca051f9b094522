// The YAML that kubeconfigs are written in (kubeadm, kubectl, Multus's generated file): block
// mappings and sequences of plain or quoted strings, `true`/`false`/`null`, `{}` and `[]`. Loading
// and running js-yaml costs a one-shot ADD ~8 ms of CPU (docs/decisions.md); this reads the common
// case in well under one. It returns undefined for anything outside that subset (flow
// collections, anchors, tags, block scalars, multi-line or escaped strings, numbers, tabs,
// duplicate keys), and the caller then parses with js-yaml: it never reads a document differently
// from js-yaml's CORE schema (test/unit-yaml-lite.test.ts checks both agree).
import type { Json, JsonObject } from '../cni/validate';

interface Line {
  indent: number;
  text: string;
}

class Unsupported extends Error {}
const no = (): never => {
  throw new Unsupported();
};

/** Drops a comment: `#` at the start or after a space, outside quotes. */
function stripComment(s: string): string {
  let quote = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quote) {
      if (c === quote) quote = '';
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === '#' && (i === 0 || s[i - 1] === ' ')) {
      return s.slice(0, i).trimEnd();
    }
  }
  return s.trimEnd();
}

function toLines(text: string): Line[] {
  const out: Line[] = [];
  for (const raw of text.split(/\r?\n/)) {
    if (raw.includes('\t')) no();
    const body = stripComment(raw);
    if (body.trim() === '') continue;
    if (body === '---' && out.length === 0) continue;
    const indent = body.length - body.trimStart().length;
    out.push({ indent, text: body.slice(indent) });
  }
  return out;
}

const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_.\-/]*$/;

function scalar(s: string): Json {
  if (s === '{}') return {};
  if (s === '[]') return [];
  if (s === 'true') return true;
  if (s === 'false') return false;
  if (s === 'null' || s === '~') return null;
  if (s.startsWith('"')) {
    if (s.length < 2 || !s.endsWith('"') || s.slice(1, -1).includes('"') || s.includes('\\')) no();
    return s.slice(1, -1);
  }
  if (s.startsWith("'")) {
    if (s.length < 2 || !s.endsWith("'")) no();
    const inner = s.slice(1, -1);
    if (inner.replace(/''/g, '').includes("'")) no();
    return inner.replace(/''/g, "'");
  }
  // Plain: nothing a YAML indicator could start, nothing another type could resolve to.
  if (/^[-?:,[\]{}#&*!|>'"%@`.+0-9]/.test(s) || /^(True|TRUE|False|FALSE|Null|NULL|yes|no|on|off)$/i.test(s)) no();
  if (s.includes(': ') || s.endsWith(':') || s.includes(' #')) no();
  return s;
}

/** `key: rest` → [key, rest]; undefined when the line is not a mapping entry. */
function entry(text: string): [string, string] | undefined {
  const m = /^([^\s'"][^:]*?|"[^"\\]*"|'[^']*'):(?: +(.*))?$/.exec(text);
  if (!m) return undefined;
  let key = m[1]!;
  if (key.startsWith('"') || key.startsWith("'")) key = key.slice(1, -1);
  else if (!PLAIN_KEY.test(key)) no();
  return [key, m[2] ?? ''];
}

const isItem = (l: Line | undefined, indent: number) => l !== undefined && l.indent === indent && (l.text === '-' || l.text.startsWith('- '));

class Parser {
  constructor(private readonly lines: Line[]) {}
  i = 0;

  block(indent: number): Json {
    return isItem(this.lines[this.i], indent) ? this.sequence(indent) : this.mapping(indent);
  }

  /** The value after `key:` with nothing on its line: a nested block, a sequence at the key's indent, or null. */
  nested(indent: number): Json {
    const next = this.lines[this.i];
    if (next && next.indent > indent) return this.block(next.indent);
    if (isItem(next, indent)) return this.sequence(indent);
    return null;
  }

  mapping(indent: number): JsonObject {
    const out: JsonObject = {};
    while (this.i < this.lines.length) {
      const line = this.lines[this.i]!;
      if (line.indent < indent || isItem(line, indent)) break;
      if (line.indent > indent) no();
      const kv = entry(line.text) ?? no();
      const [key, rest] = kv;
      if (Object.prototype.hasOwnProperty.call(out, key) || key === '__proto__') no();
      this.i++;
      out[key] = rest === '' ? this.nested(indent) : scalar(rest);
    }
    return out;
  }

  sequence(indent: number): Json[] {
    const out: Json[] = [];
    while (isItem(this.lines[this.i], indent)) {
      const line = this.lines[this.i]!;
      const rest = line.text === '-' ? '' : line.text.slice(2).trimStart();
      if (rest === '') {
        this.i++;
        const next = this.lines[this.i];
        out.push(next && next.indent > indent ? this.block(next.indent) : null);
      } else if (entry(rest)) {
        // `- key: value`: a mapping whose entries line up with `key`.
        const at = indent + (line.text.length - rest.length);
        this.lines[this.i] = { indent: at, text: rest };
        out.push(this.mapping(at));
      } else {
        if (rest.startsWith('- ')) no();
        this.i++;
        out.push(scalar(rest));
      }
    }
    return out;
  }
}

/** The document as js-yaml's CORE schema would read it, or undefined when it is outside the subset. */
export function parseYamlLite(text: string): JsonObject | undefined {
  try {
    const lines = toLines(text);
    if (lines.length === 0 || lines[0]!.indent !== 0 || isItem(lines[0], 0)) return undefined;
    const p = new Parser(lines);
    const doc = p.mapping(0);
    return p.i === lines.length ? doc : undefined;
  } catch (err) {
    if (err instanceof Unsupported) return undefined;
    throw err;
  }
}
