// `podvisor describe`: one pod as `kubectl describe pod` shows it. The text is aligned with
// spaces, so the lines are matched with patterns, one key line at a time; "now" is a fake clock.
import t, { type Test } from 'tap';
import { stderrOf, stdoutOf } from '../support/recording.js';
import { describeCommand, describePod } from '../../src/cli/describe.js';
import type { PodEvent } from '../../src/status/event-recorder.js';
import { STATUS_FILE, type StatusFile, type StatusPod } from '../../src/status/status-manager.js';
import type { PodCondition, PodConditionType } from '../../src/status/types.js';
import { withoutEnvValues } from '../../src/mirror/env-values.js';

const IMAGE = 'localhost/busybox:podvisor';
const UID = '6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f';
const NOW = Date.parse('2025-01-01T12:00:00Z');

/** Replaces Date.now with a fake clock at NOW for one test; describePod ages events from it. */
function fakeNow(t: Test): void {
  const realNow = Date.now;
  Date.now = () => NOW;
  t.teardown(() => {
    Date.now = realNow;
  });
}

const ago = (seconds: number) => new Date(NOW - seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
const condition = (type: PodConditionType, status: PodCondition['status']): PodCondition => ({ type, status, lastProbeTime: null, lastTransitionTime: ago(600) });

const POD: StatusPod = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'web-node1', namespace: 'shop', uid: UID, labels: { app: 'web', tier: 'front' }, annotations: { 'kubernetes.io/config.hash': '0123456789abcdef' } },
  spec: {
    nodeName: 'node1',
    restartPolicy: 'Always',
    initContainers: [{ name: 'migrate', image: IMAGE, command: ['sh', '-c', 'migrate'] }],
    containers: [
      {
        name: 'app',
        image: IMAGE,
        ports: [{ containerPort: 8080, protocol: 'TCP' }],
        readinessProbe: { httpGet: { path: '/healthz', port: 8080, scheme: 'HTTP' }, periodSeconds: 5 },
        env: [{ name: 'MODE', value: 'prod' }],
        volumeMounts: [{ name: 'data', mountPath: '/data', readOnly: true }],
      },
      { name: 'worker', image: IMAGE },
    ],
    volumes: [{ name: 'data', hostPath: { path: '/srv/data', type: 'Directory' } }],
  },
  status: {
    phase: 'Running',
    conditions: [condition('PodReadyToStartContainers', 'True'), condition('Initialized', 'True'), condition('Ready', 'False'), condition('ContainersReady', 'False'), condition('PodScheduled', 'True')],
    hostIP: '192.0.2.10',
    startTime: ago(3600),
    qosClass: 'BestEffort',
    initContainerStatuses: [
      {
        name: 'migrate',
        state: { terminated: { exitCode: 0, reason: 'Completed', startedAt: ago(3590), finishedAt: ago(3580), containerID: 'podman://aaa' } },
        lastState: {},
        ready: true,
        started: false,
        restartCount: 0,
        image: IMAGE,
        imageID: 'sha256:img',
        containerID: 'podman://aaa',
      },
    ],
    containerStatuses: [
      { name: 'app', state: { running: { startedAt: ago(3500) } }, lastState: {}, ready: true, started: true, restartCount: 0, image: IMAGE, imageID: 'sha256:img', containerID: 'podman://bbb' },
      {
        name: 'worker',
        state: { waiting: { reason: 'CrashLoopBackOff', message: `back-off 40s restarting failed container=worker pod=web-node1_shop(${UID})` } },
        lastState: { terminated: { exitCode: 137, signal: 9, reason: 'Error', startedAt: ago(100), finishedAt: ago(30), containerID: 'podman://ccc' } },
        ready: false,
        started: false,
        restartCount: 3,
        image: IMAGE,
        imageID: 'sha256:img',
        containerID: 'podman://ccc',
      },
    ],
  },
};

function event(reason: string, message: string, count: number, firstAgo: number, lastAgo: number, type: PodEvent['type'] = 'Normal'): PodEvent {
  return {
    name: `web-node1.${reason}`,
    type,
    reason,
    message,
    count,
    firstTimestamp: ago(firstAgo),
    lastTimestamp: ago(lastAgo),
    involvedObject: { kind: 'Pod', name: 'web-node1', namespace: 'shop', uid: UID, fieldPath: 'spec.containers{worker}' },
  };
}

const EVENTS = [event('Started', 'Started container worker', 1, 90, 90), event('BackOff', 'Back-off restarting failed container worker', 2, 300, 30, 'Warning')];

/** The block of lines from `first` up to (not including) the next line as little indented as it. */
function block(text: string, first: RegExp): string {
  const lines = text.split('\n');
  const start = lines.findIndex((line) => first.test(line));
  if (start === -1) return '';
  const indent = (line: string) => line.length - line.trimStart().length;
  const depth = indent(lines[start] ?? '');
  const end = lines.findIndex((line, index) => index > start && line.trim() !== '' && indent(line) <= depth);
  return lines.slice(start, end === -1 ? undefined : end).join('\n');
}

t.test('the pod\'s own lines', async (t) => {
  fakeNow(t);
  const text = describePod(POD, EVENTS);
  t.match(text, /^Name:\s+web-node1$/m);
  t.match(text, /^Namespace:\s+shop$/m);
  t.match(text, /^Node:\s+node1\/192\.0\.2\.10$/m);
  t.match(text, /^Start Time:\s+2025-01-01T11:00:00Z$/m);
  t.match(text, /^Labels:\s+app=web\n\s+tier=front$/m, 'one label a line, aligned');
  t.match(text, /^Annotations:\s+kubernetes\.io\/config\.hash: 0123456789abcdef$/m);
  t.match(text, /^Status:\s+Running$/m);
  t.notMatch(text, /^Reason:/m, 'no Reason line without a reason');
  t.match(text, /^QoS Class:\s+BestEffort$/m);
  t.match(text, /^Volumes:\n\s+data:\n\s+Type:\s+HostPath/m);
  t.ok(text.endsWith('\n'));
});

t.test('Reason and Message lines for a pod that has them', async (t) => {
  fakeNow(t);
  const failed: StatusPod = { ...POD, status: { ...POD.status, phase: 'Failed', reason: 'DeadlineExceeded', message: 'Pod was active on the node longer than the specified deadline' } };
  const text = describePod(failed, []);
  t.match(text, /^Status:\s+Failed\nReason:\s+DeadlineExceeded\nMessage:\s+Pod was active on the node longer than the specified deadline$/m);
});

t.test('containers: State with its details, Ready, Restart Count', async (t) => {
  fakeNow(t);
  const text = describePod(POD, EVENTS);
  t.match(text, /^Init Containers:\n {2}migrate:$/m);
  const migrate = block(text, /^ {2}migrate:$/);
  t.match(migrate, /^\s+State:\s+Terminated\n\s+Reason:\s+Completed\n\s+Exit Code:\s+0$/m);
  t.match(migrate, /^\s+Command:\n\s+sh\n\s+-c\n\s+migrate$/m);

  const app = block(text, /^ {2}app:$/);
  t.match(app, /^\s+Container ID:\s+podman:\/\/bbb$/m);
  t.match(app, /^\s+Image:\s+localhost\/busybox:podvisor$/m);
  t.match(app, /^\s+Image ID:\s+sha256:img$/m);
  t.match(app, /^\s+Port:\s+8080\/TCP$/m);
  t.match(app, /^\s+State:\s+Running\n\s+Started:\s+2025-01-01T11:01:40Z$/m);
  t.notMatch(app, /Last State:/, 'no Last State before a restart');
  t.match(app, /^\s+Ready:\s+True$/m);
  t.match(app, /^\s+Restart Count:\s+0$/m);
  t.match(app, /^\s+Readiness:\s+http-get http:\/\/:8080\/healthz delay=0s timeout=1s period=5s #success=1 #failure=3$/m);
  t.match(app, /^\s+MODE:\s+prod$/m);
  t.match(app, /^\s+\/data from data \(ro\)$/m);

  const worker = block(text, /^ {2}worker:$/);
  t.match(worker, /^\s+State:\s+Waiting\n\s+Reason:\s+CrashLoopBackOff\n\s+Message:\s+back-off 40s restarting failed container=worker pod=web-node1_shop\(/m);
  t.match(worker, /^\s+Last State:\s+Terminated\n\s+Reason:\s+Error\n\s+Exit Code:\s+137\n\s+Signal:\s+9$/m);
  t.match(worker, /^\s+Ready:\s+False$/m);
  t.match(worker, /^\s+Restart Count:\s+3$/m);
  t.match(worker, /^\s+Port:\s+<none>$/m);
  t.match(worker, /^\s+Environment:\s+<none>$/m);
});

t.test('Conditions: every type with its status', async (t) => {
  fakeNow(t);
  const conditions = block(describePod(POD, EVENTS), /^Conditions:$/);
  t.match(conditions, /^\s+Type\s+Status$/m);
  for (const item of POD.status.conditions) t.match(conditions, new RegExp(`^\\s+${item.type}\\s+${item.status}$`, 'm'), item.type);
});

t.test('Events: a table, repeats as (xN over AGE)', async (t) => {
  fakeNow(t);
  const events = block(describePod(POD, EVENTS), /^Events:$/);
  t.match(events, /^\s+Type\s+Reason\s+Age\s+From\s+Message$/m);
  t.match(events, /^\s+----\s+------\s+----\s+----\s+-------$/m);
  t.match(events, /^\s+Normal\s+Started\s+90s\s+podvisor\s+Started container worker$/m);
  t.match(events, /^\s+Warning\s+BackOff\s+30s \(x2 over 5m\)\s+podvisor\s+Back-off restarting failed container worker$/m);
});

t.test('Events: <none> without any', async (t) => {
  fakeNow(t);
  t.match(describePod(POD, []), /^Events:\s+<none>$/m);
});

t.test('volumes of each kind, and a container with no state', async (t) => {
  fakeNow(t);
  const pod: StatusPod = {
    ...POD,
    spec: { ...POD.spec, volumes: [{ name: 'cache', emptyDir: { medium: 'Memory', sizeLimit: '64Mi' } }, { name: 'info', downwardAPI: { items: [] } }, { name: 'scratch', emptyDir: {} }] },
    status: { ...POD.status, initContainerStatuses: [], containerStatuses: [{ ...POD.status.containerStatuses[0]!, state: {} }] },
  };
  const text = describePod(pod, []);
  t.notMatch(text, /^Init Containers:/m, 'no Init Containers section without init container statuses');
  t.match(block(text, /^ {2}app:$/), /^\s+State:\s+<none>$/m);
  t.match(block(text, /^ {2}cache:$/), /^\s+Type:\s+EmptyDir .*\n\s+Medium:\s+Memory\n\s+SizeLimit:\s+64Mi$/m);
  t.match(block(text, /^ {2}scratch:$/), /^\s+SizeLimit:\s+<unset>$/m);
  t.match(block(text, /^ {2}info:$/), /^\s+Type:\s+DownwardAPI/m);
});

t.test('describeCommand finds the pod by name, namespace/name or manifest name, with its own events', async (t) => {
  fakeNow(t);
  const other: StatusPod = { ...POD, metadata: { ...POD.metadata, name: 'api-node1', uid: 'uid-other' } };
  const elsewhere = { ...EVENTS[0]!, involvedObject: { ...EVENTS[0]!.involvedObject, uid: 'uid-other' }, reason: 'Elsewhere' };
  const file: StatusFile = { apiVersion: 'v1', kind: 'PodList', metadata: { resourceVersion: '1' }, items: [POD, other], events: [...EVENTS, elsewhere], writtenAt: new Date(NOW).toISOString() };
  const stateDir = t.testdir({ [STATUS_FILE]: JSON.stringify(file) });
  const byName = await stdoutOf(() => describeCommand('web-node1', { stateDir }));
  t.equal(byName.code, 0);
  t.equal(byName.text, describePod(withoutEnvValues(POD), EVENTS), 'the pod, with only its own events (env values left out)');
  t.equal((await stdoutOf(() => describeCommand('web-node1', { stateDir, serveEnvValues: true }))).text, describePod(POD, EVENTS), 'with them when asked');
  t.equal((await stdoutOf(() => describeCommand('shop/web-node1', { stateDir }))).text, byName.text);
  t.equal((await stdoutOf(() => describeCommand('web', { stateDir, namespace: 'shop' }))).text, byName.text, 'the manifest\'s name, without the node suffix');
  const missing = await stderrOf(() => describeCommand('web', { stateDir, namespace: 'default' }));
  t.strictSame(missing, { code: 1, text: 'podvisor describe: pods "web" not found in namespace "default"\n' }, 'not found: exit 1, as kubectl');
  t.strictSame(await stderrOf(() => describeCommand('nothing', { stateDir })), { code: 1, text: 'podvisor describe: pods "nothing" not found\n' });
});

t.test("a kubeadm-style pod: its priority class, requests and the probes' own host", async (t) => {
  fakeNow(t);
  const [app, worker] = POD.spec.containers;
  const etcdLike: StatusPod = {
    ...POD,
    spec: {
      ...POD.spec,
      priorityClassName: 'system-node-critical',
      containers: [
        {
          ...(app ?? { name: 'app', image: IMAGE }),
          resources: { requests: { cpu: '100m', memory: '100Mi' } },
          livenessProbe: { httpGet: { host: '127.0.0.1', path: '/health?serializable=true', port: 2381, scheme: 'HTTP' } },
          startupProbe: { tcpSocket: { host: '::1', port: 2379 } },
        },
        ...(worker ? [worker] : []),
      ],
    },
  };
  const text = describePod(etcdLike, []);
  t.match(text, /^Namespace:\s+shop\nPriority Class Name:\s+system-node-critical$/m);
  const block1 = block(text, /^ {2}app:$/);
  t.match(block1, /^\s+Requests:\n\s+cpu:\s+100m\n\s+memory:\s+100Mi$/m);
  t.match(block1, /^\s+Liveness:\s+http-get http:\/\/127\.0\.0\.1:2381\/health\?serializable=true delay=0s/m);
  t.match(block1, /^\s+Startup:\s+tcp-socket \[::1\]:2379 delay=0s/m);
  t.notMatch(describePod(POD, []), /Priority Class Name/, 'no line for a pod without one');
});
