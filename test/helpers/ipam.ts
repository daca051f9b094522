// host-local keeps one file per reserved IP under <dataDir>/<network>/: counting them tells
// whether an attachment leaked its address.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

export function reservedIps(dataDir: string, network: string): string[] {
  try {
    return readdirSync(join(dataDir, network)).filter((f) => f !== 'lock' && !f.startsWith('last_reserved_ip'));
  } catch {
    return [];
  }
}
