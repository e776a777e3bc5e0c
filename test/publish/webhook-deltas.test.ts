// The webhook's delta protocol (issue 12) against a webhook test receiver on 127.0.0.1 that keeps
// the state deltas apply to and checks each delta's content hash against what it computed: no
// deltas for a receiver that does not opt in, only the changed pods for one that does, an empty
// delta on a quiet heartbeat, and a full PodList after a refusal, a failure, a request, and when
// the full interval has passed (on a fake clock).
import t, { type Test } from 'tap';
import { WebhookPublisher, type WebhookPublisherOptions } from '../../src/publish/webhook.js';
import { recordingLogger, untilWithin } from '../support/recording.js';
import { INVALID_MANIFESTS_ANNOTATION, type InvalidManifest } from '../../src/rollout/rollout-outcome.js';
import { NODE, node, pod, storeInput } from './fixtures.js';
import { WebhookTestReceiver } from './webhook-test-receiver.js';

const until = untilWithin(15_000);

/** A fake clock: real time plus an offset a test moves on, so the publisher's timers still run. */
class FakeClock {
  offset = 0;
  readonly now = () => Date.now() + this.offset;
}

async function setup(t: Test, options: Partial<WebhookPublisherOptions> = {}, deltas = true) {
  const receiver = new WebhookTestReceiver();
  receiver.deltas = deltas;
  await receiver.start();
  t.teardown(() => receiver.stop());
  const { store, input, set } = storeInput([pod('web'), pod('db')]);
  const { logger, lines } = recordingLogger();
  const clock = new FakeClock();
  const publisher = new WebhookPublisher({ input, logger, url: receiver.url, heartbeat: null, intervalSeconds: 0.05, retry: { initialMs: 20, maxMs: 100 }, stopTimeoutSeconds: 0.2, now: clock.now, ...options });
  t.teardown(() => publisher.stop());
  publisher.start();
  await until(() => receiver.posts.length === 1 && publisher.pending === 0, 'the first POST');
  return { receiver, store, set, publisher, lines, clock };
}

const kinds = (receiver: WebhookTestReceiver) => receiver.posts.map((post) => post.body.kind);
const names = (items: readonly { metadata: { name: string } }[]) => items.map((item) => item.metadata.name);

t.test('a receiver that does not opt in gets full PodLists only, offered deltas', async (t) => {
  const { receiver, set, publisher } = await setup(t, { heartbeat: '* * * * * *' }, false);
  set([pod('web', { phase: 'Failed' }), pod('db')]);
  await until(() => receiver.posts.length >= 3 && publisher.pending === 0, 'a change and a heartbeat');
  t.same(new Set(kinds(receiver)), new Set(['PodList']), 'every POST a PodList');
  t.ok(receiver.posts.every((post) => post.deltasHeader === 'offered' && post.baseHeader === undefined), 'each offers deltas');
});

t.test('after the opt-in: only the changed pod, then the removed one, naming the base', async (t) => {
  const { receiver, set, publisher } = await setup(t);
  const first = receiver.posts[0];
  t.equal(first?.body.kind, 'PodList', 'a full PodList on start');
  set([pod('web', { phase: 'Failed' }), pod('db')]);
  await until(() => receiver.posts.length === 2 && publisher.pending === 0, 'the change');
  const delta = receiver.posts[1];
  t.equal(delta?.body.kind, 'PodListDelta');
  t.equal(delta?.body.apiVersion, 'podvisor.io/v1');
  t.same(names(delta?.body.items ?? []), [`web-${NODE}`], 'only the changed pod');
  t.same(delta?.body.removed, []);
  t.equal(delta?.body.metadata.baseResourceVersion, first?.body.metadata.resourceVersion, 'the base is the acknowledged version');
  t.equal(delta?.baseHeader, first?.body.metadata.resourceVersion, 'and named in a header');
  t.equal(delta?.answer, 204, 'the receiver applied it and its hash matched');
  t.ok((delta?.bytes ?? 0) < (first?.bytes ?? 0), `smaller than the full PodList (${delta?.bytes} < ${first?.bytes} bytes)`);

  set([pod('web', { phase: 'Failed' })]);
  await until(() => receiver.posts.length === 3 && publisher.pending === 0, 'the removal');
  t.same(receiver.posts[2]?.body.items, [], 'no pod changed');
  t.same(receiver.posts[2]?.body.removed, [`default/db-${NODE}`], 'the removed pod by key');
  t.equal(receiver.posts[2]?.answer, 204);
  t.same([...receiver.state.keys()], [`default/web-${NODE}`], 'the receiver holds the node state');
});

t.test('a quiet heartbeat is an empty delta carrying the content hash', async (t) => {
  const { receiver } = await setup(t, { heartbeat: '* * * * * *' });
  await until(() => receiver.posts.length >= 3, 'two heartbeats');
  const [full, ...beats] = receiver.posts;
  t.equal(full?.body.kind, 'PodList');
  for (const beat of beats) {
    t.match(beat, { body: { kind: 'PodListDelta', items: [], removed: [] }, answer: 204, hashHeader: full?.hashHeader });
    t.ok(beat.bytes < 200, `small: ${beat.bytes} bytes`);
  }
});

t.test('a 409 to a delta brings the full PodList at once, and is not a failure', async (t) => {
  const { receiver, set, publisher } = await setup(t);
  receiver.version = 'lost';
  set([pod('web', { phase: 'Failed' }), pod('db')]);
  await until(() => receiver.posts.length === 3 && publisher.pending === 0, 'the refused delta and the full state');
  t.same(kinds(receiver), ['PodList', 'PodListDelta', 'PodList']);
  t.equal(receiver.posts[1]?.answer, 409);
  t.same(publisher.health(), { ok: true }, 'health unchanged');
  set([pod('web'), pod('db')]);
  await until(() => receiver.posts.length === 4, 'the next change');
  t.equal(receiver.posts[3]?.body.kind, 'PodListDelta', 'deltas again from the new base');
  t.equal(receiver.posts[3]?.answer, 204);
});

t.test('after a failed POST the next is full; the receiver can ask for one', async (t) => {
  const { receiver, set, publisher } = await setup(t);
  receiver.behaviour = 'fail';
  set([pod('web', { phase: 'Failed' }), pod('db')]);
  await until(() => !publisher.health().ok, 'the failure');
  receiver.behaviour = 'accept';
  await until(() => publisher.health().ok && publisher.pending === 0, 'delivery again');
  t.same(kinds(receiver), ['PodList', 'PodList'], 'full after a failure');

  receiver.askFullOnce = true;
  set([pod('web'), pod('db')]);
  await until(() => receiver.posts.length === 4 && publisher.pending === 0, 'a delta answered with "full", then the full state');
  t.same(kinds(receiver).slice(2), ['PodListDelta', 'PodList'], 'X-Podvisor-Deltas: full brings the full state');
});

t.test('a full PodList once the full interval has passed (fake clock)', async (t) => {
  const { receiver, set, clock, publisher } = await setup(t, { fullIntervalSeconds: 3600 });
  set([pod('web', { phase: 'Failed' }), pod('db')]);
  await until(() => receiver.posts.length === 2 && publisher.pending === 0, 'a delta');
  clock.offset += 3600_000;
  set([pod('web'), pod('db')]);
  await until(() => receiver.posts.length === 3 && publisher.pending === 0, 'the next change');
  t.same(kinds(receiver), ['PodList', 'PodListDelta', 'PodList']);
});

t.test('full-interval 0: never a delta, even to a receiver that accepts them', async (t) => {
  const { receiver, set, publisher } = await setup(t, { fullIntervalSeconds: 0 });
  set([pod('web', { phase: 'Failed' }), pod('db')]);
  await until(() => receiver.posts.length === 2 && publisher.pending === 0, 'the change');
  t.same(kinds(receiver), ['PodList', 'PodList']);
  t.ok(receiver.posts.every((post) => post.deltasHeader === undefined), 'no offer');
});

t.test('a bad full interval is a configuration error naming the flag', async (t) => {
  const { input } = storeInput();
  const { logger } = recordingLogger();
  for (const value of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
    t.throws(() => new WebhookPublisher({ input, logger, url: 'http://127.0.0.1:1/hook', fullIntervalSeconds: value }), { code: 'E_CONFIG', message: /--publish-full-interval must be a number of seconds of at least 0/ }, String(value));
  }
});

t.test('invalid files no pod runs from: a top-level invalidManifests in the PodList and every delta; a change of them alone is sent', async (t) => {
  const { receiver, set, publisher } = await setup(t);
  t.notOk('invalidManifests' in (receiver.posts[0]?.body ?? {}), 'none: the PodList as it always was');
  const bad: InvalidManifest = { source: '/etc/podvisor/manifests.d/new.yaml', outcome: 'Invalid', reason: 'ManifestInvalid', message: '/etc/podvisor/manifests.d/new.yaml:4:7: spec.containers[0].image: Required value', since: '2024-05-01T10:00:00Z' };
  const withInvalid = node();
  withInvalid.metadata.annotations[INVALID_MANIFESTS_ANNOTATION] = JSON.stringify([bad]);
  const pods = [pod('web'), pod('db')];
  set(pods, withInvalid);
  await until(() => receiver.posts.length === 2 && publisher.pending === 0, 'the invalid file, alone a change');
  const delta = receiver.posts[1]?.body as { kind: string; items: unknown[]; invalidManifests?: unknown } | undefined;
  t.equal(delta?.kind, 'PodListDelta');
  t.same(delta?.items, [], 'no pod changed');
  t.same(delta?.invalidManifests, [bad], 'the file and its first error');
  t.equal(receiver.posts[1]?.hashHeader, receiver.posts[0]?.hashHeader, 'the content hash (of the items) is unchanged');

  set(pods, node());
  await until(() => receiver.posts.length === 3 && publisher.pending === 0, 'the file fixed');
  t.same((receiver.posts[2]?.body as { invalidManifests?: unknown }).invalidManifests, [], 'an empty list says they are gone');
});

t.test('a receiver without deltas gets invalidManifests in the full PodList', async (t) => {
  const { receiver, set, publisher } = await setup(t, {}, false);
  const withInvalid = node();
  const bad = [{ source: '/m/new.yaml', outcome: 'Invalid', reason: 'ManifestInvalid', message: 'm', since: 's' }];
  withInvalid.metadata.annotations[INVALID_MANIFESTS_ANNOTATION] = JSON.stringify(bad);
  set([pod('web'), pod('db')], withInvalid);
  await until(() => receiver.posts.length === 2 && publisher.pending === 0, 'the change');
  t.match(receiver.posts[1]?.body, { kind: 'PodList', invalidManifests: bad });
});
