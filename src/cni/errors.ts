// CNI error codes (SPEC.md §5 "Error"); 0-99 are reserved by the spec.
export const Code = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnv: 4,
  IOFailure: 5,
  DecodeFailure: 6,
  InvalidConfig: 7,
  InvalidNetns: 8,
  TryAgainLater: 11,
  NotAvailable: 50,
  LimitedConnectivity: 51,
  Internal: 999,
} as const;

export type CniCode = number;

export class CniError extends Error {
  readonly code: CniCode;
  readonly details: string;
  constructor(code: CniCode, msg: string, details = '') {
    super(msg);
    this.name = 'CniError';
    this.code = code;
    this.details = details;
  }

  toJSON(cniVersion: string): Record<string, unknown> {
    const out: Record<string, unknown> = { cniVersion, code: this.code, msg: this.message };
    if (this.details) out.details = this.details;
    return out;
  }
}

/**
 * The plugin could not be run at all (not found, not executable, killed): nothing the plugin
 * said, and usually something a retry fixes, such as a binary being replaced during an upgrade.
 */
export class PluginExecError extends CniError {
  constructor(code: CniCode, msg: string) {
    super(code, msg);
    this.name = 'PluginExecError';
  }
}

/**
 * The plugin binary is not on the search path, so it did not run and created nothing. Still
 * transient for what was attached (an upgrade may be replacing it), but an attachment whose ADD
 * never succeeded can be dropped on it (see teardown).
 */
export class PluginNotFoundError extends PluginExecError {
  constructor(type: string, path: readonly string[], field = '') {
    super(Code.InvalidConfig, `${field}failed to find plugin ${JSON.stringify(type)} in path [${path.join(' ')}]`);
    this.name = 'PluginNotFoundError';
  }
}

/** Whether the runtime should retry rather than treat the failure as final. */
export function isTransient(err: CniError): boolean {
  return err.code === Code.TryAgainLater || err instanceof PluginExecError;
}

/** Wraps anything thrown into a CniError, keeping CniErrors as they are. */
export function asCniError(err: unknown, code: CniCode = Code.Internal): CniError {
  if (err instanceof CniError) return err;
  if (err instanceof Error) return new CniError(code, err.message);
  return new CniError(code, String(err));
}

export function errnoOf(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'code' in err && typeof (err as { code: unknown }).code === 'string') {
    return (err as { code: string }).code;
  }
  return undefined;
}
