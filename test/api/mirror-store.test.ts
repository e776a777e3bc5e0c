// The MirrorStore on its own: writers replace a whole kind, the store finds what was added,
// modified and deleted, gives each change a version, leaves unchanged objects their version, and
// keeps a bounded history that changesSince reads (or refuses with ExpiredVersionError).
import t from 'tap';
import { ExpiredVersionError, MirrorStore, type StoreChange, type StoredObject } from '../../src/mirror/mirror-store.js';

interface Thing extends StoredObject {
  metadata: { name: string; namespace?: string; resourceVersion?: string };
  value: number;
}

const thing = (name: string, value = 0, namespace = 'default'): Thing => ({ metadata: { name, namespace }, value });
const summary = (changes: readonly StoreChange[]) => changes.map((change) => `${change.type} ${change.object.metadata.name}@${change.resourceVersion}`);

function recorded(store: MirrorStore): StoreChange[] {
  const changes: StoreChange[] = [];
  store.subscribe((change) => changes.push(change));
  return changes;
}

t.test('new objects are ADDED, each with the next version', async (t) => {
  const store = new MirrorStore({ initialVersion: 10 });
  const changes = recorded(store);
  store.replace('pods', [thing('a'), thing('b')]);
  t.strictSame(summary(changes), ['ADDED a@11', 'ADDED b@12']);
  t.equal(store.version, 12);
  t.equal(store.get('pods', 'default', 'a')?.metadata.resourceVersion, '11');
  t.equal(store.get('pods', 'default', 'b')?.metadata.resourceVersion, '12');
  t.strictSame(changes.map((change) => change.resource), ['pods', 'pods']);
});

t.test('a changed object is MODIFIED; an unchanged one keeps its version and makes no change', async (t) => {
  const store = new MirrorStore({ initialVersion: 0 });
  store.replace('pods', [thing('a'), thing('b')]);
  const changes = recorded(store);
  store.replace('pods', [thing('a', 1), thing('b')]);
  t.strictSame(summary(changes), ['MODIFIED a@3']);
  t.equal(store.get('pods', 'default', 'b')?.metadata.resourceVersion, '2', 'b kept its version');
  t.equal((store.get('pods', 'default', 'a') as Thing).value, 1, 'the store holds the new content');
  store.replace('pods', [thing('a', 1), thing('b')]);
  t.equal(changes.length, 1, 'the same content again: no change');
  t.equal(store.version, 3);
});

t.test('a version the writer brings along is not content: it is ignored', async (t) => {
  const store = new MirrorStore({ initialVersion: 0 });
  store.replace('pods', [thing('a')]);
  const changes = recorded(store);
  store.replace('pods', [{ ...thing('a'), metadata: { name: 'a', namespace: 'default', resourceVersion: '999' } }]);
  t.strictSame(changes, [], 'no change for a different resourceVersion alone');
  t.equal(store.get('pods', 'default', 'a')?.metadata.resourceVersion, '1');
  store.replace('pods', store.list('pods'));
  t.strictSame(changes, [], 'writing back what was listed changes nothing');
});

t.test('an object left out is DELETED, with a version of its own and its last content', async (t) => {
  const store = new MirrorStore({ initialVersion: 0 });
  store.replace('pods', [thing('a', 7), thing('b')]);
  const changes = recorded(store);
  store.replace('pods', [thing('b')]);
  t.strictSame(summary(changes), ['DELETED a@3']);
  t.equal((changes[0]!.object as Thing).value, 7);
  t.equal(changes[0]!.object.metadata.resourceVersion, '3');
  t.equal(store.get('pods', 'default', 'a'), undefined);
  t.strictSame(store.list('pods').map((object) => object.metadata.name), ['b']);
});

t.test('kinds are apart: replacing one leaves the others alone; keys are namespace and name', async (t) => {
  const store = new MirrorStore({ initialVersion: 0 });
  store.replace('pods', [thing('a'), thing('a', 0, 'other')]);
  store.replace('events', [thing('a')]);
  store.replace('nodes', [{ metadata: { name: 'node1' }, value: 0 } as Thing]);
  const changes = recorded(store);
  store.replace('events', []);
  t.strictSame(summary(changes), ['DELETED a@5']);
  t.equal(changes[0]!.resource, 'events');
  t.equal(store.list('pods').length, 2, 'same name, two namespaces: two pods');
  t.ok(store.get('nodes', undefined, 'node1'), 'a cluster-scoped object by name alone');
  t.strictSame(store.list('pods').map((object) => `${object.metadata.namespace}/${object.metadata.name}`), ['default/a', 'other/a'], 'listed by namespace and name');
});

t.test('changesSince: the changes after a version, oldest first', async (t) => {
  const store = new MirrorStore({ initialVersion: 100 });
  store.replace('pods', [thing('a'), thing('b')]);
  store.replace('pods', [thing('a', 1)]);
  t.strictSame(summary(store.changesSince(100)), ['ADDED a@101', 'ADDED b@102', 'MODIFIED a@103', 'DELETED b@104']);
  t.strictSame(summary(store.changesSince(102)), ['MODIFIED a@103', 'DELETED b@104']);
  t.strictSame(store.changesSince(104), [], 'nothing after the newest');
  t.strictSame(store.changesSince(500), [], 'nor after a version not reached yet');
});

t.test('history expiry: a version older than the history kept is ExpiredVersionError', async (t) => {
  const store = new MirrorStore({ initialVersion: 100, historySize: 3 });
  store.replace('pods', [thing('a'), thing('b'), thing('c'), thing('d'), thing('e')]);
  t.equal(store.version, 105);
  t.strictSame(summary(store.changesSince(102)), ['ADDED c@103', 'ADDED d@104', 'ADDED e@105'], 'the oldest version whose changes are all kept');
  t.throws(() => store.changesSince(101), ExpiredVersionError, 'the change after 101 (102) is gone');
  const error = (() => {
    try {
      store.changesSince(100);
    } catch (caught) {
      return caught;
    }
    return undefined;
  })();
  t.match(error, { name: 'ExpiredVersionError', requested: 100, oldest: 102, message: 'too old resource version: 100 (102)' });
});

t.test('a fresh store misses nothing from its first version on', async (t) => {
  const store = new MirrorStore({ initialVersion: 50, historySize: 2 });
  t.strictSame(store.changesSince(50), []);
  t.throws(() => store.changesSince(49), ExpiredVersionError);
});

t.test('by default versions start at the clock, so they grow across restarts', async (t) => {
  const before = Date.now();
  const store = new MirrorStore();
  t.ok(store.version >= before, 'at least the time it was made');
  t.ok(store.version <= Date.now());
});

t.test('subscribe: every change from then on, until unsubscribed', async (t) => {
  const store = new MirrorStore({ initialVersion: 0 });
  store.replace('pods', [thing('a')]);
  const seen: string[] = [];
  const stop = store.subscribe((change) => seen.push(`${change.type} ${change.object.metadata.name}`));
  store.replace('pods', [thing('a'), thing('b')]);
  stop();
  store.replace('pods', []);
  t.strictSame(seen, ['ADDED b']);
});
