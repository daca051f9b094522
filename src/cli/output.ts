// What every CLI command shares: where text goes, the exit codes, options, plain-text tables.
import { parseArgs, type ParseArgsConfig } from 'node:util';

export interface Io {
  out(s: string): void;
  err(s: string): void;
}

export const processOut: Io = {
  out: (s) => void process.stdout.write(s),
  err: (s) => void process.stderr.write(s),
};

/** The exit codes scripts can rely on (docs/cli.md). */
export const EXIT = { ok: 0, problems: 1, usage: 2 } as const;

/** Bad arguments, or input that cannot be read at all: exit 2 with the command's usage. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Columns padded to the widest cell; cells are single-line. */
export function table(header: string[], rows: string[][]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd()).join('\n') + '\n';
}

type Options = NonNullable<ParseArgsConfig['options']>;

export interface ParsedArgs {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
  json: boolean;
}

/** node:util parseArgs with the shared `-o/--output json|table`; a bad option is a UsageError. */
export function parseOptions(args: string[], options: Options): ParsedArgs {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { ...options, output: { type: 'string', short: 'o' } }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  const output = values.output;
  if (output !== undefined && output !== 'json' && output !== 'table') throw new UsageError(`-o ${JSON.stringify(output)}: want json or table`);
  return { values, positionals: parsed.positionals, json: output === 'json' };
}

