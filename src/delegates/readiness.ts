// The readiness indicator file (NPWG §6.1.2): block attach until the default network is ready,
// within a bound, instead of attaching pods to a network that is not there yet.
import { existsSync } from 'node:fs';
import { CniError, Code } from '../cni/errors';

const POLL_MS = 100;

export function isReady(file: string | undefined): boolean {
  return !file || existsSync(file);
}

export async function waitForReadiness(file: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(file)) {
    if (Date.now() >= deadline) {
      throw new CniError(Code.TryAgainLater, `readinessindicatorfile ${file} did not appear within ${Math.round(timeoutMs / 1000)} s: the default network is not ready`);
    }
    await new Promise((r) => setTimeout(r, Math.min(POLL_MS, Math.max(1, deadline - Date.now()))));
  }
}
