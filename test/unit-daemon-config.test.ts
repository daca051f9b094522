// Multus's daemon-config.json as `plexus daemon --config` reads it: daemon keys configure the
// process, every other key overrides the request's CNI configuration, bad values name the field.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CniError } from '../src/cni/errors';
import { parseDaemonConfig, withOverrides } from '../src/daemon/config';

// The thick DaemonSet's daemon-config.json from Multus v4 (deployments/multus-daemonset-thick.yml).
const MULTUS_THICK = {
  chrootDir: '/hostroot',
  cniVersion: '0.3.1',
  logLevel: 'verbose',
  logToStderr: true,
  cniConfigDir: '/host/etc/cni/net.d',
  multusAutoconfigDir: '/host/etc/cni/net.d',
  multusConfigFile: 'auto',
  socketDir: '/host/run/multus/',
  namespaceIsolation: true,
  globalNamespaces: 'default,shared',
  logFile: '/var/log/multus.log',
  logOptions: { maxAge: 5, maxSize: 100, maxBackups: 5, compress: true },
  connectionLimit: 8,
  metricsPort: 9091,
  multusMasterCNI: '10-calico.conflist',
};

test('Multus thick daemon-config.json: daemon keys read, the rest become per-request overrides', () => {
  const c = parseDaemonConfig(JSON.stringify(MULTUS_THICK), 'daemon-config.json', { MULTUS_NODE_NAME: 'n1' });
  assert.equal(c.socketDir, '/host/run/multus/');
  assert.equal(c.connectionLimit, 8);
  assert.equal(c.metricsPort, 9091);
  assert.equal(c.nodeName, 'n1');
  assert.equal(c.logLevel, 'verbose');
  assert.deepEqual(c.logOptions, { maxAge: 5, maxSize: 100, maxBackups: 5, compress: true });
  assert.deepEqual(Object.keys(c.overrides).sort(), ['globalNamespaces', 'logFile', 'logLevel', 'logOptions', 'logToStderr', 'namespaceIsolation']);
  assert.ok(c.ignored.some((k) => k.startsWith('chrootDir')));
  assert.ok(c.ignored.some((k) => k.startsWith('multusConfigFile')));
  // PLEXUS_NODE_NAME wins over MULTUS_NODE_NAME and over the file.
  assert.equal(parseDaemonConfig('{"nodeName":"f"}', 'x', { PLEXUS_NODE_NAME: 'p', MULTUS_NODE_NAME: 'm' }).nodeName, 'p');
  assert.equal(parseDaemonConfig('{"nodeName":"f"}', 'x', {}).nodeName, 'f');
});

test('overrides replace the request\'s keys; the request keeps cniVersion, name and type', () => {
  const c = parseDaemonConfig(JSON.stringify(MULTUS_THICK), 'daemon-config.json', {});
  const req = JSON.stringify({ cniVersion: '1.0.0', name: 'net', type: 'plexus-shim', namespaceIsolation: false, confDir: '/etc/x' });
  const out = JSON.parse(withOverrides(req, c.overrides)) as Record<string, unknown>;
  assert.equal(out.cniVersion, '1.0.0');
  assert.equal(out.type, 'plexus-shim');
  assert.equal(out.namespaceIsolation, true);
  assert.equal(out.confDir, '/etc/x');
  assert.equal(withOverrides('{not json', c.overrides), '{not json', 'left for the meta-plugin to report');
});

test('bad values are CNI config errors naming the field', () => {
  const bad = (text: string, re: RegExp) =>
    assert.throws(() => parseDaemonConfig(text, 'daemon-config.json', {}), (e: unknown) => e instanceof CniError && e.code === 7 && re.test(e.message));
  bad('{"connectionLimit":0}', /connectionLimit/);
  bad('{"cacheConsistency":"eventual"}', /cacheConsistency: must be "pod" or "watch"/);
  bad('{"logLevel":"loud"}', /logLevel: unknown level/);
  bad('{"metricsPort":"9091"}', /metricsPort/);
  bad('{"logOptions":{"maxSize":-1}}', /maxSize/);
  bad('[1]', /daemon-config.json/);
});

test('the periodic IPAM sweep: on by default, 0 turns it off, its keys never reach a request', () => {
  const dflt = parseDaemonConfig('{}', 'daemon-config.json', {});
  assert.deepEqual(dflt.ipamGc, { intervalSeconds: 300, graceSeconds: 120 });
  assert.equal(parseDaemonConfig('{"ipamGcIntervalSeconds":0}', 'x', {}).ipamGc, undefined);
  const c = parseDaemonConfig('{"ipamGcIntervalSeconds":60,"ipamGcNamespace":"whereabouts","ipamGcGraceSeconds":0,"confDir":"/etc/x"}', 'x', {});
  assert.deepEqual(c.ipamGc, { intervalSeconds: 60, namespace: 'whereabouts', graceSeconds: 0 });
  assert.deepEqual(Object.keys(c.overrides), ['confDir']);
});

test('bad periodic IPAM sweep keys are CNI config errors naming the key', () => {
  const bad = (text: string, re: RegExp) =>
    assert.throws(() => parseDaemonConfig(text, 'daemon-config.json', {}), (e: unknown) => e instanceof CniError && e.code === 7 && re.test(e.message));
  bad('{"ipamGcIntervalSeconds":-1}', /^ipamGcIntervalSeconds: must be an integer from 0 to 604800, got number -1$/);
  bad('{"ipamGcIntervalSeconds":"300"}', /^ipamGcIntervalSeconds: must be an integer/);
  bad('{"ipamGcIntervalSeconds":1.5}', /^ipamGcIntervalSeconds: must be an integer/);
  bad('{"ipamGcGraceSeconds":-5}', /^ipamGcGraceSeconds: must be an integer from 0 to 86400/);
  bad('{"ipamGcNamespace":"Kube_System"}', /^daemon-config.json: ipamGcNamespace: "Kube_System" is not a namespace name/);
  bad('{"ipamGcNamespace":""}', /ipamGcNamespace: "" is not a namespace name/);
  bad('{"ipamGcNamespace":7}', /^ipamGcNamespace: must be a string/);
  // Checked even when the sweep is off: a typo surfaces when the key is written, not when it is turned on.
  bad('{"ipamGcIntervalSeconds":0,"ipamGcNamespace":"a b"}', /ipamGcNamespace/);
});
