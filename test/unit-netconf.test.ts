// parseNetworkConfig's injection of `name` and `cniVersion` (NPWG §3.4.2, §7.1; Multus sets the
// meta-plugin's cniVersion on a delegate config without one): data in, data out.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CniError, Code } from '../src/cni/errors';
import { parseNetworkConfig } from '../src/cni/netconf';

const plugin = { name: 'n', type: 'macvlan', master: 'eth9' };
const list = { name: 'l', plugins: [{ type: 'macvlan' }, { type: 'tuning' }] };

test('cniVersion missing or empty: the default is injected, into a plugin config and a conflist alike', () => {
  for (const [what, config] of [['plugin', plugin], ['conflist', list], ['empty plugin', { ...plugin, cniVersion: '' }], ['empty conflist', { ...list, cniVersion: '' }]] as const) {
    const net = parseNetworkConfig(JSON.stringify(config), what, { cniVersion: '0.4.0' });
    assert.equal(net.cniVersion, '0.4.0', what);
    // The bytes are what the journal keeps and every request (DEL too) is rebuilt from.
    assert.equal((JSON.parse(net.bytes) as { cniVersion?: string }).cniVersion, '0.4.0', `${what}: bytes`);
  }
});

test('a cniVersion the config states is kept, bytes untouched; with no default a missing one is code 7', () => {
  const text = JSON.stringify({ ...plugin, cniVersion: '1.0.0' });
  const net = parseNetworkConfig(text, 'stated', { cniVersion: '0.4.0' });
  assert.equal(net.cniVersion, '1.0.0');
  assert.equal(net.bytes, text, 'nothing injected: the exact text is kept');
  assert.throws(
    () => parseNetworkConfig(JSON.stringify(plugin), 'nad x/y spec.config'),
    (err: unknown) => err instanceof CniError && err.code === Code.InvalidConfig && /cniVersion/.test(err.message),
  );
});

test('name and cniVersion injected together; the defaults never override what is there', () => {
  const net = parseNetworkConfig(JSON.stringify({ type: 'bridge' }), 'anon', { name: 'nad-name', cniVersion: '1.1.0' });
  assert.deepEqual([net.name, net.cniVersion, JSON.parse(net.bytes)], ['nad-name', '1.1.0', { type: 'bridge', name: 'nad-name', cniVersion: '1.1.0' }]);
  const own = parseNetworkConfig(JSON.stringify({ ...list, cniVersion: '0.3.1' }), 'own', { name: 'other', cniVersion: '1.1.0' });
  assert.deepEqual([own.name, own.cniVersion], ['l', '0.3.1']);
});
