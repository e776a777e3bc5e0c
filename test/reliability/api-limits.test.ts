// The API's bounds, each pushed to its limit over real connections on 127.0.0.1 with the server's
// default limits (DEFAULT_LIMITS): header size, a huge body, a slowloris run, the connection cap,
// the watch cap and the idle keep-alive timeout. Through each, /healthz must still answer within
// a generous deadline (it is an answer that is asserted, not a latency).
import { setTimeout as sleep } from 'node:timers/promises';
import t, { type Test } from 'tap';
import { DEFAULT_LIMITS } from '../../src/api/server.js';
import { get, RawConnection, startApi, watch, type WatchStream } from '../api/fixtures/api.js';

/** Long enough for a busy CI machine; a server that stopped answering misses it by far. */
const HEALTH_DEADLINE_MS = 3_000;
/** Polls an asynchronous condition until it holds; fails after 30 s. */
async function eventually(condition: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Whether a GET on a connection of its own is answered with `status`; a refused connection is no. */
const answers = async (url: string, status: number) => (await get(url).catch(() => undefined))?.status === status;

/** /healthz on a connection of its own answers 200 within the deadline. */
async function assertHealthy(t: Test, base: string, what: string): Promise<void> {
  const deadline = sleep(HEALTH_DEADLINE_MS).then(() => undefined);
  const answer = await Promise.race([get(`${base}/healthz`), deadline]);
  t.equal(answer?.status, 200, `/healthz answers within ${HEALTH_DEADLINE_MS} ms ${what}`);
}

t.test('headers: up to the limit served, over it a 431 and the connection closed', async (t) => {
  const { base, port } = await startApi(t);
  const limit = DEFAULT_LIMITS.maxHeaderBytes;
  t.equal(limit, 16 * 1024);
  const head = (padding: number) => `GET /api/v1/nodes HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: ${'a'.repeat(padding)}\r\n\r\n`;
  const under = await RawConnection.open(t, port);
  under.write(head(limit - 512));
  t.equal((await under.answer()).status, 200, 'just under the limit: served');
  for (const padding of [limit + 1, 4 * limit, 64 * limit]) {
    const over = await RawConnection.open(t, port);
    over.write(head(padding));
    t.equal((await over.answer()).status, 431, `${padding} bytes of one header: 431`);
    await over.serverCloses();
  }
  const many = await RawConnection.open(t, port);
  many.write(`GET /api/v1/nodes HTTP/1.1\r\nHost: 127.0.0.1\r\n${Array.from({ length: 3000 }, (_, index) => `X-H${index}: v\r\n`).join('')}\r\n`);
  t.equal((await many.answer()).status, 431, '3,000 small headers: 431 too');
  await assertHealthy(t, base, 'after the oversized headers');
});

t.test('a POST with a 1 GiB body is refused without the body being read', async (t) => {
  const { base, port } = await startApi(t);
  const connection = await RawConnection.open(t, port);
  connection.write(`POST /api/v1/namespaces/default/pods HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${2 ** 30}\r\n\r\n`);
  // Writes as fast as the socket takes it until the server closes it.
  const chunk = Buffer.alloc(256 * 1024, 'x');
  let written = 0;
  const pump = (async () => {
    while (!connection.closed && written < 2 ** 30) {
      if (!connection.socket.write(chunk)) await Promise.race([new Promise((resolve) => connection.socket.once('drain', resolve)), sleep(200)]);
      written += chunk.length;
    }
  })();
  const answer = await connection.answer();
  t.equal(answer.status, 405, 'a 405 while the body is still coming');
  t.equal(answer.headers.get('connection'), 'close');
  await connection.serverCloses();
  await pump;
  t.ok(written < 64 * 1024 * 1024, `the server closed after ${Math.round(written / 1024 / 1024)} MiB of 1 GiB were sent (bound 64 MiB)`);
  await assertHealthy(t, base, 'after the huge body');
});

t.test('slowloris: 50 connections sending headers a byte at a time are closed by the headers timeout', async (t) => {
  const { base, port } = await startApi(t);
  const { headersTimeoutMs, checkIntervalMs } = DEFAULT_LIMITS;
  const clients = await Promise.all(Array.from({ length: 50 }, () => RawConnection.open(t, port)));
  const started = Date.now();
  const request = `GET /api/v1/pods HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ${'s'.repeat(10_000)}`;
  let offset = 0;
  // One byte per connection every 50 ms: never a whole header section within the timeout.
  const drip = setInterval(() => {
    for (const client of clients) if (!client.closed) client.write(request[offset % request.length]!);
    offset++;
  }, 50);
  t.teardown(() => clearInterval(drip));
  let healthChecks = 0;
  while (clients.some((client) => !client.closed) && Date.now() - started < headersTimeoutMs + 3 * checkIntervalMs + 10_000) {
    await assertHealthy(t, base, `with ${clients.filter((client) => !client.closed).length} slow clients open`);
    healthChecks++;
    await sleep(500);
  }
  clearInterval(drip);
  const elapsed = Date.now() - started;
  t.ok(clients.every((client) => client.closed), `the server closed all 50 slow connections (after ${elapsed} ms)`);
  t.ok(elapsed >= headersTimeoutMs - 1000, `not before the headers timeout (${headersTimeoutMs} ms)`);
  t.ok(elapsed <= headersTimeoutMs + 2 * checkIntervalMs + 5000, `within the timeout and two checks (${headersTimeoutMs} + 2 × ${checkIntervalMs} ms, and 5 s to spare)`);
  t.ok(clients.every((client) => client.data === '' || client.data.startsWith('HTTP/1.1 408')), 'each got a 408 or nothing');
  t.ok(healthChecks >= 5, `/healthz was answered ${healthChecks} times meanwhile`);
});

t.test('the connection cap: 128 open connections still serve; the 129th is closed; one freed is one more', async (t) => {
  const { base, port } = await startApi(t);
  const cap = DEFAULT_LIMITS.maxConnections;
  t.equal(cap, 128);
  const open = [];
  for (let index = 0; index < cap; index++) open.push(await RawConnection.open(t, port));
  // A client already connected is still served at the cap, with a kept-alive connection.
  const first = open[0]!;
  first.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  const answer = await first.answer();
  t.equal(answer.status, 200, '/healthz on a connection opened before the cap was reached');
  const beyond = await RawConnection.open(t, port);
  await beyond.serverCloses();
  t.equal(beyond.data, '', 'the 129th connection is closed without an answer');
  open.pop()!.socket.destroy();
  await eventually(() => answers(`${base}/healthz`, 200), 'a new connection to be served once one is freed');
  t.pass('one freed: a new connection is served');
  for (const connection of open) connection.socket.destroy();
  await eventually(() => answers(`${base}/healthz`, 200), 'the server to serve after the connections close');
  await assertHealthy(t, base, 'after the cap');
});

t.test('the watch cap: 100 watches; the 101st is a 429 with Retry-After; one ended lets another in', async (t) => {
  const { base } = await startApi(t);
  const cap = DEFAULT_LIMITS.maxWatches;
  t.equal(cap, 100);
  const streams: WatchStream[] = [];
  for (let index = 0; index < cap; index++) streams.push(await watch(t, `${base}/api/v1/pods?watch=true`));
  t.ok(streams.every((stream) => stream.status === 200), `${cap} watches open`);
  await Promise.all(streams.map((stream) => stream.atLeast(4)));
  const refused = await get(`${base}/api/v1/pods?watch=true`);
  t.equal(refused.status, 429, 'one more is refused');
  t.equal(refused.headers['retry-after'], '1');
  t.match(refused.json(), { kind: 'Status', reason: 'TooManyRequests', code: 429, details: { retryAfterSeconds: 1 } });
  t.equal((await get(`${base}/api/v1/pods`)).status, 200, 'a list is still served');
  await assertHealthy(t, base, `with ${cap} watches open`);
  streams[0]!.close();
  await eventually(() => answers(`${base}/api/v1/pods?watch=true&timeoutSeconds=1`, 200), 'a watch to be accepted once one has ended');
  t.pass('one ended: another watch is accepted');
});

t.test('an idle kept-alive connection is closed after the keep-alive timeout', async (t) => {
  const { base, port } = await startApi(t);
  const { keepAliveTimeoutMs } = DEFAULT_LIMITS;
  t.equal(keepAliveTimeoutMs, 5_000);
  const connection = await RawConnection.open(t, port);
  connection.write('GET /version HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  t.equal((await connection.answer()).status, 200);
  const answered = Date.now();
  await assertHealthy(t, base, 'while a connection idles');
  await connection.serverCloses();
  const idle = Date.now() - answered;
  t.ok(idle >= keepAliveTimeoutMs - 500, `kept for the timeout (${idle} ms idle)`);
  t.ok(idle <= keepAliveTimeoutMs + 5_000, `and closed soon after (${idle} ms)`);
});
