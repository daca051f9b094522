// Output for `make demo`: step headings a newcomer can follow, aligned tables, pass/fail marks.
// Colour only on a terminal, so a captured log (CI, a bug report) stays plain text.
const tty = process.stdout.isTTY === true;
const paint = (code: string) => (s: string) => (tty ? `\x1b[${code}m${s}\x1b[0m` : s);
export const bold = paint('1');
export const dim = paint('2');
const green = paint('32');
const red = paint('31');

let stepNo = 0;

export function heading(title: string): void {
  stepNo += 1;
  console.log(`\n${bold(`==> ${stepNo}. ${title}`)}`);
}

export function say(line = ''): void {
  console.log(line === '' ? '' : `    ${line}`);
}

export function ok(line: string): void {
  console.log(`    ${green('ok')}   ${line}`);
}

export function bad(text: string): void {
  // Plugin errors carry their stderr (JSON log lines): keep them under the FAIL, not at column 0.
  const [first, ...rest] = text.split('\n');
  console.log(`    ${red('FAIL')} ${first ?? ''}`);
  for (const line of rest) console.log(`         ${line}`);
}

/** Prints text as an indented block (configs, JSON), so it stands apart from the narration. */
export function block(text: string): void {
  for (const line of text.replace(/\n$/, '').split('\n')) console.log(`      ${dim(line)}`);
}

/** An aligned table; cells are padded by their visible length (no colour inside cells). */
export function table(headers: string[], rows: string[][]): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  console.log(`      ${bold(line(headers))}`);
  console.log(`      ${widths.map((w) => '-'.repeat(w)).join('  ')}`);
  for (const r of rows) console.log(`      ${line(r)}`);
}

/** Milliseconds since `start`, for "took N ms" notes (every CNI call is a fresh process). */
export function since(start: bigint): string {
  return `${Number((process.hrtime.bigint() - start) / 1_000_000n)} ms`;
}

/** One-line JSON with a space after `:` and `,`, as people write it. */
function flatJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(flatJson).join(', ')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.entries(value as Record<string, unknown>).map(([k, v]) => `${JSON.stringify(k)}: ${flatJson(v)}`).join(', ')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/**
 * JSON the way a person writes a CNI config: anything that fits on a line stays on one line,
 * so `"ranges": [[{"subnet": "10.76.0.0/24"}]]` does not sprawl over seven lines.
 */
export function prettyJson(value: unknown, width = 96, indent = ''): string {
  const flat = flatJson(value);
  if (value === null || typeof value !== 'object' || indent.length + flat.length <= width) return flat;
  const inner = indent + '  ';
  if (Array.isArray(value)) {
    return `[\n${value.map((v) => inner + prettyJson(v, width, inner)).join(',\n')}\n${indent}]`;
  }
  const fields = Object.entries(value as Record<string, unknown>).map(([k, v]) => `${inner}${JSON.stringify(k)}: ${prettyJson(v, width - k.length - 4, inner)}`);
  return `{\n${fields.join(',\n')}\n${indent}}`;
}
