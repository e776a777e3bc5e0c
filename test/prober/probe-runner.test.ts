// PodProbeRunner against real podman: exec probes (through the OCI runtime; oci-exec.test.ts has
// the details), and httpGet / tcpSocket / grpc probes run inside a bridge-network pod's own network
// namespace (nsenter + busybox nc; netns-dial.test.ts has the details) with no port published, so
// they can only have reached the pod through its namespace. grpc is also run in-process for a
// hostNetwork-style target. No traffic goes to a pod-network address.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import t from 'tap';
import type { Probe } from '../../src/manifest/pod-schema.js';
import { PodmanCli } from '../../src/runtime/podman-cli.js';
import { PodProbeRunner, type ProbeTarget } from '../../src/prober/probe-runner.js';
import { toProbeSpec } from '../../src/prober/probe-spec.js';
import type { ProbeOutcome } from '../../src/prober/types.js';
import { createPod, requireImage, runContainer, startHealthServer, waitFor, type TestContainer } from './fixtures/prober-fixtures.js';

const WEB = 'mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www';

let runner: PodProbeRunner;
let web: TestContainer;
let target: ProbeTarget;

const run = (probe: Probe, on: ProbeTarget = target): Promise<ProbeOutcome> => runner.run(on, toProbeSpec(probe), new AbortController().signal);

t.before(async () => {
  await requireImage();
  runner = new PodProbeRunner({ cli: new PodmanCli() });
  const pod = await createPod(t);
  web = await runContainer(pod, 'web', WEB);
  target = { containerId: web.id, pid: web.pid, hostNetwork: false, ports: [{ name: 'http', containerPort: 8080 }] };
  // httpd listens a moment after the container starts.
  await waitFor('httpd to listen', async () => (await run({ tcpSocket: { port: 8080 } })).result === 'success');
});

t.test('the pod publishes no port: network probes can only have gone through its namespace', async (t) => {
  const { stdout } = await execa('podman', ['port', web.id]);
  t.equal(stdout.trim(), '');
});

t.test('exec: exit 0 succeeds; another exit code fails with the output', async (t) => {
  t.strictSame(await run({ exec: { command: ['test', '-f', '/www/index.html'] } }), { result: 'success', output: '' });
  t.strictSame(await run({ exec: { command: ['sh', '-c', 'echo out; echo err >&2; exit 3'] } }), { result: 'failure', output: 'out\nerr' });
  const missing = await run({ exec: { command: ['no-such-command'] } });
  t.equal(missing.result, 'failure', 'a command that cannot start fails');
  t.match(missing.output, /no-such-command/);
});

t.test('exec: a command that outlasts timeoutSeconds fails as timed out', async (t) => {
  const started = Date.now();
  const outcome = await run({ exec: { command: ['sleep', '5'] }, timeoutSeconds: 1 });
  const elapsed = Date.now() - started;
  t.strictSame(outcome, { result: 'failure', output: 'command "sleep 5" timed out' });
  t.ok(elapsed >= 1000 && elapsed < 4000, `ended after the timeout, not the command (${elapsed} ms)`);
});

t.test('exec: a container that is gone is an error, not a failure', async (t) => {
  const outcome = await run({ exec: { command: ['true'] } }, { ...target, containerId: 'prober-no-such-container' });
  t.equal(outcome.result, 'unknown');
});

t.test('httpGet in the pod network namespace: a file is 200, a missing path 404', async (t) => {
  t.strictSame(await run({ httpGet: { port: 8080, path: '/index.html' } }), { result: 'success', output: 'ok\n', statusCode: 200 });
  t.strictSame(await run({ httpGet: { port: 8080, path: '/missing' } }), { result: 'failure', output: 'HTTP probe failed with statuscode: 404', statusCode: 404 });
});

t.test('httpGet by port name', async (t) => {
  t.strictSame(await run({ httpGet: { port: 'http', path: '/' } }), { result: 'success', output: 'ok\n', statusCode: 200 });
  t.strictSame(await run({ httpGet: { port: 'metrics', path: '/' } }), { result: 'unknown', output: 'port metrics not found' });
});

t.test('tcpSocket in the pod network namespace: open and closed ports', async (t) => {
  t.strictSame(await run({ tcpSocket: { port: 'http' } }), { result: 'success', output: '' });
  t.strictSame(await run({ tcpSocket: { port: 8081 } }), { result: 'failure', output: 'dial tcp 127.0.0.1:8081: connect: connection refused' });
});

t.test('a network probe without a process to enter is an error', async (t) => {
  t.equal((await run({ tcpSocket: { port: 8080 } }, { ...target, pid: undefined })).result, 'unknown');
  const gone = await run({ tcpSocket: { port: 8080 } }, { ...target, pid: 2 ** 22 + 1 });
  t.equal(gone.result, 'unknown');
  t.match(gone.output, /network namespace/);
});

t.test('grpc, hostNetwork-style target: in-process to 127.0.0.1', async (t) => {
  const server = await startHealthServer(t, { '': 1, sick: 2 });
  const host: ProbeTarget = { containerId: 'host-network', pid: undefined, hostNetwork: true, ports: [] };
  t.strictSame(await run({ grpc: { port: server.port } }, host), { result: 'success', output: 'service healthy' });
  t.strictSame(await run({ grpc: { port: server.port, service: 'sick' } }, host), { result: 'failure', output: 'service unhealthy (responded with "NOT_SERVING")' });
  t.strictSame(server.asked, ['', 'sick']);
});

t.test('grpc in the pod network namespace, against a health server started in that namespace', async (t) => {
  // The server is Node on the host, entered into the pod's namespace; it listens on the pod's 127.0.0.1.
  const dir = t.testdir();
  const serverScript = join(dir, 'health-server.mjs');
  await writeFile(
    serverScript,
    `import http2 from 'node:http2';
const server = http2.createServer();
server.on('stream', (stream) => {
  stream.resume();
  stream.on('end', () => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(Buffer.from([0, 0, 0, 0, 2, 0x08, 1]));
  });
});
server.listen(9555, '127.0.0.1', () => console.log('listening'));
`,
  );
  const child = spawn('nsenter', ['--target', String(web.pid), '--net', '--', process.execPath, serverScript], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  await new Promise<void>((resolveListening, reject) => {
    child.stdout.on('data', () => resolveListening());
    child.once('exit', (code) => reject(new Error(`health server exited (${code})`)));
  });
  t.strictSame(await run({ grpc: { port: 9555 } }), { result: 'success', output: 'service healthy' });
  t.strictSame(await run({ grpc: { port: 9556 } }), {
    result: 'failure',
    output: 'error: failed to connect service at "127.0.0.1:9556": dial tcp 127.0.0.1:9556: connect: connection refused',
  });
});

t.test('httpGetInPod (lifecycle hooks): the final status code, or a ProbeError without a response', async (t) => {
  const get = (port: number | string, path: string) =>
    runner.httpGetInPod({ pid: web.pid, hostNetwork: false, handler: { port, path }, ports: target.ports, timeoutMs: 1000 });
  t.equal(await get('http', '/index.html'), 200);
  t.equal(await get(8080, '/missing'), 404);
  await t.rejects(get(8081, '/'), { name: 'ProbeError', code: 'E_PROBE', message: 'Get "http://127.0.0.1:8081/": dial tcp 127.0.0.1:8081: connect: connection refused' });
  await t.rejects(get('admin', '/'), { code: 'E_PROBE', message: 'port admin not found' });
});

/** CPU time (ms) of this process's waited-for children so far, from /proc/self/stat. */
function childrenCpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After the command name: state is field 3; cutime and cstime are fields 16 and 17 (clock ticks, 100 Hz).
  return (Number(fields[13]) + Number(fields[14])) * 10;
}

t.test('cost: CPU time of one netns probe (nsenter + busybox nc) and one exec probe (the OCI runtime)', async (t) => {
  const rounds = 20;
  const cpuOf = async (rounds: number, once: () => Promise<unknown>): Promise<number> => {
    const before = childrenCpuMs();
    for (let i = 0; i < rounds; i++) await once();
    return (childrenCpuMs() - before) / rounds;
  };
  const measure = (probe: Probe) => cpuOf(rounds, async () => t.equal((await run(probe)).result, 'success'));
  const netns = await measure({ httpGet: { port: 8080, path: '/' } });
  const exec = await measure({ exec: { command: ['true'] } });
  // What each replaced, measured in the same run: on a shared machine CPU time per process moves
  // with the load, so the bounds are ratios, not milliseconds.
  const podmanExec = await cpuOf(5, () => execa('podman', ['exec', target.containerId, 'true']));
  const nodeStart = await cpuOf(5, () => execa(process.execPath, ['-e', '0'], { env: { ...process.env, NODE_OPTIONS: '' } }));
  t.comment(`CPU per probe, averaged over ${rounds}: httpGet in the netns ${netns.toFixed(1)} ms; exec ${exec.toFixed(1)} ms; against a podman exec ${podmanExec.toFixed(1)} ms and a bare Node start ${nodeStart.toFixed(1)} ms`);
  // Before: ~110 ms (a node process in the netns) and ~135 ms (podman exec).
  t.ok(netns < nodeStart, `an httpGet in the netns costs less than a bare Node start (${netns.toFixed(1)} ms against ${nodeStart.toFixed(1)} ms)`);
  t.ok(exec < podmanExec / 2, `an exec costs well under a podman exec (${exec.toFixed(1)} ms against ${podmanExec.toFixed(1)} ms)`);
});
