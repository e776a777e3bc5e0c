// Lists are serialised once per change of the store and reused for every request until the next
// change (issue 11: a hundred polling clients must not hold the event loop that acts on exits).
// What must not follow from that: an answer older than the store, a Table whose ages stop, or a
// cache that grows with every distinct query.
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { fixturePods, get, mirror, names, SHAPES, startApi, TABLE_ACCEPT } from './fixtures/api.js';

const PATHS = ['/pods', '/api/v1/pods', '/api/v1/namespaces/default/pods', '/api/v1/pods?labelSelector=app%3Dweb'];

t.test('every list answers with the store as it is now, before and after a change', async (t) => {
  const { base, store } = await startApi(t);
  for (const path of PATHS) {
    const first = await get(`${base}${path}`);
    const again = await get(`${base}${path}`);
    t.equal(again.text, first.text, `${path}: unchanged store, same answer`);
  }
  const before = store.version;
  store.replace('pods', [...fixturePods().filter((pod) => pod.metadata.name !== 'web-node1'), mirror({ ...SHAPES.web, restarts: 7 })]);
  t.ok(store.version > before, 'the store changed');
  for (const path of PATHS) {
    const list = (await get(`${base}${path}`)).json();
    t.equal(list.metadata.resourceVersion, String(store.version), `${path}: the new version`);
    const web = list.items.find((item: { metadata: { name: string } }) => item.metadata.name === 'web-node1');
    t.equal(web?.status.containerStatuses[0].restartCount, 7, `${path}: the changed pod as it is now`);
  }
  store.replace('pods', fixturePods().filter((pod) => pod.metadata.name !== 'web-node1'));
  for (const path of PATHS) t.notOk(names((await get(`${base}${path}`)).json().items).includes('web-node1'), `${path}: a deleted pod is gone`);
});

t.test('a Table answer is remade when its ages have moved, even with no change to the store', async (t) => {
  const { base, store } = await startApi(t);
  // A pod 10 s old: its Age prints in seconds, so a second later the cell differs.
  store.replace('pods', [mirror({ name: 'young-node1', ageMs: 10_000 })]);
  const age = async () => (await get(`${base}/api/v1/pods`, { headers: { Accept: TABLE_ACCEPT } })).json().rows[0].cells[4] as string;
  const first = await age();
  t.match(first, /^\d+s$/, 'the age in seconds');
  t.equal(await age(), first, 'asked again at once: the same age');
  await sleep(1600);
  const later = await age();
  t.ok(Number.parseInt(later, 10) > Number.parseInt(first, 10), `1.6 s later the age has moved (${first} → ${later})`);
});

t.test('many distinct queries: each answered right, and the common one still follows the store', async (t) => {
  const { base, store } = await startApi(t);
  for (let i = 0; i < 150; i++) {
    const answer = await get(`${base}/api/v1/pods?labelSelector=${encodeURIComponent(`app=x${i}`)}`);
    t.equal(answer.status, 200);
    t.strictSame(answer.json().items, [], `selector ${i} matches nothing`);
  }
  t.strictSame(names((await get(`${base}/api/v1/pods?labelSelector=app%3Dweb`)).json().items), ['web-node1'], 'a selector that matches');
  store.replace('pods', [...fixturePods(), mirror({ name: 'web2-node1', labels: { app: 'web' } })]);
  t.strictSame(names((await get(`${base}/api/v1/pods?labelSelector=app%3Dweb`)).json().items).sort(), ['web-node1', 'web2-node1'], 'and after a change, the new pod');
});
