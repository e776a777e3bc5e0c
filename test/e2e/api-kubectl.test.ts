// Mirror pods through a real kubectl: the agent runs real podman pods and serves its read-only
// API on 127.0.0.1; kubectl (the machine's, or Debian's unpacked by scripts/test-tools.sh) reads
// pods, events and the node, watches a change arrive, and has every write it can send refused,
// with nothing changed by them. /metrics from the same agent passes `promtool check metrics`.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import t from 'tap';
import { parse as parseYaml } from 'yaml';
import { containerIds, freePort, IMAGE, podsOf, putManifest, setup, waitFor } from './harness.js';

const steadyManifest = (marker: string) => `apiVersion: v1
kind: Pod
metadata:
  name: steady
  labels:
    app: steady
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: main
      image: ${IMAGE}
      command: ["sh", "-c", "trap 'exit 0' TERM; echo ${marker}; while true; do sleep 1; done"]
`;

const CRASHY = `apiVersion: v1
kind: Pod
metadata:
  name: crashy
  labels:
    app: crashy
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: crasher
      image: ${IMAGE}
      command: ["sh", "-c", "sleep 0.3; exit 3"]
`;

t.test('kubectl reads mirror pods, events and the node; every write is refused', async (t) => {
  const world = await setup(t, 'api-kubectl');
  const { node } = world;
  const port = await freePort();
  const home = await mkdtemp(join(tmpdir(), 'podvisor-kubectl-home-'));
  t.teardown(() => rm(home, { recursive: true, force: true }));
  // kubectl writes its discovery cache under HOME: a fresh one per run, nothing shared.
  const kubectl = (...args: string[]) =>
    execa('kubectl', ['--server', `http://127.0.0.1:${port}`, ...args], { reject: false, env: { HOME: home, KUBECONFIG: join(home, 'none') }, timeout: 60_000 });

  await putManifest(world.manifestDir, 'steady.yaml', steadyManifest('one'));
  await putManifest(world.manifestDir, 'crashy.yaml', CRASHY);
  const agent = await world.startAgent(['--api-address', `127.0.0.1:${port}`, '--backoff-max', '2']);
  await agent.waitForLog({ event: 'ApiListening' }, { timeoutMs: 60_000 });
  const steady = `steady-${node}`;
  const crashy = `crashy-${node}`;

  const table = await waitFor('both pods listed, steady Running, crashy restarted', async () => {
    const result = await kubectl('get', 'pods', '-A');
    const lines = result.stdout.split('\n');
    const steadyLine = lines.find((line) => line.includes(steady));
    const crashyLine = lines.find((line) => line.includes(crashy));
    if (!steadyLine?.includes('Running') || !crashyLine) return undefined;
    const restarts = Number(crashyLine.split(/\s+/)[4]);
    return restarts >= 1 ? result.stdout : undefined;
  }, { timeoutMs: 60_000, intervalMs: 500 });
  t.match(table, /^NAMESPACE\s+NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE/m, 'kubectl get pods -A prints the usual columns');
  t.match(table, new RegExp(`^default\\s+${steady}\\s+1/1\\s+Running\\s+0\\s`, 'm'), 'steady: 1/1 Running, no restarts');

  const wide = await kubectl('get', 'pods', '-o', 'wide');
  t.equal(wide.exitCode, 0, 'get pods -o wide succeeds');
  t.match(wide.stdout, /NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+IP\s+NODE\s+NOMINATED NODE\s+READINESS GATES/, '-o wide adds IP, NODE and the rest');
  t.match(wide.stdout, new RegExp(`${steady}\\s+1/1\\s+Running\\s+0\\s+\\S+\\s+\\d+\\.\\d+\\.\\d+\\.\\d+\\s+${node}\\s`), 'the pod IP and the node are shown');

  const yamlOut = await kubectl('get', 'pod', steady, '-n', 'default', '-o', 'yaml');
  t.equal(yamlOut.exitCode, 0, 'get pod -o yaml succeeds');
  const pod = parseYaml(yamlOut.stdout) as { kind: string; metadata: { uid: string; annotations: Record<string, string>; ownerReferences: { kind: string; name: string }[] }; spec: { nodeName: string }; status: { phase: string } };
  t.equal(pod.kind, 'Pod');
  t.equal(pod.status.phase, 'Running');
  t.equal(pod.spec.nodeName, node);
  t.equal(pod.metadata.annotations['kubernetes.io/config.mirror'], pod.metadata.annotations['kubernetes.io/config.hash'], 'config.mirror carries the config hash');
  t.match(pod.metadata.ownerReferences, [{ kind: 'Node', name: node }], 'owned by the Node');

  const labelled = await kubectl('get', 'pods', '-l', 'app=steady', '-o', 'name');
  t.equal(labelled.stdout.trim(), `pod/${steady}`, 'a label selector picks the one pod');
  const running = await kubectl('get', 'pods', '--field-selector', 'status.phase=Running,metadata.name!=nothing', '-o', 'name');
  t.match(running.stdout, `pod/${steady}`, 'a field selector on status.phase');
  const badField = await kubectl('get', 'pods', '--field-selector', 'spec.nothing=1');
  t.not(badField.exitCode, 0, 'an unsupported field selector is an error');
  t.match(badField.stderr, /field label not supported: spec\.nothing/);

  const described = await waitFor('describe shows the back-off events', async () => {
    const result = await kubectl('describe', 'pod', crashy, '-n', 'default');
    return /BackOff/.test(result.stdout) ? result.stdout : undefined;
  }, { timeoutMs: 30_000, intervalMs: 500 });
  t.match(described, new RegExp(`Controlled By:\\s+Node/${node}`), 'describe shows the owning node');
  t.match(described, /Events:\s*\n\s+Type\s+Reason\s+Age\s+From\s+Message/, 'describe lists the pod\'s events');
  t.match(described, /Warning\s+BackOff\s+.*Back-off restarting failed container crasher/, 'the BackOff event is among them');
  t.match(described, /Last State:\s+Terminated\s*\n\s+Reason:\s+Error\s*\n\s+Exit Code:\s+3/, 'the last state: exit code 3');

  const events = await kubectl('get', 'events');
  t.match(events.stdout, /LAST SEEN\s+TYPE\s+REASON\s+OBJECT\s+MESSAGE/, 'get events prints its columns');
  t.match(events.stdout, new RegExp(`Normal\\s+Started\\s+pod/${steady}\\s+Started container main`), 'a Started event for the steady pod');

  const nodes = await kubectl('get', 'node');
  t.match(nodes.stdout, new RegExp(`^${node}\\s+Ready\\s`, 'm'), 'the device is a Ready node');
  const nodeJson = JSON.parse((await kubectl('get', 'node', node, '-o', 'json')).stdout) as { status: { nodeInfo: { containerRuntimeVersion: string } } };
  t.match(nodeJson.status.nodeInfo.containerRuntimeVersion, /^podman:\/\/\d+\.\d+/, 'the container runtime is podman, with its version');

  const describedNode = await kubectl('describe', 'node', node);
  t.equal(describedNode.exitCode, 0, 'describe node succeeds');
  t.match(describedNode.stdout, new RegExp(`Lease:\\s*\\n\\s+HolderIdentity:\\s+${node}`), 'with the node lease podvisor holds');
  t.match(describedNode.stdout, new RegExp(`Non-terminated Pods:\\s+\\(2 in total\\)[\\s\\S]*${steady}`), 'and the pods on the node');

  // Watch: a manifest edit replaces the steady pod; the watch prints its new states.
  const watch = execa('kubectl', ['--server', `http://127.0.0.1:${port}`, 'get', 'pods', '-w', '-l', 'app=steady'], { reject: false, env: { HOME: home, KUBECONFIG: join(home, 'none') } });
  let watched = '';
  watch.stdout?.on('data', (chunk: Buffer) => (watched += chunk.toString('utf8')));
  t.teardown(() => {
    watch.kill();
  });
  await waitFor('the watch prints the pod', () => watched.includes(steady), { timeoutMs: 30_000 });
  const linesBefore = watched.split('\n').filter((line) => line.includes(steady)).length;
  const uidOf = async () => (await kubectl('get', 'pod', steady, '-o', 'jsonpath={.metadata.uid}')).stdout.trim();
  const uidBefore = await uidOf();
  await putManifest(world.manifestDir, 'steady.yaml', steadyManifest('two'));
  await waitFor('the watch prints the replaced pod running again', () => {
    const lines = watched.split('\n').filter((line) => line.includes(steady));
    return lines.length > linesBefore + 1 && /Running/.test(lines.at(-1) ?? '');
  }, { timeoutMs: 60_000 });
  t.pass(`the watch followed the change: ${watched.split('\n').filter((line) => line.includes(steady)).length - linesBefore} new lines`);
  watch.kill();
  t.not(await uidOf(), uidBefore, 'the new spec is a new pod (a new uid)');
  const containersBefore = await containerIds(node);

  // Writes: each refused as MethodNotAllowed, and nothing changes.
  const manifestFile = join(world.root, 'apply.yaml');
  await writeFile(manifestFile, `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${steady}\n  namespace: default\n  labels:\n    app: changed\nspec:\n  containers:\n    - name: main\n      image: ${IMAGE}\n`);
  const writes: [string, string[]][] = [
    ['delete pod', ['delete', 'pod', steady, '-n', 'default', '--wait=false']],
    ['label', ['label', 'pod', steady, 'tampered=yes']],
    ['annotate', ['annotate', 'pod', steady, 'tampered=yes']],
    ['apply --validate=false', ['apply', '--validate=false', '-f', manifestFile]],
    ['create', ['create', '--validate=false', '-f', manifestFile]],
  ];
  for (const [what, args] of writes) {
    const result = await kubectl(...args);
    t.not(result.exitCode, 0, `kubectl ${what} fails`);
    t.match(result.stderr, /MethodNotAllowed|read-only mirror pods/, `kubectl ${what} is told the API is read-only`);
  }
  const applyValidated = await kubectl('apply', '-f', manifestFile);
  t.not(applyValidated.exitCode, 0, 'kubectl apply (validating) fails too');
  const after = JSON.parse((await kubectl('get', 'pod', steady, '-o', 'json')).stdout) as { metadata: { labels: Record<string, string>; annotations: Record<string, string> }; status: { phase: string } };
  t.same(after.metadata.labels, { app: 'steady' }, 'the labels are as the manifest says');
  t.notOk(after.metadata.annotations.tampered, 'no annotation was added');
  t.equal(after.status.phase, 'Running');
  t.same(await containerIds(node), containersBefore, 'podman still runs the same containers');
  t.equal((await podsOf(node)).length, 2, 'and the same two pods');

  // Metrics from the same agent, through Prometheus' own linter.
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  t.match(metrics, /^podvisor_pods\{phase="Running"\} [12]$/m, 'pods by phase');
  t.match(metrics, new RegExp(`^podvisor_container_restarts\\{namespace="default",pod="${crashy}",container="crasher"\\} [1-9]`, 'm'), 'container restarts');
  t.match(metrics, /^podvisor_podman_calls_total\{command="pod ps",result="success"\} \d+/m, 'podman calls by command and result');
  t.match(metrics, /^podvisor_reconcile_passes_total \d+/m, 'reconcile passes');
  const lint = await execa('promtool', ['check', 'metrics'], { input: metrics, reject: false });
  t.equal(lint.exitCode, 0, `promtool check metrics accepts the text${lint.stderr ? `: ${lint.stderr}` : ''}`);

  const health = await fetch(`http://127.0.0.1:${port}/healthz?verbose`);
  t.equal(health.status, 200);
  t.match(await health.text(), /\[\+\]reconciler ok/);
});
