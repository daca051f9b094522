// Protocol Buffers wire format (https://protobuf.dev/programming-guides/encoding/), only as much
// as plexus's gRPC peers need: the kubelet's PodResources v1 and CRI runtime.v1. Messages are
// written field by field with ProtoWriter and read back with decodeMessage, which indexes the
// fields of one message level; callers name the field numbers from the .proto they speak. No
// schema compiler, no generated code: a few dozen fields do not justify protobufjs's load cost
// (docs/decisions.md, "gRPC client").
//
// Varints are read as bigint so int64/uint64 survive; the number accessors refuse a value that
// does not fit a double exactly instead of rounding it.

export const WireType = { Varint: 0, Fixed64: 1, Len: 2, Fixed32: 5 } as const;
export type WireType = (typeof WireType)[keyof typeof WireType];

/** Malformed wire bytes, or a field of an unexpected wire type. */
export class ProtoError extends Error {
  constructor(msg: string) {
    super(msg);
    this.name = 'ProtoError';
  }
}

const MAX_FIELD = 2 ** 29 - 1;
const U64 = (1n << 64n) - 1n;

/** Builds one message. Fields are written in call order; proto3 readers accept any order. */
export class ProtoWriter {
  private readonly parts: Buffer[] = [];

  private tag(field: number, wire: WireType): void {
    if (!Number.isInteger(field) || field < 1 || field > MAX_FIELD) throw new ProtoError(`field number ${field} out of range`);
    this.raw(encodeVarint(BigInt(field) * 8n + BigInt(wire)));
  }

  private raw(b: Buffer): this {
    this.parts.push(b);
    return this;
  }

  /** uint32/uint64/int32/int64/enum; negative values are written as 64-bit two's complement (10 bytes), as protoc does. */
  varint(field: number, v: number | bigint): this {
    this.tag(field, WireType.Varint);
    return this.raw(encodeVarint(toU64(v)));
  }

  /** sint32/sint64 (ZigZag). */
  sint(field: number, v: number | bigint): this {
    const n = BigInt(v);
    this.tag(field, WireType.Varint);
    return this.raw(encodeVarint(n >= 0n ? n << 1n : ((-n) << 1n) - 1n));
  }

  bool(field: number, v: boolean): this {
    return this.varint(field, v ? 1 : 0);
  }

  double(field: number, v: number): this {
    const b = Buffer.alloc(8);
    b.writeDoubleLE(v);
    this.tag(field, WireType.Fixed64);
    return this.raw(b);
  }

  fixed64(field: number, v: number | bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(toU64(v));
    this.tag(field, WireType.Fixed64);
    return this.raw(b);
  }

  fixed32(field: number, v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0);
    this.tag(field, WireType.Fixed32);
    return this.raw(b);
  }

  bytes(field: number, v: Uint8Array): this {
    this.tag(field, WireType.Len);
    this.raw(encodeVarint(BigInt(v.length)));
    return this.raw(Buffer.from(v.buffer, v.byteOffset, v.byteLength));
  }

  string(field: number, v: string): this {
    return this.bytes(field, Buffer.from(v, 'utf8'));
  }

  /** A nested message: a writer (or its finished bytes). */
  message(field: number, m: ProtoWriter | Uint8Array): this {
    return this.bytes(field, m instanceof ProtoWriter ? m.finish() : m);
  }

  /** A packed repeated varint field (proto3's default for repeated scalars). Nothing for []. */
  packed(field: number, vs: readonly (number | bigint)[]): this {
    if (vs.length === 0) return this;
    return this.bytes(field, Buffer.concat(vs.map((v) => encodeVarint(toU64(v)))));
  }

  /** map<string, string>: a repeated entry message {key = 1, value = 2}, in key order for stable bytes. */
  map(field: number, m: Readonly<Record<string, string>>): this {
    for (const k of Object.keys(m).sort()) this.message(field, new ProtoWriter().string(1, k).string(2, m[k]!));
    return this;
  }

  finish(): Buffer {
    return Buffer.concat(this.parts);
  }
}

export interface Field {
  wire: WireType;
  /** Varint fields. */
  varint?: bigint;
  /** Len, Fixed64 and Fixed32 fields: the payload (a view into the message buffer). */
  data?: Buffer;
}

/**
 * The fields of one message level, by number; repeated fields keep wire order. Accessors follow
 * proto3: an absent scalar is its zero value, and for a scalar sent more than once the last wins.
 */
export class ProtoMessage {
  constructor(readonly fields: ReadonlyMap<number, readonly Field[]>) {}

  has(field: number): boolean {
    return this.fields.has(field);
  }

  private all(field: number, wire: WireType): Field[] {
    const fs = this.fields.get(field) ?? [];
    for (const f of fs) {
      if (f.wire !== wire) throw new ProtoError(`field ${field}: wire type ${f.wire}, expected ${wire}`);
    }
    return fs as Field[];
  }

  private last(field: number, wire: WireType): Field | undefined {
    const fs = this.all(field, wire);
    return fs[fs.length - 1];
  }

  bytes(field: number): Buffer {
    return this.last(field, WireType.Len)?.data ?? Buffer.alloc(0);
  }

  string(field: number): string {
    return this.bytes(field).toString('utf8');
  }

  strings(field: number): string[] {
    return this.all(field, WireType.Len).map((f) => f.data!.toString('utf8'));
  }

  /** A nested message; an absent one reads as empty (every field at its zero value). */
  message(field: number): ProtoMessage {
    return decodeMessage(this.bytes(field));
  }

  messages(field: number): ProtoMessage[] {
    return this.all(field, WireType.Len).map((f) => decodeMessage(f.data!));
  }

  /** uint64 as written. */
  uint64(field: number): bigint {
    return this.last(field, WireType.Varint)?.varint ?? 0n;
  }

  /** int64/int32/enum (two's complement). */
  int64(field: number): bigint {
    return BigInt.asIntN(64, this.uint64(field));
  }

  /** int32/int64/uint32/enum as a number; throws when it would not be exact. */
  number(field: number): number {
    return safeNumber(field, this.int64(field));
  }

  bool(field: number): boolean {
    return this.uint64(field) !== 0n;
  }

  sint(field: number): bigint {
    return zigzag(this.uint64(field));
  }

  double(field: number): number {
    return this.last(field, WireType.Fixed64)?.data!.readDoubleLE(0) ?? 0;
  }

  fixed64(field: number): bigint {
    return this.last(field, WireType.Fixed64)?.data!.readBigUInt64LE(0) ?? 0n;
  }

  fixed32(field: number): number {
    return this.last(field, WireType.Fixed32)?.data!.readUInt32LE(0) ?? 0;
  }

  /** A repeated varint field, packed or not (parsers must accept both). int64 semantics. */
  int64s(field: number): bigint[] {
    const out: bigint[] = [];
    for (const f of this.fields.get(field) ?? []) {
      if (f.wire === WireType.Varint) out.push(BigInt.asIntN(64, f.varint!));
      else if (f.wire === WireType.Len) {
        for (let pos = 0; pos < f.data!.length; ) {
          const [v, next] = readVarint(f.data!, pos);
          out.push(BigInt.asIntN(64, v));
          pos = next;
        }
      } else throw new ProtoError(`field ${field}: wire type ${f.wire}, expected a repeated varint`);
    }
    return out;
  }

  numbers(field: number): number[] {
    return this.int64s(field).map((v) => safeNumber(field, v));
  }

  /** map<string, string>. */
  map(field: number): Record<string, string> {
    const out: Record<string, string> = {};
    for (const e of this.messages(field)) out[e.string(1)] = e.string(2);
    return out;
  }
}

/** Indexes one message level. Throws ProtoError on truncated or malformed bytes (groups included). */
export function decodeMessage(buf: Uint8Array): ProtoMessage {
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const fields = new Map<number, Field[]>();
  let pos = 0;
  while (pos < b.length) {
    const [key, afterKey] = readVarint(b, pos);
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (field < 1 || field > MAX_FIELD) throw new ProtoError(`field number ${field} at byte ${pos} out of range`);
    pos = afterKey;
    let f: Field;
    switch (wire) {
      case WireType.Varint: {
        const [v, next] = readVarint(b, pos);
        f = { wire, varint: v };
        pos = next;
        break;
      }
      case WireType.Fixed64:
      case WireType.Fixed32: {
        const n = wire === WireType.Fixed64 ? 8 : 4;
        if (pos + n > b.length) throw new ProtoError(`field ${field}: truncated fixed${n * 8}`);
        f = { wire, data: b.subarray(pos, pos + n) };
        pos += n;
        break;
      }
      case WireType.Len: {
        const [len, next] = readVarint(b, pos);
        if (len > BigInt(b.length - next)) throw new ProtoError(`field ${field}: length ${len} runs past the end of the message`);
        f = { wire, data: b.subarray(next, next + Number(len)) };
        pos = next + Number(len);
        break;
      }
      default:
        throw new ProtoError(`field ${field}: unsupported wire type ${wire}`);
    }
    let list = fields.get(field);
    if (!list) fields.set(field, (list = []));
    list.push(f);
  }
  return new ProtoMessage(fields);
}

export function encodeVarint(v: bigint): Buffer {
  if (v < 0n || v > U64) throw new ProtoError(`varint ${v} out of range`);
  const out: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v) byte |= 0x80;
    out.push(byte);
  } while (v);
  return Buffer.from(out);
}

/** [value, position after it]. At most 10 bytes, as for any 64-bit value. */
export function readVarint(b: Buffer, pos: number): [bigint, number] {
  let v = 0n;
  for (let i = 0; i < 10; i++) {
    if (pos + i >= b.length) throw new ProtoError(`truncated varint at byte ${pos}`);
    const byte = b[pos + i]!;
    v |= BigInt(byte & 0x7f) << BigInt(7 * i);
    if (!(byte & 0x80)) return [v & U64, pos + i + 1];
  }
  throw new ProtoError(`varint at byte ${pos} is longer than 10 bytes`);
}

function toU64(v: number | bigint): bigint {
  if (typeof v === 'number' && !Number.isSafeInteger(v)) throw new ProtoError(`varint ${v} is not a safe integer`);
  const b = BigInt(v);
  if (b > U64 || b < -(1n << 63n)) throw new ProtoError(`varint ${v} does not fit 64 bits`);
  return BigInt.asUintN(64, b);
}

function zigzag(u: bigint): bigint {
  return u & 1n ? -((u + 1n) >> 1n) : u >> 1n;
}

function safeNumber(field: number, v: bigint): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new ProtoError(`field ${field}: ${v} does not fit a JavaScript number`);
  return n;
}
