// Reading a kubeconfig: the current context's cluster and user, files named relative to the
// kubeconfig, inline data, and for every mistake one E_CONFIG error naming the file, the line
// and column, and the field.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { PodvisorError } from '../../src/errors.js';
import { connectionToken, loadKubeconfig, parseKubeconfig } from '../../src/publish/kubeconfig.js';
import { tempDir } from './helpers.js';

// Not a working certificate: the reader checks that data is PEM, the TLS layer checks the rest.
const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const b64 = (text: string) => Buffer.from(text).toString('base64');

t.test('the current context, its cluster and user, with files relative to the kubeconfig', async (t) => {
  const dir = tempDir(t);
  mkdirSync(join(dir, 'pki'));
  writeFileSync(join(dir, 'pki', 'ca.crt'), PEM);
  writeFileSync(join(dir, 'pki', 'token'), ' file-token \n');
  const path = join(dir, 'kubeconfig');
  writeFileSync(
    path,
    `apiVersion: v1
kind: Config
preferences: {}
clusters:
- name: other
  cluster:
    server: https://other.example:6443
    insecure-skip-tls-verify: true
- name: edge
  cluster:
    server: https://127.0.0.1:6443/prefix
    certificate-authority: pki/ca.crt
    tls-server-name: api.internal
users:
- name: node
  user:
    tokenFile: pki/token
    client-certificate-data: ${b64(PEM)}
    client-key-data: ${b64(PEM.replace(/CERTIFICATE/g, 'PRIVATE KEY'))}
- name: admin
  user:
    token: inline-token
    tokenFile: pki/token
contexts:
- name: edge
  context: {cluster: edge, user: node, namespace: kube-system}
- name: other
  context: {cluster: other, user: admin}
current-context: edge
`,
  );
  const edge = loadKubeconfig(path);
  t.equal(edge.source, path);
  t.equal(edge.context, 'edge');
  t.equal(edge.server.href, 'https://127.0.0.1:6443/prefix');
  t.equal(edge.tls.ca?.toString(), PEM, 'the CA file, relative to the kubeconfig');
  t.equal(edge.tls.cert?.toString(), PEM, 'inline data decoded');
  t.match(edge.tls.key?.toString(), /BEGIN PRIVATE KEY/);
  t.equal(edge.tls.serverName, 'api.internal');
  t.notOk(edge.tls.insecureSkipTLSVerify);
  t.equal(edge.tokenFile, join(dir, 'pki', 'token'));
  t.equal(await connectionToken(edge)?.(), 'file-token', 'the token file, read and trimmed');

  const other = loadKubeconfig(path, { context: 'other' });
  t.equal(other.server.host, 'other.example:6443');
  t.equal(other.tls.insecureSkipTLSVerify, true);
  t.equal(other.token, 'inline-token', 'an inline token wins over a token file, as in kubectl');
  t.equal(other.tokenFile, undefined);
  t.equal(await connectionToken(other)?.(), 'inline-token');
});

const BASE = (cluster: string, user = '    token: x', rest = 'current-context: c') => `apiVersion: v1
kind: Config
clusters:
- name: k
  cluster:
${cluster}
users:
- name: u
  user:
${user}
contexts:
- name: c
  context:
    cluster: k
    user: u
${rest}
`;

const CASES: [string, string, RegExp][] = [
  ['no server', BASE('    certificate-authority-data: ' + b64(PEM)), /^\/etc\/podvisor\/kubeconfig:5:3: clusters\[0\]\.cluster\.server: Required$/],
  ['a server that is not a string', BASE('    server: 42'), /:6:5: clusters\[0\]\.cluster\.server: must be a string, got number$/],
  ['a server that is not a URL', BASE('    server: not a url'), /:6:5: clusters\[0\]\.cluster\.server: not a URL: "not a url"$/],
  ['a server that is not http(s)', BASE('    server: ftp://127.0.0.1'), /:6:5: clusters\[0\]\.cluster\.server: must be an https:\/\/ or http:\/\/ URL, got ftp:$/],
  ['insecure-skip-tls-verify that is not a boolean', BASE('    server: https://127.0.0.1\n    insecure-skip-tls-verify: "yes"'), /:7:5: clusters\[0\]\.cluster\.insecure-skip-tls-verify: must be a boolean, got string$/],
  ['bad base64', BASE('    server: https://127.0.0.1\n    certificate-authority-data: "not base64!"'), /:7:5: clusters\[0\]\.cluster\.certificate-authority-data: must be base64/],
  ['data that is not PEM', BASE(`    server: https://127.0.0.1\n    certificate-authority-data: ${b64('hello')}`), /:7:5: clusters\[0\]\.cluster\.certificate-authority-data: is not PEM/],
  ['a CA file that is missing', BASE('    server: https://127.0.0.1\n    certificate-authority: missing.crt'), /:7:5: clusters\[0\]\.cluster\.certificate-authority: cannot read \/etc\/podvisor\/missing\.crt: ENOENT/],
  ['a CA as data and as a file', BASE(`    server: https://127.0.0.1\n    certificate-authority: ca.crt\n    certificate-authority-data: ${b64(PEM)}`), /:8:5: clusters\[0\]\.cluster\.certificate-authority-data: give certificate-authority-data or certificate-authority, not both$/],
  ['a CA with insecure-skip-tls-verify', BASE(`    server: https://127.0.0.1\n    insecure-skip-tls-verify: true\n    certificate-authority-data: ${b64(PEM)}`), /:7:5: clusters\[0\]\.cluster\.insecure-skip-tls-verify: a certificate authority and insecure-skip-tls-verify do not go together$/],
  ['a client certificate without its key', BASE('    server: https://127.0.0.1', `    client-certificate-data: ${b64(PEM)}`), /:9:3: users\[0\]\.user\.client-key: Required: a client certificate and its key go together$/],
  ['an exec plugin', BASE('    server: https://127.0.0.1', '    exec:\n      command: aws'), /:10:5: users\[0\]\.user\.exec: is not supported by podvisor/],
  ['a missing token file', BASE('    server: https://127.0.0.1', '    tokenFile: /nonexistent/token'), /:10:5: users\[0\]\.user\.tokenFile: cannot read \/nonexistent\/token/],
  ['no current-context', BASE('    server: https://127.0.0.1', '    token: x', ''), /:1:1: current-context: Required: no current-context/],
  ['a current-context that is not there', BASE('    server: https://127.0.0.1', '    token: x', 'current-context: elsewhere'), /:16:1: current-context: no context named "elsewhere" in contexts$/],
  ['a context naming a cluster that is not there', BASE('    server: https://127.0.0.1').replace('cluster: k\n    user', 'cluster: nope\n    user'), /:14:5: contexts\[0\]\.context\.cluster: no cluster named "nope" in clusters$/],
  ['clusters that is not a list', 'clusters: {}\ncontexts: []\n', /:1:1: clusters: must be a list, got object$/],
  ['a YAML syntax error', 'clusters:\n- name: k\n  cluster: {server: "unterminated\n', /:\d+:\d+: YAML: Missing closing "quote/],
  ['a list instead of a mapping', '- a\n- b\n', /: a kubeconfig must be a mapping$/],
  ['an empty file', '', /: the kubeconfig is empty$/],
];

t.test('every mistake is E_CONFIG naming the file, line, column and field', async (t) => {
  for (const [what, text, expected] of CASES) {
    let caught: unknown;
    try {
      parseKubeconfig(text, '/etc/podvisor/kubeconfig');
    } catch (error) {
      caught = error;
    }
    t.ok(caught instanceof PodvisorError && caught.code === 'E_CONFIG', `${what}: E_CONFIG`);
    t.match((caught as Error | undefined)?.message, /^\/etc\/podvisor\/kubeconfig:\d+:\d+: /, `${what}: names the file`);
    t.match((caught as Error | undefined)?.message, expected, what);
  }
});

t.test('a kubeconfig that cannot be read names the file', async (t) => {
  t.throws(() => loadKubeconfig('/nonexistent/kubeconfig'), { name: 'PodvisorError', code: 'E_CONFIG', message: /^\/nonexistent\/kubeconfig: cannot read the kubeconfig: ENOENT/ });
});
