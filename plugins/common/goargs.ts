// CNI_ARGS read the way libcni's types.LoadArgs reads them into a plugin's argument struct, with its
// exact messages, for the built-in IPAM plugins that promise the reference plugins' errors: "K=V"
// pairs split on ";", each key matched to a field by its exact Go name, IgnoreUnknown as
// UnmarshallableBool, unknown keys refused unless IgnoreUnknown is true. (src/cni/args.ts is the
// meta-plugin's stricter reader, with code 4 and messages of its own.)
import { CniError, Code } from '../../src/cni/errors';

/** Go's %q for the plain strings CNI_ARGS hold. */
export function goQuote(s: string): string {
  return JSON.stringify(s);
}

/**
 * Applies each pair to its field's setter (which throws an Error whose message is the value's
 * problem). Errors are code 999, as skel reports a plugin's plain error.
 */
export function loadGoArgs(args: string, fields: Record<string, (value: string) => void>): void {
  if (args === '') return;
  const unknown: string[] = [];
  let ignoreUnknown = false;
  for (const pair of args.split(';')) {
    const kv = pair.split('=');
    if (kv.length !== 2) throw new CniError(Code.Internal, `ARGS: invalid pair ${goQuote(pair)}`);
    const [key, value] = kv as [string, string];
    try {
      if (key === 'IgnoreUnknown') {
        const v = value.toLowerCase();
        if (v === '1' || v === 'true') ignoreUnknown = true;
        else if (v === '0' || v === 'false') ignoreUnknown = false;
        else throw new Error(`boolean unmarshal error: invalid input ${v}`);
      } else if (Object.hasOwn(fields, key)) {
        (fields[key] as (value: string) => void)(value);
      } else {
        unknown.push(pair);
      }
    } catch (err) {
      throw new CniError(Code.Internal, `ARGS: error parsing value of pair ${goQuote(pair)}: ${(err as Error).message}`);
    }
  }
  if (unknown.length > 0 && !ignoreUnknown) {
    throw new CniError(Code.Internal, `ARGS: unknown args [${unknown.map(goQuote).join(' ')}]`);
  }
}
