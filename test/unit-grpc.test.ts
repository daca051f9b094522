// src/grpc: the protobuf wire codec against the byte examples of the encoding guide
// (protobuf.dev/programming-guides/encoding), and the unary client against a real node:http2
// server on a unix socket that checks the request the way a gRPC server does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { join } from 'node:path';
import { GrpcChannel, GrpcError, Status, unaryCall } from '../src/grpc/client';
import { decodeMessage, encodeVarint, ProtoError, ProtoWriter, readVarint } from '../src/grpc/proto';
import { tempDir } from './helpers/host';

const hex = (b: Buffer): string => b.toString('hex');

test('varints: the guide\'s examples, 64-bit limits, two\'s complement negatives', () => {
  assert.equal(hex(encodeVarint(1n)), '01');
  assert.equal(hex(encodeVarint(150n)), '9601');
  assert.equal(hex(encodeVarint(300n)), 'ac02');
  assert.equal(hex(encodeVarint(0n)), '00');
  assert.equal(hex(encodeVarint((1n << 64n) - 1n)), 'ffffffffffffffffff01');
  // int64 -1 is ten bytes on the wire (the guide: "negative numbers ... always ten bytes")
  assert.equal(hex(new ProtoWriter().varint(1, -1).finish()), '08ffffffffffffffffff01');
  assert.equal(decodeMessage(new ProtoWriter().varint(1, -1).finish()).number(1), -1);
  assert.equal(decodeMessage(new ProtoWriter().varint(1, -(2n ** 63n)).finish()).int64(1), -(2n ** 63n));
  for (const v of [0n, 127n, 128n, 16383n, 16384n, 2n ** 32n, 2n ** 53n - 1n, 2n ** 63n, (1n << 64n) - 1n]) {
    const [back, end] = readVarint(encodeVarint(v), 0);
    assert.equal(back, v);
    assert.equal(end, encodeVarint(v).length);
  }
  assert.throws(() => encodeVarint(1n << 64n), ProtoError);
  assert.throws(() => new ProtoWriter().varint(1, 2 ** 53), /safe integer/);
  assert.throws(() => new ProtoWriter().varint(1, 1n << 64n), /64 bits/);
  // a value past 2^53 must not be rounded silently
  assert.throws(() => decodeMessage(new ProtoWriter().varint(1, 2n ** 60n).finish()).number(1), /does not fit/);
  assert.equal(decodeMessage(new ProtoWriter().varint(1, 2n ** 60n).finish()).uint64(1), 2n ** 60n);
});

test('messages: the guide\'s Test1/Test2/Test3 bytes, both ways', () => {
  // message Test1 { int32 a = 1; }  a = 150
  assert.equal(hex(new ProtoWriter().varint(1, 150).finish()), '089601');
  assert.equal(decodeMessage(Buffer.from('089601', 'hex')).number(1), 150);
  // message Test2 { string b = 2; }  b = "testing"
  assert.equal(hex(new ProtoWriter().string(2, 'testing').finish()), '120774657374696e67');
  assert.equal(decodeMessage(Buffer.from('120774657374696e67', 'hex')).string(2), 'testing');
  // message Test3 { Test1 c = 3; }
  const t3 = new ProtoWriter().message(3, new ProtoWriter().varint(1, 150)).finish();
  assert.equal(hex(t3), '1a03089601');
  assert.equal(decodeMessage(t3).message(3).number(1), 150);
  // sint32 -2 is ZigZag 3
  assert.equal(hex(new ProtoWriter().sint(1, -2).finish()), '0803');
  assert.equal(decodeMessage(Buffer.from('0803', 'hex')).sint(1), -2n);
});

test('repeated fields: packed and unpacked varints, strings, messages, maps; last scalar wins', () => {
  // message Test5 { repeated int32 f = 6 [packed=true]; }  f = [3, 270, 86942]
  const packed = new ProtoWriter().packed(6, [3, 270, 86942]).finish();
  assert.equal(hex(packed), '3206038e029ea705');
  assert.deepEqual(decodeMessage(packed).numbers(6), [3, 270, 86942]);
  // parsers must accept the unpacked form for the same field, and a mix of both
  const mixed = Buffer.concat([new ProtoWriter().varint(6, 3).varint(6, 270).finish(), new ProtoWriter().packed(6, [-5]).finish()]);
  assert.deepEqual(decodeMessage(mixed).numbers(6), [3, 270, -5]);
  assert.equal(hex(new ProtoWriter().packed(6, []).finish()), '');

  const m = new ProtoWriter()
    .string(1, 'a')
    .string(1, 'b')
    .message(2, new ProtoWriter().string(1, 'x'))
    .message(2, new ProtoWriter().string(1, 'y'))
    .varint(3, 1)
    .varint(3, 7)
    .map(4, { zeta: 'z', alpha: 'a' })
    .bool(5, true)
    .double(6, 1.5)
    .fixed32(7, 0xdeadbeef)
    .fixed64(8, 2n ** 63n)
    .bytes(9, Buffer.from([0, 255]))
    .finish();
  const d = decodeMessage(m);
  assert.deepEqual(d.strings(1), ['a', 'b']);
  assert.deepEqual(d.messages(2).map((x) => x.string(1)), ['x', 'y']);
  assert.equal(d.number(3), 7);
  assert.deepEqual(d.map(4), { alpha: 'a', zeta: 'z' });
  assert.deepEqual(Object.keys(d.map(4)), ['alpha', 'zeta'], 'map entries written in key order');
  assert.equal(d.bool(5), true);
  assert.equal(d.double(6), 1.5);
  assert.equal(d.fixed32(7), 0xdeadbeef);
  assert.equal(d.fixed64(8), 2n ** 63n);
  assert.deepEqual([...d.bytes(9)], [0, 255]);
});

test('decoding: absent fields are zero values, unknown fields are skipped, bad bytes are ProtoErrors', () => {
  const empty = decodeMessage(Buffer.alloc(0));
  assert.equal(empty.string(1), '');
  assert.equal(empty.number(2), 0);
  assert.equal(empty.bool(3), false);
  assert.deepEqual(empty.strings(4), []);
  assert.equal(empty.message(5).string(1), '');
  assert.equal(empty.has(1), false);
  // a newer server's extra fields (any wire type) around a known one
  const withUnknown = new ProtoWriter().fixed64(15, 9).string(1, 'pod').fixed32(16, 1).varint(17, 3).message(18, new ProtoWriter().string(1, 'x')).finish();
  assert.equal(decodeMessage(withUnknown).string(1), 'pod');

  assert.throws(() => decodeMessage(Buffer.from('0a05616263', 'hex')), /runs past the end/);
  assert.throws(() => decodeMessage(Buffer.from('0896', 'hex')), /truncated varint/);
  assert.throws(() => decodeMessage(Buffer.from('09010203', 'hex')), /truncated fixed64/);
  assert.throws(() => decodeMessage(Buffer.from('0b', 'hex')), /wire type 3/); // start group
  assert.throws(() => decodeMessage(Buffer.from('ffffffffffffffffffff01', 'hex')), /longer than 10 bytes/);
  assert.throws(() => decodeMessage(Buffer.from('00', 'hex')), /field number 0/);
  // a string field sent as a varint is a schema mismatch, not a silent empty string
  assert.throws(() => decodeMessage(new ProtoWriter().varint(1, 5).finish()).string(1), /wire type 0, expected 2/);
});

// ---- the client against a real HTTP/2 server ----

interface Seen {
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
}
type Handler = (stream: http2.ServerHttp2Stream, seen: Seen) => void;

/** An HTTP/2 server on a unix socket; `handle` answers each request once its body has arrived. */
async function server(t: test.TestContext, handle: Handler): Promise<{ path: string; seen: Seen[]; sessions: () => number }> {
  const path = join(tempDir(t, 'plexus-grpc-'), 's.sock');
  const srv = http2.createServer();
  const seen: Seen[] = [];
  let sessions = 0;
  srv.on('session', () => sessions++);
  srv.on('stream', (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const s = { headers, body: Buffer.concat(chunks) };
      seen.push(s);
      handle(stream, s);
    });
    stream.on('error', () => {});
  });
  const openSessions = new Set<http2.ServerHttp2Session>();
  srv.on('session', (s) => {
    openSessions.add(s);
    s.on('close', () => openSessions.delete(s));
  });
  await new Promise<void>((res) => srv.listen(path, res));
  // close() waits for open sessions; one left open (the hanging server) must not hang the test
  t.after(() => {
    for (const s of openSessions) s.destroy();
    return new Promise<void>((res) => srv.close(() => res()));
  });
  return { path, seen, sessions: () => sessions };
}

const frame = (msg: Buffer, flag = 0): Buffer => {
  const b = Buffer.alloc(5 + msg.length);
  b[0] = flag;
  b.writeUInt32BE(msg.length, 1);
  msg.copy(b, 5);
  return b;
};

/** A well-behaved unary answer: headers, one message, trailers with grpc-status 0. */
function ok(stream: http2.ServerHttp2Stream, msg: Buffer): void {
  stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
  stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
  stream.end(frame(msg));
}

test('unary call: the request is a gRPC request, the reply message comes back decoded', async (t) => {
  // an echo service: reply { name = request.name + "!" , n = 2 * request.n }
  const s = await server(t, (stream, seen) => {
    const req = decodeMessage(seen.body.subarray(5));
    ok(stream, new ProtoWriter().string(1, `${req.string(1)}!`).varint(2, req.number(2) * 2).finish());
  });
  const reply = await unaryCall(s.path, '/test.Echo/Say', new ProtoWriter().string(1, 'hi').varint(2, 21).finish(), {
    timeoutMs: 5000,
    metadata: { 'x-trace': 'abc' },
  });
  const d = decodeMessage(reply);
  assert.equal(d.string(1), 'hi!');
  assert.equal(d.number(2), 42);

  const h = s.seen[0]!.headers;
  assert.equal(h[':method'], 'POST');
  assert.equal(h[':path'], '/test.Echo/Say');
  assert.equal(h['content-type'], 'application/grpc');
  assert.equal(h.te, 'trailers');
  assert.equal(h['grpc-timeout'], '5000m');
  assert.equal(h['x-trace'], 'abc');
  // 5-byte prefix: uncompressed flag, big-endian length
  const body = s.seen[0]!.body;
  assert.equal(body[0], 0);
  assert.equal(body.readUInt32BE(1), body.length - 5);
});

test('unary call: an empty request and an empty reply message', async (t) => {
  const s = await server(t, (stream) => ok(stream, Buffer.alloc(0)));
  const reply = await unaryCall(s.path, '/test.Echo/Empty', Buffer.alloc(0), { timeoutMs: 5000 });
  assert.equal(reply.length, 0);
  assert.equal(hex(s.seen[0]!.body), '0000000000');
});

test('unary call: several calls share one connection on a channel', async (t) => {
  const s = await server(t, (stream, seen) => ok(stream, seen.body.subarray(5)));
  const ch = new GrpcChannel(s.path);
  t.after(() => ch.close());
  const replies = await Promise.all(['a', 'b', 'c'].map((x) => ch.unary('/test.Echo/Say', new ProtoWriter().string(1, x).finish(), { timeoutMs: 5000 })));
  assert.deepEqual(replies.map((r) => decodeMessage(r).string(1)), ['a', 'b', 'c']);
  assert.equal(s.sessions(), 1);
});

test('unary call: a non-OK status in the trailers, with a percent-encoded message', async (t) => {
  const s = await server(t, (stream) => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': String(Status.NOT_FOUND), 'grpc-message': 'pod %22a%2Fb%22 not found' }));
    stream.end();
  });
  await assert.rejects(unaryCall(s.path, '/test.Echo/Say', Buffer.alloc(0), { timeoutMs: 5000 }), (err: GrpcError) => {
    assert.ok(err instanceof GrpcError);
    assert.equal(err.code, Status.NOT_FOUND);
    assert.equal(err.details, 'pod "a/b" not found');
    assert.equal(err.message, '/test.Echo/Say: NOT_FOUND: pod "a/b" not found');
    return true;
  });
});

test('unary call: a trailers-only response (status in the headers), as servers send for UNIMPLEMENTED', async (t) => {
  const s = await server(t, (stream) => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(Status.UNIMPLEMENTED), 'grpc-message': 'unknown method Get' }, { endStream: true });
  });
  await assert.rejects(unaryCall(s.path, '/v1.PodResourcesLister/Get', Buffer.alloc(0), { timeoutMs: 5000 }), (err: GrpcError) => {
    assert.equal(err.code, Status.UNIMPLEMENTED);
    assert.equal(err.details, 'unknown method Get');
    return true;
  });
});

test('unary call: HTTP errors and malformed replies map to gRPC codes', async (t) => {
  const cases: [Handler, number, RegExp][] = [
    [(st) => st.respond({ ':status': 404 }, { endStream: true }), Status.UNIMPLEMENTED, /HTTP status 404/],
    [(st) => st.respond({ ':status': 503 }, { endStream: true }), Status.UNAVAILABLE, /HTTP status 503/],
    // OK but no message: a unary reply needs exactly one
    [(st) => { st.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true }); st.on('wantTrailers', () => st.sendTrailers({ 'grpc-status': '0' })); st.end(); }, Status.INTERNAL, /without a message/],
    [(st) => { st.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true }); st.on('wantTrailers', () => st.sendTrailers({ 'grpc-status': '0' })); st.end(Buffer.concat([frame(Buffer.from('a')), frame(Buffer.from('b'))])); }, Status.INTERNAL, /more than one message/],
    [(st) => { st.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true }); st.on('wantTrailers', () => st.sendTrailers({ 'grpc-status': '0' })); st.end(frame(Buffer.from('abc'), 1)); }, Status.INTERNAL, /compressed/],
    [(st) => { st.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true }); st.on('wantTrailers', () => st.sendTrailers({ 'grpc-status': '0' })); st.end(frame(Buffer.from('abcdef')).subarray(0, 7)); }, Status.INTERNAL, /truncated message/],
    [(st) => { st.respond({ ':status': 200, 'content-type': 'application/grpc' }); st.end(frame(Buffer.from('a'))); }, Status.INTERNAL, /without grpc-status/],
    [(st) => { st.respond({ ':status': 200, 'content-type': 'text/html' }, { waitForTrailers: true }); st.on('wantTrailers', () => st.sendTrailers({ 'grpc-status': '0' })); st.end(frame(Buffer.from('a'))); }, Status.INTERNAL, /content-type "text\/html"/],
  ];
  for (const [handler, code, msg] of cases) {
    const s = await server(t, handler);
    await assert.rejects(unaryCall(s.path, '/test.Echo/Say', Buffer.alloc(0), { timeoutMs: 5000 }), (err: GrpcError) => {
      assert.equal(err.code, code, err.message);
      assert.match(err.message, msg);
      return true;
    });
  }
});

test('unary call: a reply over maxResponseBytes is RESOURCE_EXHAUSTED', async (t) => {
  const s = await server(t, (stream) => ok(stream, Buffer.alloc(64 * 1024, 1)));
  await assert.rejects(unaryCall(s.path, '/test.Echo/Big', Buffer.alloc(0), { timeoutMs: 5000, maxResponseBytes: 1024 }), (err: GrpcError) => {
    assert.equal(err.code, Status.RESOURCE_EXHAUSTED);
    return true;
  });
  // the same reply under a large enough limit arrives whole
  const whole = await unaryCall(s.path, '/test.Echo/Big', Buffer.alloc(0), { timeoutMs: 5000, maxResponseBytes: 64 * 1024 });
  assert.equal(whole.length, 64 * 1024);
});

test('unary call: a server that never answers fails with DEADLINE_EXCEEDED at the deadline', async (t) => {
  const s = await server(t, () => {}); // reads the request, never responds
  const started = process.hrtime.bigint();
  await assert.rejects(unaryCall(s.path, '/test.Echo/Hang', Buffer.alloc(0), { timeoutMs: 300 }), (err: GrpcError) => {
    assert.equal(err.code, Status.DEADLINE_EXCEEDED);
    assert.match(err.message, /within 300 ms/);
    return true;
  });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  assert.ok(ms >= 290, `gave up after ${ms} ms, before the deadline`);
  assert.equal(s.seen[0]!.headers['grpc-timeout'], '300m');
});

test('unary call: a socket that accepts but never speaks HTTP/2 also hits the deadline', async (t) => {
  const path = join(tempDir(t, 'plexus-grpc-'), 'mute.sock');
  const conns = new Set<net.Socket>();
  const mute = net.createServer((c) => conns.add(c));
  await new Promise<void>((res) => mute.listen(path, res));
  t.after(() => {
    for (const c of conns) c.destroy();
    mute.close();
  });
  await assert.rejects(unaryCall(path, '/test.Echo/Hang', Buffer.alloc(0), { timeoutMs: 200 }), (err: GrpcError) => {
    assert.equal(err.code, Status.DEADLINE_EXCEEDED);
    return true;
  });
});

test('unary call: no socket, or nobody listening, is UNAVAILABLE naming the socket', async (t) => {
  const dir = tempDir(t, 'plexus-grpc-');
  const missing = join(dir, 'missing.sock');
  await assert.rejects(unaryCall(missing, '/test.Echo/Say', Buffer.alloc(0), { timeoutMs: 5000 }), (err: GrpcError) => {
    assert.equal(err.code, Status.UNAVAILABLE);
    assert.ok(err.message.includes(missing), err.message);
    assert.match(err.message, /ENOENT/);
    return true;
  });
  // a socket file left by a server that is gone
  const stale = join(dir, 'stale.sock');
  const srv = net.createServer();
  await new Promise<void>((res) => srv.listen(stale, res));
  await new Promise<void>((res) => srv.close(() => res()));
  await assert.rejects(unaryCall(stale, '/test.Echo/Say', Buffer.alloc(0), { timeoutMs: 5000 }), (err: GrpcError) => {
    assert.equal(err.code, Status.UNAVAILABLE);
    assert.match(err.message, /ENOENT|ECONNREFUSED/);
    return true;
  });
});
