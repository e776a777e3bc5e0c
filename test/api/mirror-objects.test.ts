// The objects readers see, made from what the status owner computed: a mirror pod (the config
// hash as kubernetes.io/config.mirror, owned by the Node, a manifest error as an annotation and a
// condition), a v1 Event naming the static pod by its config hash, the Node with a Ready
// condition that follows the agent's health, and the MirrorFeed that keeps a store up to date.
import t from 'tap';
import { CONFIG_HASH_ANNOTATION, CONFIG_SEEN_ANNOTATION } from '../../src/manifest/identity.js';
import { MirrorFeed } from '../../src/mirror/mirror-feed.js';
import { CONFIG_MIRROR_ANNOTATION, mirrorPod, v1Event } from '../../src/mirror/mirror-pod.js';
import { MirrorStore, type StoreChange } from '../../src/mirror/mirror-store.js';
import { nodeObject, nodeUid } from '../../src/mirror/node-object.js';
import type { PodEvent } from '../../src/status/event-recorder.js';
import type { StatusPod } from '../../src/status/status-manager.js';
import { FACTS, NODE_NAME, NODE_REF, podEvent, SHAPES, statusPod, mirror } from './fixtures/api.js';

t.test('a mirror pod: config.mirror from the hash, owned by its node, metadata trimmed', async (t) => {
  const pod = statusPod(SHAPES.web);
  pod.metadata = { ...pod.metadata, resourceVersion: '42', finalizers: ['x'], generation: 3 };
  const mirrored = mirrorPod(pod, NODE_REF);
  t.equal(mirrored.metadata.annotations[CONFIG_MIRROR_ANNOTATION], 'hash-web-node1');
  t.equal(mirrored.metadata.annotations[CONFIG_HASH_ANNOTATION], 'hash-web-node1');
  t.strictSame(mirrored.metadata.ownerReferences, [{ apiVersion: 'v1', kind: 'Node', name: NODE_NAME, uid: nodeUid(FACTS), controller: true }]);
  t.strictSame(Object.keys(mirrored.metadata).sort(), ['annotations', 'creationTimestamp', 'labels', 'name', 'namespace', 'ownerReferences', 'uid']);
  t.strictSame(mirrored.spec, pod.spec);
  t.strictSame(mirrored.status, pod.status);
  t.equal(pod.metadata.annotations?.[CONFIG_MIRROR_ANNOTATION], undefined, 'the status pod itself is left alone');
});

t.test('a pod not started yet exists since its manifest was first seen; namespace defaults', async (t) => {
  const pod: StatusPod = { ...statusPod({ name: 'new-node1' }), metadata: { name: 'new-node1', annotations: { [CONFIG_SEEN_ANNOTATION]: '2025-03-01T10:00:00.123456789Z' } } };
  const mirrored = mirrorPod(pod, NODE_REF);
  t.equal(mirrored.metadata.creationTimestamp, '2025-03-01T10:00:00Z');
  t.equal(mirrored.metadata.namespace, 'default');
  t.equal(mirrored.metadata.uid, '');
  t.equal(mirrored.metadata.annotations[CONFIG_MIRROR_ANNOTATION], undefined, 'no hash, no config.mirror');
});

t.test('a v1 Event names the static pod by its config hash when given one', async (t) => {
  const pod = mirror(SHAPES.web);
  const recorded = podEvent(pod, 'Normal', 'Started', 'Started container app');
  const event = v1Event(recorded, NODE_NAME, 'hash-web-node1');
  t.match(event, {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name: recorded.name, namespace: 'default', creationTimestamp: recorded.firstTimestamp },
    involvedObject: { apiVersion: 'v1', kind: 'Pod', name: 'web-node1', namespace: 'default', uid: 'hash-web-node1', fieldPath: 'spec.containers{app}' },
    source: { component: 'podvisor', host: NODE_NAME },
    reportingComponent: 'podvisor',
    reportingInstance: NODE_NAME,
    eventTime: null,
    count: 1,
  });
  t.equal(v1Event(recorded, NODE_NAME).involvedObject.uid, pod.metadata.uid, 'without one: the pod\'s uid');
  t.equal(v1Event(recorded, NODE_NAME).metadata.uid, event.metadata.uid, 'the event\'s own uid is stable');
});

t.test('the Node: Ready follows health, the pressure conditions are quiet, capacity from the facts', async (t) => {
  const ready = nodeObject(FACTS, { ready: true, message: 'fine', since: '2025-01-01T00:00:00Z', heartbeat: '2025-01-01T00:05:00Z' }, '2024-12-31T00:00:00Z');
  t.match(ready.metadata, { name: NODE_NAME, uid: nodeUid(FACTS), creationTimestamp: '2024-12-31T00:00:00Z', labels: { 'kubernetes.io/hostname': NODE_NAME, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64' } });
  t.strictSame(ready.status.capacity, { cpu: '4', memory: '4194304Ki', pods: '110' });
  t.strictSame(ready.status.conditions.map((condition) => `${condition.type}=${condition.status}`), ['MemoryPressure=False', 'DiskPressure=False', 'PIDPressure=False', 'Ready=True']);
  t.match(ready.status.conditions[3], { reason: 'KubeletReady', message: 'fine', lastTransitionTime: '2025-01-01T00:00:00Z', lastHeartbeatTime: '2025-01-01T00:05:00Z' });
  t.strictSame(ready.status.addresses, [{ type: 'InternalIP', address: FACTS.hostIP }, { type: 'Hostname', address: FACTS.hostname }]);
  t.equal(ready.status.daemonEndpoints.kubeletEndpoint.Port, FACTS.apiPort);
  const notReady = nodeObject(FACTS, { ready: false, message: 'reconcile: stuck', since: 's', heartbeat: 'h' }, 'c');
  t.match(notReady.status.conditions[3], { type: 'Ready', status: 'False', reason: 'KubeletNotReady', message: 'reconcile: stuck' });
});

t.test('MirrorFeed.sync fills the store; unchanged status changes nothing; heartbeats move on', async (t) => {
  let now = Date.parse('2025-06-01T12:00:00Z');
  const pods = [statusPod(SHAPES.web), statusPod(SHAPES.db)];
  const events: PodEvent[] = [podEvent(mirror(SHAPES.web), 'Normal', 'Started', 'Started container app')];
  let health = { ready: true, message: 'podvisor is supervising its pods' };
  const store = new MirrorStore({ initialVersion: 0 });
  const feed = new MirrorFeed({ store, status: { pods: () => pods, events: { list: () => events } }, facts: FACTS, health: () => health, now: () => now });
  t.strictSame(feed.node, NODE_REF);
  feed.sync();
  t.strictSame(store.list('pods').map((pod) => pod.metadata.name), ['web-node1', 'db-node1'], 'default/web-node1, then infra/db-node1');
  const [event] = store.list('events') as unknown as { involvedObject: { uid: string } }[];
  t.equal(event!.involvedObject.uid, 'hash-web-node1', 'the event names the pod by its config hash');
  t.equal(store.list('nodes').length, 1);

  const changes: StoreChange[] = [];
  store.subscribe((change) => changes.push(change));
  now += 10_000;
  feed.sync();
  t.strictSame(changes, [], 'nothing changed, and the heartbeat is not due');

  now += 60_000;
  feed.sync();
  t.strictSame(changes.map((change) => `${change.type} ${change.resource}`), ['MODIFIED nodes'], 'the heartbeat moved on');

  changes.length = 0;
  health = { ready: false, message: 'reconcile: no pass for 95 s' };
  feed.sync();
  const node = changes[0]?.object as unknown as { status: { conditions: { type: string; status: string; lastTransitionTime: string }[] } };
  t.match(node.status.conditions.find((condition) => condition.type === 'Ready'), { status: 'False', lastTransitionTime: '2025-06-01T12:01:10Z' });

});
