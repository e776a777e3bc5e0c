// Env values stay out of everything podvisor shows, by default: a pod with a SECRET goes through
// the mirror feed (as the agent feeds its readers) and is read back by every reader: the API's
// kubectl-style JSON (list, get, /pods, a watch) and its Tables, the webhook publisher's POST,
// and `podvisor status -o json|yaml` and `describe` from a status file. Names and valueFrom stay;
// with serve-env-values the values are served.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { displaySettingsFor } from '../../src/cli/args.js';
import { describeCommand } from '../../src/cli/describe.js';
import { statusCommand } from '../../src/cli/status.js';
import { REDACTED_ENV_VALUE, withoutEnvValues } from '../../src/mirror/env-values.js';
import { MirrorFeed } from '../../src/mirror/mirror-feed.js';
import { MirrorStore } from '../../src/mirror/mirror-store.js';
import { publishInputFrom } from '../../src/publish/publisher.js';
import { WebhookPublisher } from '../../src/publish/webhook.js';
import { STATUS_FILE, type StatusFile, type StatusPod } from '../../src/status/status-manager.js';
import { recordingLogger, stdoutOf, untilWithin } from '../support/recording.js';
import { FACTS, get, NODE_NAME, startApi, statusPod, TABLE_ACCEPT, watch } from '../api/fixtures/api.js';
import { testMetrics } from '../publish/helpers.js';
import { WebhookTestReceiver } from '../publish/webhook-test-receiver.js';

const SECRET = 'hunter2-s3cret-value';
const INIT_SECRET = 'init-only-s3cret';

/** A running pod whose app and init containers carry env values, one of them a SECRET, and a valueFrom. */
function podWithEnv(): StatusPod {
  const pod = statusPod({ name: 'web-node1', labels: { app: 'web' } });
  pod.spec.containers[0]!.env = [
    { name: 'SECRET', value: SECRET },
    { name: 'EMPTY', value: '' },
    { name: 'POD_IP', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'status.podIP' } } },
  ];
  pod.spec.initContainers = [{ name: 'setup', image: 'localhost/busybox:podvisor', env: [{ name: 'TOKEN', value: INIT_SECRET }] }];
  return pod;
}

/** A store fed from a status owner holding `pods`, as the agent's readers are. */
function fedStore(pods: StatusPod[], serveEnvValues?: boolean): MirrorStore {
  const store = new MirrorStore({ initialVersion: 1000 });
  const feed = new MirrorFeed({
    store,
    status: { pods: () => pods, events: { list: () => [] } },
    facts: FACTS,
    health: () => ({ ready: true, message: 'ok' }),
    ...(serveEnvValues === undefined ? {} : { serveEnvValues }),
  });
  feed.sync();
  return store;
}

/** Checks a reader's text holds no env value, and the names and valueFrom still. */
function assertRedacted(t: Test, text: string, what: string): void {
  t.notOk(text.includes(SECRET), `${what}: the SECRET's value is not there`);
  t.notOk(text.includes(INIT_SECRET), `${what}: nor the init container's`);
  for (const name of ['SECRET', 'EMPTY', 'POD_IP', 'TOKEN', REDACTED_ENV_VALUE, 'status.podIP']) t.ok(text.includes(name), `${what}: ${name} is there`);
}

t.test('withoutEnvValues: values replaced, names and valueFrom kept, the pod not changed', async (t) => {
  const pod = podWithEnv();
  const before = JSON.stringify(pod);
  const out = withoutEnvValues(pod);
  t.strictSame(out.spec.containers[0]!.env, [
    { name: 'SECRET', value: REDACTED_ENV_VALUE },
    { name: 'EMPTY', value: REDACTED_ENV_VALUE },
    { name: 'POD_IP', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'status.podIP' } } },
  ]);
  t.strictSame(out.spec.initContainers?.[0]?.env, [{ name: 'TOKEN', value: REDACTED_ENV_VALUE }]);
  t.equal(JSON.stringify(pod), before, 'the status owner\'s pod is untouched (it shares the manifest\'s spec)');
  const { env: _env, ...rest } = out.spec.containers[0]!;
  const { env: _original, ...originalRest } = pod.spec.containers[0]!;
  t.strictSame(rest, originalRest, 'the rest of the container is as it was');
  const bare = statusPod({ name: 'plain-node1' });
  t.strictSame(withoutEnvValues(bare), bare, 'a pod without env is the same');
});

t.test('the API: lists, gets, /pods, Tables and a watch carry no env value', async (t) => {
  const { base } = await startApi(t, { store: fedStore([podWithEnv()]) });
  for (const path of ['/api/v1/pods', '/api/v1/namespaces/default/pods', '/api/v1/namespaces/default/pods/web-node1', '/api/v1/namespaces/default/pods/web-node1/status', '/pods']) {
    const answer = await get(`${base}${path}`);
    t.equal(answer.status, 200, path);
    assertRedacted(t, answer.text, path);
  }
  const pod = (await get(`${base}/api/v1/namespaces/default/pods/web-node1`)).json();
  t.strictSame(pod.spec.containers[0].env[0], { name: 'SECRET', value: REDACTED_ENV_VALUE }, 'the name kept, the value a marker');
  for (const path of ['/api/v1/pods?includeObject=Object', '/api/v1/namespaces/default/pods/web-node1?includeObject=Object']) {
    const table = await get(`${base}${path}`, { headers: { Accept: TABLE_ACCEPT } });
    t.equal(table.json().kind, 'Table', path);
    assertRedacted(t, table.text, `Table ${path}`);
  }
  const stream = await watch(t, `${base}/api/v1/pods?watch=true`);
  const added = await stream.eventFor('web-node1');
  assertRedacted(t, JSON.stringify(added), 'a watch event');
});

t.test('the API with serve-env-values: the values are served', async (t) => {
  const { base } = await startApi(t, { store: fedStore([podWithEnv()], true) });
  const pod = (await get(`${base}/api/v1/namespaces/default/pods/web-node1`)).json();
  t.strictSame(pod.spec.containers[0].env[0], { name: 'SECRET', value: SECRET });
  t.strictSame(pod.spec.initContainers[0].env[0], { name: 'TOKEN', value: INIT_SECRET });
});

t.test('the webhook publisher\'s POST carries no env value', async (t) => {
  const receiver = new WebhookTestReceiver();
  await receiver.start();
  t.teardown(() => receiver.stop());
  const dir = t.testdir({ token: 'webhook-token\n' });
  const publisher = new WebhookPublisher({
    input: publishInputFrom(fedStore([podWithEnv()]), NODE_NAME),
    logger: recordingLogger().logger,
    metrics: testMetrics(),
    url: receiver.url,
    tokenFile: join(dir, 'token'),
    heartbeat: null,
    intervalSeconds: 0.05,
    retry: { initialMs: 20, maxMs: 100 },
    stopTimeoutSeconds: 0.2,
  });
  t.teardown(() => publisher.stop());
  publisher.start();
  await untilWithin(15_000)(() => receiver.posts.length >= 1, 'the first POST');
  const post = receiver.posts[0]!;
  t.same(post.body.items.map((item) => item.metadata.name), ['web-node1']);
  assertRedacted(t, JSON.stringify(post.body), 'the webhook POST');
});

/** A state dir whose status file holds `pods`, as the status owner writes it. */
async function stateDirWith(t: Test, pods: StatusPod[]): Promise<string> {
  const dir = t.testdir({});
  const file: StatusFile = { apiVersion: 'v1', kind: 'PodList', metadata: { resourceVersion: '7' }, items: pods, events: [], writtenAt: new Date().toISOString() };
  await writeFile(join(dir, STATUS_FILE), JSON.stringify(file));
  return dir;
}

t.test('podvisor status -o json and -o yaml, and describe, show no env value', async (t) => {
  const stateDir = await stateDirWith(t, [podWithEnv()]);
  for (const output of ['json', 'yaml']) {
    const printed = await stdoutOf(() => statusCommand({ stateDir, output }));
    t.equal(printed.code, 0);
    assertRedacted(t, printed.text, `status -o ${output}`);
  }
  const json = JSON.parse((await stdoutOf(() => statusCommand({ stateDir, output: 'json' }))).text);
  t.strictSame(json.items[0].spec.containers[0].env[0], { name: 'SECRET', value: REDACTED_ENV_VALUE });
  const described = await stdoutOf(() => describeCommand('web-node1', { stateDir }));
  t.equal(described.code, 0);
  t.notOk(described.text.includes(SECRET), 'describe: the SECRET\'s value is not there');
  t.match(described.text, new RegExp(`SECRET:\\s+\\${REDACTED_ENV_VALUE.slice(0, -1)}\\)`), 'describe: the name with the marker');
});

t.test('serve-env-values in the config file: status and describe show the values', async (t) => {
  // One test dir per test (a second t.testdir would replace the first): the state dir inside it.
  const stateDir = await stateDirWith(t, [podWithEnv()]);
  const configDir = stateDir;
  await writeFile(join(configDir, 'config.yaml'), `state-dir: ${stateDir}\nserve-env-values: true\n`);
  await writeFile(join(configDir, 'plain.yaml'), `state-dir: ${stateDir}\n`);
  const serving = await displaySettingsFor({ config: join(configDir, 'config.yaml') });
  t.strictSame(serving, { stateDir, serveEnvValues: true });
  t.strictSame(await displaySettingsFor({ config: join(configDir, 'plain.yaml') }), { stateDir, serveEnvValues: false }, 'off unless set');
  t.strictSame(await displaySettingsFor({ 'state-dir': stateDir }, join(configDir, 'absent.yaml')), { stateDir, serveEnvValues: false }, 'no config file: off');
  const printed = await stdoutOf(() => statusCommand({ ...serving, output: 'json' }));
  t.ok(printed.text.includes(SECRET), 'status -o json shows the value');
  const described = await stdoutOf(() => describeCommand('web-node1', serving));
  t.match(described.text, new RegExp(`SECRET:\\s+${SECRET}`), 'describe shows it');
});
