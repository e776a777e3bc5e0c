// The webhook publisher against a webhook test receiver on 127.0.0.1: what a POST carries,
// coalescing, the heartbeat, a receiver that goes away and comes back, and a stop that does not
// wait for a receiver that never answers.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { contentHash, WebhookPublisher, type WebhookPublisherOptions } from '../../src/publish/webhook.js';
import { recordingLogger, untilWithin } from '../support/recording.js';
import { node, NODE, pod, storeInput } from './fixtures.js';
import { attempts, pendingGauge, tempDir, testMetrics } from './helpers.js';
import { makeTestTls } from './tls-fixture.js';
import { WebhookTestReceiver } from './webhook-test-receiver.js';

const until = untilWithin(15_000);
const TOKEN = 'token-for-the-test-receiver';

async function setup(t: Test, options: Partial<WebhookPublisherOptions> = {}, pods = [pod('web'), pod('db')]) {
  const receiver = new WebhookTestReceiver();
  await receiver.start();
  t.teardown(() => receiver.stop());
  const dir = tempDir(t);
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, `${TOKEN}\n`);
  const { store, input, set } = storeInput(pods);
  const { logger, lines } = recordingLogger();
  const metrics = testMetrics();
  const publisher = new WebhookPublisher({
    input,
    logger,
    metrics,
    url: receiver.url,
    tokenFile,
    heartbeat: null,
    intervalSeconds: 0.05,
    retry: { initialMs: 20, maxMs: 100 },
    stopTimeoutSeconds: 0.2,
    ...options,
  });
  t.teardown(() => publisher.stop());
  return { receiver, store, input, set, logger, lines, metrics, publisher, tokenFile };
}

t.test('a POST carries the PodList, the bearer token, the node and the content hash', async (t) => {
  const { receiver, store, publisher, metrics } = await setup(t);
  t.same(publisher.health(), { ok: true, message: 'nothing delivered yet' });
  publisher.start();
  await until(() => receiver.posts.length === 1 && publisher.pending === 0, 'the first POST');
  const [post] = receiver.posts;
  if (!post) throw new Error('no POST');
  t.equal(post.authorization, `Bearer ${TOKEN}`, 'the token file, trimmed');
  t.equal(post.contentType, 'application/json');
  t.equal(post.node, NODE);
  t.equal(post.hashHeader, post.hash, 'the hash header is the hash of the items as documented');
  t.match(post.hashHeader, /^sha256=[0-9a-f]{64}$/);
  t.equal(post.body.apiVersion, 'v1');
  t.equal(post.body.kind, 'PodList');
  t.equal(post.body.metadata.resourceVersion, String(store.version));
  t.same(post.body.items.map((item) => item.metadata.name), [`db-${NODE}`, `web-${NODE}`], 'sorted by namespace/name');
  t.ok(post.body.items.every((item) => item.metadata.resourceVersion !== undefined), 'items keep their resourceVersions');
  t.same(publisher.health(), { ok: true });
  t.equal(await attempts(metrics, 'webhook', 'success'), 1);
  t.equal(await pendingGauge(metrics, 'webhook'), 0);
});

t.test('the content hash ignores resourceVersions and follows the content', async (t) => {
  const web = pod('web');
  const a = contentHash([{ ...web, metadata: { ...web.metadata, resourceVersion: '1' } }]);
  const b = contentHash([{ ...web, metadata: { ...web.metadata, resourceVersion: '99' } }]);
  const reordered = contentHash([JSON.parse(JSON.stringify({ status: web.status, spec: web.spec, metadata: web.metadata, kind: web.kind, apiVersion: web.apiVersion }))]);
  const failed = contentHash([pod('web', { phase: 'Failed' })]);
  t.equal(a, b, 'resourceVersion does not count');
  t.equal(a, reordered, 'key order does not count');
  t.not(a, failed, 'a phase does');
});

t.test('changes within the interval go out as one POST of the latest state', async (t) => {
  const { receiver, set, publisher } = await setup(t, { intervalSeconds: 1 });
  publisher.start();
  await until(() => receiver.posts.length === 1 && publisher.pending === 0, 'the first POST');
  const phases = ['Pending', 'Running', 'Failed', 'Succeeded'] as const;
  for (const phase of phases) {
    set([pod('web', { phase }), pod('db', { phase })]);
    t.equal(publisher.pending, 1, 'one snapshot pending, however many changes');
    // Lets the publisher's loop see the change before the next one.
    await new Promise((resolve) => setImmediate(resolve));
  }
  await until(() => publisher.pending === 0, 'the changes delivered');
  t.equal(receiver.posts.length, 2, 'one POST for all four changes');
  t.same(receiver.lastPhases(), { [`db-${NODE}`]: 'Succeeded', [`web-${NODE}`]: 'Succeeded' }, 'the latest state');
});

t.test('a change that leaves the pods as they were sends nothing', async (t) => {
  const { receiver, store, publisher } = await setup(t);
  publisher.start();
  await until(() => receiver.posts.length === 1 && publisher.pending === 0, 'the first POST');
  const version = store.version;
  store.replace('nodes', [node('2024-05-01T10:05:00Z')]);
  t.ok(store.version > version, 'the store changed (the node)');
  t.equal(publisher.pending, 1, 'the publisher was told');
  await until(() => publisher.pending === 0, 'the change looked at');
  t.equal(receiver.posts.length, 1, 'same pods, same hash: no POST');
});

t.test('the heartbeat POSTs the unchanged state on its schedule', async (t) => {
  const { receiver, publisher } = await setup(t, { heartbeat: '* * * * * *' });
  publisher.start();
  await until(() => receiver.posts.length >= 3, 'two heartbeats after the first POST');
  const hashes = new Set(receiver.posts.map((post) => post.hashHeader));
  t.equal(hashes.size, 1, 'the same content each time, so the receiver can skip it');
});

t.test('a receiver that goes away and comes back gets the final state', async (t) => {
  const { receiver, set, publisher, lines, metrics } = await setup(t);
  publisher.start();
  await until(() => receiver.posts.length === 1 && publisher.pending === 0, 'the first POST');
  await receiver.stop();
  set([pod('web', { phase: 'Failed' })]);
  await until(() => !publisher.health().ok, 'the failure in health');
  // Refused, or a kept-alive connection the receiver closed just then.
  t.match(publisher.health().message, /(ECONNREFUSED|ECONNRESET|socket hang up).*failing since \d{4}-\d\d-\d\dT.*attempt/);
  for (let change = 0; change < 20; change++) set([pod('web', { phase: change % 2 ? 'Failed' : 'Pending' }), pod(`extra-${change}`)]);
  set([pod('web', { phase: 'Succeeded' }), pod('db', { phase: 'Succeeded' })]);
  t.equal(publisher.pending, 1, 'one snapshot pending, not one per change');
  await until(() => publisher.health().message?.includes('3 attempt') === true, 'a few retries');
  t.equal(await pendingGauge(metrics, 'webhook'), 1);
  t.ok((await attempts(metrics, 'webhook', 'network')) >= 3, 'failed attempts counted');
  t.equal(lines.filter((line) => line.startsWith('warn')).length, 1, 'one warning for the failure, not one per retry');

  await receiver.start();
  await until(() => publisher.health().ok && publisher.pending === 0, 'delivery again');
  t.equal(receiver.posts.length, 2, 'one POST after the receiver came back');
  t.same(receiver.lastPhases(), { [`db-${NODE}`]: 'Succeeded', [`web-${NODE}`]: 'Succeeded' }, 'the final state');
  t.same(publisher.health(), { ok: true });
  t.equal(lines.filter((line) => line.startsWith('info') && line.includes('delivering again')).length, 1, 'the recovery logged once');
  t.equal(await pendingGauge(metrics, 'webhook'), 0);
});

t.test('a receiver that never answers holds up neither the changes nor stop()', async (t) => {
  const { receiver, set, publisher, lines } = await setup(t);
  receiver.behaviour = 'hold';
  publisher.start();
  await until(() => receiver.held.length === 1, 'the POST held by the receiver');
  // While the POST hangs, changes and health are answered from memory.
  set([pod('web', { phase: 'Failed' })]);
  set([pod('web', { phase: 'Succeeded' })]);
  t.equal(publisher.pending, 1);
  t.same(publisher.health(), { ok: true, message: 'nothing delivered yet' });
  await publisher.stop();
  await until(() => receiver.abandoned === 1, 'the held request cancelled by stop()');
  t.equal(receiver.posts.length, 0);
  t.same(lines.filter((line) => line.startsWith('error')), []);
});

t.test('an error answer and an unreadable token file are failures in health, then recover', async (t) => {
  const { receiver, publisher, tokenFile, metrics } = await setup(t);
  receiver.behaviour = 'fail';
  publisher.start();
  await until(() => !publisher.health().ok, 'the 503 in health');
  t.match(publisher.health().message, /HTTP 503: test receiver: unavailable/);
  t.ok((await attempts(metrics, 'webhook', 'server_error')) >= 1);
  writeFileSync(tokenFile, '');
  await until(() => publisher.health().message?.includes('bearer token') === true, 'the empty token file in health');
  receiver.behaviour = 'accept';
  writeFileSync(tokenFile, 'rotated-token');
  await until(() => publisher.health().ok && receiver.posts.length === 1, 'delivery with the new token');
  t.equal(receiver.posts[0]?.authorization, 'Bearer rotated-token', 'the token file is read for each POST');
});

t.test("a 503 with Retry-After is left alone that long, not retried on the back-off's clock", async (t) => {
  const { receiver, publisher } = await setup(t);
  receiver.behaviour = 'fail';
  receiver.retryAfter = '1';
  publisher.start();
  // The back-off alone (20 ms doubling to 100 ms) would try ~25 times in these 2.5 s.
  await new Promise((resolve) => setTimeout(resolve, 2500));
  const gaps = receiver.refusedAt.slice(1).map((at, i) => at - receiver.refusedAt[i]!);
  t.ok(receiver.refusedAt.length >= 2 && receiver.refusedAt.length <= 3, `2 or 3 attempts in 2.5 s (${receiver.refusedAt.length})`);
  t.ok(gaps.every((gap) => gap >= 950), `each a second after the last (${gaps.join(', ')} ms)`);
  receiver.behaviour = 'accept';
  await until(() => publisher.health().ok && receiver.posts.length === 1, 'delivered once the receiver takes it');
});

t.test('bad settings are configuration errors naming the flag', async (t) => {
  const { input } = storeInput();
  const { logger } = recordingLogger();
  const make = (options: Partial<WebhookPublisherOptions>) => () => new WebhookPublisher({ input, logger, url: 'http://127.0.0.1:1/hook', ...options });
  const configError = (flag: RegExp) => ({ name: 'PodvisorError', code: 'E_CONFIG', message: flag });
  t.throws(make({ url: 'not a url' }), configError(/--publish-webhook: not a URL/));
  t.throws(make({ url: 'ftp://127.0.0.1/x' }), configError(/--publish-webhook: must be an http:\/\/ or https:\/\/ URL/));
  t.throws(make({ url: 'http://user:pw@127.0.0.1/x' }), configError(/--publish-token-file/));
  t.throws(make({ heartbeat: 'every minute' }), configError(/--publish-heartbeat: not a cron expression/));
  t.throws(make({ heartbeat: '61 * * * * *' }), configError(/--publish-heartbeat/));
  t.throws(make({ intervalSeconds: -1 }), configError(/--publish-interval/));
  t.doesNotThrow(make({ heartbeat: '*/30 * * * * *' }), 'seconds are allowed');
});

t.test('an https receiver is verified with the given CA; another CA is a reported failure', async (t) => {
  const tls = makeTestTls(tempDir(t));
  const receiver = new WebhookTestReceiver({ key: tls.pem('serverKey'), cert: tls.pem('server') });
  await receiver.start();
  t.teardown(() => receiver.stop());
  const { input } = storeInput([pod('web')]);
  const { logger } = recordingLogger();
  const make = (ca: string) => {
    const publisher = new WebhookPublisher({ input, logger, url: receiver.url, ca, heartbeat: null, retry: { initialMs: 20, maxMs: 100 }, stopTimeoutSeconds: 0.2 });
    t.teardown(() => publisher.stop());
    publisher.start();
    return publisher;
  };
  const wrong = make(tls.pem('otherCa'));
  await until(() => !wrong.health().ok, 'the TLS failure in health');
  t.match(wrong.health().message, /TLS verification of 127\.0\.0\.1:\d+ failed/);
  t.equal(receiver.posts.length, 0);
  await wrong.stop();
  const right = make(tls.pem('ca'));
  await until(() => receiver.posts.length === 1 && right.pending === 0, 'the POST over https');
  t.same(right.health(), { ok: true });
});
