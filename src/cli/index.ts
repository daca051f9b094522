// `plexus <command>`: the CLI for people. A small table of commands, each loaded only when run
// (`plexus help` loads none of them). Exit codes are the same for every command: docs/cli.md.
import { buildInfo } from './build-info';
import { EXIT, parseOptions, UsageError, type Io, processOut } from './output';

export interface CommandModule {
  run(args: string[], io: Io): Promise<number>;
}

interface Command {
  name: string;
  /** Arguments after the name, for the help text. */
  usage: string;
  summary: string;
  /** The command answers --help itself (with more than `usage`). */
  ownHelp?: boolean;
  load(): Promise<CommandModule>;
}

// One entry per command; a command's module is loaded only when it runs. A module exports
// `run(args, io)` returning the exit code (0 ok, 1 problems, 2 usage: see EXIT), or the entry
// wraps an existing entry point, as `daemon` does.
const COMMANDS: Command[] = [
  { name: 'ipam', usage: 'gc [flags]', summary: 'cluster pool IPAM maintenance (frees allocations of pods that are gone)', ownHelp: true,
    load: async () => ({ run: async (args) => (await import('../ipam/pool/cli')).runIpamCommand(args) }) },
  { name: 'install', usage: '[flags]', summary: 'install plexus on this node (the DaemonSet entrypoint)', ownHelp: true,
    load: async () => ({ run: async (args) => (await import('../install/install')).runInstall(args) }) },
  { name: 'validate', usage: 'FILE|- [-o json]', summary: 'check a NAD (YAML/JSON), a CNI conf/conflist or a networks annotation offline', load: () => import('./validate') },
  { name: 'explain', usage: 'CONTAINER-ID|NAMESPACE/POD [--conf-dir DIR] [--cni-dir DIR] [--kubeconfig FILE] [-o json]', summary: "a pod's attachments: journal, live interfaces and network-status side by side", load: () => import('./explain') },
  { name: 'doctor', usage: '[--conf-dir DIR] [--bin-dir DIR] [--cni-dir DIR] [--socket-dir DIR] [--kubeconfig FILE] [-o json]', summary: "check this node's CNI set-up, plugins, daemon, API access and journals", load: () => import('./doctor') },
  { name: 'version', usage: '[-o json]', summary: 'build version, commit and the CNI versions spoken', load: async () => ({ run: version }) },
  { name: 'daemon', usage: '[SOCKET-DIR] | --config FILE', summary: 'run the node agent (the DaemonSet runs this)', load: async () => ({ run: daemon }) },
];

async function daemon(args: string[]): Promise<number> {
  const { runDaemon } = await import('../daemon/server');
  await runDaemon(args);
  return EXIT.ok;
}

export function helpText(): string {
  const w = Math.max(...COMMANDS.map((c) => c.name.length));
  const b = buildInfo();
  return [
    `plexus ${b.version}: a CNI meta-plugin for Kubernetes (a Multus drop-in).`,
    '',
    'A container runtime runs plexus with CNI_COMMAND set; that is a CNI call and argv is ignored.',
    'Without CNI_COMMAND, plexus is a tool for people:',
    '',
    '  plexus <command> [options]',
    '',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(w)}  ${c.summary}\n  ${' '.repeat(w)}  plexus ${c.name} ${c.usage}`),
    `  ${'help'.padEnd(w)}  this text (also --help, -h)`,
    '',
    'Output: tables for people; -o json for scripts.',
    'Exit codes: 0 all good, 1 problems found, 2 usage error (unknown command or option, unreadable input).',
    'Docs: docs/cli.md, docs/configuration.md.',
    '',
  ].join('\n');
}

/** The skel's "about" line: what a reference plugin prints when run without CNI_COMMAND. */
function about(): string {
  const b = buildInfo();
  return `CNI plugin plexus ${b.version} (commit ${b.commit})\nCNI protocol versions supported: ${b.cniVersions.join(', ')}\n`;
}

async function version(args: string[], io: Io): Promise<number> {
  const { json, positionals } = parseOptions(args, {});
  if (positionals.length) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  const b = buildInfo();
  if (json) io.out(JSON.stringify(b, null, 2) + '\n');
  else io.out(`plexus ${b.version}\ncommit ${b.commit}\nCNI versions ${b.cniVersions.join(', ')} (latest ${b.cniVersion})\n`);
  return EXIT.ok;
}

export async function runCli(argv: string[], io: Io = processOut): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined) {
    // A person at a terminal gets the help; anything else gets what a reference plugin's skel
    // prints without CNI_COMMAND (the about text on stderr, exit 0).
    if (process.stdout.isTTY) io.out(helpText());
    else io.err(about());
    return EXIT.ok;
  }
  if (first === 'help' || first === '--help' || first === '-h') {
    io.out(helpText());
    return EXIT.ok;
  }
  if (first === '--version') return runCli(['version', ...rest], io);
  const cmd = COMMANDS.find((c) => c.name === first);
  if (!cmd) {
    io.err(`plexus: unknown command ${JSON.stringify(first)}; run "plexus help" for the list\n`);
    return EXIT.usage;
  }
  if (!cmd.ownHelp && (rest.includes('--help') || rest.includes('-h'))) {
    io.out(`plexus ${cmd.name} ${cmd.usage}\n  ${cmd.summary}\n`);
    return EXIT.ok;
  }
  try {
    const mod = await cmd.load();
    return await mod.run(rest, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`plexus ${cmd.name}: ${err.message}\nusage: plexus ${cmd.name} ${cmd.usage}\n`);
      return EXIT.usage;
    }
    throw err;
  }
}
