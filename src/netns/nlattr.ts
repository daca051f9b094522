// Netlink attributes (struct nlattr: u16 len, u16 type, payload, padded to 4 bytes).
// Encoding is pure: a tree of Attr in, one Buffer out. Decoding never copies; the views share the
// received message's memory, which the caller owns.
import { NLA_F_NESTED, NLA_TYPE_MASK } from './consts';

export interface Attr {
  type: number;
  value: Buffer | readonly Attr[];
  /** Sets NLA_F_NESTED on a nest; some kernel paths (bridge IFLA_PROTINFO) insist on it. */
  flagNested?: boolean;
}

const align4 = (n: number): number => (n + 3) & ~3;

function payloadLength(value: Buffer | readonly Attr[]): number {
  return Buffer.isBuffer(value) ? value.length : attrsLength(value);
}

export function attrsLength(attrs: readonly Attr[]): number {
  let n = 0;
  for (const a of attrs) n += align4(4 + payloadLength(a.value));
  return n;
}

function writeAttrs(out: Buffer, offset: number, attrs: readonly Attr[]): number {
  for (const a of attrs) {
    const len = 4 + payloadLength(a.value);
    if (len > 0xffff) throw new RangeError(`netlink attribute ${a.type} is too long (${len} bytes)`);
    out.writeUInt16LE(len, offset);
    out.writeUInt16LE(a.type | (a.flagNested ? NLA_F_NESTED : 0), offset + 2);
    if (Buffer.isBuffer(a.value)) a.value.copy(out, offset + 4);
    else writeAttrs(out, offset + 4, a.value);
    offset += align4(len); // Buffer.alloc zero-fills the padding
  }
  return offset;
}

export function encodeAttrs(attrs: readonly Attr[]): Buffer {
  const out = Buffer.alloc(attrsLength(attrs));
  writeAttrs(out, 0, attrs);
  return out;
}

function num(size: 1 | 2 | 4, value: number, bigEndian = false): Buffer {
  const b = Buffer.alloc(size);
  if (size === 1) b.writeUInt8(value);
  else if (size === 2) bigEndian ? b.writeUInt16BE(value) : b.writeUInt16LE(value);
  else b.writeUInt32LE(value >>> 0);
  return b;
}

/** Constructors for the attribute payload types rtnetlink uses. */
export const nla = {
  u8: (type: number, v: number): Attr => ({ type, value: num(1, v) }),
  u16: (type: number, v: number): Attr => ({ type, value: num(2, v) }),
  be16: (type: number, v: number): Attr => ({ type, value: num(2, v, true) }),
  u32: (type: number, v: number): Attr => ({ type, value: num(4, v) }),
  flag: (type: number): Attr => ({ type, value: Buffer.alloc(0) }),
  /** NUL-terminated, as the kernel's NLA_NUL_STRING and NLA_STRING policies both accept. */
  str: (type: number, s: string): Attr => ({ type, value: Buffer.concat([Buffer.from(s, 'utf8'), Buffer.alloc(1)]) }),
  bytes: (type: number, b: Buffer): Attr => ({ type, value: b }),
  nest: (type: number, children: readonly Attr[], flagNested = false): Attr => ({ type, value: children, flagNested }),
};

/** Decoded attributes of one level; the last occurrence of a type wins, as in the kernel. */
export class AttrTable {
  private readonly byType = new Map<number, Buffer>();
  readonly list: ReadonlyArray<{ type: number; data: Buffer }>;

  constructor(list: Array<{ type: number; data: Buffer }>) {
    this.list = list;
    for (const a of list) this.byType.set(a.type, a.data);
  }

  has(type: number): boolean {
    return this.byType.has(type);
  }
  get(type: number): Buffer | undefined {
    return this.byType.get(type);
  }
  all(type: number): Buffer[] {
    return this.list.filter((a) => a.type === type).map((a) => a.data);
  }
  u8(type: number): number | undefined {
    const b = this.byType.get(type);
    return b && b.length >= 1 ? b.readUInt8(0) : undefined;
  }
  u16(type: number): number | undefined {
    const b = this.byType.get(type);
    return b && b.length >= 2 ? b.readUInt16LE(0) : undefined;
  }
  be16(type: number): number | undefined {
    const b = this.byType.get(type);
    return b && b.length >= 2 ? b.readUInt16BE(0) : undefined;
  }
  u32(type: number): number | undefined {
    const b = this.byType.get(type);
    return b && b.length >= 4 ? b.readUInt32LE(0) : undefined;
  }
  s32(type: number): number | undefined {
    const b = this.byType.get(type);
    return b && b.length >= 4 ? b.readInt32LE(0) : undefined;
  }
  str(type: number): string | undefined {
    const b = this.byType.get(type);
    if (!b) return undefined;
    const nul = b.indexOf(0);
    return b.toString('utf8', 0, nul < 0 ? b.length : nul);
  }
  nested(type: number): AttrTable | undefined {
    const b = this.byType.get(type);
    return b ? parseAttrs(b) : undefined;
  }
}

/** Parses a run of attributes; a malformed tail is ignored rather than thrown, like nla_parse. */
export function parseAttrs(buf: Buffer, offset = 0, end = buf.length): AttrTable {
  const list: Array<{ type: number; data: Buffer }> = [];
  while (offset + 4 <= end) {
    const len = buf.readUInt16LE(offset);
    if (len < 4 || offset + len > end) break;
    list.push({ type: buf.readUInt16LE(offset + 2) & NLA_TYPE_MASK, data: buf.subarray(offset + 4, offset + len) });
    offset += align4(len);
  }
  return new AttrTable(list);
}
