// The Kubernetes publisher against a Kubernetes API test receiver on 127.0.0.1: node
// registration, mirror pods created, patched, replaced, recreated and deleted as the kubelet
// does, the API's AlreadyExists, NotFound and Conflict answers, orphans, and an API server that
// goes away and comes back.
import { createServer, type AddressInfo, type Socket } from 'node:net';
import t, { type Test } from 'tap';
import { CONFIG_MIRROR_ANNOTATION, type MirrorPod } from '../../src/mirror/mirror-pod.js';
import { KubernetesPublisher, STATIC_PODS_ONLY_TAINT, type KubernetesPublisherOptions } from '../../src/publish/kubernetes.js';
import { parseKubeconfig } from '../../src/publish/kubeconfig.js';
import { recordingLogger, untilWithin } from '../support/recording.js';
import { LOCAL_NODE_UID, node, NODE, pod, storeInput } from './fixtures.js';
import { attempts, kubeconfigFor as kubeconfig, pendingGauge, testMetrics } from './helpers.js';
import { KubeTestReceiver, kubeStatus, type Obj, type KubeTestReceiverOptions } from './kube-test-receiver.js';

const until = untilWithin(15_000);
const TOKEN = 'token-for-the-api-test-receiver';
const WEB = `default/web-${NODE}`;
const DB = `default/db-${NODE}`;

interface SetupOptions {
  pods?: MirrorPod[];
  receiver?: KubeTestReceiverOptions;
  publisher?: Partial<KubernetesPublisherOptions>;
  token?: string;
  /** Runs before the publisher starts: the server's state as others left it. */
  before?: (receiver: KubeTestReceiver) => void;
}

async function setup(t: Test, options: SetupOptions = {}) {
  const receiver = new KubeTestReceiver({ token: TOKEN, ...options.receiver });
  await receiver.start();
  t.teardown(() => receiver.stop());
  options.before?.(receiver);
  const { store, input, set } = storeInput(options.pods ?? [pod('web'), pod('db')]);
  const { logger, lines } = recordingLogger();
  const metrics = testMetrics();
  const publisher = new KubernetesPublisher({
    input,
    logger,
    metrics,
    connection: parseKubeconfig(kubeconfig(receiver.url, options.token ?? TOKEN), '/test/kubeconfig'),
    retry: { initialMs: 20, maxMs: 100 },
    stopTimeoutSeconds: 0.2,
    ...options.publisher,
  });
  t.teardown(() => publisher.stop());
  const synced = (what = 'the publisher in step') => until(() => publisher.pending === 0 && publisher.health().ok && publisher.health().message === undefined, what);
  return { receiver, store, input, set, lines, metrics, publisher, synced };
}

function mirrorOf(receiver: KubeTestReceiver, key: string): Obj {
  const found = receiver.pod(key);
  if (!found) throw new Error(`no pod ${key} on the test receiver`);
  return found;
}

t.test('registers the node, creates the mirror pods and patches their status', async (t) => {
  const { receiver, publisher, synced, metrics, lines } = await setup(t);
  publisher.start();
  await synced();

  const registered = receiver.nodes.get(NODE);
  if (!registered) throw new Error('the node was not registered');
  t.not(registered.metadata.uid, LOCAL_NODE_UID, 'the server gives the node its uid');
  t.same(registered.spec.taints, [STATIC_PODS_ONLY_TAINT], 'registered with a NoSchedule taint');
  t.match(registered.status, { conditions: [{ type: 'MemoryPressure' }, { type: 'DiskPressure' }, { type: 'PIDPressure' }, { type: 'Ready', status: 'True' }] }, 'and with its status');
  t.ok(lines.some((line) => line === `info: publish (kubernetes): registered node ${NODE}`));

  for (const key of [WEB, DB]) {
    const mirror = mirrorOf(receiver, key);
    t.equal(mirror.metadata.annotations?.[CONFIG_MIRROR_ANNOTATION], 'hash-1', `${key}: the config hash as kubernetes.io/config.mirror`);
    t.same(mirror.metadata.ownerReferences, [{ apiVersion: 'v1', kind: 'Node', name: NODE, uid: registered.metadata.uid, controller: true }], `${key}: owned by the node as the server knows it`);
    t.equal(mirror.spec.nodeName, NODE);
    t.match(mirror.status, { phase: 'Running', qosClass: 'BestEffort', conditions: [{ type: 'Ready', status: 'True' }] }, `${key}: the status, through the status subresource`);
  }
  const creates = receiver.calls('POST', '/api/v1/namespaces/default/pods');
  t.equal(creates.length, 2);
  for (const create of creates) {
    const body = create.body as Obj;
    t.equal(body.metadata.uid, undefined, 'no uid sent: the server gives one');
    t.equal(body.status, undefined, 'no status on create');
  }
  const patches = receiver.calls('PATCH', /^\/api\/v1\/namespaces\/default\/pods\/[^/]+\/status$/);
  t.equal(patches.length, 2);
  for (const patch of patches) {
    t.equal(patch.contentType, 'application/merge-patch+json');
    const name = patch.path.split('/')[6];
    t.equal((patch.body as { metadata: { uid: string } }).metadata.uid, mirrorOf(receiver, `default/${name}`).metadata.uid, 'the uid as precondition');
  }
  t.same(
    receiver.requests
      .filter((request) => !request.path.startsWith('/apis/coordination.k8s.io/'))
      .slice(0, 3)
      .map((request) => `${request.method} ${request.path}${request.query}`),
    [`GET /api/v1/nodes/${NODE}`, 'POST /api/v1/nodes', `GET /api/v1/pods?fieldSelector=spec.nodeName%3D${NODE}`],
    'the node first, then what the server has on it',
  );
  // The node's Lease, beside the pods (test/publish/node-lease.test.ts has the rest of it).
  await until(() => receiver.lease(NODE) !== undefined, 'the node lease created');
  t.ok(receiver.requests.every((request) => request.authorization === `Bearer ${TOKEN}`), 'the kubeconfig token on every request');
  t.equal(await attempts(metrics, 'kubernetes', 'not_found'), 2, 'the node lookup and the lease lookup');
  t.ok((await attempts(metrics, 'kubernetes', 'success')) >= 6);
  t.equal(await pendingGauge(metrics, 'kubernetes'), 0);
});

t.test('a node that exists is used as it is, and its status follows the agent', async (t) => {
  let existing: Obj | undefined;
  const { receiver, publisher, synced, set } = await setup(t, { before: (receiver) => (existing = receiver.putNode(NODE)) });
  publisher.start();
  await synced();
  t.equal(receiver.calls('POST', '/api/v1/nodes').length, 0, 'not registered again');
  t.equal(mirrorOf(receiver, WEB).metadata.ownerReferences?.[0]?.uid, existing?.metadata.uid, 'owned by the existing node');
  t.equal(receiver.calls('PATCH', `/api/v1/nodes/${NODE}/status`).length, 1, 'its status set once');

  set([pod('web'), pod('db')], node('2024-05-01T10:01:00Z', false));
  await until(() => receiver.calls('PATCH', `/api/v1/nodes/${NODE}/status`).length === 2, 'the node status patched');
  const ready = (receiver.nodes.get(NODE)?.status['conditions'] as { type: string; status: string; lastHeartbeatTime: string }[]).find((condition) => condition.type === 'Ready');
  t.match(ready, { status: 'False', lastHeartbeatTime: '2024-05-01T10:01:00Z' });
  await synced();
  t.equal(receiver.calls('PATCH', /\/pods\/.*\/status$/).length, 2, 'pods unchanged: no pod patch');
});

t.test('a status change is a patch of the difference; a new config hash replaces the mirror pod', async (t) => {
  const { receiver, publisher, synced, set } = await setup(t);
  publisher.start();
  await synced();
  const before = mirrorOf(receiver, WEB);

  set([pod('web', { phase: 'Failed' }), pod('db')]);
  await synced('the status change');
  t.equal(mirrorOf(receiver, WEB).status['phase'], 'Failed');
  t.equal(mirrorOf(receiver, WEB).metadata.uid, before.metadata.uid, 'the same mirror pod');
  const patch = receiver.calls('PATCH', `/api/v1/namespaces/default/pods/web-${NODE}/status`).at(-1)?.body as { status: Record<string, unknown> };
  t.same(Object.keys(patch.status).sort(), ['conditions', 'phase'], 'only what changed');

  set([pod('web', { phase: 'Failed', hash: 'hash-2' }), pod('db')]);
  await synced('the new spec');
  const after = mirrorOf(receiver, WEB);
  t.equal(after.metadata.annotations?.[CONFIG_MIRROR_ANNOTATION], 'hash-2');
  t.not(after.metadata.uid, before.metadata.uid, 'a new mirror pod');
  t.equal(after.status['phase'], 'Failed', 'with the status');
  const deletes = receiver.calls('DELETE', `/api/v1/namespaces/default/pods/web-${NODE}`);
  t.equal(deletes.length, 1);
  t.same(deletes[0]?.body, { kind: 'DeleteOptions', apiVersion: 'v1', gracePeriodSeconds: 0, preconditions: { uid: before.metadata.uid } }, 'grace 0, uid precondition');
  t.equal(receiver.calls('POST', '/api/v1/namespaces/default/pods').length, 3);
});

t.test('a mirror pod someone deleted is created again: on the next status patch', async (t) => {
  const { receiver, publisher, synced, set, lines } = await setup(t);
  publisher.start();
  await synced();
  const before = mirrorOf(receiver, WEB);
  receiver.pods.delete(WEB);
  set([pod('web', { phase: 'Succeeded' }), pod('db')]);
  await synced('the mirror pod back');
  t.equal(receiver.calls('PATCH', `/api/v1/namespaces/default/pods/web-${NODE}/status`).at(-2)?.code, 404, 'the patch found it gone');
  const after = mirrorOf(receiver, WEB);
  t.not(after.metadata.uid, before.metadata.uid);
  t.equal(after.status['phase'], 'Succeeded');
  t.ok(lines.some((line) => line.includes(`mirror pod ${WEB} was deleted on the server; creating it again`)));
});

t.test('a mirror pod someone deleted is created again: on the periodic resync', async (t) => {
  const { receiver, publisher, synced } = await setup(t, { publisher: { resyncSeconds: 0.1 } });
  publisher.start();
  await synced();
  const lists = receiver.calls('GET', '/api/v1/pods').length;
  receiver.pods.delete(DB);
  await until(() => receiver.pod(DB) !== undefined && receiver.pod(DB)?.status['phase'] === 'Running', 'the mirror pod back');
  t.ok(receiver.calls('GET', '/api/v1/pods').length > lists, 'found by listing the node again');
});

t.test('a removed static pod: its mirror pod is deleted with its uid as precondition, and NotFound is fine', async (t) => {
  const { receiver, publisher, synced, set, lines } = await setup(t, { pods: [pod('web'), pod('db'), pod('cache')] });
  publisher.start();
  await synced();
  const web = mirrorOf(receiver, WEB);
  set([pod('db'), pod('cache')]);
  await synced('web removed');
  t.equal(receiver.pod(WEB), undefined);
  t.same(receiver.calls('DELETE', `/api/v1/namespaces/default/pods/web-${NODE}`).map((call) => call.body), [
    { kind: 'DeleteOptions', apiVersion: 'v1', gracePeriodSeconds: 0, preconditions: { uid: web.metadata.uid } },
  ]);
  t.ok(lines.includes(`info: publish (kubernetes): deleted mirror pod ${WEB}: no static pod backs it`));

  receiver.pods.delete(DB); // someone deleted it first
  set([pod('cache')]);
  await synced('db removed');
  t.equal(receiver.calls('DELETE', `/api/v1/namespaces/default/pods/db-${NODE}`)[0]?.code, 404);
  t.same(publisher.health(), { ok: true });
  t.same([...receiver.pods.keys()], [`default/cache-${NODE}`]);
});

t.test('mirror pods no static pod backs are deleted; other pods are left alone', async (t) => {
  const ids: Record<string, string> = {};
  const { receiver, publisher, synced } = await setup(t, {
    before: (receiver) => {
      const mirror = (name: string, nodeName: string, annotations: Record<string, string>) =>
        receiver.putPod({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'kube-system', annotations }, spec: { nodeName, containers: [] }, status: { phase: 'Running' } });
      ids['orphan'] = mirror(`old-${NODE}`, NODE, { [CONFIG_MIRROR_ANNOTATION]: 'hash-old' }).metadata.uid;
      mirror('scheduled-abc', NODE, {});
      mirror('static-other-node', 'edge-2', { [CONFIG_MIRROR_ANNOTATION]: 'hash-x' });
    },
  });
  publisher.start();
  await synced();
  t.equal(receiver.pod(`kube-system/old-${NODE}`), undefined, 'the orphan is gone');
  t.same(receiver.calls('DELETE', `/api/v1/namespaces/kube-system/pods/old-${NODE}`)[0]?.body, { kind: 'DeleteOptions', apiVersion: 'v1', gracePeriodSeconds: 0, preconditions: { uid: ids['orphan'] } });
  t.ok(receiver.pod('kube-system/scheduled-abc'), 'a pod that is not a mirror pod stays');
  t.ok(receiver.pod('kube-system/static-other-node'), "another node's mirror pod stays");
  t.equal(receiver.calls('DELETE', /./).length, 1);
});

t.test('AlreadyExists on create: the same hash is adopted, another hash replaced, a pod that is not a mirror pod left alone', async (t) => {
  const { receiver, publisher, synced, set } = await setup(t, { pods: [pod('db')] });
  publisher.start();
  await synced();
  // Another writer creates the pod between podvisor's listing and its create.
  const racing = (name: string, annotations: Record<string, string>) => {
    let uid = '';
    receiver.beforeCreate = (created) => {
      if (created.metadata.name !== name) return;
      receiver.beforeCreate = undefined;
      uid = receiver.putPod({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default', annotations }, spec: { nodeName: NODE }, status: { phase: 'Pending' } }).metadata.uid;
    };
    return () => uid;
  };

  const same = racing(`web-${NODE}`, { [CONFIG_MIRROR_ANNOTATION]: 'hash-1' });
  set([pod('db'), pod('web')]);
  await synced('web adopted');
  t.equal(receiver.calls('POST', '/api/v1/namespaces/default/pods').at(-1)?.code, 409, 'the create met AlreadyExists');
  t.equal(mirrorOf(receiver, WEB).metadata.uid, same(), 'the existing mirror pod kept');
  t.equal(mirrorOf(receiver, WEB).status['phase'], 'Running', 'and its status patched');
  t.equal(receiver.calls('DELETE', /./).length, 0);

  const other = racing(`cache-${NODE}`, { [CONFIG_MIRROR_ANNOTATION]: 'hash-of-another-spec' });
  set([pod('db'), pod('web'), pod('cache')]);
  await synced('cache replaced');
  t.same(receiver.calls('DELETE', `/api/v1/namespaces/default/pods/cache-${NODE}`).map((call) => (call.body as { preconditions: { uid: string } }).preconditions.uid), [other()]);
  t.equal(mirrorOf(receiver, `default/cache-${NODE}`).metadata.annotations?.[CONFIG_MIRROR_ANNOTATION], 'hash-1');

  racing(`api-${NODE}`, {});
  set([pod('db'), pod('web'), pod('cache'), pod('api'), pod('queue')]);
  await until(() => !publisher.health().ok, 'the clash in health');
  t.match(publisher.health().message, new RegExp(`default/api-${NODE}: a pod that is not a mirror pod holds the name`));
  await until(() => receiver.pod(`default/queue-${NODE}`)?.status['phase'] === 'Running' && publisher.pending === 1, 'the other new pod published all the same');
  t.equal(receiver.pod(`default/api-${NODE}`)?.metadata.annotations?.[CONFIG_MIRROR_ANNOTATION], undefined, 'the other pod is left as it is');
  t.equal(receiver.calls('DELETE', `/api/v1/namespaces/default/pods/api-${NODE}`).length, 0);
  t.match(publisher.health().message, /1 not published/, 'the clashing pod is still to do');
});

t.test('a Conflict on a status patch (another pod of the same name) re-reads it and goes on', async (t) => {
  const { receiver, publisher, synced, set } = await setup(t);
  publisher.start();
  await synced();
  const old = mirrorOf(receiver, WEB);
  // Someone deleted the mirror pod and created it again: same name and hash, another uid.
  receiver.pods.delete(WEB);
  const recreated = receiver.putPod({ ...old, metadata: { ...old.metadata, uid: undefined } as unknown as Obj['metadata'] & { name: string; namespace: string } });
  t.not(recreated.metadata.uid, old.metadata.uid);
  set([pod('web', { phase: 'Failed' }), pod('db')]);
  await synced('the patch through');
  const patches = receiver.calls('PATCH', `/api/v1/namespaces/default/pods/web-${NODE}/status`).slice(-2);
  t.same(patches.map((call) => [call.code, (call.body as { metadata: { uid: string } }).metadata.uid]), [
    [409, old.metadata.uid],
    [200, recreated.metadata.uid],
  ]);
  t.equal(mirrorOf(receiver, WEB).status['phase'], 'Failed');
});

t.test('the API server goes away and comes back: the final state is delivered', async (t) => {
  const { receiver, publisher, synced, set, lines, metrics } = await setup(t);
  publisher.start();
  await synced();
  await receiver.stop();
  set([pod('web', { phase: 'Failed' }), pod('db')]);
  await until(() => !publisher.health().ok, 'the failure in health');
  // Refused, or a kept-alive connection the server closed just then.
  t.match(publisher.health().message, /(ECONNREFUSED|ECONNRESET|socket hang up).*failing since/);
  for (let round = 0; round < 30; round++) set([pod('web', { phase: round % 2 ? 'Pending' : 'Failed' }), pod('db'), pod(`extra-${round}`)]);
  set([pod('web', { phase: 'Succeeded' }), pod('cache')]);
  await until(() => publisher.health().message?.includes('3 attempt') === true, 'a few retries');
  t.equal(publisher.pending, 3, 'one state per pod: web, cache and db (to delete)');
  t.equal(await pendingGauge(metrics, 'kubernetes'), 3);
  t.ok((await attempts(metrics, 'kubernetes', 'network')) >= 3);
  t.equal(lines.filter((line) => line.startsWith('warn')).length, 1, 'one warning, not one per retry');

  await receiver.start();
  await synced('the final state');
  t.equal(mirrorOf(receiver, WEB).status['phase'], 'Succeeded');
  t.equal(receiver.pod(DB), undefined);
  t.equal(mirrorOf(receiver, `default/cache-${NODE}`).status['phase'], 'Running');
  t.same([...receiver.pods.keys()].sort(), [`default/cache-${NODE}`, WEB]);
  t.equal(receiver.calls('POST', /\/pods$/).filter((call) => (call.body as Obj).metadata.name.startsWith('extra-')).length, 0, 'states in between were never sent');
  t.ok(lines.some((line) => line.startsWith('info: publish (kubernetes): delivering again')));
});

t.test("a 429 with Retry-After is left alone that long, not retried on the back-off's clock", async (t) => {
  const { receiver, publisher, synced } = await setup(t, { pods: [pod('web')] });
  const refusedAt: number[] = [];
  receiver.retryAfter = '1';
  receiver.beforeCreate = () => {
    refusedAt.push(Date.now());
    return [429, kubeStatus(429, 'TooManyRequests', 'the server has received too many requests and has asked us to try again later')];
  };
  publisher.start();
  // The back-off alone (20 ms doubling to 100 ms) would try ~25 times in these 2.5 s.
  await new Promise((resolve) => setTimeout(resolve, 2500));
  const gaps = refusedAt.slice(1).map((at, i) => at - refusedAt[i]!);
  t.ok(refusedAt.length >= 2 && refusedAt.length <= 3, `2 or 3 creates in 2.5 s (${refusedAt.length})`);
  t.ok(gaps.every((gap) => gap >= 950), `each a second after the last (${gaps.join(', ')} ms)`);
  receiver.beforeCreate = undefined;
  await synced('the mirror pod created once the server takes it');
});

t.test('a wrong token is a failure in health, not ignored', async (t) => {
  const { receiver, publisher, metrics } = await setup(t, { token: 'wrong' });
  publisher.start();
  await until(() => !publisher.health().ok, 'the failure in health');
  t.match(publisher.health().message, /HTTP 401 Unauthorized/);
  t.ok((await attempts(metrics, 'kubernetes', 'rejected')) >= 1);
  t.equal(receiver.nodes.size + receiver.pods.size, 0);
});

t.test('without a node on the server or in the agent, nothing is created and health says why', async (t) => {
  const receiver = new KubeTestReceiver();
  await receiver.start();
  t.teardown(() => receiver.stop());
  const { input, set } = storeInput([pod('web')], false);
  const { logger } = recordingLogger();
  const publisher = new KubernetesPublisher({ input, logger, connection: parseKubeconfig(kubeconfig(receiver.url, TOKEN), '/test/kubeconfig'), retry: { initialMs: 20, maxMs: 50 } });
  t.teardown(() => publisher.stop());
  publisher.start();
  await until(() => !publisher.health().ok, 'the failure in health');
  t.match(publisher.health().message, /node edge-1 is not registered, and the agent has no node object/);
  t.equal(receiver.pods.size, 0);
  t.equal(receiver.calls('GET', /\/leases\//).length + receiver.calls('POST', /\/leases$/).length, 0, 'no lease for a node the server does not have');
  set([pod('web')], node());
  await until(() => receiver.pod(WEB)?.status['phase'] === 'Running', 'published once the node is known');
  await until(() => receiver.lease(NODE)?.metadata.ownerReferences?.[0]?.uid === receiver.nodes.get(NODE)?.metadata.uid, 'and the lease created, owned by the node');
});

t.test('stop() is bounded while the API server never answers', async (t) => {
  // A server that accepts connections and never answers them.
  const sockets = new Set<Socket>();
  const silent = createServer((socket) => {
    sockets.add(socket);
    socket.resume(); // reads (and drops) the request, so that the client closing is seen
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => silent.close(() => resolve())));
  const address = silent.address() as AddressInfo;
  const { input } = storeInput([pod('web')]);
  const { logger } = recordingLogger();
  const stuck = new KubernetesPublisher({ input, logger, connection: parseKubeconfig(kubeconfig(`http://127.0.0.1:${address.port}`, TOKEN), '/test/kubeconfig'), stopTimeoutSeconds: 0.1, timeoutSeconds: 3600 });
  stuck.start();
  await until(() => sockets.size === 1, 'the request sent');
  t.same(stuck.health(), { ok: true, message: 'nothing delivered yet' }, 'health answers while the request hangs');
  await stuck.stop();
  await until(() => sockets.size === 0, 'the hanging request cancelled');
});
