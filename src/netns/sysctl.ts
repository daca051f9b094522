// Per-namespace sysctls. /proc/sys/net resolves against the namespace of the thread that opens
// the file, so the open and the write both happen inside the addon's setns window.
import { addon } from './native';
import type { Netns } from './netns';

/**
 * "net.ipv4.ip_forward" or "net/ipv4/ip_forward" -> "net/ipv4/ip_forward". Use the slash form
 * (or sysctlKey) when a part holds a dot, such as the interface name "eth0.100".
 */
export function sysctlPath(key: string): string {
  return key.includes('/') ? key : key.replace(/\./g, '/');
}

/** Joins parts literally: sysctlKey('net', 'ipv4', 'conf', 'eth0.100', 'rp_filter'). */
export function sysctlKey(...parts: string[]): string {
  for (const p of parts) if (p === '' || p.includes('/') || p === '..') throw new TypeError(`bad sysctl key part ${JSON.stringify(p)}`);
  return parts.join('/');
}

export function readSysctl(ns: Netns, key: string): string {
  return addon().readSysctlIn(ns.path, sysctlPath(key)).trim();
}

export function writeSysctl(ns: Netns, key: string, value: string | number): void {
  addon().writeSysctlIn(ns.path, sysctlPath(key), String(value));
}
