// Policy routing rules (RTM_*RULE, struct fib_rule_hdr + FRA_*), for source-based routing:
// "from 10.1.0.5 lookup 100".
import { AF_INET, AF_INET6, FIB_RULE_INVERT, FR_ACT, FRA, NLM_F, RouteTable, RTM } from './consts';
import { afOf, familyOfAf, formatPrefix, type IpFamily, networkOf, parsePrefix } from './ipaddr';
import type { Netns } from './netns';
import { type Attr, nla } from './nlattr';
import { decodeFibRuleHdr, encodeFibRuleHdr, messageAttrs, type NlMessage } from './rtnl';

export type RuleAction = keyof typeof FR_ACT;

export interface Rule {
  family: IpFamily;
  priority: number;
  /** Table looked up (FRA_TABLE, else the header's 8-bit table). */
  table: number;
  /** Source prefix ("from"), null for all. */
  src: string | null;
  /** Destination prefix ("to"), null for all. */
  dst: string | null;
  iifName: string | null;
  oifName: string | null;
  fwmark: number | null;
  fwmask: number | null;
  action: RuleAction | null;
  invert: boolean;
  suppressPrefixLen: number | null;
  protocol: number | null;
}

export interface RuleSpec {
  /** Needed only when neither src nor dst says. */
  family?: IpFamily;
  /** Rule order; the kernel picks one below the previous rule's when unset. */
  priority?: number;
  table?: number;
  src?: string;
  dst?: string;
  iifName?: string;
  oifName?: string;
  fwmark?: number;
  fwmask?: number;
  /** Default toTable. */
  action?: RuleAction;
  /** "not": match everything the selectors do not. */
  invert?: boolean;
  /** Ignore lookups whose route prefix is this long or shorter (`suppress_prefixlength`). */
  suppressPrefixLen?: number;
}

export function decodeRule(msg: NlMessage): Rule | null {
  const h = decodeFibRuleHdr(msg.payload);
  const family = familyOfAf(h.family);
  if (!family) return null;
  const a = messageAttrs(msg, 12);
  const prefix = (type: number, len: number): string | null => {
    const b = a.get(type);
    return b ? formatPrefix(b, len) : null;
  };
  const action = Object.entries(FR_ACT).find(([, v]) => v === h.action)?.[0] as RuleAction | undefined;
  const suppress = a.u32(FRA.SUPPRESS_PREFIXLEN);
  return {
    family,
    priority: a.u32(FRA.PRIORITY) ?? 0,
    table: a.u32(FRA.TABLE) ?? h.table,
    src: prefix(FRA.SRC, h.srcLen),
    dst: prefix(FRA.DST, h.dstLen),
    iifName: a.str(FRA.IIFNAME) ?? null,
    oifName: a.str(FRA.OIFNAME) ?? null,
    fwmark: a.u32(FRA.FWMARK) ?? null,
    fwmask: a.u32(FRA.FWMASK) ?? null,
    action: action ?? null,
    invert: (h.flags & FIB_RULE_INVERT) !== 0,
    // The kernel reports 0xffffffff (-1) for "not set".
    suppressPrefixLen: suppress === undefined || suppress === 0xffffffff ? null : suppress,
    protocol: a.u8(FRA.PROTOCOL) ?? null,
  };
}

export function listRules(ns: Netns, family: IpFamily): Rule[] {
  const header = encodeFibRuleHdr({ family: afOf(family), dstLen: 0, srcLen: 0, tos: 0, table: 0, action: 0, flags: 0 });
  const out: Rule[] = [];
  for (const m of ns.dump(RTM.GETRULE, header, [], 'list rules')) {
    if (m.type !== RTM.NEWRULE) continue;
    const r = decodeRule(m);
    if (r) out.push(r);
  }
  return out;
}

/** For delete, unset fields are wildcards: the kernel deletes the first rule matching the rest. */
export function encodeRule(spec: RuleSpec, forDelete = false): { header: Buffer; attrs: Attr[] } {
  const src = spec.src !== undefined ? parsePrefix(spec.src) : null;
  const dst = spec.dst !== undefined ? parsePrefix(spec.dst) : null;
  const family = spec.family ?? src?.family ?? dst?.family;
  if (!family) throw new TypeError('a rule needs a family when it has neither src nor dst');
  for (const p of [src, dst]) if (p && p.family !== family) throw new TypeError('rule src, dst and family disagree');
  const table = spec.table ?? (forDelete ? RouteTable.unspec : RouteTable.main);
  const action = spec.action ?? (forDelete && spec.table === undefined ? undefined : 'toTable');
  const header = encodeFibRuleHdr({
    family: family === 4 ? AF_INET : AF_INET6,
    dstLen: dst?.prefixLen ?? 0,
    srcLen: src?.prefixLen ?? 0,
    tos: 0,
    table: table < 256 ? table : RouteTable.unspec,
    action: action ? FR_ACT[action] : 0,
    flags: spec.invert ? FIB_RULE_INVERT : 0,
  });
  const attrs: Attr[] = [];
  if (table !== RouteTable.unspec) attrs.push(nla.u32(FRA.TABLE, table));
  if (src) attrs.push(nla.bytes(FRA.SRC, networkOf(src)));
  if (dst) attrs.push(nla.bytes(FRA.DST, networkOf(dst)));
  if (spec.priority !== undefined) attrs.push(nla.u32(FRA.PRIORITY, spec.priority));
  if (spec.iifName !== undefined) attrs.push(nla.str(FRA.IIFNAME, spec.iifName));
  if (spec.oifName !== undefined) attrs.push(nla.str(FRA.OIFNAME, spec.oifName));
  if (spec.fwmark !== undefined) attrs.push(nla.u32(FRA.FWMARK, spec.fwmark));
  if (spec.fwmask !== undefined) attrs.push(nla.u32(FRA.FWMASK, spec.fwmask));
  if (spec.suppressPrefixLen !== undefined) attrs.push(nla.u32(FRA.SUPPRESS_PREFIXLEN, spec.suppressPrefixLen));
  return { header, attrs };
}

const describe = (r: RuleSpec): string =>
  [r.priority !== undefined ? `pref ${r.priority}` : '', r.src ? `from ${r.src}` : '', r.dst ? `to ${r.dst}` : '', r.table !== undefined ? `table ${r.table}` : '']
    .filter(Boolean)
    .join(' ');

/** Adds a rule; EEXIST when an identical rule exists. */
export function addRule(ns: Netns, spec: RuleSpec): void {
  const { header, attrs } = encodeRule(spec);
  ns.request(RTM.NEWRULE, NLM_F.CREATE | NLM_F.EXCL, header, attrs, `add rule ${describe(spec)}`);
}

/** Deletes the first rule matching every field given; ENOENT when none does. */
export function delRule(ns: Netns, spec: RuleSpec): void {
  const { header, attrs } = encodeRule(spec, true);
  ns.request(RTM.DELRULE, 0, header, attrs, `delete rule ${describe(spec)}`);
}
