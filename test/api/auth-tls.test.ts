// Who may read: a bearer token from --api-token-file (the health checks stay open), and HTTPS
// with a certificate made for the test by the openssl CLI (a throwaway CA and a server
// certificate for 127.0.0.1). Bad files make start() reject with a PodvisorError naming the flag.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import { ApiServer } from '../../src/api/server.js';
import { PodvisorError } from '../../src/errors.js';
import { HealthChecks } from '../../src/health/health.js';
import { AgentMetrics } from '../../src/metrics/metrics.js';
import { recordingLogger } from '../support/recording.js';
import { fixtureStore, get, NODE_NAME, startApi } from './fixtures/api.js';

const run = promisify(execFile);

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'podvisor-api-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** An ApiServer that is never expected to start (or is stopped at teardown if it does). */
function server(t: Test, options: { tokenFile?: string; tls?: { certFile: string; keyFile: string }; port?: number }): ApiServer {
  const api = new ApiServer({
    host: '127.0.0.1',
    port: options.port ?? 0,
    store: fixtureStore(),
    health: new HealthChecks(),
    metrics: new AgentMetrics({ pods: () => [], processMetrics: false }),
    logger: recordingLogger().logger,
    nodeName: NODE_NAME,
    podvisorVersion: '0.1.0',
    tokenFile: options.tokenFile,
    tls: options.tls,
  });
  t.teardown(() => api.stop());
  return api;
}

t.test('with a token file: no token or a wrong one is 401, the right one is served', async (t) => {
  const dir = await tempDir(t);
  const tokenFile = join(dir, 'token');
  await writeFile(tokenFile, 's3cret-token\n');
  const { base } = await startApi(t, { tokenFile });
  const missing = await get(`${base}/api/v1/pods`);
  t.equal(missing.status, 401);
  t.match(missing.json(), { kind: 'Status', status: 'Failure', reason: 'Unauthorized', code: 401 });
  for (const authorization of ['Bearer wrong', 'Bearer s3cret-token-and-more', 'Bearer s3cret', 'Basic czNjcmV0LXRva2Vu', 's3cret-token', 'Bearer ']) {
    const answer = await get(`${base}/api/v1/pods`, { headers: { Authorization: authorization } });
    t.equal(answer.status, 401, `Authorization: ${authorization}`);
  }
  const right = await get(`${base}/api/v1/pods`, { headers: { Authorization: 'Bearer s3cret-token' } });
  t.equal(right.status, 200, 'the file\'s token, without its newline');
  t.equal(right.json().kind, 'PodList');
  t.equal((await get(`${base}/api/v1/pods`, { headers: { Authorization: 'bearer s3cret-token' } })).status, 200, 'the scheme in any case');
});

t.test('with a token file: every path but the health checks needs it, writes too', async (t) => {
  const dir = await tempDir(t);
  const tokenFile = join(dir, 'token');
  await writeFile(tokenFile, 'tok');
  const { base } = await startApi(t, { tokenFile });
  for (const path of ['/healthz', '/livez', '/readyz', '/healthz?verbose']) {
    const answer = await get(`${base}${path}`);
    t.equal(answer.status, 200, `${path} is open`);
  }
  for (const path of ['/metrics', '/pods', '/api', '/api/v1', '/version', '/api/v1/nodes', '/api/v1/pods?watch=true']) {
    t.equal((await get(`${base}${path}`)).status, 401, `${path} needs the token`);
  }
  t.equal((await get(`${base}/api/v1/namespaces/default/pods`, { method: 'POST' })).status, 401, 'a write without the token: 401 before 405');
  t.equal((await get(`${base}/api/v1/namespaces/default/pods`, { method: 'POST', headers: { Authorization: 'Bearer tok' } })).status, 405, 'with it: still read-only');
});

t.test('a missing or empty token file: start() rejects naming --api-token-file', async (t) => {
  const dir = await tempDir(t);
  const missing = join(dir, 'no-such-token');
  await t.rejects(server(t, { tokenFile: missing }).start(), { name: 'PodvisorError', code: 'E_CONFIG', message: new RegExp(`^--api-token-file ${missing}: .*ENOENT`) });
  const empty = join(dir, 'empty-token');
  await writeFile(empty, '  \n');
  await t.rejects(server(t, { tokenFile: empty }).start(), { name: 'PodvisorError', code: 'E_CONFIG', message: `--api-token-file ${empty}: the file is empty` });
});

t.test('an address in use: start() rejects naming --api-address', async (t) => {
  const { port } = await startApi(t);
  await t.rejects(server(t, { port }).start(), { name: 'PodvisorError', code: 'E_CONFIG', message: new RegExp(`^--api-address 127.0.0.1:${port}: .*EADDRINUSE`) });
});

interface Pki {
  dir: string;
  caCert: string;
  cert: string;
  key: string;
  otherCaCert: string;
  otherKey: string;
}

const OPENSSL = await run('openssl', ['version']).then(
  () => true,
  () => false,
);
const NO_OPENSSL = 'the openssl CLI is not on PATH: cannot make a throwaway CA and certificate';

/** A CA, a server certificate it signed for IP 127.0.0.1, and a second CA that signed nothing. */
async function makePki(t: Test): Promise<Pki> {
  const dir = await tempDir(t);
  const at = (name: string) => join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await run('openssl', ['req', '-x509', ...ec, '-keyout', at('ca.key'), '-out', at('ca.crt'), '-days', '2', '-subj', '/CN=podvisor test CA']);
  await run('openssl', ['req', '-x509', ...ec, '-keyout', at('other-ca.key'), '-out', at('other-ca.crt'), '-days', '2', '-subj', '/CN=another test CA']);
  await run('openssl', ['req', ...ec, '-keyout', at('server.key'), '-out', at('server.csr'), '-subj', '/CN=127.0.0.1']);
  await writeFile(at('ext.cnf'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n');
  await run('openssl', ['x509', '-req', '-in', at('server.csr'), '-CA', at('ca.crt'), '-CAkey', at('ca.key'), '-CAcreateserial', '-out', at('server.crt'), '-days', '2', '-extfile', at('ext.cnf')]);
  return { dir, caCert: at('ca.crt'), cert: at('server.crt'), key: at('server.key'), otherCaCert: at('other-ca.crt'), otherKey: at('other-ca.key') };
}

/** GET over HTTPS; resolves with the status or rejects with the TLS error. */
function httpsGet(url: string, ca?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = httpsRequest(url, { agent: false, ...(ca ? { ca } : {}) }, (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.on('error', reject);
    request.end();
  });
}

t.test('HTTPS: a client trusting the CA is served; others are refused', { skip: OPENSSL ? false : NO_OPENSSL }, async (t) => {
  const pki = await makePki(t);
  const { base } = await startApi(t, { tls: { certFile: pki.cert, keyFile: pki.key } });
  t.match(base, /^https:/);
  const trusted = await httpsGet(`${base}/api/v1/nodes`, await readFile(pki.caCert, 'utf8'));
  t.equal(trusted.status, 200);
  t.equal(JSON.parse(trusted.body).kind, 'NodeList');
  await t.rejects(httpsGet(`${base}/api/v1/nodes`), { code: /UNABLE_TO_GET_ISSUER_CERT_LOCALLY|UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN/ }, 'a client with only the system CAs');
  await t.rejects(httpsGet(`${base}/api/v1/nodes`, await readFile(pki.otherCaCert, 'utf8')), { code: /UNABLE_TO_GET_ISSUER_CERT_LOCALLY|UNABLE_TO_VERIFY_LEAF_SIGNATURE/ }, 'a client trusting another CA');
  const plain = await get(`${base.replace('https:', 'http:')}/api/v1/nodes`).then(
    (answer) => answer.status,
    () => 'refused',
  );
  t.not(plain, 200, 'plain HTTP to the HTTPS port is not served');
});

t.test('bad TLS files: start() rejects with a PodvisorError naming the flag and the file', { skip: OPENSSL ? false : NO_OPENSSL }, async (t) => {
  const pki = await makePki(t);
  const missing = join(pki.dir, 'missing.crt');
  const error = await server(t, { tls: { certFile: missing, keyFile: pki.key } }).start().then(
    () => undefined,
    (caught: unknown) => caught,
  );
  t.type(error, PodvisorError);
  t.match(error, { code: 'E_CONFIG', message: new RegExp(`^--api-tls-cert ${missing}: .*ENOENT`) });

  const missingKey = join(pki.dir, 'missing.key');
  await t.rejects(server(t, { tls: { certFile: pki.cert, keyFile: missingKey } }).start(), { name: 'PodvisorError', message: new RegExp(`^--api-tls-key ${missingKey}: `) });

  const garbage = join(pki.dir, 'garbage.crt');
  await writeFile(garbage, 'not a certificate\n');
  await t.rejects(server(t, { tls: { certFile: garbage, keyFile: pki.key } }).start(), { name: 'PodvisorError', code: 'E_CONFIG', message: new RegExp(`^--api-tls-cert ${garbage} / --api-tls-key ${pki.key}: `) });

  await t.rejects(server(t, { tls: { certFile: pki.cert, keyFile: pki.otherKey } }).start(), { name: 'PodvisorError', message: new RegExp(`^--api-tls-cert ${pki.cert} / --api-tls-key ${pki.otherKey}: .*key values mismatch`) }, 'a key that is not the certificate\'s');
});
