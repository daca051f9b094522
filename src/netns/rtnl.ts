// The rtnetlink wire format: nlmsghdr framing, the fixed family headers (ifinfomsg, ifaddrmsg,
// rtmsg, ndmsg, fib_rule_hdr) and the kernel's answers (ACK, error with extack, DONE).
// Everything here is pure: data in, Buffer out, and back.
import { NLM_F, NLMSG_HDRLEN, NLMSGERR_ATTR, Nlmsg } from './consts';
import { NetlinkError } from './errors';
import { type Attr, encodeAttrs, parseAttrs, type AttrTable } from './nlattr';

export interface NlMessage {
  type: number;
  flags: number;
  seq: number;
  pid: number;
  /** Everything after the 16-byte header. */
  payload: Buffer;
}

/** One complete request: header, fixed family header, attributes. */
export function encodeMessage(type: number, flags: number, seq: number, header: Buffer, attrs: readonly Attr[] = []): Buffer {
  const body = encodeAttrs(attrs);
  const out = Buffer.alloc(NLMSG_HDRLEN + header.length + body.length);
  out.writeUInt32LE(out.length, 0);
  out.writeUInt16LE(type, 4);
  out.writeUInt16LE(flags, 6);
  out.writeUInt32LE(seq >>> 0, 8);
  out.writeUInt32LE(0, 12); // nlmsg_pid 0: the kernel fills in our port id
  header.copy(out, NLMSG_HDRLEN);
  body.copy(out, NLMSG_HDRLEN + header.length);
  return out;
}

export function decodeMessage(buf: Buffer): NlMessage {
  if (buf.length < NLMSG_HDRLEN) throw new RangeError(`netlink message of ${buf.length} bytes has no header`);
  const len = Math.min(buf.readUInt32LE(0), buf.length);
  return {
    type: buf.readUInt16LE(4),
    flags: buf.readUInt16LE(6),
    seq: buf.readUInt32LE(8),
    pid: buf.readUInt32LE(12),
    payload: buf.subarray(NLMSG_HDRLEN, len),
  };
}

/** Splits a datagram holding several messages (what recv() returns) into messages. */
export function splitMessages(buf: Buffer): NlMessage[] {
  const out: NlMessage[] = [];
  let off = 0;
  while (off + NLMSG_HDRLEN <= buf.length) {
    const len = buf.readUInt32LE(off);
    if (len < NLMSG_HDRLEN || off + len > buf.length) break;
    out.push(decodeMessage(buf.subarray(off, off + len)));
    off += (len + 3) & ~3;
  }
  return out;
}

/** The attributes after a family header of headerLength bytes. */
export function messageAttrs(msg: NlMessage, headerLength: number): AttrTable {
  return parseAttrs(msg.payload, Math.min(headerLength, msg.payload.length));
}

export interface KernelAnswer {
  /** 0 for an ACK, else a positive errno. */
  errno: number;
  extack: string | null;
  /** Byte offset into our request of the attribute the kernel rejected, when it said. */
  badAttrOffset: number | null;
}

/**
 * Decodes NLMSG_ERROR (ACK when error is 0) or NLMSG_DONE (a dump's end, whose int may carry an
 * error since Linux 4.x). With NETLINK_CAP_ACK the original request is not echoed back, so the
 * extack TLVs start right after the echoed header; without it they follow the whole request.
 */
export function decodeAnswer(msg: NlMessage): KernelAnswer {
  const p = msg.payload;
  const error = p.length >= 4 ? p.readInt32LE(0) : 0;
  let tlvOffset = 4;
  if (msg.type === Nlmsg.ERROR) {
    const echoedLen = p.length >= 8 ? p.readUInt32LE(4) : 0;
    tlvOffset = msg.flags & NLM_F.CAPPED ? 4 + NLMSG_HDRLEN : 4 + ((echoedLen + 3) & ~3);
  }
  let extack: string | null = null;
  let badAttrOffset: number | null = null;
  if (msg.flags & NLM_F.ACK_TLVS && tlvOffset < p.length) {
    const tlvs = parseAttrs(p, tlvOffset);
    extack = tlvs.str(NLMSGERR_ATTR.MSG) ?? null;
    badAttrOffset = tlvs.u32(NLMSGERR_ATTR.OFFS) ?? null;
  }
  return { errno: error < 0 ? -error : error, extack, badAttrOffset };
}

/**
 * Turns the messages answering one request into its data replies, or throws the kernel's error.
 * ERROR and DONE end the answer; NOOP carries nothing.
 */
export function repliesOrThrow(messages: readonly NlMessage[], operation: string): NlMessage[] {
  const data: NlMessage[] = [];
  for (const m of messages) {
    if (m.type === Nlmsg.ERROR || m.type === Nlmsg.DONE) {
      const answer = decodeAnswer(m);
      if (answer.errno !== 0) throw new NetlinkError(operation, answer.errno, answer.extack);
    } else if (m.type !== Nlmsg.NOOP) {
      data.push(m);
    }
  }
  return data;
}

// ---- family headers ---------------------------------------------------------------------------

export interface IfInfoMsg {
  family: number;
  type: number; // ARPHRD_*
  index: number;
  flags: number;
  change: number;
}

export function encodeIfInfoMsg(h: Partial<IfInfoMsg>): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt8(h.family ?? 0, 0);
  b.writeUInt16LE(h.type ?? 0, 2);
  b.writeInt32LE(h.index ?? 0, 4);
  b.writeUInt32LE((h.flags ?? 0) >>> 0, 8);
  b.writeUInt32LE((h.change ?? 0) >>> 0, 12);
  return b;
}

export function decodeIfInfoMsg(p: Buffer): IfInfoMsg {
  return { family: p.readUInt8(0), type: p.readUInt16LE(2), index: p.readInt32LE(4), flags: p.readUInt32LE(8), change: p.readUInt32LE(12) };
}

export interface IfAddrMsg {
  family: number;
  prefixLen: number;
  flags: number;
  scope: number;
  index: number;
}

export function encodeIfAddrMsg(h: IfAddrMsg): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt8(h.family, 0);
  b.writeUInt8(h.prefixLen, 1);
  b.writeUInt8(h.flags & 0xff, 2);
  b.writeUInt8(h.scope, 3);
  b.writeUInt32LE(h.index, 4);
  return b;
}

export function decodeIfAddrMsg(p: Buffer): IfAddrMsg {
  return { family: p.readUInt8(0), prefixLen: p.readUInt8(1), flags: p.readUInt8(2), scope: p.readUInt8(3), index: p.readUInt32LE(4) };
}

export interface RtMsg {
  family: number;
  dstLen: number;
  srcLen: number;
  tos: number;
  table: number;
  protocol: number;
  scope: number;
  type: number;
  flags: number;
}

export function encodeRtMsg(h: RtMsg): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt8(h.family, 0);
  b.writeUInt8(h.dstLen, 1);
  b.writeUInt8(h.srcLen, 2);
  b.writeUInt8(h.tos, 3);
  b.writeUInt8(h.table, 4);
  b.writeUInt8(h.protocol, 5);
  b.writeUInt8(h.scope, 6);
  b.writeUInt8(h.type, 7);
  b.writeUInt32LE(h.flags >>> 0, 8);
  return b;
}

export function decodeRtMsg(p: Buffer): RtMsg {
  return {
    family: p.readUInt8(0),
    dstLen: p.readUInt8(1),
    srcLen: p.readUInt8(2),
    tos: p.readUInt8(3),
    table: p.readUInt8(4),
    protocol: p.readUInt8(5),
    scope: p.readUInt8(6),
    type: p.readUInt8(7),
    flags: p.readUInt32LE(8),
  };
}

export interface NdMsg {
  family: number;
  index: number;
  state: number;
  flags: number;
  type: number;
}

export function encodeNdMsg(h: NdMsg): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt8(h.family, 0);
  b.writeInt32LE(h.index, 4);
  b.writeUInt16LE(h.state, 8);
  b.writeUInt8(h.flags, 10);
  b.writeUInt8(h.type, 11);
  return b;
}

export function decodeNdMsg(p: Buffer): NdMsg {
  return { family: p.readUInt8(0), index: p.readInt32LE(4), state: p.readUInt16LE(8), flags: p.readUInt8(10), type: p.readUInt8(11) };
}

/** struct fib_rule_hdr: same size as rtmsg, different meaning of the bytes. */
export interface FibRuleHdr {
  family: number;
  dstLen: number;
  srcLen: number;
  tos: number;
  table: number;
  action: number;
  flags: number;
}

export function encodeFibRuleHdr(h: FibRuleHdr): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt8(h.family, 0);
  b.writeUInt8(h.dstLen, 1);
  b.writeUInt8(h.srcLen, 2);
  b.writeUInt8(h.tos, 3);
  b.writeUInt8(h.table, 4);
  b.writeUInt8(h.action, 7);
  b.writeUInt32LE(h.flags >>> 0, 8);
  return b;
}

export function decodeFibRuleHdr(p: Buffer): FibRuleHdr {
  return {
    family: p.readUInt8(0),
    dstLen: p.readUInt8(1),
    srcLen: p.readUInt8(2),
    tos: p.readUInt8(3),
    table: p.readUInt8(4),
    action: p.readUInt8(7),
    flags: p.readUInt32LE(8),
  };
}
