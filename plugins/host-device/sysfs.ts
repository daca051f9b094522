// Finding a host device through sysfs, as the reference host-device plugin does: PCI functions
// (pciBusID, runtimeConfig.deviceID), auxiliary-bus devices (SR-IOV sub-functions handed out as
// runtimeConfig.deviceID), kernel device paths (kernelpath), and whether a PCI function is bound to
// a userspace (DPDK) driver. Every function takes the sysfs root: "/sys" in production, a temp tree
// in tests, because no test machine has real VFs or sub-functions.
import { existsSync, readdirSync, readlinkSync } from 'node:fs';
import { basename, join, posix } from 'node:path';
import { CniError, Code } from '../../src/cni/errors';

export const SYSFS = '/sys';

/** Drivers that give the device to userspace: it has no netdev, so nothing is moved or addressed. */
export const USERSPACE_DRIVERS: readonly string[] = ['vfio-pci', 'uio_pci_generic', 'igb_uio'];

export interface BusDevice {
  bus: 'pci' | 'auxiliary';
  /** "0000:03:00.1" on the PCI bus, "mlx5_core.sf.4" on the auxiliary bus. */
  id: string;
}

// The reference reports every lookup failure as a plain error, which libcni's skel turns into 999.
function fail(msg: string): never {
  throw new CniError(Code.Internal, msg);
}

/** A device address becomes one path component under /sys/bus: nothing that can climb out of it. */
export function checkDeviceAddress(what: string, id: string): void {
  if (id === '.' || id === '..' || id.includes('/') || id.includes('\0')) {
    throw new CniError(Code.InvalidConfig, `${what}: ${JSON.stringify(id)} is not a device address`);
  }
}

export function busPath(sys: string, d: BusDevice): string {
  return join(sys, 'bus', d.bus, 'devices', d.id);
}

/** runtimeConfig.deviceID names a PCI function when /sys/bus/pci has it, else an auxiliary device. */
export function resolveDeviceId(sys: string, id: string): BusDevice {
  checkDeviceAddress('runtimeConfig.deviceID', id);
  for (const bus of ['pci', 'auxiliary'] as const) if (existsSync(busPath(sys, { bus, id }))) return { bus, id };
  return fail(`runtime config DeviceID ${id} not found or unsupported`);
}

/**
 * Whether the PCI function is bound to a userspace driver (DPDK mode). A function with no driver
 * bound is an error, as in the reference: it has no netdev either, so there is nothing to hand over.
 */
export function hasDpdkDriver(sys: string, pciAddr: string): boolean {
  const dev = busPath(sys, { bus: 'pci', id: pciAddr });
  if (!existsSync(dev)) fail(`error with host device: no PCI device ${pciAddr} (${dev})`);
  let target: string;
  try {
    // The driver is the link's last component (.../bus/pci/drivers/vfio-pci); readlink, not
    // realpath, so a driver folder that is itself a link still reads as its own name.
    target = readlinkSync(join(dev, 'driver'));
  } catch (err) {
    return fail(`error with host device: PCI device ${pciAddr} has no driver bound (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  return USERSPACE_DRIVERS.includes(basename(target));
}

/** Sorted like Go's os.ReadDir, so "the first netdev" is the one the reference picks; null if absent. */
function entries(dir: string): string[] | null {
  try {
    return readdirSync(dir).sort();
  } catch {
    return null;
  }
}

/** Netdev names of a bus device: its net/ folder, or virtio*\/net/ for a virtio-net PCI function. */
export function busNetdevs(sys: string, d: BusDevice): string[] {
  const dev = busPath(sys, d);
  let names = entries(join(dev, 'net'));
  if (names === null && d.bus === 'pci') {
    for (const sub of entries(dev) ?? []) {
      if (!sub.startsWith('virtio')) continue;
      names = entries(join(dev, sub, 'net'));
      if (names !== null) break;
    }
  }
  if (names === null) fail(`no net directory under ${d.bus === 'pci' ? 'pci' : 'auxiliary'} device ${d.id}`);
  if (names.length === 0) fail(`failed to find network device in path ${join(dev, 'net')}`);
  return names;
}

/**
 * Netdev names for kernelpath. The reference reads the kernel device (/sys/devices/pci0000:00/
 * 0000:00:1f.6) and its net/ folder. Also accepted: the netdev's own folder, which is what
 * `readlink -f /sys/class/net/eth1` prints (/sys/devices/.../net/eth1) and the reference rejects.
 */
export function kernelPathNetdevs(sys: string, kernelpath: string): string[] {
  const clean = posix.normalize(kernelpath);
  // Normalised first, so "/sys/devices/../../etc" cannot pass the prefix check.
  if (!posix.isAbsolute(kernelpath) || !clean.startsWith('/sys/devices/')) {
    fail(`kernel device path ${JSON.stringify(kernelpath)} must be absolute and begin with /sys/devices/`);
  }
  const dir = join(sys, clean.slice('/sys'.length));
  const names = entries(join(dir, 'net'));
  if (names !== null && names.length > 0) return names;
  if (posix.basename(posix.dirname(clean)) === 'net' && existsSync(join(dir, 'ifindex'))) return [posix.basename(clean)];
  return fail(`failed to find network devices at ${JSON.stringify(posix.join(clean, 'net'))}`);
}
