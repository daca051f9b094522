// src/k8s/yaml-lite.ts against js-yaml (CORE schema, what kubeconfig.ts used alone before): on
// every document the subset reader either agrees exactly or declines (undefined), never differs.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CORE_SCHEMA, load } from 'js-yaml';
import { parseYamlLite } from '../src/k8s/yaml-lite';

const KUBEADM = `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUM=
    server: https://192.168.1.10:6443
  name: kubernetes
contexts:
- context:
    cluster: kubernetes
    user: kubernetes-admin
  name: kubernetes-admin@kubernetes
current-context: kubernetes-admin@kubernetes
kind: Config
preferences: {}
users:
- name: kubernetes-admin
  user:
    client-certificate-data: LS0tLS1CRUdJTi=
    client-key-data: LS0tLS1CRUdJTiBSU0E=
`;

// As Multus's daemon writes /etc/cni/net.d/multus.d/multus.kubeconfig.
const MULTUS = `# Kubeconfig file for Multus CNI plugin.
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://[10.96.0.1]:443
    certificate-authority-data: LS0tLS1CRUdJTg==
users:
- name: multus
  user:
    token: "eyJhbGciOiJSUzI1NiIsImtpZCI6IiJ9.eyJpc3MiOiJrdWJlcm5ldGVzIn0.c2lnbmF0dXJl"
contexts:
- name: multus-context
  context:
    cluster: local
    user: multus
current-context: multus-context
`;

const INDENTED = `---
apiVersion: v1
kind: Config
clusters:
  - name: test   # trailing comment
    cluster:
      server: 'https://127.0.0.1:6443'
      insecure-skip-tls-verify: true
      tls-server-name: "kube.example"
users:
  - name: u
    user:
      tokenFile: /var/run/secrets/token
      "as": ''
      note: 'it''s # not a comment'
contexts:
  - name: c
    context: {}
    extra: []
    empty:
current-context: c
`;

const PARSED = { KUBEADM, MULTUS, INDENTED };

// Each either declines or agrees; these must decline (what the subset does not model).
const DECLINED = [
  'a: 1\n',
  'a: 0x10\n',
  'a: 1.5\n',
  'a: .inf\n',
  'a: yes\n',
  'a: True\n',
  'a: NULL\n',
  'a: [1, 2]\n',
  'a: {b: c}\n',
  'a: &x b\nc: *x\n',
  'a: !!str b\n',
  'a: |\n  text\n',
  'a: >\n  text\n',
  'a: "esc\\"aped"\n',
  'a: "tab\\there"\n',
  'a: b\n  continued\n',
  'a:\n\tb: c\n',
  'a: b\na: c\n',
  '- a\n- b\n',
  'a: b: c\n',
  '? a\n: b\n',
  '%YAML 1.2\n---\na: b\n',
  'a: b\n...\n',
  'a:\n- - b\n',
  '__proto__: x\n',
  'a: @b\n',
  'a: -b\n',
  '',
];

test('the kubeconfigs real clusters write are read as js-yaml reads them', () => {
  for (const [name, text] of Object.entries(PARSED)) {
    const lite = parseYamlLite(text);
    assert.ok(lite, `${name}: declined`);
    assert.deepEqual(lite, load(text, { schema: CORE_SCHEMA }), name);
  }
});

test('anything outside the subset is declined, so js-yaml reads it', () => {
  for (const text of DECLINED) assert.equal(parseYamlLite(text), undefined, JSON.stringify(text));
});

test('edits of the real kubeconfigs, line by line: the subset agrees with js-yaml or declines', () => {
  let agreed = 0;
  for (const text of Object.values(PARSED)) {
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      for (const edit of [(l: string) => `  ${l}`, (l: string) => l.slice(1), (l: string) => `${l}:`, (l: string) => `${l} # c`, (l: string) => l.replace(': ', ':'), () => '']) {
        const variant = [...lines.slice(0, i), edit(lines[i]!), ...lines.slice(i + 1)].join('\n');
        const lite = parseYamlLite(variant);
        if (lite === undefined) continue;
        let ref: unknown;
        try {
          ref = load(variant, { schema: CORE_SCHEMA });
        } catch {
          assert.fail(`js-yaml rejects what the subset read:\n${variant}`);
        }
        assert.deepEqual(lite, ref, variant);
        agreed++;
      }
    }
  }
  assert.ok(agreed > 50, `only ${agreed} variants were read by the subset`);
});
