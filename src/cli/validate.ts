// `plexus validate FILE|-`: offline checks of what people write for plexus, with the exact field
// and rule broken. Exit 0 when every document is valid, 1 when one is not, 2 when the input
// cannot be read at all.
import { readFileSync } from 'node:fs';
import { EXIT, parseOptions, table, UsageError, type Io } from './output';
import { checkAnnotation, checkDocuments, type DocumentReport } from './validate-rules';

export interface FileReport {
  file: string;
  valid: boolean;
  documents: DocumentReport[];
}

function read(file: string): string {
  try {
    return readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${file === '-' ? 'stdin' : file}: ${(err as Error).message}`);
  }
}

/** JSON first (exact, and what most configs are); then YAML, one document per `---`. */
async function documents(text: string): Promise<DocumentReport[]> {
  const trimmed = text.trim();
  if (trimmed === '') return [{ kind: 'unknown', problems: [{ path: '', message: 'the input is empty' }], notes: [] }];
  try {
    const doc: unknown = JSON.parse(trimmed);
    // An annotation value keeps its exact text: the parser detects the JSON form from it.
    return Array.isArray(doc) ? [checkAnnotation(trimmed)] : checkDocuments([doc]);
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
  }
  const yaml = await import('js-yaml');
  let docs: unknown[];
  try {
    docs = yaml.loadAll(text);
  } catch (err) {
    // Neither JSON nor YAML: a comma-form annotation is neither, and is what is left.
    if (!/[{}[\]:\n]/.test(trimmed)) return [checkAnnotation(trimmed)];
    return [{ kind: 'unknown', problems: [{ path: '', message: `neither JSON nor YAML: ${(err as Error).message.split('\n')[0]}` }], notes: [] }];
  }
  const real = docs.filter((d) => d !== null && d !== undefined);
  if (real.length === 1 && typeof real[0] === 'string') return [checkAnnotation(trimmed)];
  return checkDocuments(real);
}

export async function validateFile(file: string): Promise<FileReport> {
  const docs = await documents(read(file));
  return { file, valid: docs.every((d) => d.problems.length === 0), documents: docs };
}

function render(r: FileReport): string {
  const rows: string[][] = [];
  for (const d of r.documents) {
    const what = d.name ? `${d.kind} ${d.name}` : d.kind;
    if (d.problems.length === 0) rows.push([what, 'ok', '', '']);
    for (const p of d.problems) rows.push([what, p.path || '-', p.rule ?? '-', p.message]);
    for (const n of d.notes) rows.push([what, 'note', '-', n]);
  }
  const verdict = r.valid ? `${r.file}: valid` : `${r.file}: ${r.documents.reduce((n, d) => n + d.problems.length, 0)} problem(s)`;
  return table(['DOCUMENT', 'FIELD', 'RULE', 'PROBLEM'], rows) + verdict + '\n';
}

export async function run(args: string[], io: Io): Promise<number> {
  const { positionals, json } = parseOptions(args, {});
  if (positionals.length === 0) throw new UsageError('name a file, or - for stdin');
  const reports: FileReport[] = [];
  for (const file of positionals) reports.push(await validateFile(file));
  if (json) io.out(JSON.stringify(reports.length === 1 ? reports[0] : reports, null, 2) + '\n');
  else io.out(reports.map(render).join('\n'));
  return reports.every((r) => r.valid) ? EXIT.ok : EXIT.problems;
}
