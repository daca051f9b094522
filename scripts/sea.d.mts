// Types for scripts/sea.mjs, so the TypeScript benchmarks can share the build's SEA recipe.
export interface BuildSeaOptions {
  /** CJS file to embed; it may require only node's built-ins. */
  main: string;
  /** Executable to write. */
  out: string;
  /** Where the SEA preparation blob goes; defaults to `${out}.blob`. */
  blob?: string;
  /** File holding the hash of the inputs; defaults to `${out}.stamp`. */
  stamp?: string;
  useCodeCache?: boolean;
  strip?: boolean;
  /** Called with the finished temp executable before it replaces `out`; throw to reject it. */
  verify?: (exe: string) => void;
}
export interface BuildSeaResult {
  built: boolean;
  blobBytes?: number;
  exeBytes: number;
}
export function buildSea(opts: BuildSeaOptions): BuildSeaResult;
export function toolEnv(extra?: Record<string, string>): NodeJS.ProcessEnv;
