// Merge patches (RFC 7386) from what the API server holds to what podvisor wants.
import t from 'tap';
import { mergePatch } from '../../src/publish/merge-patch.js';

t.test('only what changed, removed keys as null, lists whole', async (t) => {
  const from = { phase: 'Pending', message: 'waiting', qosClass: 'BestEffort', conditions: [{ type: 'Ready', status: 'False' }], nested: { a: 1, b: 2 } };
  const to = { phase: 'Running', qosClass: 'BestEffort', conditions: [{ type: 'Ready', status: 'True' }], nested: { a: 1, b: 3 }, podIP: '10.0.0.2' };
  t.same(mergePatch(from, to), { phase: 'Running', message: null, conditions: [{ type: 'Ready', status: 'True' }], nested: { b: 3 }, podIP: '10.0.0.2' });
});

t.test('equal content is no patch, whatever the key order', async (t) => {
  t.equal(mergePatch({ a: { x: 1, y: [1, { z: 2 }] } }, { a: { y: [1, { z: 2 }], x: 1 } }), undefined);
  t.equal(mergePatch({ a: 1 }, { a: 1, b: undefined }), undefined, 'undefined is absent');
});

t.test('a value that changes type is replaced', async (t) => {
  t.same(mergePatch({ a: { x: 1 } }, { a: 'text' }), { a: 'text' });
  t.same(mergePatch({ a: 'text' }, { a: { x: 1 } }), { a: { x: 1 } });
  t.same(mergePatch({ a: [1, 2] }, { a: [1] }), { a: [1] });
});
