// Every method to every route the API has, over real HTTP on 127.0.0.1, without a token
// configured and with one (sent and not sent). Only GET and HEAD read, OPTIONS says which methods
// are served (204 with Allow), and everything else is a 405 Status with an Allow header, CONNECT
// and methods node:http cannot parse included; what is served is byte-identical afterwards.
// Raw sockets send each request, as a client could write it, whatever node:http would send.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { ALLOWED_METHODS } from '../../src/api/server.js';
import { get, RawConnection, startApi, type RunningApi } from '../api/fixtures/api.js';

const TOKEN = 'methods-test-token';

/** The methods tried: the ones HTTP defines, a WebDAV one node:http knows, and two it does not. */
const METHODS = ['GET', 'HEAD', 'OPTIONS', 'POST', 'PUT', 'PATCH', 'DELETE', 'CONNECT', 'TRACE', 'PROPFIND', 'FOO', 'get'] as const;
type Method = (typeof METHODS)[number];

/** Methods node:http's parser refuses before the headers are read: no token can be checked, they are 405 as they are. */
const UNPARSED = new Set<Method>(['FOO', 'get']);

interface Route {
  path: string;
  /** What a GET answers with (200, or 404 for paths that are not there). */
  read: 200 | 404;
  /** Served without the token (the health checks). */
  open?: boolean;
}

/** Every route of src/api/server.ts #route, with its watch variants, and a few that are not there. */
const ROUTES: Route[] = [
  { path: '/healthz', read: 200, open: true },
  { path: '/livez', read: 200, open: true },
  { path: '/readyz?verbose', read: 200, open: true },
  { path: '/metrics', read: 200 },
  { path: '/pods', read: 200 },
  { path: '/rollout', read: 200 },
  { path: '/version', read: 200 },
  { path: '/api', read: 200 },
  { path: '/api/v1', read: 200 },
  { path: '/apis', read: 200 },
  { path: '/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node1', read: 200 },
  { path: '/api/v1/pods', read: 200 },
  { path: '/api/v1/pods?labelSelector=app%3Dweb', read: 200 },
  { path: '/api/v1/namespaces/default/pods', read: 200 },
  { path: '/api/v1/namespaces/default/pods/web-node1', read: 200 },
  { path: '/api/v1/namespaces/default/pods/web-node1/status', read: 200 },
  { path: '/api/v1/events', read: 200 },
  { path: '/api/v1/namespaces/infra/events', read: 200 },
  { path: '/api/v1/namespaces/infra/events/db-node1.backoff', read: 200 },
  { path: '/api/v1/nodes', read: 200 },
  { path: '/api/v1/nodes/node1', read: 200 },
  { path: '/api/v1/nodes/node1/status', read: 200 },
  { path: '/api/v1/pods?watch=true&timeoutSeconds=1', read: 200 },
  { path: '/api/v1/namespaces/default/pods?watch=1&timeoutSeconds=1&resourceVersion=0', read: 200 },
  { path: '/api/v1/events?watch=true&timeoutSeconds=1', read: 200 },
  { path: '/api/v1/nodes?watch=true&timeoutSeconds=1&allowWatchBookmarks=true', read: 200 },
  { path: '/api/v1/namespaces/default/pods/web-node1/log', read: 404 },
  { path: '/api/v1/configmaps', read: 404 },
  { path: '/nothing', read: 404 },
];

/** What the server should answer `method` on `route`, given whether a token is required and sent. */
function expected(method: Method, route: Route, tokenRequired: boolean, tokenSent: boolean): number {
  if (UNPARSED.has(method)) return 405;
  if (tokenRequired && !tokenSent && !route.open) return 401;
  if (method === 'GET' || method === 'HEAD') return route.read;
  if (method === 'OPTIONS') return 204;
  return 405;
}

/** Everything the API serves, as bytes: compared before and after the writes. */
async function servedState(api: RunningApi, headers: Record<string, string>): Promise<string> {
  const paths = ['/pods', '/api/v1/pods', '/api/v1/events', '/api/v1/nodes', '/api/v1/namespaces/default/pods/web-node1', '/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node1'];
  const bodies = await Promise.all(paths.map(async (path) => `${path}\n${(await get(`${api.base}${path}`, { headers })).text}`));
  return `${api.store.version}\n${bodies.join('\n')}`;
}

/** One request on a connection of its own; the status, the Allow header and the body. */
async function ask(t: Test, api: RunningApi, method: Method, path: string, headers: Record<string, string>): Promise<{ status: number; allow: string | undefined; body: string }> {
  const connection = await RawConnection.open(t, api.port);
  const extra = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('');
  // A body with every write, as a client would send one: the server must not wait for it.
  const body = method === 'GET' || method === 'HEAD' || method === 'OPTIONS' ? '' : '{"kind":"Pod"}';
  connection.write(`${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n${extra}${body ? `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n` : ''}\r\n${body}`);
  const answer = await connection.answer({ head: method === 'HEAD' });
  connection.socket.destroy();
  return { status: answer.status, allow: answer.headers.get('allow'), body: answer.body };
}

for (const tokenRequired of [false, true]) {
  t.test(tokenRequired ? 'a token configured: every method to every route, with and without it' : 'no token configured: every method to every route', async (t) => {
    const options: Parameters<typeof startApi>[1] = {};
    if (tokenRequired) {
      const dir = t.testdir({});
      options.tokenFile = join(dir, 'token');
      await writeFile(options.tokenFile, `${TOKEN}\n`);
    }
    const api = await startApi(t, options);
    const auth = { Authorization: `Bearer ${TOKEN}` };
    const before = await servedState(api, auth);
    for (const tokenSent of tokenRequired ? [true, false] : [false]) {
      for (const route of ROUTES) {
        for (const method of METHODS) {
          const what = `${method} ${route.path}${tokenRequired ? (tokenSent ? ' (token)' : ' (no token)') : ''}`;
          const answer = await ask(t, api, method, route.path, tokenSent ? auth : {});
          const want = expected(method, route, tokenRequired, tokenSent);
          if (answer.status !== want) {
            t.equal(answer.status, want, what);
            continue;
          }
          if (want === 405) {
            t.equal(answer.allow, ALLOWED_METHODS, `${what}: Allow`);
            const status = JSON.parse(answer.body) as { kind: string; reason: string; code: number; message: string };
            t.match(status, { kind: 'Status', reason: 'MethodNotAllowed', code: 405 }, `${what}: a Status`);
            t.match(status.message, /is not allowed: podvisor serves read-only mirror pods of node "node1"/, `${what}: says why`);
          } else if (want === 204) {
            t.equal(answer.allow, ALLOWED_METHODS, `${what}: Allow`);
            t.equal(answer.body, '', `${what}: no body`);
          } else if (method === 'HEAD') {
            t.equal(answer.body, '', `${what}: no body`);
          } else if (want === 401) {
            t.match(JSON.parse(answer.body), { kind: 'Status', reason: 'Unauthorized', code: 401 }, what);
          } else t.pass(what);
        }
      }
    }
    t.equal(await servedState(api, auth), before, 'what is served is byte-identical after every write was tried');
    t.equal((await get(`${api.base}/healthz`)).status, 200, 'and the server still answers');
  });
}

t.test('the ALLOWED_METHODS the server answers with are the ones the table serves', async (t) => {
  t.equal(ALLOWED_METHODS, METHODS.filter((method) => method === 'GET' || method === 'HEAD' || method === 'OPTIONS').join(', '));
});
