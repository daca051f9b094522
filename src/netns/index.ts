// src/netns: network namespace handles and in-process rtnetlink. Import from here.
export { Netns, nsIdentity, currentNsIdentity, sameNetns, sendRawFrame, sendRawFrames, type NsIdentity } from './netns';
export { NetlinkError, isSystemError, hasCode, errnoName, type SystemError } from './errors';
export * from './links';
export type { Link, LinkChange, NewLinkSpec } from './linkmsg';
export type { LinkKindSpec, LinkKindInfo, BridgePortInfo, BridgeOptions, MacvlanMode, IpvlanMode, IpvlanFlag, VlanProtocol } from './linkinfo';
export * from './bridge';
export * from './addrs';
export * from './routes';
export * from './rules';
export * from './neigh';
export * from './sysctl';
export * from './announce';
export { RouteTable, RouteType, RouteProtocol, Scope, NUD, IFF } from './consts';
export type { IpFamily } from './ipaddr';
