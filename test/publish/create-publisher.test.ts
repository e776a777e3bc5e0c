// From the publish flags to a publisher, or none; and its health in /healthz as a check that is
// shown but never makes the agent unhealthy.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { healthText, HealthChecks } from '../../src/health/health.js';
import { createPublisher, publishHealthCheck } from '../../src/publish/create-publisher.js';
import { recordingLogger, untilWithin } from '../support/recording.js';
import { pod, storeInput } from './fixtures.js';
import { tempDir } from './helpers.js';
import { makeTestTls } from './tls-fixture.js';
import { WebhookTestReceiver } from './webhook-test-receiver.js';

const until = untilWithin(15_000);

function base() {
  const { input } = storeInput([pod('web')]);
  return { input, logger: recordingLogger().logger, retry: { initialMs: 20, maxMs: 100 }, stopTimeoutSeconds: 0.2 };
}

t.test('nothing is published unless asked', async (t) => {
  t.equal(createPublisher({}, base()), undefined);
});

t.test('flags that do not go together are usage errors', async (t) => {
  t.throws(() => createPublisher({ webhookUrl: 'http://127.0.0.1:1/', kubeconfig: '/x' }, base()), { name: 'UsageError', code: 'E_USAGE', message: /cannot be used together/ });
  t.throws(() => createPublisher({ tokenFile: '/x' }, base()), { name: 'UsageError', message: /--publish-token-file goes with --publish-webhook/ });
  t.throws(() => createPublisher({ caFile: '/x' }, base()), { name: 'UsageError', message: /--publish-ca-file goes with --publish-webhook/ });
});

t.test('the mode follows the flag; a bad kubeconfig fails at once, naming the file', async (t) => {
  t.equal(createPublisher({ webhookUrl: 'http://127.0.0.1:1/', heartbeat: null }, base())?.mode, 'webhook');
  const dir = tempDir(t);
  t.throws(() => createPublisher({ webhookUrl: 'https://127.0.0.1:1/', caFile: join(dir, 'missing.crt') }, base()), { code: 'E_CONFIG', message: /^--publish-ca-file: cannot read .*missing\.crt: ENOENT/ });
  writeFileSync(join(dir, 'not-pem.crt'), 'hello');
  t.throws(() => createPublisher({ webhookUrl: 'https://127.0.0.1:1/', caFile: join(dir, 'not-pem.crt') }, base()), { code: 'E_CONFIG', message: /holds no PEM certificate/ });
  const path = join(dir, 'kubeconfig');
  writeFileSync(path, 'clusters:\n- name: k\n  cluster: {server: https://127.0.0.1:6443}\ncontexts:\n- name: c\n  context: {cluster: k}\ncurrent-context: c\n');
  t.equal(createPublisher({ kubeconfig: path }, base())?.mode, 'kubernetes');
  t.throws(() => createPublisher({ kubeconfig: path, resyncSeconds: 0 }, base()), { code: 'E_CONFIG', message: /--publish-resync/ });
  writeFileSync(path, 'clusters:\n- name: k\n  cluster: {}\ncontexts: []\n');
  t.throws(() => createPublisher({ kubeconfig: path }, base()), { code: 'E_CONFIG', message: new RegExp(`^${path}:3:3: clusters\\[0\\]\\.cluster\\.server: Required`) });
});

t.test('a failing publisher shows in /healthz detail without making the agent unhealthy', async (t) => {
  // Port 1 on loopback: nothing listens there, so every POST is refused.
  const publisher = createPublisher({ webhookUrl: 'http://127.0.0.1:1/hook', heartbeat: null }, base());
  if (!publisher) throw new Error('no publisher');
  t.teardown(() => publisher.stop());
  const checks = new HealthChecks();
  checks.add(publishHealthCheck(publisher));
  publisher.start();
  await until(() => !publisher.health().ok, 'the failure');
  const report = checks.report();
  t.equal(report.healthy, true);
  t.match(healthText(report, true), /^\[!\]publish-webhook failed: POST http:\/\/127\.0\.0\.1:1\/hook: connect ECONNREFUSED/);
});

t.test('--publish-ca-file verifies an https webhook receiver', async (t) => {
  const tls = makeTestTls(tempDir(t));
  const receiver = new WebhookTestReceiver({ key: tls.pem('serverKey'), cert: tls.pem('server') });
  await receiver.start();
  t.teardown(() => receiver.stop());
  const publisher = createPublisher({ webhookUrl: receiver.url, caFile: join(tls.dir, tls.files.ca), heartbeat: null }, base());
  if (!publisher) throw new Error('no publisher');
  t.teardown(() => publisher.stop());
  publisher.start();
  await until(() => receiver.posts.length === 1 && publisher.pending === 0, 'the POST over https');
  t.same(publisher.health(), { ok: true });
});
