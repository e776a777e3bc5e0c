// Supervision, probes: the agent runs the pod's probes itself. An exec liveness probe (through the
// OCI runtime, not podman exec) that starts failing restarts the container (Unhealthy and Killing
// events); an httpGet readiness probe (run inside the pod's network namespace) flips the
// container's ready flag and the Ready condition both ways without a restart; a startup probe
// holds liveness back until it succeeds.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import {
  containerOf,
  exec,
  IMAGE,
  podmanContainer,
  putManifest,
  setup,
  statusOf,
  waitFor,
  waitForStatus,
  type StatusItem,
} from './harness.js';

const AGENT_FLAGS = ['--backoff-initial', '1', '--backoff-max', '2'];

interface SavedEvent {
  type: string;
  reason: string;
  message: string;
  involvedObject: { name: string; fieldPath?: string };
}

/** The events status.json holds for one pod. */
async function eventsOf(stateDir: string, podName: string): Promise<SavedEvent[]> {
  const text = await readFile(join(stateDir, 'status.json'), 'utf8').catch(() => '');
  if (!text) return [];
  const file = JSON.parse(text) as { events?: SavedEvent[] };
  return (file.events ?? []).filter((event) => event.involvedObject.name === podName);
}

const condition = (item: StatusItem, type: string) => item.status.conditions.find((one) => one.type === type)?.status;

const pod = (name: string, container: string) => `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
spec:
  terminationGracePeriodSeconds: 1
  restartPolicy: Always
  containers:
${container}`;

t.test('a failing exec liveness probe restarts the container', async (t) => {
  const world = await setup(t, 'sv-live');
  const podName = `live-${world.node}`;
  await putManifest(world.manifestDir, 'live.yaml', pod('live', `    - name: app
      image: ${IMAGE}
      command: ["sh", "-c", "touch /tmp/healthy; sleep 3; rm /tmp/healthy; sleep 600"]
      livenessProbe:
        exec: { command: ["test", "-f", "/tmp/healthy"] }
        periodSeconds: 1
        failureThreshold: 2
`));
  const agent = await world.startAgent(AGENT_FLAGS);
  await agent.waitForLog({ event: 'PodStarted' }, { pod: `default/${podName}`, timeoutMs: 60_000 });

  const count = await waitForStatus(world.stateDir, podName, 'restartCount >= 1', (item) => {
    const n = containerOf(item, 'app')?.restartCount ?? 0;
    return n >= 1 ? n : undefined;
  }, { timeoutMs: 30_000 });
  t.ok(count >= 1, `restartCount ${count}`);

  const events = await waitFor('Unhealthy and Killing events', async () => {
    const found = await eventsOf(world.stateDir, podName);
    const unhealthy = found.find((event) => event.reason === 'Unhealthy' && event.message.startsWith('Liveness probe failed:'));
    const killing = found.find((event) => event.reason === 'Killing' && event.message === 'Container app failed liveness probe, will be restarted');
    return unhealthy && killing ? { unhealthy, killing } : undefined;
  }, { timeoutMs: 15_000, intervalMs: 250 });
  t.equal(events.unhealthy.type, 'Warning', 'Unhealthy is a Warning');
  t.match(events.unhealthy.message, /^Liveness probe failed:/);
  t.equal(events.killing.message, 'Container app failed liveness probe, will be restarted');
  // The exec probes called the OCI runtime itself: said once, and no `podman exec` among the podman calls.
  t.equal(agent.find(/^exec probes call (crun|runc) directly$/).length, 1, 'exec probes through the OCI runtime');
  t.strictSame(agent.lines.filter((line) => line.event === 'PodmanCall' && String(line.args).startsWith('exec ')), [], 'no podman exec');
});

t.test('an httpGet readiness probe flips Ready both ways', async (t) => {
  const world = await setup(t, 'sv-ready');
  const podName = `ready-${world.node}`;
  const name = podmanContainer(podName, 'app');
  await putManifest(world.manifestDir, 'ready.yaml', pod('ready', `    - name: app
      image: ${IMAGE}
      command: ["sh", "-c", "mkdir -p /www; exec httpd -f -p 8080 -h /www"]
      readinessProbe:
        httpGet: { path: /ready, port: 8080 }
        periodSeconds: 1
`));
  const agent = await world.startAgent(AGENT_FLAGS);
  await agent.waitForLog({ event: 'PodStarted' }, { pod: `default/${podName}`, timeoutMs: 60_000 });

  const notReady = await waitForStatus(world.stateDir, podName, 'running, not ready', (item) => {
    const c = containerOf(item, 'app');
    return c?.state.running && c.ready === false && condition(item, 'Ready') === 'False' ? item : undefined;
  }, { timeoutMs: 20_000 });
  t.equal(containerOf(notReady, 'app')?.ready, false, 'at first not ready');
  t.equal(condition(notReady, 'Ready'), 'False', 'Ready False at first');

  await exec(name, 'touch', '/www/ready');
  const ready = await waitForStatus(world.stateDir, podName, 'ready', (item) =>
    containerOf(item, 'app')?.ready === true && condition(item, 'Ready') === 'True' ? item : undefined, { timeoutMs: 20_000 });
  t.equal(condition(ready, 'Ready'), 'True', 'Ready True once /ready is served');

  await exec(name, 'rm', '/www/ready');
  const again = await waitForStatus(world.stateDir, podName, 'not ready again', (item) =>
    containerOf(item, 'app')?.ready === false && condition(item, 'Ready') === 'False' ? item : undefined, { timeoutMs: 20_000 });
  t.equal(condition(again, 'Ready'), 'False', 'Ready False again once /ready is gone');
  t.equal(containerOf(again, 'app')?.restartCount, 0, 'never restarted');
});

t.test('a startup probe holds liveness back', async (t) => {
  const world = await setup(t, 'sv-start');
  const podName = `start-${world.node}`;
  const name = podmanContainer(podName, 'app');
  await putManifest(world.manifestDir, 'start.yaml', pod('start', `    - name: app
      image: ${IMAGE}
      command: ["sh", "-c", "trap 'exit 0' TERM; sleep 600 & wait"]
      startupProbe:
        exec: { command: ["test", "-f", "/tmp/started"] }
        periodSeconds: 1
        failureThreshold: 30
      livenessProbe:
        exec: { command: ["false"] }
        periodSeconds: 1
        failureThreshold: 1
`));
  const agent = await world.startAgent(AGENT_FLAGS);
  await agent.waitForLog({ event: 'PodStarted' }, { pod: `default/${podName}`, timeoutMs: 60_000 });

  await waitForStatus(world.stateDir, podName, 'running, not started', (item) => {
    const c = containerOf(item, 'app');
    return c?.state.running && c.started === false ? true : undefined;
  }, { timeoutMs: 20_000 });
  // Over at least 4.5 s (several liveness periods) and 5 samples it stays not started and is never
  // restarted: a loaded machine may take longer to sample, never fewer samples.
  const since = Date.now();
  let samples = 0;
  while ((Date.now() - since < 4500 || samples < 5) && Date.now() - since < 20_000) {
    const item = await statusOf(world.stateDir, podName);
    const c = item ? containerOf(item, 'app') : undefined;
    if (c) {
      samples++;
      if (c.restartCount !== 0 || c.started !== false) {
        t.fail(`while /tmp/started is missing: restartCount ${c.restartCount}, started ${String(c.started)}`);
        break;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  t.ok(samples >= 5, `not started, restartCount 0 across ${samples} samples over 4.5 s`);
  t.equal(agent.find({ event: 'ContainerRestarting' }, `default/${podName}`).length, 0, 'no restart logged while not started');

  await exec(name, 'touch', '/tmp/started');
  await waitForStatus(world.stateDir, podName, 'started', (item) => containerOf(item, 'app')?.started === true || (containerOf(item, 'app')?.restartCount ?? 0) >= 1, { timeoutMs: 20_000 });
  const count = await waitForStatus(world.stateDir, podName, 'restartCount >= 1 (liveness)', (item) => {
    const n = containerOf(item, 'app')?.restartCount ?? 0;
    return n >= 1 ? n : undefined;
  }, { timeoutMs: 20_000 });
  t.ok(count >= 1, `liveness killed it once started (restartCount ${count})`);
  const killing = await waitFor('the Killing event', async () =>
    (await eventsOf(world.stateDir, podName)).find((event) => event.reason === 'Killing' && event.message === 'Container app failed liveness probe, will be restarted'), { timeoutMs: 15_000, intervalMs: 250 });
  t.ok(killing, 'Killing: failed liveness probe');
});
