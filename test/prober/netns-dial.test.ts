// Network probes inside a pod's network namespace through `nsenter … busybox nc` (netns-dial.ts),
// with HTTP, TLS and gRPC spoken by the agent over nc's stdin and stdout. The same test servers
// (fixtures/probe-server.mjs) run twice: on the host, probed in-process as for a hostNetwork pod,
// and inside a bridge pod's namespace (no port published), probed through nc. Every probe must
// come out the same both ways, the port numbers aside: the kubelet's words do not depend on where
// the probe ran. Then what only the namespace path has: the requests really arrive there, no nc is
// left behind, a namespace that cannot be entered is an error (not a failure), and the cost.
import { readFileSync } from 'node:fs';
import t from 'tap';
import type { Probe } from '../../src/manifest/pod-schema.js';
import { PROBE_USER_AGENT } from '../../src/prober/net-probe.js';
import { PodProbeRunner, type ProbeTarget } from '../../src/prober/probe-runner.js';
import { toProbeSpec } from '../../src/prober/probe-spec.js';
import type { ProbeOutcome } from '../../src/prober/types.js';
import { PodmanCli } from '../../src/runtime/podman-cli.js';
import { createPod, processesMatching, requireImage, runContainer, startProbeServer, waitFor, type ProbeServer, type TestContainer } from './fixtures/prober-fixtures.js';

type PortName = keyof ProbeServer['ports'];

let runner: PodProbeRunner;
let app: TestContainer;
let inPod: ProbeServer;
let onHost: ProbeServer;

const podTarget = (): ProbeTarget => ({ containerId: app.id, pid: app.pid, hostNetwork: false, ports: [] });
const hostTarget: ProbeTarget = { containerId: 'host-network', pid: undefined, hostNetwork: true, ports: [] };
const run = (probe: Probe, target: ProbeTarget, on = runner): Promise<ProbeOutcome> => on.run(target, toProbeSpec(probe), new AbortController().signal);

/** The outcome with the server's port numbers named, so that the host's and the pod's compare. */
function normalized(outcome: ProbeOutcome, server: ProbeServer): ProbeOutcome {
  let output = outcome.output;
  for (const [name, port] of Object.entries(server.ports)) output = output.replaceAll(`:${port}`, `:<${name}>`);
  return { ...outcome, output };
}

t.before(async () => {
  await requireImage();
  runner = new PodProbeRunner({ cli: new PodmanCli() });
  const pod = await createPod(t);
  app = await runContainer(pod, 'app', 'exec sleep 3600');
  [inPod, onHost] = await Promise.all([startProbeServer(t, { netnsPid: app.pid }), startProbeServer(t)]);
});

/** Each case: a probe against one of the server's ports, and what the outcome must be (both ways). */
const CASES: Array<{ name: string; port: PortName; probe: (port: number) => Probe; expect: { result: ProbeOutcome['result']; output: RegExp | string; statusCode?: number } }> = [
  { name: 'http 200', port: 'http', probe: (port) => ({ httpGet: { port, path: '/ok' } }), expect: { result: 'success', output: 'fine', statusCode: 200 } },
  { name: 'http 404', port: 'http', probe: (port) => ({ httpGet: { port, path: '/missing' } }), expect: { result: 'failure', output: 'HTTP probe failed with statuscode: 404', statusCode: 404 } },
  { name: 'http redirect to the same host, followed', port: 'http', probe: (port) => ({ httpGet: { port, path: '/redirect' } }), expect: { result: 'success', output: 'fine', statusCode: 200 } },
  { name: 'http redirect to another host, not followed', port: 'http', probe: (port) => ({ httpGet: { port, path: '/away' } }), expect: { result: 'warning', output: 'Probe terminated redirects, Response body: elsewhere', statusCode: 302 } },
  // Eleven requests in a row: the kubelet's default second is too short for them on a loaded machine, and the stop is what is tested.
  { name: 'http redirect loop', port: 'http', probe: (port) => ({ httpGet: { port, path: '/loop' }, timeoutSeconds: 10 }), expect: { result: 'failure', output: 'Get "http://127.0.0.1:<http>/loop": stopped after 10 redirects' } },
  { name: 'http body over 10 KiB', port: 'http', probe: (port) => ({ httpGet: { port, path: '/big' } }), expect: { result: 'success', output: 'x'.repeat(10 * 1024), statusCode: 200 } },
  { name: 'http no answer', port: 'http', probe: (port) => ({ httpGet: { port, path: '/slow' }, timeoutSeconds: 1 }), expect: { result: 'failure', output: 'Get "http://127.0.0.1:<http>/slow": context deadline exceeded (Client.Timeout exceeded while awaiting headers)' } },
  { name: 'http refused', port: 'closed', probe: (port) => ({ httpGet: { port, path: '/' } }), expect: { result: 'failure', output: 'Get "http://127.0.0.1:<closed>/": dial tcp 127.0.0.1:<closed>: connect: connection refused' } },
  { name: 'http to a silent port', port: 'silent', probe: (port) => ({ httpGet: { port, path: '/' }, timeoutSeconds: 1 }), expect: { result: 'failure', output: /context deadline exceeded/ } },
  { name: 'https 200, certificate not checked', port: 'https', probe: (port) => ({ httpGet: { port, path: '/ok', scheme: 'HTTPS' } }), expect: { result: 'success', output: 'fine', statusCode: 200 } },
  { name: 'https redirect', port: 'https', probe: (port) => ({ httpGet: { port, path: '/redirect', scheme: 'HTTPS' } }), expect: { result: 'success', output: 'fine', statusCode: 200 } },
  { name: 'https to a plain http port', port: 'http', probe: (port) => ({ httpGet: { port, path: '/', scheme: 'HTTPS' } }), expect: { result: 'failure', output: /^Get "https:\/\/127\.0\.0\.1:<http>\/": / } },
  { name: 'tcp open', port: 'http', probe: (port) => ({ tcpSocket: { port } }), expect: { result: 'success', output: '' } },
  { name: 'tcp open, silent', port: 'silent', probe: (port) => ({ tcpSocket: { port } }), expect: { result: 'success', output: '' } },
  { name: 'tcp refused', port: 'closed', probe: (port) => ({ tcpSocket: { port } }), expect: { result: 'failure', output: 'dial tcp 127.0.0.1:<closed>: connect: connection refused' } },
  { name: 'grpc serving', port: 'grpc', probe: (port) => ({ grpc: { port } }), expect: { result: 'success', output: 'service healthy' } },
  { name: 'grpc not serving', port: 'grpc', probe: (port) => ({ grpc: { port, service: 'sick' } }), expect: { result: 'failure', output: 'service unhealthy (responded with "NOT_SERVING")' } },
  { name: 'grpc unknown service', port: 'grpc', probe: (port) => ({ grpc: { port, service: 'other' } }), expect: { result: 'failure', output: 'error: health rpc probe failed: rpc error: code = NotFound desc = unknown service' } },
  { name: 'grpc no answer', port: 'grpc', probe: (port) => ({ grpc: { port, service: 'hang' }, timeoutSeconds: 1 }), expect: { result: 'failure', output: 'timeout: health rpc did not complete within 1s' } },
  { name: 'grpc refused', port: 'closed', probe: (port) => ({ grpc: { port } }), expect: { result: 'failure', output: 'error: failed to connect service at "127.0.0.1:<closed>": dial tcp 127.0.0.1:<closed>: connect: connection refused' } },
  { name: 'grpc to a silent port', port: 'silent', probe: (port) => ({ grpc: { port }, timeoutSeconds: 1 }), expect: { result: 'failure', output: 'timeout: failed to connect service "127.0.0.1:<silent>" within 1s: context deadline exceeded' } },
  { name: 'grpc to an HTTP/1 server', port: 'http', probe: (port) => ({ grpc: { port }, timeoutSeconds: 1 }), expect: { result: 'failure', output: /^(error|timeout): / } },
];

t.test('every probe comes out the same from the host and from inside the pod', async (t) => {
  for (const { name, port, probe, expect } of CASES) {
    const [host, pod] = await Promise.all([run(probe(onHost.ports[port]), hostTarget), run(probe(inPod.ports[port]), podTarget())]);
    t.match(normalized(host, onHost), expect, `${name}: from the host`);
    t.strictSame(normalized(pod, inPod), normalized(host, onHost), `${name}: the same from the pod's namespace`);
  }
});

t.test('the requests arrive in the pod, with the kubelet headers and the manifest ones', async (t) => {
  const before = onHost.requests.length;
  const from = inPod.requests.length;
  const outcome = await run(
    { httpGet: { port: inPod.ports.http, path: 'ok', httpHeaders: [{ name: 'Host', value: 'example.test' }, { name: 'X-Custom', value: 'a' }, { name: 'x-custom', value: 'b' }] } },
    podTarget(),
  );
  t.strictSame(outcome, { result: 'success', output: 'fine', statusCode: 200 });
  const seen = await waitFor('the request in the pod', () => inPod.requests[from]);
  t.equal(seen.path, '/ok', 'a path without a leading slash gets one');
  t.match(seen.headers, { 'user-agent': PROBE_USER_AGENT, accept: '*/*', connection: 'close', host: 'example.test', 'x-custom': 'a, b' });
  t.equal(onHost.requests.length, before, 'nothing went to the host server');

  const https = inPod.requests.length;
  t.equal((await run({ httpGet: { port: inPod.ports.https, path: '/ok', scheme: 'HTTPS' } }, podTarget())).result, 'success');
  t.match(await waitFor('the https request in the pod', () => inPod.requests[https]), { kind: 'https', path: '/ok' });
  const grpc = inPod.requests.length;
  t.equal((await run({ grpc: { port: inPod.ports.grpc, service: 'sick' } }, podTarget())).result, 'failure');
  t.match(await waitFor('the grpc request in the pod', () => inPod.requests[grpc]), { kind: 'grpc', service: 'sick', headers: { 'user-agent': PROBE_USER_AGENT, te: 'trailers' } });
});

t.test('no nc is left behind, whatever the probe came to', async (t) => {
  const ours = new RegExp(`busybox nc 127\\.0\\.0\\.1 (${Object.values(inPod.ports).join('|')})( |$)`);
  await Promise.all(CASES.map(({ port, probe }) => run(probe(inPod.ports[port]), podTarget())));
  const left = await waitFor('the nc processes to end', () => (processesMatching(ours).length === 0 ? true : undefined), 5000).catch(() => false);
  t.ok(left, `none left: ${JSON.stringify(processesMatching(ours))}`);
});

t.test('a namespace that cannot be entered makes the run an error, not a failure', async (t) => {
  const noBusybox = new PodProbeRunner({ cli: new PodmanCli(), busyboxPath: '/nonexistent/busybox' });
  const why = "probe in the pod's network namespace failed: nsenter: failed to execute /nonexistent/busybox: No such file or directory";
  for (const probe of [{ httpGet: { port: inPod.ports.http, path: '/ok' } }, { httpGet: { port: inPod.ports.https, path: '/ok', scheme: 'HTTPS' as const } }, { tcpSocket: { port: inPod.ports.http } }, { grpc: { port: inPod.ports.grpc } }]) {
    t.strictSame(await run(probe, podTarget(), noBusybox), { result: 'unknown', output: why }, Object.keys(probe)[0] ?? '');
  }
  const gone = await run({ httpGet: { port: inPod.ports.http, path: '/ok' } }, { ...podTarget(), pid: 2 ** 22 + 1 });
  t.equal(gone.result, 'unknown');
  t.match(gone.output, /^probe in the pod's network namespace failed: nsenter: .*\/proc\/4194305\/ns\/net/);
  const noNsenter = new PodProbeRunner({ cli: new PodmanCli(), nsenterPath: '/nonexistent/nsenter' });
  t.match(await run({ tcpSocket: { port: inPod.ports.http } }, podTarget(), noNsenter), { result: 'unknown', output: /nsenter not found/ });
});

/** CPU time (ms) of this process's waited-for children so far, from /proc/self/stat. */
function childrenCpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[13]) + Number(fields[14])) * 10;
}

t.test('cost: a few ms of CPU a connection, not a Node start-up', async (t) => {
  const rounds = 20;
  for (const [name, probe] of [['httpGet', { httpGet: { port: inPod.ports.http, path: '/ok' } }], ['tcpSocket', { tcpSocket: { port: inPod.ports.http } }], ['grpc', { grpc: { port: inPod.ports.grpc } }]] as const) {
    const before = childrenCpuMs();
    for (let i = 0; i < rounds; i++) t.equal((await run(probe, podTarget())).result, 'success');
    const perRun = (childrenCpuMs() - before) / rounds;
    t.comment(`${name} in the pod's namespace: ${perRun.toFixed(1)} ms CPU of child processes a run`);
    t.ok(perRun < 30, `${name}: under 30 ms (a node helper took ~110 ms)`);
  }
});
