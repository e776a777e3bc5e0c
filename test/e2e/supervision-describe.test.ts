// Supervision 9, `podvisor describe POD`: a running pod as `kubectl describe pod` shows it. The pod
// has an init container that completed and an app container that failed once and now runs, so
// every block has something exact to say: Name, Namespace, Status, each container's State, Last
// State and Restart Count, the Conditions, and the Events (Started, counted per repeat).
import t from 'tap';
import {
  containerIds,
  containerOf,
  IMAGE,
  podmanContainer,
  podvisorCli,
  putManifest,
  setup,
  waitForStatus,
} from './harness.js';

const MANIFEST = `apiVersion: v1
kind: Pod
metadata:
  name: described
  labels:
    app: demo
spec:
  terminationGracePeriodSeconds: 1
  volumes:
    - name: scratch
      emptyDir: {}
  initContainers:
    - name: setup
      image: ${IMAGE}
      command: ["true"]
  containers:
    - name: main
      image: ${IMAGE}
      # The first run fails; the second (the emptyDir remembers) runs on.
      command: ["sh", "-c", "if [ -f /scratch/ran ]; then trap 'exit 0' TERM; sleep 3600 & wait; else touch /scratch/ran; exit 1; fi"]
      volumeMounts:
        - { name: scratch, mountPath: /scratch }
`;

/** The lines of `text` from the line equal to `start` up to (not including) the line equal to `end`. */
function block(text: string, start: string, end: string): string {
  const lines = text.split('\n');
  const from = lines.indexOf(start);
  const to = lines.indexOf(end, from + 1);
  return from === -1 ? '' : lines.slice(from, to === -1 ? undefined : to).join('\n');
}

t.test('podvisor describe shows a running pod as kubectl does', async (t) => {
  const world = await setup(t, 'sv-describe');
  const { node } = world;
  const podName = `described-${node}`;
  await putManifest(world.manifestDir, 'described.yaml', MANIFEST);
  await world.startAgent(['--backoff-max', '4']);
  const pod = await waitForStatus(world.stateDir, podName, 'main running after one restart', (item) => {
    const main = containerOf(item, 'main');
    const ready = item.status.conditions.find((condition) => condition.type === 'Ready')?.status === 'True';
    return main?.restartCount === 1 && main.state.running && ready ? item : undefined;
  }, { timeoutMs: 40_000 });
  const ids = await containerIds(node);

  const result = await podvisorCli('describe', 'described', '--state-dir', world.stateDir);
  t.equal(result.code, 0, 'exit status 0');
  t.equal(result.stderr, '', 'nothing on stderr');
  const out = result.stdout;
  t.comment(out);

  t.match(out, new RegExp(`^Name:\\s+${podName}\\n`), 'Name: the pod\'s full name, first');
  t.match(out, /^Namespace:\s+default$/m, 'Namespace: default');
  t.match(out, /^Labels:\s+app=demo$/m, 'Labels');
  t.match(out, /^Status:\s+Running$/m, 'Status: Running');
  t.match(out, new RegExp(`^Start Time:\\s+${pod.status.startTime ?? 'none'}$`, 'm'), 'Start Time: the status\'s startTime');
  t.notMatch(out, /^Reason:/m, 'no pod Reason while it runs');
  const order = ['Name:', 'Namespace:', 'Status:', 'Init Containers:', 'Containers:', 'Conditions:', 'Volumes:', 'QoS Class:', 'Events:'].map((heading) => out.search(new RegExp(`^${heading}`, 'm')));
  t.ok(order.every((at, index) => at >= 0 && (index === 0 || at > (order[index - 1] ?? Infinity))), `sections in kubectl's order (${order.join(',')})`);

  const setupBlock = block(out, '  setup:', 'Containers:');
  t.match(setupBlock, new RegExp(`^\\s+Container ID:\\s+podman://${ids[podmanContainer(podName, 'setup')]}$`, 'm'), 'setup: its podman container id');
  t.match(setupBlock, /^\s+State:\s+Terminated\n\s+Reason:\s+Completed\n\s+Exit Code:\s+0$/m, 'setup: Terminated, Completed, exit code 0');
  t.match(setupBlock, /^\s+Ready:\s+True$/m, 'setup: Ready True');
  t.match(setupBlock, /^\s+Restart Count:\s+0$/m, 'setup: Restart Count 0');

  const mainBlock = block(out, '  main:', 'Conditions:');
  t.match(mainBlock, new RegExp(`^\\s+Container ID:\\s+podman://${ids[podmanContainer(podName, 'main')]}$`, 'm'), 'main: its podman container id');
  t.match(mainBlock, new RegExp(`^\\s+Image:\\s+${IMAGE}$`, 'm'), 'main: Image');
  t.match(mainBlock, new RegExp(`^\\s+State:\\s+Running\\n\\s+Started:\\s+${containerOf(pod, 'main')?.state.running?.startedAt ?? 'none'}$`, 'm'), 'main: State Running, since its second start');
  t.match(mainBlock, /^\s+Last State:\s+Terminated\n\s+Reason:\s+Error\n\s+Exit Code:\s+1$/m, 'main: Last State Terminated, Error, exit code 1');
  t.match(mainBlock, /^\s+Ready:\s+True$/m, 'main: Ready True');
  t.match(mainBlock, /^\s+Restart Count:\s+1$/m, 'main: Restart Count 1');
  t.match(mainBlock, /^\s+\/scratch from scratch \(rw\)$/m, 'main: its mount');

  const conditions = block(out, 'Conditions:', 'Volumes:').split('\n').slice(1).map((line) => line.trim().split(/\s+/));
  // podvisor's own (the rollout outcome's ManifestApplied) follows the kubelet's: rollout-status.test.ts is about it.
  const kubelets = conditions.filter(([type]) => !type?.startsWith('podvisor.io/'));
  t.same(kubelets, [['Type', 'Status'], ['PodReadyToStartContainers', 'True'], ['Initialized', 'True'], ['Ready', 'True'], ['ContainersReady', 'True'], ['PodScheduled', 'True']], 'Conditions, all True, in the kubelet\'s order');
  t.match(out, /^\s+scratch:\n\s+Type:\s+EmptyDir/m, 'Volumes: the emptyDir');
  t.match(out, /^QoS Class:\s+BestEffort$/m, 'QoS Class: BestEffort');

  const events = block(out, 'Events:', '').split('\n');
  t.match(events[1] ?? '', /^\s+Type\s+Reason\s+Age\s+From\s+Message$/, 'the events table header');
  t.ok(events.some((line) => /^\s+Normal\s+Started\s+\d+s\s+podvisor\s+Started container setup$/.test(line)), 'Started container setup');
  t.ok(events.some((line) => /^\s+Normal\s+Started\s+\d+s \(x2 over \d+s\)\s+podvisor\s+Started container main$/.test(line)), 'Started container main, twice, as one counted event');

  // The same pod by its full name and by namespace/name; an unknown pod is an error.
  for (const name of [podName, `default/${podName}`]) {
    const again = await podvisorCli('describe', name, '--state-dir', world.stateDir);
    t.match(again.stdout, new RegExp(`^Name:\\s+${podName}$`, 'm'), `describe ${name} finds it`);
  }
  const missing = await podvisorCli('describe', 'nosuchpod', '--state-dir', world.stateDir);
  t.same({ code: missing.code, stdout: missing.stdout, stderr: missing.stderr }, { code: 1, stdout: '', stderr: 'podvisor describe: pods "nosuchpod" not found' }, 'an unknown pod: one line, exit status 1, as kubectl\'s NotFound');
});
