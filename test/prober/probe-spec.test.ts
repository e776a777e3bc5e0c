// A probe's defaults (the API's) and the pick of its handler.
import t from 'tap';
import { PROBE_DEFAULTS, toProbeSpec } from '../../src/prober/probe-spec.js';

t.test('the API defaults fill what the manifest leaves out', async (t) => {
  const spec = toProbeSpec({ exec: { command: ['true'] } });
  t.strictSame(spec, {
    handler: { type: 'exec', command: ['true'] },
    initialDelaySeconds: 0,
    timeoutSeconds: 1,
    periodSeconds: 10,
    successThreshold: 1,
    failureThreshold: 3,
    terminationGracePeriodSeconds: undefined,
  });
  t.strictSame(PROBE_DEFAULTS, { initialDelaySeconds: 0, timeoutSeconds: 1, periodSeconds: 10, successThreshold: 1, failureThreshold: 3 });
});

t.test('values given are kept', async (t) => {
  const spec = toProbeSpec({
    tcpSocket: { port: 'http' },
    initialDelaySeconds: 5,
    timeoutSeconds: 2,
    periodSeconds: 3,
    successThreshold: 2,
    failureThreshold: 7,
    terminationGracePeriodSeconds: 4,
  });
  t.match(spec, { initialDelaySeconds: 5, timeoutSeconds: 2, periodSeconds: 3, successThreshold: 2, failureThreshold: 7, terminationGracePeriodSeconds: 4 });
  t.strictSame(spec.handler, { type: 'tcpSocket', host: undefined, port: 'http' });
});

t.test('httpGet: scheme lower-cased, path and headers kept, an empty host means none', async (t) => {
  const spec = toProbeSpec({
    httpGet: { port: 8443, scheme: 'HTTPS', host: '', path: '/healthz', httpHeaders: [{ name: 'X-A', value: '1' }] },
  });
  t.strictSame(spec.handler, { type: 'httpGet', scheme: 'https', host: undefined, port: 8443, path: '/healthz', headers: [['X-A', '1']] });
  t.strictSame(toProbeSpec({ httpGet: { port: 80 } }).handler, { type: 'httpGet', scheme: 'http', host: undefined, port: 80, path: '', headers: [] });
});

t.test('grpc: the service defaults to the empty name (the whole server)', async (t) => {
  t.strictSame(toProbeSpec({ grpc: { port: 9000 } }).handler, { type: 'grpc', port: 9000, service: '' });
  t.strictSame(toProbeSpec({ grpc: { port: 9000, service: 'db' } }).handler, { type: 'grpc', port: 9000, service: 'db' });
});

t.test('a probe without a handler has none', async (t) => {
  t.equal(toProbeSpec({ periodSeconds: 1 }).handler, undefined);
});
