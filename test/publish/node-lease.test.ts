// The node's Lease in kube-node-lease, kept by the Kubernetes publisher as the kubelet keeps it,
// against the Kubernetes API test receiver on 127.0.0.1: created owned by the node, renewed with
// the resourceVersion read last, created again after a deletion, a Conflict read again and
// retried once, renewed while pod publishing fails, never holding pod publishing up, and stopped
// by stop().
import { setTimeout as sleep } from 'node:timers/promises';
import t, { type Test } from 'tap';
import { PodvisorError } from '../../src/errors.js';
import { KubernetesPublisher, type KubernetesPublisherOptions } from '../../src/publish/kubernetes.js';
import { parseKubeconfig } from '../../src/publish/kubeconfig.js';
import { microTime, NODE_LEASE_DURATION_SECONDS } from '../../src/publish/node-lease.js';
import { recordingLogger, untilWithin } from '../support/recording.js';
import { node, NODE, pod, storeInput } from './fixtures.js';
import { kubeconfigFor } from './helpers.js';
import { kubeStatus, KubeTestReceiver, MICRO_TIME, type LeaseObj, type RecordedRequest } from './kube-test-receiver.js';

const until = untilWithin(15_000);
const TOKEN = 'token-for-the-lease-tests';
const WEB = `default/web-${NODE}`;
const LEASES = '/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases';
const LEASE = `${LEASES}/${NODE}`;
/** The renew interval the tests use: 50 ms. */
const RENEW_SECONDS = 0.05;

async function setup(t: Test, publisher: Partial<KubernetesPublisherOptions> = {}) {
  const receiver = new KubeTestReceiver({ token: TOKEN });
  await receiver.start();
  t.teardown(() => receiver.stop());
  const { input, set } = storeInput([pod('web'), pod('db')]);
  const { logger, lines } = recordingLogger();
  const publisherUnderTest = new KubernetesPublisher({
    input,
    logger,
    connection: parseKubeconfig(kubeconfigFor(receiver.url, TOKEN), '/test/kubeconfig'),
    retry: { initialMs: 20, maxMs: 100 },
    stopTimeoutSeconds: 0.2,
    leaseRenewSeconds: RENEW_SECONDS,
    ...publisher,
  });
  t.teardown(() => publisherUnderTest.stop());
  return { receiver, set, lines, publisher: publisherUnderTest };
}

/** The requests on the node's Lease (GET, POST, PUT), in order. */
function leaseCalls(receiver: KubeTestReceiver): RecordedRequest[] {
  return receiver.requests.filter((request) => request.path === LEASE || request.path === LEASES);
}

/** Successful renewals (PUT 200). */
function renewals(receiver: KubeTestReceiver): RecordedRequest[] {
  return receiver.calls('PUT', LEASE).filter((call) => call.code === 200);
}

function leaseOf(receiver: KubeTestReceiver): LeaseObj {
  const lease = receiver.lease(NODE);
  if (!lease) throw new Error('no node lease on the test receiver');
  return lease;
}

const renewTimeOf = (call: RecordedRequest | undefined) => (call?.body as LeaseObj | undefined)?.spec.renewTime ?? '';

t.test('microTime: RFC 3339 in UTC with microseconds', async (t) => {
  t.equal(microTime(Date.UTC(2024, 4, 1, 10, 0, 0, 123)), '2024-05-01T10:00:00.123000Z');
  t.match(microTime(Date.now()), MICRO_TIME);
});

t.test('the test receiver refuses a Lease whose renewTime is not a MicroTime', async (t) => {
  const receiver = new KubeTestReceiver();
  await receiver.start();
  t.teardown(() => receiver.stop());
  const post = (renewTime: string) =>
    fetch(receiver.url + LEASES, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: NODE }, spec: { holderIdentity: NODE, renewTime } }),
    });
  t.equal((await post('2024-05-01T10:00:00.123Z')).status, 400, 'milliseconds are not enough');
  t.equal((await post('2024-05-01T10:00:00.123000Z')).status, 201);
  t.equal((await post('2024-05-01T10:00:00.123000Z')).status, 409, 'AlreadyExists');
});

t.test('a renew interval the lease would expire within is refused at construction', async (t) => {
  const receiver = new KubeTestReceiver();
  const { input } = storeInput([]);
  const { logger } = recordingLogger();
  const connection = parseKubeconfig(kubeconfigFor(receiver.url, TOKEN), '/test/kubeconfig');
  for (const leaseRenewSeconds of [0, -1, Number.NaN, NODE_LEASE_DURATION_SECONDS, 60]) {
    let caught: unknown;
    try {
      new KubernetesPublisher({ input, logger, connection, leaseRenewSeconds });
    } catch (error) {
      caught = error;
    }
    t.ok(caught instanceof PodvisorError && caught.code === 'E_CONFIG', `${leaseRenewSeconds}: E_CONFIG`);
    t.match((caught as Error | undefined)?.message, /lease renew interval must be a number of seconds above 0 and below the lease's 40/);
  }
  t.doesNotThrow(() => new KubernetesPublisher({ input, logger, connection, leaseRenewSeconds: 39.5 }));
});

t.test('created on start, owned by the node, and renewed with the resourceVersion read last', async (t) => {
  const { receiver, publisher, lines } = await setup(t);
  publisher.start();
  await until(() => renewals(receiver).length >= 4, 'a few renewals');

  const registered = receiver.nodes.get(NODE);
  if (!registered) throw new Error('the node was not registered');
  const calls = leaseCalls(receiver);
  t.same(calls.slice(0, 2).map((call) => `${call.method} ${call.path} ${call.code}`), [`GET ${LEASE} 404`, `POST ${LEASES} 201`], 'looked up, missing, created');
  t.ok(receiver.requests.indexOf(calls[0]!) > receiver.calls('POST', '/api/v1/nodes').map((call) => receiver.requests.indexOf(call))[0]!, 'only once the node is registered');
  const created = calls[1]?.body as LeaseObj;
  t.match(created.spec.renewTime, MICRO_TIME, 'renewTime is a MicroTime');
  t.same(
    created,
    {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: NODE, namespace: 'kube-node-lease', ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: NODE, uid: registered.metadata.uid }] },
      spec: { holderIdentity: NODE, leaseDurationSeconds: 40, renewTime: created.spec.renewTime },
    },
    'held by the node for 40 s, owned by the node as the server knows it',
  );
  t.ok(lines.includes(`info: publish (kubernetes): created the node lease kube-node-lease/${NODE}`));

  // Each PUT carries the resourceVersion of the Lease the previous write returned.
  const writes = calls.filter((call) => call.method !== 'GET');
  for (let index = 1; index < writes.length; index++) {
    const write = writes[index]!;
    if (write.code === 0) continue; // not answered yet
    t.equal(write.method, 'PUT');
    t.equal((write.body as LeaseObj).metadata.resourceVersion, (writes[index - 1]!.answer as LeaseObj).metadata.resourceVersion, `PUT ${index}: the resourceVersion read last`);
    t.equal(write.code, 200);
  }
  t.equal(calls.filter((call) => call.method === 'GET').length, 1, 'read once: renewed from its own copy after that');

  // From one renewal to the next (the creation came after a lookup, so it is left out).
  const times = writes.filter((write) => write.method === 'PUT' && write.code !== 0).map((write) => Date.parse(renewTimeOf(write)));
  t.ok(times.length >= 3);
  for (let index = 1; index < times.length; index++) {
    t.ok(times[index]! - times[index - 1]! >= RENEW_SECONDS * 1000 - 5, `renewal ${index} about one interval after the one before (${times[index]! - times[index - 1]!} ms)`);
  }
  const before = leaseOf(receiver);
  await until(() => leaseOf(receiver).spec.renewTime !== before.spec.renewTime, 'renewed again');
  const after = leaseOf(receiver);
  t.ok(Date.parse(after.spec.renewTime ?? '') > Date.parse(before.spec.renewTime ?? ''), 'renewTime advances on the server');
  t.equal(after.metadata.uid, before.metadata.uid, 'the same Lease');
  t.match(after, { spec: { holderIdentity: NODE, leaseDurationSeconds: 40 }, metadata: { ownerReferences: [{ kind: 'Node', uid: registered.metadata.uid }] } });
  t.ok(leaseCalls(receiver).every((call) => call.authorization === `Bearer ${TOKEN}`), "the kubeconfig's token");
  t.same(publisher.health(), { ok: true });
});

t.test('a lease someone deleted is created again', async (t) => {
  const { receiver, publisher, lines } = await setup(t);
  publisher.start();
  await until(() => renewals(receiver).length >= 1, 'renewed once');
  const old = leaseOf(receiver);
  const count = leaseCalls(receiver).length;
  receiver.leases.delete(`kube-node-lease/${NODE}`);
  await until(() => receiver.lease(NODE) !== undefined, 'the lease back');
  await until(() => leaseCalls(receiver).at(-1)?.code !== 0, 'its creation answered');
  t.same(
    leaseCalls(receiver)
      .slice(count)
      .filter((call) => call.code !== 200 || call.method === 'POST')
      .map((call) => `${call.method} ${call.code}`),
    ['PUT 404', 'POST 201'],
    'the renewal found it gone; created, not PUT again',
  );
  const recreated = leaseOf(receiver);
  t.not(recreated.metadata.uid, old.metadata.uid, 'a new Lease');
  t.same(recreated.metadata.ownerReferences, old.metadata.ownerReferences, 'owned by the node');
  t.equal((leaseCalls(receiver).find((call) => call.method === 'POST' && call.code === 201 && leaseCalls(receiver).indexOf(call) >= count)?.body as LeaseObj).metadata.resourceVersion, undefined, 'no resourceVersion on create');
  t.ok(lines.includes(`info: publish (kubernetes): the node lease kube-node-lease/${NODE} was deleted on the server; creating it again`));
  await until(() => renewals(receiver).some((call) => (call.answer as LeaseObj).metadata.uid === recreated.metadata.uid), 'the new Lease renewed');
  t.same(publisher.health(), { ok: true });
  t.equal(lines.filter((line) => line.startsWith('warn')).length, 0, 'not a failure');
});

t.test('a Conflict is read again and retried once; Conflict after Conflict is a failure until it passes', async (t) => {
  const { receiver, publisher, lines } = await setup(t);
  publisher.start();
  await until(() => renewals(receiver).length >= 1, 'renewed once');

  // Someone else writes the Lease between two renewals: podvisor's copy is stale.
  const count = leaseCalls(receiver).length;
  const theirs = receiver.touchLease(NODE, (lease) => {
    lease.metadata.labels = { written: 'by-someone-else' };
  });
  await until(() => leaseCalls(receiver).slice(count).some((call) => call.method === 'PUT' && call.code === 200), 'renewed again');
  const after = leaseCalls(receiver).slice(count);
  t.same(after.slice(0, 3).map((call) => `${call.method} ${call.code}`), ['PUT 409', 'GET 200', 'PUT 200'], 'Conflict → GET → PUT');
  t.match((after[0]?.answer as { reason?: string }).reason, 'Conflict');
  t.equal((after[2]?.body as LeaseObj).metadata.resourceVersion, theirs.metadata.resourceVersion, 'the PUT again carries the version just read');
  t.same(leaseOf(receiver).metadata.labels, { written: 'by-someone-else' }, 'what the other writer set is kept');
  t.same(publisher.health(), { ok: true }, 'one Conflict is not a failure');

  // Another writer on every renewal: the retry conflicts too, and that is a failure.
  let conflicting = true;
  receiver.beforeLeaseUpdate = () => {
    if (conflicting) receiver.touchLease(NODE);
  };
  const from = leaseCalls(receiver).length;
  await until(() => /node lease: .*HTTP 409 Conflict.*, ([2-9]|\d{2,}) attempt\(s\)\)$/.test(publisher.health().message ?? ''), 'the failure in health, retried');
  t.equal(publisher.health().ok, false);
  // Each attempt: PUT (Conflict), GET, PUT (Conflict again), and then the back-off.
  const rounds = leaseCalls(receiver)
    .slice(from)
    .filter((call) => call.code !== 0)
    .map((call) => (call.method === 'PUT' && call.code === 409 ? 'P' : call.method === 'GET' && call.code === 200 ? 'G' : `${call.method} ${call.code}`))
    .join(' ');
  t.match(rounds, /^P G P P G P( P G P)*( P| P G)?$/, `one GET and one more PUT per attempt: ${rounds}`);
  t.equal(lines.filter((line) => line.startsWith('warn: publish (kubernetes): renewing the node lease failed')).length, 1, 'one warning, not one per retry');

  conflicting = false;
  await until(() => publisher.health().ok, 'renewing again');
  t.same(publisher.health(), { ok: true });
  t.ok(lines.some((line) => /^info: publish \(kubernetes\): renewing the node lease again after \d+ failed attempt\(s\)/.test(line)), 'the recovery logged');
});

t.test('renewal goes on while pod publishing fails', async (t) => {
  const { receiver, publisher, set } = await setup(t);
  // The API server fails every create of one pod: an endpoint failure, so the pods' passes back off.
  receiver.beforeCreate = (created) => (created.metadata.name === `web-${NODE}` ? [500, kubeStatus(500, 'InternalError', 'etcd is having a bad day')] : undefined);
  publisher.start();
  await until(() => /HTTP 500 InternalError.*, ([3-9]|\d{2,}) attempt\(s\)\)$/.test(publisher.health().message ?? ''), 'pod publishing failing, a few times');
  const renewed = renewals(receiver).length;
  const renewTime = leaseOf(receiver).spec.renewTime;
  await until(() => renewals(receiver).length >= renewed + 3, 'renewals meanwhile');
  t.ok(Date.parse(leaseOf(receiver).spec.renewTime ?? '') > Date.parse(renewTime ?? ''), 'renewTime advanced');
  t.equal(publisher.health().ok, false, 'pods still failing');
  t.notMatch(publisher.health().message, /node lease/, 'and the lease is not');
  t.equal(receiver.pod(WEB), undefined);

  receiver.beforeCreate = undefined;
  set([pod('web', { phase: 'Succeeded' }), pod('db')]);
  await until(() => receiver.pod(WEB)?.status['phase'] === 'Succeeded' && publisher.health().ok, 'the pod published once the server takes it');
});

t.test('a Lease the server is slow on holds up neither pods nor node status', async (t) => {
  const { receiver, publisher, set } = await setup(t);
  let release = () => undefined as void;
  receiver.holdLeases = new Promise<void>((resolve) => (release = resolve));
  publisher.start();
  await until(() => leaseCalls(receiver).length === 1, 'the lease lookup sent');
  await until(() => receiver.pod(WEB)?.status['phase'] === 'Running' && publisher.pending === 0, 'the pods published meanwhile');
  set([pod('web', { phase: 'Failed' }), pod('db')], node('2024-05-01T10:05:00Z'));
  await until(() => receiver.pod(WEB)?.status['phase'] === 'Failed' && receiver.calls('PATCH', `/api/v1/nodes/${NODE}/status`).length === 1, 'a change published meanwhile');
  t.same(leaseCalls(receiver).map((call) => `${call.method} ${call.code}`), ['GET 0'], 'the lease lookup still unanswered');
  t.equal(receiver.lease(NODE), undefined);
  t.ok(publisher.health().ok, 'a request in flight is no failure');

  receiver.holdLeases = undefined;
  release();
  await until(() => renewals(receiver).length >= 1, 'created and renewed once answered');
});

t.test('stop() stops renewing, also with a request in flight', async (t) => {
  await t.test('between renewals', async (t) => {
    const { receiver, publisher } = await setup(t);
    publisher.start();
    await until(() => renewals(receiver).length >= 2, 'renewing');
    await publisher.stop();
    const count = leaseCalls(receiver).length;
    const renewTime = receiver.lease(NODE)?.spec.renewTime;
    await sleep(RENEW_SECONDS * 1000 * 8); // eight renew intervals
    t.equal(leaseCalls(receiver).length, count, 'no request after stop()');
    t.equal(receiver.lease(NODE)?.spec.renewTime, renewTime);
  });

  await t.test('while the server holds a renewal', async (t) => {
    const { receiver, publisher } = await setup(t);
    publisher.start();
    await until(() => renewals(receiver).length >= 1, 'renewing');
    receiver.holdLeases = new Promise<void>(() => undefined); // never answers
    const count = leaseCalls(receiver).length;
    await until(() => leaseCalls(receiver).length > count, 'a renewal held');
    const started = Date.now();
    await publisher.stop();
    t.ok(Date.now() - started < 2000, `stop() bounded (${Date.now() - started} ms, 0.2 s grace)`);
    t.same(publisher.health(), { ok: true }, 'a renewal cancelled by stop() is no failure');
    t.equal(leaseCalls(receiver).length, count + 1);
  });
});

t.test('a node registered again owns the Lease from then on', async (t) => {
  const { receiver, publisher, set } = await setup(t);
  publisher.start();
  await until(() => renewals(receiver).length >= 1, 'renewing');
  const first = receiver.nodes.get(NODE)?.metadata.uid;
  receiver.nodes.delete(NODE); // someone deleted the node (a real cluster's garbage collector would take the Lease)
  set([pod('web'), pod('db')], node('2024-05-01T10:07:00Z'));
  await until(() => receiver.nodes.has(NODE), 'registered again');
  const second = receiver.nodes.get(NODE)?.metadata.uid;
  t.not(second, first);
  await until(() => leaseOf(receiver).metadata.ownerReferences?.[0]?.uid === second, 'the Lease owned by the new node');
  t.same(leaseOf(receiver).metadata.ownerReferences, [{ apiVersion: 'v1', kind: 'Node', name: NODE, uid: second }], 'the old owner replaced, not added to');
});
