// The publishers' HTTP client against test servers on 127.0.0.1: its deadline, cancellation,
// redirects left unfollowed (a token goes only where it was configured to), and a bounded answer.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { PodvisorError } from '../../src/errors.js';
import { HttpClient, isEndpointFailure, MAX_RETRY_AFTER_MS, PublishError, REDACTED, redactToken, resultLabel, retryAfterOf } from '../../src/publish/http-client.js';

async function server(t: Test, handler: http.RequestListener): Promise<URL> {
  const listening = http.createServer(handler);
  await new Promise<void>((resolve) => listening.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    listening.closeAllConnections();
    return new Promise<void>((resolve) => listening.close(() => resolve()));
  });
  return new URL(`http://127.0.0.1:${(listening.address() as AddressInfo).port}/x`);
}

async function failure(promise: Promise<unknown>): Promise<PublishError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof PublishError) return error;
    throw error;
  }
  throw new Error('expected a failure');
}

t.test('an answer that does not come within the deadline is a timeout', async (t) => {
  const url = await server(t, () => undefined); // never answers
  const client = new HttpClient({ timeoutMs: 50 });
  t.teardown(() => client.close());
  const error = await failure(client.request({ method: 'GET', url }));
  t.equal(error.kind, 'timeout');
  t.match(error.message, /no complete answer within 50 ms/);
  t.ok(isEndpointFailure(error));
  t.equal(resultLabel(error), 'timeout');
});

t.test('an abort cancels the request', async (t) => {
  let arrived = false;
  const url = await server(t, () => {
    arrived = true;
  });
  const client = new HttpClient({ timeoutMs: 60_000 });
  t.teardown(() => client.close());
  const controller = new AbortController();
  const pending = failure(client.request({ method: 'GET', url, signal: controller.signal }));
  while (!arrived) await new Promise((resolve) => setTimeout(resolve, 5));
  controller.abort();
  t.equal((await pending).kind, 'aborted');
});

t.test('a redirect is returned, not followed, and the token stays home', async (t) => {
  const seen: (string | undefined)[] = [];
  const elsewhere = await server(t, (req, res) => {
    seen.push(req.headers['authorization']);
    res.end('{}');
  });
  const url = await server(t, (_req, res) => res.writeHead(307, { Location: elsewhere.href }).end());
  const client = new HttpClient({ token: async () => 'secret' });
  t.teardown(() => client.close());
  const response = await client.request({ method: 'POST', url, body: '{}' });
  t.equal(response.status, 307);
  t.same(seen, []);
});

t.test('an error answer that echoes the token has it cut out; a success is left whole', async (t) => {
  const url = await server(t, (req, res) => {
    const echo = `echo: ${req.headers['authorization'] ?? ''}`;
    res.writeHead(req.method === 'GET' ? 200 : 503).end(echo);
  });
  const client = new HttpClient({ token: async () => 'tok-123-secret' });
  t.teardown(() => client.close());
  const failed = await client.request({ method: 'POST', url, body: '{}' });
  t.equal(failed.body, `echo: Bearer ${REDACTED}`, 'the 503 body, without the token');
  const ok = await client.request({ method: 'GET', url });
  t.equal(ok.body, 'echo: Bearer tok-123-secret', 'a 2xx body is data: left as it came');
  t.equal(redactToken('a tok b tok', 'tok'), `a ${REDACTED} b ${REDACTED}`);
  t.equal(redactToken('text', undefined), 'text', 'no token, nothing cut');
});

t.test('an answer longer than the limit fails', async (t) => {
  const url = await server(t, (_req, res) => res.end('x'.repeat(10_000)));
  const client = new HttpClient({ maxResponseBytes: 1000 });
  t.teardown(() => client.close());
  const error = await failure(client.request({ method: 'GET', url }));
  t.equal(error.kind, 'response');
  t.notOk(isEndpointFailure(error), "one answer's fault, not the endpoint's");
});

t.test('result labels are a small fixed set', async (t) => {
  t.equal(resultLabel(), 'success');
  t.equal(resultLabel(new PublishError('http', 'x', { status: 404 })), 'not_found');
  t.equal(resultLabel(new PublishError('http', 'x', { status: 409 })), 'conflict');
  t.equal(resultLabel(new PublishError('http', 'x', { status: 422 })), 'rejected');
  t.equal(resultLabel(new PublishError('http', 'x', { status: 503 })), 'server_error');
  t.equal(resultLabel(new PublishError('http', 'x', { status: 429 })), 'server_error');
  t.equal(resultLabel(new Error('x')), 'error');
  t.ok(isEndpointFailure(new PublishError('http', 'x', { status: 401 })), 'a bad token fails every request');
  t.notOk(isEndpointFailure(new PublishError('http', 'x', { status: 422 })));
});

t.test('a PublishError is a PodvisorError with code E_PUBLISH, and keeps its kind, status, reason and cause', async (t) => {
  const cause = new Error('underneath');
  const error = new PublishError('http', 'GET /x: HTTP 409 Conflict', { status: 409, reason: 'Conflict', cause });
  t.ok(error instanceof PodvisorError);
  t.match(error, { name: 'PublishError', code: 'E_PUBLISH', kind: 'http', status: 409, reason: 'Conflict', message: 'GET /x: HTTP 409 Conflict' });
  t.equal(error.cause, cause);
  t.notOk('cause' in new PublishError('state', 'no cause'), 'no cause property when there is none');

  // What the client raises itself: a refused connection, its system error as the cause.
  const refused = new URL('http://127.0.0.1:1/x'); // nothing listens on port 1
  const client = new HttpClient({ timeoutMs: 5000 });
  t.teardown(() => client.close());
  const network = await failure(client.request({ method: 'GET', url: refused }));
  t.match(network, { code: 'E_PUBLISH', kind: 'network' });
  t.match(network.cause, { code: 'ECONNREFUSED' });
});

t.test('Retry-After of a 429 or 503, in seconds or as a date, bounded; nothing from other answers', async (t) => {
  const now = Date.parse('2026-12-04T12:00:00Z');
  const answer = (status: number, value?: string) => ({ status, headers: value === undefined ? {} : { 'retry-after': value }, body: '' });
  t.equal(retryAfterOf(answer(503, '120'), now), 120_000);
  t.equal(retryAfterOf(answer(429, ' 3 '), now), 3000);
  t.equal(retryAfterOf(answer(503, 'Fri, 04 Dec 2026 12:00:30 GMT'), now), 30_000, 'an HTTP date');
  t.equal(retryAfterOf(answer(503, 'Fri, 04 Dec 2026 11:00:00 GMT'), now), 0, 'a date gone by: at once');
  t.equal(retryAfterOf(answer(503, '99999999'), now), MAX_RETRY_AFTER_MS, 'bounded');
  t.equal(retryAfterOf(answer(503, 'soon'), now), undefined, 'neither seconds nor a date');
  t.equal(retryAfterOf(answer(503, '-5'), now), undefined, 'not a number of seconds');
  t.equal(retryAfterOf(answer(503), now), undefined, 'no header');
  t.equal(retryAfterOf(answer(500, '120'), now), undefined, 'a 500 asks for nothing');
});
