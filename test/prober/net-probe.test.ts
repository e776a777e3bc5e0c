// The network probes in-process against real servers on 127.0.0.1 (as for a hostNetwork pod):
// HTTP status rule, headers, redirects (same host only), HTTPS without verification, timeouts,
// TCP, and gRPC health checks over HTTP/2 cleartext.
import { execa } from 'execa';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { decodeHealthCheckStatus, encodeHealthCheckRequest, formatDuration, PROBE_USER_AGENT, runNetProbe } from '../../src/prober/net-probe.js';
import { closedPort, startHealthServer } from './fixtures/prober-fixtures.js';

interface HttpFixture {
  port: number;
  requests: Array<{ path: string; headers: IncomingHttpHeaders }>;
}

/** An HTTP server on 127.0.0.1: /ok 200, /redirect 302 to /ok, /away 302 to localhost, /loop 302 to itself, /slow never answers. */
async function startHttpServer(t: Test, server: Server = createServer()): Promise<HttpFixture> {
  const fixture: HttpFixture = { port: 0, requests: [] };
  server.on('request', (req, res) => {
    fixture.requests.push({ path: req.url ?? '', headers: req.headers });
    switch (req.url) {
      case '/ok':
        return res.end('fine');
      case '/redirect':
        res.writeHead(302, { location: '/ok' });
        return res.end();
      case '/away':
        res.writeHead(302, { location: `http://localhost:${fixture.port}/ok` });
        return res.end('elsewhere');
      case '/loop':
        res.writeHead(307, { location: '/loop' });
        return res.end();
      case '/slow':
        return; // never answers
      default:
        res.writeHead(404);
        return res.end('not here');
    }
  });
  await new Promise<void>((resolveListen) => server.listen(0, '127.0.0.1', resolveListen));
  fixture.port = (server.address() as AddressInfo).port;
  t.teardown(async () => {
    server.closeAllConnections();
    await new Promise((resolveClose) => server.close(resolveClose));
  });
  return fixture;
}

const http = (port: number, path: string, extra: { headers?: Array<[string, string]>; timeoutMs?: number; scheme?: 'http' | 'https' } = {}) =>
  runNetProbe({ type: 'http', scheme: extra.scheme ?? 'http', host: '127.0.0.1', port, path, headers: extra.headers ?? [], timeoutMs: extra.timeoutMs ?? 1000 });

t.test('httpGet: 200 succeeds, 404 fails with the status code', async (t) => {
  const server = await startHttpServer(t);
  t.strictSame(await http(server.port, '/ok'), { result: 'success', output: 'fine', statusCode: 200 });
  t.strictSame(await http(server.port, '/missing'), { result: 'failure', output: 'HTTP probe failed with statuscode: 404', statusCode: 404 });
});

t.test('httpGet: the kubelet headers, the manifest headers, Host and Accept overrides', async (t) => {
  const server = await startHttpServer(t);
  await http(server.port, 'ok');
  const first = server.requests[0];
  t.equal(first?.path, '/ok', 'a path without a leading slash gets one');
  t.equal(first?.headers['user-agent'], PROBE_USER_AGENT);
  t.match(PROBE_USER_AGENT, /^kube-probe\/\d+\.\d+$/);
  t.equal(first?.headers.accept, '*/*');
  t.equal(first?.headers.connection, 'close');

  await http(server.port, '/ok', { headers: [['Host', 'example.test'], ['X-Custom', 'a'], ['x-custom', 'b'], ['Accept', ''], ['User-Agent', 'mine']] });
  const second = server.requests[1];
  t.equal(second?.headers.host, 'example.test');
  t.equal(second?.headers['x-custom'], 'a, b');
  t.equal(second?.headers.accept, undefined, 'an empty Accept removes it');
  t.equal(second?.headers['user-agent'], 'mine');
});

t.test('httpGet: a redirect to the same host is followed; to another host it is not, and warns', async (t) => {
  const server = await startHttpServer(t);
  t.strictSame(await http(server.port, '/redirect'), { result: 'success', output: 'fine', statusCode: 200 });
  t.strictSame(server.requests.map((request) => request.path), ['/redirect', '/ok']);

  t.strictSame(await http(server.port, '/away'), { result: 'warning', output: 'Probe terminated redirects, Response body: elsewhere', statusCode: 302 });
  t.equal(server.requests.length, 3, 'localhost was not asked');
});

t.test('httpGet: a redirect loop stops after 10 requests', async (t) => {
  const server = await startHttpServer(t);
  t.strictSame(await http(server.port, '/loop'), { result: 'failure', output: `Get "http://127.0.0.1:${server.port}/loop": stopped after 10 redirects` });
  t.equal(server.requests.length, 10);
});

t.test('httpGet: refused and timed-out requests fail in the kubelet words', async (t) => {
  const port = await closedPort();
  t.strictSame(await http(port, '/'), { result: 'failure', output: `Get "http://127.0.0.1:${port}/": dial tcp 127.0.0.1:${port}: connect: connection refused` });

  const server = await startHttpServer(t);
  const started = Date.now();
  t.strictSame(await http(server.port, '/slow', { timeoutMs: 300 }), {
    result: 'failure',
    output: `Get "http://127.0.0.1:${server.port}/slow": context deadline exceeded (Client.Timeout exceeded while awaiting headers)`,
  });
  t.ok(Date.now() - started < 2000, 'within the timeout');
});

t.test('httpGet over HTTPS: the certificate is not checked', async (t) => {
  const dir = t.testdir();
  await execa('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=probe.test', '-days', '1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')]);
  const server = await startHttpServer(t, createHttpsServer({ key: await readFile(join(dir, 'key.pem')), cert: await readFile(join(dir, 'cert.pem')) }));
  t.strictSame(await http(server.port, '/ok', { scheme: 'https' }), { result: 'success', output: 'fine', statusCode: 200 });
});

t.test('tcpSocket: an open port succeeds, a closed one fails', async (t) => {
  const server = await startHttpServer(t);
  t.strictSame(await runNetProbe({ type: 'tcp', host: '127.0.0.1', port: server.port, timeoutMs: 1000 }), { result: 'success', output: '' });
  const port = await closedPort();
  t.strictSame(await runNetProbe({ type: 'tcp', host: '127.0.0.1', port, timeoutMs: 1000 }), {
    result: 'failure',
    output: `dial tcp 127.0.0.1:${port}: connect: connection refused`,
  });
});

t.test('grpc: SERVING succeeds, anything else fails with the kubelet words', async (t) => {
  const server = await startHealthServer(t, { '': 1, sick: 2 });
  const grpc = (service: string, timeoutMs = 1000) => runNetProbe({ type: 'grpc', host: '127.0.0.1', port: server.port, service, timeoutMs });

  t.strictSame(await grpc(''), { result: 'success', output: 'service healthy' });
  t.strictSame(await grpc('sick'), { result: 'failure', output: 'service unhealthy (responded with "NOT_SERVING")' });
  t.strictSame(await grpc('other'), { result: 'failure', output: 'error: health rpc probe failed: rpc error: code = NotFound desc = unknown service' });
  t.strictSame(await grpc('hang', 300), { result: 'failure', output: 'timeout: health rpc did not complete within 300ms' });
  t.strictSame(server.asked, ['', 'sick', 'other', 'hang']);
  t.match(server.headers[0], { ':method': 'POST', 'content-type': 'application/grpc', te: 'trailers', 'user-agent': PROBE_USER_AGENT });

  const port = await closedPort();
  t.match(await runNetProbe({ type: 'grpc', host: '127.0.0.1', port, service: '', timeoutMs: 1000 }), {
    result: 'failure',
    output: `error: failed to connect service at "127.0.0.1:${port}": dial tcp 127.0.0.1:${port}: connect: connection refused`,
  });
});

t.test('grpc messages: request encoding and response decoding', async (t) => {
  t.strictSame([...encodeHealthCheckRequest('')], [0, 0, 0, 0, 0]);
  t.strictSame([...encodeHealthCheckRequest('db')], [0, 0, 0, 0, 4, 0x0a, 2, 0x64, 0x62]);
  const long = encodeHealthCheckRequest('x'.repeat(200));
  t.strictSame([...long.subarray(5, 8)], [0x0a, 0xc8, 0x01], 'a length over 127 is a two-byte varint');
  t.equal(decodeHealthCheckStatus(Buffer.from([0, 0, 0, 0, 2, 0x08, 1])), 1);
  t.equal(decodeHealthCheckStatus(Buffer.from([0, 0, 0, 0, 0])), 0, 'an empty message is UNKNOWN');
  t.equal(decodeHealthCheckStatus(Buffer.from([0, 0, 0, 0, 5, 0x12, 1, 0x41, 0x08, 2])), 2, 'unknown fields are skipped');
  t.equal(decodeHealthCheckStatus(Buffer.from([1, 0, 0, 0, 0])), undefined, 'a compressed message is refused');
});

t.test('durations read as Go prints them', async (t) => {
  t.equal(formatDuration(1000), '1s');
  t.equal(formatDuration(2500), '2.5s');
  t.equal(formatDuration(300), '300ms');
});
