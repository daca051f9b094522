// Log rotation as Multus's logOptions describe it (maxSize MB, maxBackups, maxAge days, compress),
// in-process and through a one-shot plexus call that configures it from its CNI configuration.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { RotatingFile } from '../src/log-rotate';
import { tempDir } from './helpers/host';
import { PLEXUS, requireBuild, runPlugin } from './helpers/plexus';

const MB = 1024 * 1024;
const line = (i: number) => `${JSON.stringify({ i, pad: 'x'.repeat(1000) })}\n`;

test('past maxSize the file is renamed with a timestamp, a fresh one started, and only maxBackups kept', (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'plexus.log');
  const f = new RotatingFile(path, { maxSize: 1, maxBackups: 2 });
  const n = Math.ceil((3.5 * MB) / line(0).length);
  for (let i = 0; i < n; i++) f.write(line(i));
  f.close();
  const backups = readdirSync(dir).filter((x) => x !== 'plexus.log').sort();
  assert.equal(backups.length, 2, `kept ${backups.join(', ')}`);
  for (const b of backups) {
    assert.match(b, /^plexus-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}\.log$/);
    assert.ok(statSync(join(dir, b)).size <= MB);
  }
  assert.ok(statSync(path).size <= MB);
  // Nothing lost or reordered among what is kept: the newest lines end the current file.
  const last = readFileSync(path, 'utf8').trim().split('\n').at(-1)!;
  assert.equal((JSON.parse(last) as { i: number }).i, n - 1);
});

test('compress gzips backups (node:zlib) and maxAge removes backups older than that many days', (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'plexus.log');
  const old = join(dir, 'plexus-2020-01-01T00-00-00.000.log.gz');
  writeFileSync(old, 'x');
  utimesSync(old, new Date('2020-01-01'), new Date('2020-01-01'));
  const f = new RotatingFile(path, { maxSize: 1, maxAge: 30, compress: true });
  const n = Math.ceil((1.5 * MB) / line(0).length);
  for (let i = 0; i < n; i++) f.write(line(i));
  f.close();
  const names = readdirSync(dir).sort();
  const gz = names.filter((x) => x.endsWith('.log.gz'));
  assert.equal(gz.length, 1, names.join(', '));
  assert.ok(!names.includes('plexus-2020-01-01T00-00-00.000.log.gz'), 'the 2020 backup is past maxAge');
  assert.ok(!names.some((x) => x !== 'plexus.log' && x.endsWith('.log')), 'no uncompressed backup left');
  const text = gunzipSync(readFileSync(join(dir, gz[0]!))).toString('utf8');
  assert.equal((JSON.parse(text.split('\n')[0]!) as { i: number }).i, 0);
});

test('a one-shot plexus call honours logOptions from its CNI configuration', async (t) => {
  requireBuild();
  const dir = tempDir(t);
  const logFile = join(dir, 'plexus.log');
  writeFileSync(logFile, 'y'.repeat(MB - 10) + '\n');
  const conf = { cniVersion: '1.0.0', name: 'n', type: 'plexus', logLevel: 'debug', logToStderr: false, logFile, logOptions: { maxSize: 1, maxBackups: 3, compress: true }, cniDir: join(dir, 'cni'), delegates: [{ cniVersion: '1.0.0', name: 'x', type: 'bridge' }] };
  const r = await runPlugin({ bin: PLEXUS, command: 'CHECK', containerId: 'lr1', netns: '/var/run/netns/none', ifname: 'eth0', stdin: JSON.stringify(conf) });
  assert.equal(r.status, 1, 'the call itself fails (no such netns); it logged on the way');
  const names = readdirSync(dir).filter((x) => x.startsWith('plexus-'));
  assert.equal(names.length, 1, readdirSync(dir).join(', '));
  assert.match(names[0]!, /\.log\.gz$/);
  assert.equal(gunzipSync(readFileSync(join(dir, names[0]!))).length, MB - 9);
  assert.match(readFileSync(logFile, 'utf8'), /"msg":"phase config parsed"/);
});
