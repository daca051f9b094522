// The pure half of src/netns: attribute and message encoding, kernel answers, address bytes,
// request builders and frames. No kernel involved.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeAddress } from '../src/netns/addrs';
import { gratuitousArpFrame, unsolicitedNaFrame } from '../src/netns/announce';
import { encodeBridgePortSettings, encodeBridgeVlan } from '../src/netns/bridge';
import { IFA, IFA_F, IFLA, IFLA_BRPORT, IFLA_INFO, NLM_F, NLA_F_NESTED, Nlmsg, RTA, RTM, Scope, VETH_INFO_PEER } from '../src/netns/consts';
import { errnoName, NetlinkError } from '../src/netns/errors';
import { decodeKindInfo, linkInfoAttr } from '../src/netns/linkinfo';
import { encodeDelLink, encodeLinkChange, encodeNewLink } from '../src/netns/linkmsg';
import { formatIp, formatMac, ipv4Broadcast, networkOf, parseIp, parseMac, parsePrefix } from '../src/netns/ipaddr';
import { addonCandidates } from '../src/netns/native';
import { encodeAttrs, nla, parseAttrs } from '../src/netns/nlattr';
import { encodeRoute } from '../src/netns/routes';
import { encodeRule } from '../src/netns/rules';
import { decodeAnswer, decodeIfInfoMsg, decodeMessage, decodeRtMsg, encodeMessage, type NlMessage, repliesOrThrow, splitMessages } from '../src/netns/rtnl';
import { sysctlKey, sysctlPath } from '../src/netns/sysctl';

test('attributes are length-prefixed, typed and padded to 4 bytes', () => {
  const buf = encodeAttrs([nla.u8(1, 7), nla.str(2, 'eth0'), nla.u32(3, 0xdeadbeef)]);
  assert.equal(buf.toString('hex'), '05000100' + '07000000' + '09000200' + '6574683000000000' + '08000300' + 'efbeadde');
  const back = parseAttrs(buf);
  assert.equal(back.u8(1), 7);
  assert.equal(back.str(2), 'eth0');
  assert.equal(back.u32(3), 0xdeadbeef);
  assert.equal(back.get(4), undefined);
});

test('nests encode children inside, with NLA_F_NESTED only when asked, and decode masked', () => {
  const plain = encodeAttrs([nla.nest(5, [nla.u16(1, 2)])]);
  assert.equal(plain.readUInt16LE(0), 4 + 8);
  assert.equal(plain.readUInt16LE(2), 5);
  const flagged = encodeAttrs([nla.nest(5, [nla.u16(1, 2)], true)]);
  assert.equal(flagged.readUInt16LE(2), 5 | NLA_F_NESTED);
  assert.equal(parseAttrs(flagged).nested(5)?.u16(1), 2);
});

test('a truncated attribute ends parsing instead of throwing', () => {
  const buf = Buffer.concat([encodeAttrs([nla.u32(1, 1)]), Buffer.from([0x40, 0, 2, 0])]);
  assert.deepEqual(parseAttrs(buf).list.map((a) => a.type), [1]);
});

test('a message carries its length, type, flags and seq in the header', () => {
  const msg = encodeMessage(RTM.GETLINK, NLM_F.REQUEST | NLM_F.DUMP, 42, Buffer.alloc(16), [nla.u32(IFLA.EXT_MASK, 8)]);
  assert.equal(msg.readUInt32LE(0), msg.length);
  assert.equal(msg.length, 16 + 16 + 8);
  const d = decodeMessage(msg);
  assert.deepEqual([d.type, d.flags, d.seq, d.pid, d.payload.length], [RTM.GETLINK, 0x301, 42, 0, 24]);
  assert.equal(splitMessages(Buffer.concat([msg, msg])).length, 2);
});

function errorMessage(errno: number, opts: { extack?: string; capped?: boolean; echoLen?: number } = {}): NlMessage {
  const echoLen = opts.echoLen ?? 16;
  const head = Buffer.alloc(4 + (opts.capped === false ? echoLen : 16));
  head.writeInt32LE(-errno, 0);
  head.writeUInt32LE(echoLen, 4);
  const tlvs = opts.extack ? encodeAttrs([nla.str(1, opts.extack), nla.u32(2, 36)]) : Buffer.alloc(0);
  const flags = (opts.capped === false ? 0 : NLM_F.CAPPED) | (opts.extack ? NLM_F.ACK_TLVS : 0);
  return { type: Nlmsg.ERROR, flags, seq: 1, pid: 0, payload: Buffer.concat([head, tlvs]) };
}

test('an ACK is error 0; an error carries errno and the extack text and offset', () => {
  assert.deepEqual(decodeAnswer(errorMessage(0)), { errno: 0, extack: null, badAttrOffset: null });
  assert.deepEqual(decodeAnswer(errorMessage(19, { extack: 'ipv4: Device not found' })), { errno: 19, extack: 'ipv4: Device not found', badAttrOffset: 36 });
});

test('without NETLINK_CAP_ACK the extack follows the whole echoed request', () => {
  const m = errorMessage(22, { extack: 'bad', capped: false, echoLen: 40 });
  assert.equal(decodeAnswer(m).extack, 'bad');
});

test('repliesOrThrow keeps data messages and turns errors (also in DONE) into NetlinkError', () => {
  const data: NlMessage = { type: RTM.NEWLINK, flags: NLM_F.MULTI, seq: 1, pid: 0, payload: Buffer.alloc(16) };
  const done: NlMessage = { type: Nlmsg.DONE, flags: NLM_F.MULTI, seq: 1, pid: 0, payload: Buffer.alloc(4) };
  assert.deepEqual(repliesOrThrow([data, done], 'x'), [data]);
  assert.throws(
    () => repliesOrThrow([errorMessage(17, { extack: 'exists' })], 'create veth a'),
    (e: unknown) => e instanceof NetlinkError && e.errno === 17 && e.code === 'EEXIST' && e.extack === 'exists' && e.message === 'create veth a: File exists (EEXIST): exists',
  );
  const failedDump: NlMessage = { ...done, payload: Buffer.from([0xf0, 0xff, 0xff, 0xff]) }; // -16
  assert.throws(() => repliesOrThrow([data, failedDump], 'list'), { code: 'EBUSY' });
});

test('errno names follow the kernel: 95 is EOPNOTSUPP, unknown numbers stay numeric', () => {
  assert.equal(errnoName(17), 'EEXIST');
  assert.equal(errnoName(19), 'ENODEV');
  assert.equal(errnoName(95), 'EOPNOTSUPP');
  assert.equal(errnoName(11), 'EAGAIN');
  assert.equal(errnoName(4095), 'E4095');
});

test('IP addresses parse to network-order bytes and print like inet_ntop', () => {
  assert.equal(parseIp('10.1.2.3').bytes.toString('hex'), '0a010203');
  const cases: Array<[string, string]> = [
    ['2001:0db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['fe80::1', 'fe80::1'],
    ['::', '::'],
    ['::1', '::1'],
    ['::ffff:192.0.2.1', '::ffff:192.0.2.1'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2:3:4:5:6'],
    ['2001:0:0:1::1', '2001:0:0:1::1'],
    ['fe80::1%eth0', 'fe80::1'],
  ];
  for (const [input, printed] of cases) assert.equal(formatIp(parseIp(input).bytes), printed, input);
  assert.equal(formatIp(parseIp('1:2:3:4:5:6:7::').bytes), '1:2:3:4:5:6:7:0', 'a single zero word is not compressed');
  for (const bad of ['10.0.0.256', '01.2.3.4', '1.2.3', 'eth0', '', ':::', '1::2::3', '12345::', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8:9', '::1.2.3', ' ::1']) {
    assert.throws(() => parseIp(bad), TypeError, JSON.stringify(bad));
  }
});

test('prefixes keep host bits; networkOf and ipv4Broadcast derive from them', () => {
  const p = parsePrefix('10.1.2.3/22');
  assert.equal(p.prefixLen, 22);
  assert.equal(formatIp(p.bytes), '10.1.2.3');
  assert.equal(formatIp(networkOf(p)), '10.1.0.0');
  assert.equal(formatIp(ipv4Broadcast(p.bytes, 22)), '10.1.3.255');
  assert.equal(formatIp(networkOf(parsePrefix('2001:db8::7/64'))), '2001:db8::');
  assert.equal(parsePrefix('2001:db8::1').prefixLen, 128);
  assert.throws(() => parsePrefix('10.0.0.0/33'), TypeError);
  assert.throws(() => parsePrefix('10.0.0.0/x'), TypeError);
});

test('MAC addresses round-trip and malformed ones are refused', () => {
  assert.equal(formatMac(parseMac('02:AA:bb:00:01:ff')), '02:aa:bb:00:01:ff');
  assert.throws(() => parseMac('02:aa:bb:00:01'), TypeError);
});

test('a new veth nests a whole ifinfomsg with the peer name, netns fd and MTU', () => {
  const req = encodeNewLink({ name: 'a', mtu: 1400, up: true, info: { kind: 'veth', peer: { name: 'b', netnsFd: 9 } } });
  const h = decodeIfInfoMsg(req.header);
  assert.deepEqual([h.index, h.flags, h.change], [0, 1, 1]);
  const attrs = parseAttrs(encodeAttrs(req.attrs));
  assert.equal(attrs.str(IFLA.IFNAME), 'a');
  assert.equal(attrs.u32(IFLA.MTU), 1400);
  const info = attrs.nested(IFLA.LINKINFO);
  assert.equal(info?.str(IFLA_INFO.KIND), 'veth');
  const peer = info?.nested(IFLA_INFO.DATA)?.get(VETH_INFO_PEER);
  assert.ok(peer);
  const peerAttrs = parseAttrs(peer, 16);
  assert.equal(peerAttrs.str(IFLA.IFNAME), 'b');
  assert.equal(peerAttrs.u32(IFLA.NET_NS_FD), 9);
});

test('kind data encodes and decodes back for macvlan, ipvlan, vlan and vxlan', () => {
  const dataOf = (a: ReturnType<typeof linkInfoAttr>) => parseAttrs(encodeAttrs([a])).nested(IFLA.LINKINFO)?.nested(IFLA_INFO.DATA);
  assert.deepEqual(decodeKindInfo('macvlan', dataOf(linkInfoAttr({ kind: 'macvlan', mode: 'vepa', bcQueueLen: 10 }))), {
    kind: 'macvlan',
    mode: 'vepa',
    flags: 0,
    bcQueueLen: 10,
  });
  assert.deepEqual(decodeKindInfo('ipvlan', dataOf(linkInfoAttr({ kind: 'ipvlan', mode: 'l3s', flag: 'private' }))), { kind: 'ipvlan', mode: 'l3s', flag: 'private' });
  const vlan = linkInfoAttr({ kind: 'vlan', id: 100, protocol: '802.1ad' });
  assert.deepEqual(decodeKindInfo('vlan', dataOf(vlan)), { kind: 'vlan', id: 100, protocol: '802.1ad' });
  assert.equal(dataOf(vlan)?.get(5)?.toString('hex'), '88a8', 'VLAN protocol is big-endian');
  const vx = decodeKindInfo('vxlan', dataOf(linkInfoAttr({ kind: 'vxlan', vni: 42, port: 4789, group: '239.1.1.1', parentIndex: 3 })));
  assert.deepEqual(vx, { kind: 'vxlan', vni: 42, parentIndex: 3, port: 4789, group: '239.1.1.1', local: null, learning: null });
  assert.equal(decodeKindInfo('wireguard', undefined), null);
});

test('link changes address by index; an empty alias is sent empty so the kernel drops it', () => {
  const req = encodeLinkChange(7, { alias: '', masterIndex: 0, up: false });
  const h = decodeIfInfoMsg(req.header);
  assert.deepEqual([h.index, h.flags, h.change], [7, 0, 1]);
  const attrs = parseAttrs(encodeAttrs(req.attrs));
  assert.equal(attrs.get(IFLA.IFALIAS)?.length, 0);
  assert.equal(attrs.u32(IFLA.MASTER), 0);
  const group = encodeDelLink({ group: 9 });
  assert.equal(decodeIfInfoMsg(group.header).index, 0);
  assert.equal(parseAttrs(encodeAttrs(group.attrs)).u32(IFLA.GROUP), 9);
});

test('IPv4 addresses send LOCAL, ADDRESS and a computed broadcast; flags go in IFA_FLAGS', () => {
  const v4 = parseAttrs(encodeAttrs(encodeAddress(3, '10.0.0.5/24', { noPrefixRoute: true }).attrs));
  assert.equal(formatIp(v4.get(IFA.LOCAL) ?? Buffer.alloc(0)), '10.0.0.5');
  assert.equal(formatIp(v4.get(IFA.ADDRESS) ?? Buffer.alloc(0)), '10.0.0.5');
  assert.equal(formatIp(v4.get(IFA.BROADCAST) ?? Buffer.alloc(0)), '10.0.0.255');
  assert.equal(v4.u32(IFA.FLAGS), IFA_F.NOPREFIXROUTE);
  assert.equal(parseAttrs(encodeAttrs(encodeAddress(3, '10.0.0.5/31').attrs)).has(IFA.BROADCAST), false);
  const v6 = encodeAddress(3, '2001:db8::5/64', { nodad: true });
  assert.equal(v6.header.readUInt8(2), IFA_F.NODAD);
  const attrs6 = parseAttrs(encodeAttrs(v6.attrs));
  assert.deepEqual([attrs6.has(IFA.LOCAL), attrs6.has(IFA.BROADCAST)], [false, false]);
  assert.equal(encodeAddress(1, '127.0.0.2/8').header.readUInt8(3), Scope.host);
});

test('routes default like `ip route add`; deletes leave unset fields as wildcards', () => {
  const dev = encodeRoute({ dst: '10.9.8.7/16', oif: 4 });
  const h = decodeRtMsg(dev.header);
  assert.deepEqual([h.dstLen, h.table, h.protocol, h.scope, h.type], [16, 254, 3, Scope.link, 1]);
  const attrs = parseAttrs(encodeAttrs(dev.attrs));
  assert.equal(formatIp(attrs.get(RTA.DST) ?? Buffer.alloc(0)), '10.9.0.0', 'host bits cleared');
  assert.equal(decodeRtMsg(encodeRoute({ dst: '0.0.0.0/0', gateway: '10.0.0.1' }).header).scope, Scope.universe);
  const big = encodeRoute({ dst: '2001:db8::/64', table: 1000, mtu: 1400 });
  assert.equal(decodeRtMsg(big.header).table, 0);
  const bigAttrs = parseAttrs(encodeAttrs(big.attrs));
  assert.equal(bigAttrs.u32(RTA.TABLE), 1000);
  assert.equal(bigAttrs.nested(RTA.METRICS)?.u32(2), 1400);
  const del = decodeRtMsg(encodeRoute({ dst: '10.0.0.0/8' }, true).header);
  assert.deepEqual([del.scope, del.protocol, del.type], [Scope.nowhere, 0, 0]);
  const via6 = parseAttrs(encodeAttrs(encodeRoute({ dst: '10.0.0.0/8', gateway: 'fe80::1', oif: 2 }).attrs)).get(RTA.VIA);
  assert.equal(via6?.readUInt16LE(0), 10);
});

test('rules infer their family and refuse mixed ones', () => {
  const r = encodeRule({ src: '10.1.0.5/32', table: 100, priority: 1000 });
  assert.deepEqual([r.header.readUInt8(0), r.header.readUInt8(2), r.header.readUInt8(4), r.header.readUInt8(7)], [2, 32, 100, 1]);
  assert.throws(() => encodeRule({ priority: 5 }), TypeError);
  assert.throws(() => encodeRule({ src: '10.0.0.0/8', dst: '2001:db8::/32' }), TypeError);
  assert.equal(encodeRule({ family: 6, table: 5000 }).header.readUInt8(4), 0);
});

test('bridge port flags go nested with NLA_F_NESTED; VLANs carry flags and vid', () => {
  const port = encodeAttrs(encodeBridgePortSettings({ hairpin: true, isolated: false }));
  assert.equal(port.readUInt16LE(2), IFLA.PROTINFO | NLA_F_NESTED);
  const inner = parseAttrs(port).nested(IFLA.PROTINFO);
  assert.deepEqual([inner?.u8(IFLA_BRPORT.MODE), inner?.u8(IFLA_BRPORT.ISOLATED)], [1, 0]);
  const vlan = parseAttrs(encodeAttrs(encodeBridgeVlan({ vid: 10, pvid: true, untagged: true }, { self: true }))).nested(IFLA.AF_SPEC);
  assert.equal(vlan?.u16(0), 2, 'BRIDGE_FLAGS_SELF');
  assert.equal(vlan?.get(2)?.toString('hex'), '06000a00');
});

test('a gratuitous ARP is a broadcast request with sender = target', () => {
  const f = gratuitousArpFrame('02:00:00:00:00:01', '10.0.0.5');
  assert.equal(f.length, 60);
  assert.equal(f.subarray(0, 14).toString('hex'), 'ffffffffffff' + '020000000001' + '0806');
  assert.equal(f.subarray(14, 42).toString('hex'), '000108000604' + '0001' + '020000000001' + '0a000005' + '000000000000' + '0a000005');
});

test('an unsolicited NA goes to all nodes with hop limit 255 and a valid checksum', () => {
  const f = unsolicitedNaFrame('02:00:00:00:00:01', '2001:db8::5');
  assert.equal(f.subarray(0, 14).toString('hex'), '333300000001' + '020000000001' + '86dd');
  const ip6 = f.subarray(14, 54);
  assert.equal(ip6.readUInt8(7), 255);
  const icmp = f.subarray(54, 86);
  assert.deepEqual([icmp.readUInt8(0), icmp.readUInt32BE(4)], [136, 0x20000000]);
  // The ones' complement sum over pseudo-header + message, checksum included, must be 0xffff.
  const pseudo = Buffer.alloc(40);
  ip6.copy(pseudo, 0, 8, 40);
  pseudo.writeUInt32BE(32, 32);
  pseudo.writeUInt8(58, 39);
  let sum = 0;
  for (const c of [pseudo, icmp]) for (let i = 0; i < c.length; i += 2) sum += c.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  assert.equal(sum, 0xffff);
});

test('sysctl keys: dotted form becomes a path; parts with dots need sysctlKey', () => {
  assert.equal(sysctlPath('net.ipv4.ip_forward'), 'net/ipv4/ip_forward');
  assert.equal(sysctlPath('net/ipv4/conf/eth0.100/rp_filter'), 'net/ipv4/conf/eth0.100/rp_filter');
  assert.equal(sysctlKey('net', 'ipv6', 'conf', 'eth0.100', 'disable_ipv6'), 'net/ipv6/conf/eth0.100/disable_ipv6');
  assert.throws(() => sysctlKey('net', '..', 'x'), TypeError);
});

test('the addon is looked for at $PLEXUS_ADDON first, then beside the executable', () => {
  const list = addonCandidates({ PLEXUS_ADDON: '/opt/x.node' });
  assert.equal(list[0], '/opt/x.node');
  assert.match(list[1] ?? '', /plexus_netns\.node$/);
  assert.ok(list.some((p) => p.endsWith('/build/plexus_netns.node')));
});
