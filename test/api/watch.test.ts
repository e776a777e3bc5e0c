// Watches over real HTTP (`?watch=true`, one JSON event a line) following a real MirrorStore as
// the feed changes it with store.replace: the start from "0" and from a list's resourceVersion,
// selectors that objects enter and leave, one-row Tables, and the ways a watch ends.
import t from 'tap';
import { fixtureNode, fixturePods, mirror, SHAPES, startApi, TABLE_ACCEPT, watch, type WatchStream } from './fixtures/api.js';
import type { MirrorStore } from '../../src/mirror/mirror-store.js';
import type { V1Node } from '../../src/mirror/node-object.js';

const summary = (stream: WatchStream) => stream.events.map((event) => `${event.type} ${event.object.metadata?.name ?? event.object.rows?.[0]?.cells[0]}`);

/** The fixture pods with some replaced, dropped or added. */
function podsWith(store: MirrorStore, change: { replace?: Parameters<typeof mirror>[0][]; drop?: string[]; add?: Parameters<typeof mirror>[0][] }): void {
  const replaced = new Map((change.replace ?? []).map((shape) => [shape.name, mirror(shape)]));
  const pods = fixturePods()
    .filter((pod) => !(change.drop ?? []).includes(pod.metadata.name))
    .map((pod) => replaced.get(pod.metadata.name) ?? pod);
  store.replace('pods', [...pods, ...(change.add ?? []).map((shape) => mirror(shape))]);
}

t.test('from "0": ADDED for every pod there is, then each change as it happens', async (t) => {
  const { base, store } = await startApi(t);
  const stream = await watch(t, `${base}/api/v1/pods?watch=true&resourceVersion=0`);
  t.equal(stream.status, 200);
  t.match(stream.headers['content-type'], /^application\/json/);
  await stream.atLeast(4);
  t.strictSame(summary(stream), ['ADDED job-node1', 'ADDED pending-node1', 'ADDED web-node1', 'ADDED db-node1'], 'the existing pods, by namespace and name');
  for (const event of stream.events) t.equal(event.object.metadata.resourceVersion, store.get('pods', event.object.metadata.namespace, event.object.metadata.name)?.metadata.resourceVersion);

  podsWith(store, { replace: [{ ...SHAPES.web, restarts: 1 }] });
  const modified = (await stream.atLeast(5))[4]!;
  t.equal(modified.type, 'MODIFIED');
  t.equal(modified.object.metadata.name, 'web-node1');
  t.equal(modified.object.status.containerStatuses[0].restartCount, 1);
  t.equal(modified.object.metadata.resourceVersion, String(store.version), 'the change\'s version');

  podsWith(store, { replace: [{ ...SHAPES.web, restarts: 1 }], drop: ['job-node1'] });
  const deleted = (await stream.atLeast(6))[5]!;
  t.equal(deleted.type, 'DELETED');
  t.equal(deleted.object.metadata.name, 'job-node1');
  t.equal(deleted.object.metadata.resourceVersion, String(store.version), 'a deletion has a version of its own');

  podsWith(store, { replace: [{ ...SHAPES.web, restarts: 1 }], drop: ['job-node1'], add: [{ name: 'new-node1' }] });
  await stream.atLeast(7);
  t.strictSame(summary(stream).slice(4), ['MODIFIED web-node1', 'DELETED job-node1', 'ADDED new-node1']);

  store.replace('pods', store.list('pods'));
  podsWith(store, { replace: [{ ...SHAPES.web, restarts: 1 }], drop: ['job-node1'], add: [{ name: 'new-node1' }, { name: 'last-node1' }] });
  await stream.atLeast(8);
  t.strictSame(summary(stream).slice(7), ['ADDED last-node1'], 'replacing with what is there already sends nothing');
  t.notOk(stream.ended, 'the watch is still open');
});

t.test('without a resourceVersion the watch starts like "0"', async (t) => {
  const { base } = await startApi(t);
  const stream = await watch(t, `${base}/api/v1/namespaces/infra/pods?watch=1`);
  await stream.atLeast(1);
  t.strictSame(summary(stream), ['ADDED db-node1']);
});

t.test('from a list\'s resourceVersion: only the changes after it', async (t) => {
  const { base, store } = await startApi(t);
  const listed = store.version;
  podsWith(store, { replace: [{ ...SHAPES.web, restarts: 2 }], drop: ['job-node1'], add: [{ name: 'new-node1' }] });
  const stream = await watch(t, `${base}/api/v1/pods?watch=true&resourceVersion=${listed}`);
  // A change after the watch opened: once it is here, everything before it has been sent.
  podsWith(store, { replace: [{ ...SHAPES.web, restarts: 2 }], drop: ['job-node1'], add: [{ name: 'new-node1' }, { name: 'sentinel-node1' }] });
  await stream.eventFor('sentinel-node1');
  const seen = summary(stream);
  t.notOk(seen.some((line) => /db-node1|pending-node1/.test(line)), 'nothing for pods unchanged since the version');
  t.ok(seen.includes('ADDED new-node1'), 'a pod added after the version is ADDED');
  t.equal(seen.at(-1), 'ADDED sentinel-node1');
  // BUG (src/api/watch.ts lines 100-101, serveWatch): the watch counts as "had" only the objects whose
  // current version is <= the one given, so a pod modified after it arrives as ADDED (the API
  // server sends MODIFIED) and a pod deleted after it is never sent at all: the DELETED change
  // finds it not "inside" and drops it. A client that listed at that version keeps the deleted
  // pod until it lists again.
  t.ok(seen.includes('DELETED job-node1'), `the pod deleted after the version arrives as DELETED (got ${JSON.stringify(seen)})`);
  t.ok(seen.includes('MODIFIED web-node1'), `the pod modified after the version arrives as MODIFIED (got ${JSON.stringify(seen)})`);
});

t.test('a version the store has not reached yet: the watch waits for it', async (t) => {
  const { base, store } = await startApi(t);
  const stream = await watch(t, `${base}/api/v1/pods?watch=true&resourceVersion=${store.version}`);
  podsWith(store, { add: [{ name: 'new-node1' }] });
  await stream.atLeast(1);
  t.strictSame(summary(stream), ['ADDED new-node1']);
});

t.test('a pod leaving the label selector is DELETED; coming back, ADDED', async (t) => {
  const { base, store } = await startApi(t);
  const stream = await watch(t, `${base}/api/v1/pods?watch=true&labelSelector=${encodeURIComponent('tier=frontend')}`);
  await stream.atLeast(1);
  podsWith(store, { replace: [{ ...SHAPES.web, labels: { app: 'web', tier: 'backend' } }] });
  await stream.atLeast(2);
  podsWith(store, { replace: [{ ...SHAPES.web, labels: { app: 'web', tier: 'backend' } }, { ...SHAPES.db, labels: { app: 'db', tier: 'frontend' } }] });
  await stream.atLeast(3);
  podsWith(store, { replace: [{ ...SHAPES.web, restarts: 4 }, { ...SHAPES.db, labels: { app: 'db', tier: 'frontend' } }] });
  await stream.atLeast(4);
  t.strictSame(summary(stream), ['ADDED web-node1', 'DELETED web-node1', 'ADDED db-node1', 'ADDED web-node1']);
  t.equal(stream.events[1]!.object.metadata.labels.tier, 'backend', 'DELETED carries the pod as it is now');
});

t.test('a pod leaving a field selector (its phase changed) is DELETED', async (t) => {
  const { base, store } = await startApi(t);
  const stream = await watch(t, `${base}/api/v1/pods?watch=true&fieldSelector=${encodeURIComponent('status.phase=Running')}`);
  await stream.atLeast(2);
  podsWith(store, { replace: [{ ...SHAPES.web, phase: 'Succeeded' }] });
  await stream.atLeast(3);
  t.strictSame(summary(stream), ['ADDED web-node1', 'ADDED db-node1', 'DELETED web-node1']);
});

t.test('a namespaced watch sees only its namespace', async (t) => {
  const { base, store } = await startApi(t);
  const stream = await watch(t, `${base}/api/v1/namespaces/infra/pods?watch=true`);
  await stream.atLeast(1);
  podsWith(store, { replace: [{ ...SHAPES.web, restarts: 9 }], add: [{ name: 'other-node1', namespace: 'infra' }] });
  await stream.atLeast(2);
  t.strictSame(summary(stream), ['ADDED db-node1', 'ADDED other-node1']);
});

t.test('events and nodes are watched the same way', async (t) => {
  const { base, store } = await startApi(t);
  const events = await watch(t, `${base}/api/v1/events?watch=true`);
  const nodes = await watch(t, `${base}/api/v1/nodes?watch=true`);
  await events.atLeast(2);
  await nodes.atLeast(1);
  store.replace('events', []);
  await events.atLeast(4);
  t.strictSame(events.events.map((event) => event.type), ['ADDED', 'ADDED', 'DELETED', 'DELETED']);
  const node = fixtureNode();
  store.replace('nodes', [{ ...node, metadata: { ...node.metadata, annotations: { ...node.metadata.annotations, changed: 'yes' } } } as V1Node]);
  await nodes.atLeast(2);
  t.strictSame(nodes.events.map((event) => event.type), ['ADDED', 'MODIFIED'], 'the node watch saw its own change and nothing of the events\'');
});

t.test('a Table watch sends each event as a one-row Table', async (t) => {
  const { base, store } = await startApi(t);
  const stream = await watch(t, `${base}/api/v1/namespaces/default/pods?watch=true&includeObject=Object`, { Accept: TABLE_ACCEPT });
  await stream.atLeast(3);
  podsWith(store, { replace: [{ ...SHAPES.web, restarts: 1 }] });
  await stream.atLeast(4);
  for (const event of stream.events) {
    t.equal(event.object.kind, 'Table');
    t.equal(event.object.apiVersion, 'meta.k8s.io/v1');
    t.equal(event.object.rows.length, 1, 'one row');
    t.equal(event.object.rows[0].object.kind, 'Pod', 'includeObject=Object: the whole pod');
    t.equal(event.object.metadata.resourceVersion, event.object.rows[0].object.metadata.resourceVersion);
  }
  t.strictSame(summary(stream), ['ADDED job-node1', 'ADDED pending-node1', 'ADDED web-node1', 'MODIFIED web-node1']);
  t.match(stream.events[3]!.object.rows[0].cells, ['web-node1', '1/1', 'Running', /^1 /]);
});

t.test('timeoutSeconds ends the watch', async (t) => {
  const { base } = await startApi(t);
  const stream = await watch(t, `${base}/api/v1/pods?watch=true&timeoutSeconds=1`);
  await stream.atLeast(4);
  await stream.end();
  t.ok(stream.ended, 'the server ended the stream');
});

t.test('stop() ends open watches and resolves', async (t) => {
  const { base, server } = await startApi(t);
  const streams = [await watch(t, `${base}/api/v1/pods?watch=true`), await watch(t, `${base}/api/v1/events?watch=true`)];
  await streams[0]!.atLeast(4);
  await server.stop();
  for (const stream of streams) await stream.end();
  t.ok(streams.every((stream) => stream.ended), 'every watch ended');
});
