// src/cni/addr.ts: strict parsing (Go net semantics), RFC 5952 output, hardware addresses, ifnames.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import {
  addressOf,
  canonicalCidr,
  canonicalIP,
  canonicalIPWithOptionalPrefix,
  formatHwAddr,
  interfaceNameProblem,
  isDefaultDst,
  normalizeHwAddr,
  parseCidr,
  parseHwAddr,
  parseIP,
  resultFamily,
} from '../src/cni/addr';

test('canonicalIP: RFC 5952 §4 examples and basics', () => {
  const cases: [string, string][] = [
    ['10.1.2.3', '10.1.2.3'],
    ['0.0.0.0', '0.0.0.0'],
    ['255.255.255.255', '255.255.255.255'],
    // §4.1 leading zeros suppressed, §4.3 lower case
    ['2001:0DB8:0000:0000:0000:0000:0002:0001', '2001:db8::2:1'],
    // §4.2.2 a single 16-bit 0 field is not shortened
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    // §4.2.3 the longest run is shortened; on a tie the first
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['::', '::'],
    ['::1', '::1'],
    ['1::', '1::'],
    ['fe80::0:0:1', 'fe80::1'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
    // IPv4-mapped keeps the dotted tail (§5)
    ['::FFFF:10.1.2.3', '::ffff:10.1.2.3'],
    ['0:0:0:0:0:ffff:a01:203', '::ffff:10.1.2.3'],
    // other embedded IPv4 is printed as hex, as Go does
    ['::10.1.2.3', '::a01:203'],
  ];
  for (const [input, want] of cases) assert.equal(canonicalIP(input), want, input);
});

test('canonicalIP: rejects what Go net.ParseIP rejects', () => {
  const bad = [
    '',
    '1.2.3',
    '1.2.3.4.5',
    '256.1.1.1',
    '01.2.3.4', // leading zero: Go ≥1.17 refuses (ambiguous octal)
    '1.2.3.4 ',
    ' 1.2.3.4',
    '1.2.3.-1',
    'fe80::1%eth0', // zones are not addresses
    '1:2:3:4:5:6:7:8:9',
    '1:2:3:4:5:6:7',
    '1::2::3',
    ':::',
    '1:2:3:4:5:6:7:8::', // "::" must stand for at least one group
    '::1:2:3:4:5:6:7:8',
    '12345::',
    'g::1',
    '1.2.3.4::',
    '::1.2.3',
    '10.1.2.3/24',
  ];
  for (const s of bad) assert.equal(canonicalIP(s), undefined, JSON.stringify(s));
});

// Two independent implementations as oracles: node:net for validity (none of these inputs has a
// zone, which node accepts and Go does not), the WHATWG URL host serialiser for the compressed form.
test('canonicalIP agrees with node:net and the WHATWG URL serialiser on validity and form', () => {
  const inputs = [
    '1.2.3.4', '192.168.000.1', '::', '::1', '1::1', 'a:b:c:d:e:f:0:1', '2001:DB8::', '2001:db8:0:0:0:0:0:1',
    '0:0:1:0:0:0:1:0', '1:0:0:2:0:0:0:3', 'ffff::ffff', '::2:3:4:5:6:7:8', '1:2:3:4:5:6:7::', '1:2:3:4:5:6::8',
    '1:2:3:4:5:6:7:8:9', 'x::', '::1.2.3.4', '1:2:3:4:5:6:1.2.3.4',
  ];
  for (const s of inputs) {
    const mine = canonicalIP(s);
    const family = isIP(s);
    assert.equal(mine !== undefined, family !== 0, `validity of ${s}`);
    if (mine !== undefined && family === 6 && !s.includes('.')) {
      assert.equal(mine, new URL(`http://[${s}]/`).hostname.slice(1, -1), `form of ${s}`);
    }
  }
});

test('parseIP: family and bytes', () => {
  assert.deepEqual(parseIP('10.0.0.1'), { family: 4, bytes: Uint8Array.from([10, 0, 0, 1]) });
  const v6 = parseIP('2001:db8::ff');
  assert.equal(v6?.family, 6);
  assert.deepEqual(Array.from(v6?.bytes ?? []), [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff]);
});

test('parseCidr / canonicalCidr keep host bits and check prefix length', () => {
  const ok: [string, string][] = [
    ['10.1.2.3/24', '10.1.2.3/24'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['10.0.0.0/32', '10.0.0.0/32'],
    ['2001:DB8::1/64', '2001:db8::1/64'],
    ['::/0', '::/0'],
    ['fd00::/128', 'fd00::/128'],
  ];
  for (const [s, want] of ok) assert.equal(canonicalCidr(s), want, s);
  for (const s of ['10.1.2.3', '10.1.2.3/33', '10.1.2.3/', '10.1.2.3/024', '10.1.2.3/-1', '::/129', '::/1/2', '10.1.2.300/24', '/24']) {
    assert.equal(parseCidr(s), undefined, s);
  }
});

test('canonicalIPWithOptionalPrefix and addressOf', () => {
  assert.equal(canonicalIPWithOptionalPrefix('10.1.1.1'), '10.1.1.1');
  assert.equal(canonicalIPWithOptionalPrefix('2001:DB8:0::5/64'), '2001:db8::5/64');
  assert.equal(canonicalIPWithOptionalPrefix('10.1.1.1/40'), undefined);
  assert.equal(addressOf('2001:db8::5/64'), '2001:db8::5');
  assert.equal(addressOf('10.1.1.1'), '10.1.1.1');
  assert.equal(addressOf('nope/1'), undefined);
});

test('resultFamily follows Go To4(): IPv4-mapped counts as 4', () => {
  const fam = (s: string) => resultFamily(parseIP(s) ?? assert.fail(s));
  assert.equal(fam('10.0.0.1'), 4);
  assert.equal(fam('::ffff:10.0.0.1'), 4);
  assert.equal(fam('2001:db8::1'), 6);
  assert.equal(fam('::10.0.0.1'), 6);
});

test('isDefaultDst: only a zero address with prefix 0', () => {
  const d = (s: string) => isDefaultDst(parseCidr(s) ?? assert.fail(s));
  assert.equal(d('0.0.0.0/0'), true);
  assert.equal(d('::/0'), true);
  assert.equal(d('0.0.0.0/8'), false);
  assert.equal(d('10.0.0.0/0'), false);
});

test('hardware addresses: the forms of Go net.ParseMAC, normalised to lower-case colons', () => {
  const ok: [string, number[], string][] = [
    ['02:23:45:67:89:AB', [6], '02:23:45:67:89:ab'],
    ['02-23-45-67-89-ab', [6], '02:23:45:67:89:ab'],
    ['0223.4567.89ab', [6], '02:23:45:67:89:ab'],
    ['00:11:22:33:44:55:66:77', [8], '00:11:22:33:44:55:66:77'],
    ['80:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22', [20], '80:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22'],
  ];
  for (const [s, lengths, want] of ok) assert.equal(normalizeHwAddr(s, lengths), want, s);
  const bad: [string, number[]][] = [
    ['02:23:45:67:89', [6]],
    ['02:23:45:67:89:ab:cd', [6, 8, 20]],
    ['2:23:45:67:89:ab', [6]],
    ['02:23:45:67:89:zz', [6]],
    ['02:23-45:67:89:ab', [6]],
    ['022345678 9ab', [6]],
    ['0223456789ab', [6]],
    ['00:11:22:33:44:55:66:77', [6]], // valid EUI-64, but not the length asked for
    ['', [6]],
  ];
  for (const [s, lengths] of bad) assert.equal(normalizeHwAddr(s, lengths), undefined, s);
  assert.equal(formatHwAddr(parseHwAddr('AA-BB-CC-DD-EE-0F') ?? assert.fail()), 'aa:bb:cc:dd:ee:0f');
});

test('interfaceNameProblem: libcni ValidateInterfaceName rules', () => {
  for (const ok of ['eth0', 'net1', 'a', 'x'.repeat(15), 'vlan.100', 'ñic']) assert.equal(interfaceNameProblem(ok), undefined, ok);
  const bad: [string, RegExp][] = [
    ['', /empty/],
    ['x'.repeat(16), /15 bytes/],
    ['ñ'.repeat(8), /15 bytes/], // 16 bytes in UTF-8, 8 characters
    ['.', /"\."/],
    ['..', /"\."/],
    ['a/b', /"\/"/],
    ['a:b', /":"/],
    ['a b', /whitespace/],
    ['a\tb', /whitespace/],
  ];
  for (const [s, re] of bad) assert.match(interfaceNameProblem(s) ?? 'accepted', re, JSON.stringify(s));
});
