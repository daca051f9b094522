// A real DHCP server for tests: dnsmasq in a namespace of its own serving a bridge there, veths
// whose peers are that bridge's ports (an uplink for a macvlan, a device for host-device, a port of
// a host bridge), and Debian's CNI `dhcp daemon` with its socket in a temp dir. The server's lease
// file is the oracle for what the server holds. Everything is stopped and removed in t.after.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ip, netns, tempDir, tryIp, uniq } from './host';
import { REFERENCE_PLUGINS } from './plexus';

type Cleanup = Pick<TestContext, 'after'>;

export interface DhcpServer {
  /** The server's address on its bridge, the gateway it hands out. */
  address: string;
  /** The socket of the CNI dhcp daemon, for `ipam.daemonSocketPath`. */
  socket: string;
  /** A new veth in the host whose peer is a port of the server's bridge; returns the host end. */
  link(t: Cleanup): string;
  /** The addresses the server holds a lease for (dnsmasq's lease file). */
  leases(): string[];
  /** dnsmasq's log (--log-dhcp). */
  log(): string;
  /** Polls the lease file until `ok(leases)` or the deadline; returns the last leases. */
  waitLeases(ok: (leases: string[]) => boolean, timeoutMs?: number): Promise<string[]>;
}

/** Polls `done` every 20 ms until it is true or `timeoutMs` has passed; returns its last value. */
async function until(done: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (done()) return true;
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
}

function stopOnAfter(t: Cleanup, child: ChildProcess, what: string): void {
  t.after(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  });
  child.on('error', (err) => {
    throw new Error(`${what}: ${err.message}`);
  });
}

/** `prefix`: the first three octets of a /24 unique to the test file, e.g. "10.197.3". */
export async function dhcpServer(t: Cleanup, prefix: string): Promise<DhcpServer> {
  const dir = tempDir(t, 'plexus-dhcp-');
  const srv = netns(t, 'pxds');
  const address = `${prefix}.1`;
  ip('-n', srv.name, 'link', 'set', 'lo', 'up');
  ip('-n', srv.name, 'link', 'add', 'br0', 'type', 'bridge');
  ip('-n', srv.name, 'addr', 'add', `${address}/24`, 'dev', 'br0');
  ip('-n', srv.name, 'link', 'set', 'br0', 'up');

  const leaseFile = join(dir, 'leases');
  const logFile = join(dir, 'dnsmasq.log');
  // --no-ping: dnsmasq would otherwise ping every address for seconds before offering it; the
  // pool here is the test's own.
  const dnsmasq = spawn(
    'ip',
    [
      'netns', 'exec', srv.name, 'dnsmasq',
      '--keep-in-foreground', '--conf-file=/dev/null', '--user=root', '--port=0', '--no-resolv', '--no-hosts',
      '--interface=br0', '--bind-interfaces', '--pid-file=', '--no-ping',
      `--dhcp-range=${prefix}.50,${prefix}.150,255.255.255.0,10m`, '--dhcp-authoritative',
      `--dhcp-leasefile=${leaseFile}`, '--log-dhcp', `--log-facility=${logFile}`,
    ],
    { stdio: 'ignore' },
  );
  stopOnAfter(t, dnsmasq, 'dnsmasq');

  const socket = join(dir, 'dhcp.sock');
  const daemon = spawn(join(REFERENCE_PLUGINS, 'dhcp'), ['daemon', '-socketpath', socket], { stdio: 'ignore', env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' } });
  stopOnAfter(t, daemon, 'dhcp daemon');
  if (!(await until(() => existsSync(socket) && existsSync(logFile), 10_000))) throw new Error('dnsmasq or the dhcp daemon did not start within 10 s');

  const leases = (): string[] => {
    let text = '';
    try {
      text = readFileSync(leaseFile, 'utf8');
    } catch {
      return [];
    }
    // "<expiry> <mac> <ip> <hostname> <client-id>" per line
    return text.split('\n').filter(Boolean).map((l) => l.split(' ')[2] ?? '').sort();
  };
  return {
    address,
    socket,
    link: (tc) => {
      const name = uniq('pxdh');
      const peer = uniq('pxdp');
      ip('link', 'add', name, 'type', 'veth', 'peer', 'name', peer, 'netns', srv.name);
      tc.after(() => tryIp('link', 'del', name));
      ip('-n', srv.name, 'link', 'set', peer, 'master', 'br0', 'up');
      ip('link', 'set', name, 'up');
      return name;
    },
    leases,
    log: () => {
      try {
        return readFileSync(logFile, 'utf8');
      } catch {
        return '';
      }
    },
    waitLeases: async (ok, timeoutMs = 10_000) => {
      await until(() => ok(leases()), timeoutMs);
      return leases();
    },
  };
}
