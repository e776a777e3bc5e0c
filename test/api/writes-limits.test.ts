// Nothing changes through the API: every write is a 405 MethodNotAllowed Status with an Allow
// header, answered without reading the request's body, and the connection is not kept. Requests
// are bounded: headers over 16 KiB are refused with 431. Raw sockets send what node:http would
// not (a body that never arrives, oversized headers).
import t from 'tap';
import { get, RawConnection, startApi } from './fixtures/api.js';

t.test('POST, PUT, PATCH and DELETE are 405 MethodNotAllowed with Allow: GET, HEAD, OPTIONS', async (t) => {
  const { base, store } = await startApi(t);
  const before = store.version;
  for (const [method, path] of [
    ['POST', '/api/v1/namespaces/default/pods'],
    ['PUT', '/api/v1/namespaces/default/pods/web-node1'],
    ['PATCH', '/api/v1/namespaces/default/pods/web-node1'],
    ['DELETE', '/api/v1/namespaces/default/pods/web-node1'],
    ['DELETE', '/api/v1/nodes/node1'],
    ['POST', '/pods'],
  ] as const) {
    const answer = await get(`${base}${path}`, { method });
    t.equal(answer.status, 405, `${method} ${path}`);
    t.equal(answer.headers.allow, 'GET, HEAD, OPTIONS', `${method} ${path}: Allow`);
    t.match(answer.json(), { kind: 'Status', status: 'Failure', reason: 'MethodNotAllowed', code: 405, message: new RegExp(`^${method} is not allowed: .*node "node1".*manifest`) }, `${method} ${path}: Status`);
  }
  t.equal(store.version, before, 'the store did not change');
});

t.test('HEAD is a read', async (t) => {
  const { base } = await startApi(t);
  const answer = await get(`${base}/api/v1/pods`, { method: 'HEAD' });
  t.equal(answer.status, 200);
  t.equal(answer.text, '', 'no body');
});

t.test('a write\'s body is not read: the answer comes before the body ends, and the connection closes', async (t) => {
  const { port } = await startApi(t);
  const connection = await RawConnection.open(t, port);
  // Says 10 MB are coming, sends 1 KiB and waits.
  connection.write('POST /api/v1/namespaces/default/pods HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n');
  connection.write(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"${'x'.repeat(1000)}"`);
  const answer = await connection.answer();
  t.equal(answer.status, 405);
  t.equal(answer.headers.get('allow'), 'GET, HEAD, OPTIONS');
  t.equal(answer.headers.get('connection'), 'close', 'the answer says the connection will not be reused');
  t.match(JSON.parse(answer.body), { kind: 'Status', reason: 'MethodNotAllowed' });
  await connection.serverCloses();
  t.ok(connection.closed, 'the server closed the connection though the body never ended');
});

t.test('a chunked body that never ends: the same', async (t) => {
  const { port } = await startApi(t);
  const connection = await RawConnection.open(t, port);
  connection.write('PUT /api/v1/namespaces/default/pods/web-node1 HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n');
  connection.write('y'.repeat(0x400));
  connection.write('\r\n');
  const answer = await connection.answer();
  t.equal(answer.status, 405);
  t.equal(answer.headers.get('connection'), 'close');
  await connection.serverCloses();
  t.ok(connection.closed);
});

t.test('a body slowly dripping in does not hold the answer back', async (t) => {
  const { port } = await startApi(t);
  const connection = await RawConnection.open(t, port);
  connection.write('PATCH /api/v1/namespaces/default/pods/web-node1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/merge-patch+json\r\nContent-Length: 5000\r\n\r\n');
  let sent = 0;
  const drip = setInterval(() => {
    if (connection.closed || sent >= 4000) return;
    connection.write('z'.repeat(100));
    sent += 100;
  }, 20);
  t.teardown(() => clearInterval(drip));
  // The body is never completed: an answer at all shows the server did not wait for it.
  const answer = await connection.answer();
  t.equal(answer.status, 405);
  await connection.serverCloses();
  t.ok(connection.closed, 'closed with the body still incomplete');
});

t.test('a GET that comes with a body is answered, and its connection is not kept', async (t) => {
  const { port } = await startApi(t);
  const connection = await RawConnection.open(t, port);
  connection.write('GET /api/v1/nodes HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n{}');
  const answer = await connection.answer();
  t.equal(answer.status, 200);
  t.equal(JSON.parse(answer.body).kind, 'NodeList');
  t.equal(answer.headers.get('connection'), 'close');
  await connection.serverCloses();
  t.ok(connection.closed);
});

t.test('a GET without a body keeps its connection for the next request', async (t) => {
  const { port } = await startApi(t);
  const connection = await RawConnection.open(t, port);
  connection.write('GET /version HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  const first = await connection.answer();
  t.equal(first.status, 200);
  t.not(first.headers.get('connection'), 'close');
  connection.data = '';
  connection.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  const second = await connection.answer();
  t.equal(second.status, 200, 'a second request on the same connection');
  t.equal(second.body, 'ok');
});

t.test('request headers over 16 KiB: 431; under it: served', async (t) => {
  const { port } = await startApi(t);
  const small = await RawConnection.open(t, port);
  small.write(`GET /api/v1/nodes HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: ${'a'.repeat(12 * 1024)}\r\n\r\n`);
  t.equal((await small.answer()).status, 200, '12 KiB of headers are fine');
  const large = await RawConnection.open(t, port);
  large.write(`GET /api/v1/nodes HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: ${'a'.repeat(20 * 1024)}\r\n\r\n`);
  const answer = await large.answer();
  t.equal(answer.status, 431);
  await large.serverCloses();
  t.ok(large.closed, 'and the connection is closed');
});
