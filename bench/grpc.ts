// The gRPC client's start-up cost (docs/decisions.md, "gRPC client"): what a pod whose NAD names a
// device-plugin resource pays to load src/grpc, and to make one PodResources List call, against a
// bundle that loads only node:http2 + node:net (the floor any HTTP/2 client pays) and a tiny one.
// Bundles are built as the product is (esbuild, CJS, minified) and run by node with a clean env.
// Target: loading our client costs ≤ 1.15× loading node:http2 alone (median).
//
// With PLEXUS_BENCH_GRPC_JS=<dir> (a folder where `npm install @grpc/grpc-js @grpc/proto-loader`
// was run; not a dependency of plexus), the same rows for @grpc/grpc-js + proto-loader are added.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { buildSync } from 'esbuild';
import { bench, target, type Variant } from './lib';

const root = resolve(__dirname, '..');
const out = join(root, 'build', 'bench', 'grpc');
const API_PROTO = `syntax = "proto3";
package v1;
service PodResourcesLister { rpc List(ListPodResourcesRequest) returns (ListPodResourcesResponse) {} }
message ListPodResourcesRequest {}
message ListPodResourcesResponse { repeated PodResources pod_resources = 1; }
message PodResources { string name = 1; string namespace = 2; repeated ContainerResources containers = 3; }
message ContainerResources { string name = 1; repeated ContainerDevices devices = 2; }
message ContainerDevices { string resource_name = 1; repeated string device_ids = 2; }
`;

// A PodResources server answering List with three pods, in a process of its own: bench() runs
// each variant with spawnSync, which would block a server living in this process.
const SERVER = `
const http2 = require('node:http2');
const ld = (f, b) => { b = Buffer.from(b); return Buffer.concat([Buffer.from([(f << 3) | 2, b.length]), b]); };
const pod = (i) => ld(1, Buffer.concat([ld(1, 'pod' + i), ld(2, 'default'),
  ld(3, Buffer.concat([ld(1, 'c'), ld(2, Buffer.concat([ld(1, 'intel.com/sriov'), ld(2, '0000:3b:02.' + i)]))]))]));
const reply = Buffer.concat([0, 1, 2].map(pod));
const frame = Buffer.alloc(5 + reply.length); frame.writeUInt32BE(reply.length, 1); reply.copy(frame, 5);
const srv = http2.createServer();
srv.on('stream', (st) => { st.resume(); st.on('end', () => {
  st.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
  st.on('wantTrailers', () => st.sendTrailers({ 'grpc-status': '0' }));
  st.end(frame);
}); });
srv.listen(process.argv[2], () => process.stdout.write('ready\\n'));
`;

function bundle(name: string, code: string, nodePaths: string[] = []): string {
  const src = join(out, `${name}.ts`);
  const outfile = join(out, `${name}.cjs`);
  writeFileSync(src, code);
  buildSync({ entryPoints: [src], bundle: true, minify: true, platform: 'node', format: 'cjs', target: 'node20', outfile, nodePaths, logLevel: 'warning' });
  return outfile;
}

async function startServer(socket: string): Promise<ChildProcess> {
  rmSync(socket, { force: true });
  const js = join(out, 'server.cjs');
  writeFileSync(js, SERVER);
  const child = spawn(process.execPath, [js, socket], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((res, rej) => {
    child.stdout!.once('data', () => res());
    child.once('exit', (code) => rej(new Error(`PodResources server exited ${code}`)));
  });
  return child;
}

export default async function grpcBench(): Promise<boolean> {
  mkdirSync(out, { recursive: true });
  const grpc = join(root, 'src', 'grpc');
  const socket = join(out, 'kubelet.sock');
  const proto = join(out, 'api.proto');
  writeFileSync(proto, API_PROTO);
  const files = {
    tiny: bundle('tiny', 'process.exitCode = 0;\n'),
    http2: bundle('http2', "import * as h from 'node:http2';\nimport * as n from 'node:net';\n(globalThis as any).x = [h, n];\n"),
    ours: bundle('ours', `import * as c from '${grpc}/client';\nimport * as p from '${grpc}/proto';\n(globalThis as any).x = [c, p];\n`),
    oursCall: bundle(
      'ours-call',
      `import { unaryCall } from '${grpc}/client';\nimport { decodeMessage } from '${grpc}/proto';\n` +
        `unaryCall(process.env.SOCK!, '/v1.PodResourcesLister/List', new Uint8Array(0), { timeoutMs: 5000 }).then((b) => {\n` +
        `  if (decodeMessage(b).messages(1).length !== 3) process.exit(3);\n});\n`,
    ),
  };
  const env = { SOCK: socket, PROTO: proto };
  const run = (name: string, file: string): Variant => ({ name, cmd: process.execPath, args: [file], env });
  const variants: Variant[] = [
    run('tiny bundle', files.tiny),
    run('node:http2 + net', files.http2),
    run('ours: load', files.ours),
    run('ours: load + List', files.oursCall),
  ];
  const grpcJs = process.env.PLEXUS_BENCH_GRPC_JS;
  if (grpcJs) {
    const paths = [join(grpcJs, 'node_modules')];
    if (!existsSync(join(paths[0]!, '@grpc', 'grpc-js'))) throw new Error(`PLEXUS_BENCH_GRPC_JS=${grpcJs}: no node_modules/@grpc/grpc-js there`);
    const load = "const g = require('@grpc/grpc-js');\nconst pl = require('@grpc/proto-loader');\nconst v1 = (g.loadPackageDefinition(pl.loadSync(process.env.PROTO!, { keepCase: true })) as any).v1;\n";
    variants.push(run('grpc-js: load', bundle('grpcjs', "(globalThis as any).x = require('@grpc/grpc-js');\n", paths)));
    variants.push(run('grpc-js + proto-loader: load', bundle('grpcjs-pl', `${load}(globalThis as any).x = v1;\n`, paths)));
    variants.push(
      run(
        'grpc-js + proto-loader: load + List',
        bundle(
          'grpcjs-pl-call',
          `${load}const c = new v1.PodResourcesLister('unix:' + process.env.SOCK, g.credentials.createInsecure());\n` +
            `c.List({}, { deadline: Date.now() + 5000 }, (err: unknown, r: any) => { if (err || r.pod_resources.length !== 3) process.exit(3); c.close(); });\n`,
          paths,
        ),
      ),
    );
  }
  const server = await startServer(socket);
  try {
    const r = await bench({ title: 'gRPC client start-up (node + bundle)', baseline: 'node:http2 + net', variants, warmup: 3, runs: 30 });
    return target(r, 'ours: load', { ratio: 1.15 });
  } finally {
    server.kill();
  }
}
