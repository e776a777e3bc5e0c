// Lists and gets over real HTTP: PodList, EventList and NodeList with the store's
// resourceVersion, namespaced and all-namespaces paths, one object by name, and the NotFound
// Status a client prints for what is not there.
import t from 'tap';
import { fixtureEvents, fixturePods, get, names, NODE_NAME, startApi } from './fixtures/api.js';

t.test('a PodList of all namespaces carries the store\'s version; each pod its own', async (t) => {
  const { base, store } = await startApi(t);
  const answer = await get(`${base}/api/v1/pods`);
  t.equal(answer.status, 200);
  t.match(answer.headers['content-type'], /^application\/json/);
  const list = answer.json();
  t.equal(list.kind, 'PodList');
  t.equal(list.apiVersion, 'v1');
  t.equal(list.metadata.resourceVersion, String(store.version));
  t.strictSame(names(list.items).sort(), names(fixturePods()).sort());
  for (const item of list.items) {
    t.equal(item.metadata.resourceVersion, store.get('pods', item.metadata.namespace, item.metadata.name)?.metadata.resourceVersion, `${item.metadata.name} has its stored version`);
    t.match(item.metadata.ownerReferences, [{ kind: 'Node', name: NODE_NAME, controller: true }], `${item.metadata.name} is owned by the node`);
  }
});

t.test('a namespaced PodList holds only that namespace\'s pods', async (t) => {
  const { base } = await startApi(t);
  const infra = (await get(`${base}/api/v1/namespaces/infra/pods`)).json();
  t.equal(infra.kind, 'PodList');
  t.strictSame(names(infra.items), ['db-node1']);
  const byDefault = (await get(`${base}/api/v1/namespaces/default/pods`)).json();
  t.strictSame(names(byDefault.items).sort(), ['job-node1', 'pending-node1', 'web-node1']);
  const none = await get(`${base}/api/v1/namespaces/nowhere/pods`);
  t.equal(none.status, 200, 'an empty namespace lists, as the API server does');
  t.strictSame(none.json().items, []);
});

t.test('one pod by name, and its status subresource', async (t) => {
  const { base, store } = await startApi(t);
  const answer = await get(`${base}/api/v1/namespaces/infra/pods/db-node1`);
  t.equal(answer.status, 200);
  t.strictSame(answer.json(), store.get('pods', 'infra', 'db-node1'));
  const status = await get(`${base}/api/v1/namespaces/infra/pods/db-node1/status`);
  t.equal(status.status, 200);
  t.equal(status.json().metadata.name, 'db-node1');
});

t.test('a missing pod is a 404 NotFound Status naming it', async (t) => {
  const { base } = await startApi(t);
  for (const path of ['/api/v1/namespaces/default/pods/nope', '/api/v1/namespaces/infra/pods/web-node1']) {
    const answer = await get(`${base}${path}`);
    t.equal(answer.status, 404, path);
    const name = path.split('/').at(-1)!;
    t.match(answer.json(), { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404, message: `pods "${name}" not found`, details: { name, kind: 'pods' } }, path);
  }
});

t.test('an unknown path or subresource is a 404 Status', async (t) => {
  const { base } = await startApi(t);
  for (const path of ['/api/v1/configmaps', '/apis/apps/v1/deployments', '/api/v1/namespaces/default/pods/web-node1/log', '/api/v1/namespaces/default/nodes', '/api/v2/pods', '/nothing']) {
    const answer = await get(`${base}${path}`);
    t.equal(answer.status, 404, path);
    t.match(answer.json(), { kind: 'Status', reason: 'NotFound', code: 404 }, path);
  }
});

t.test('EventList: all namespaces, one namespace, one event', async (t) => {
  const { base, store } = await startApi(t);
  const all = (await get(`${base}/api/v1/events`)).json();
  t.equal(all.kind, 'EventList');
  t.equal(all.metadata.resourceVersion, String(store.version));
  t.strictSame(names(all.items).sort(), names(fixtureEvents()).sort());
  const infra = (await get(`${base}/api/v1/namespaces/infra/events`)).json();
  t.strictSame(infra.items.map((event: { reason: string }) => event.reason), ['BackOff']);
  t.match(infra.items[0], { kind: 'Event', involvedObject: { kind: 'Pod', name: 'db-node1', namespace: 'infra' }, count: 5, type: 'Warning', source: { component: 'podvisor', host: NODE_NAME } });
  const one = await get(`${base}/api/v1/namespaces/infra/events/${infra.items[0].metadata.name}`);
  t.equal(one.status, 200);
  t.equal(one.json().reason, 'BackOff');
});

t.test('NodeList and the node by name', async (t) => {
  const { base, store } = await startApi(t);
  const list = (await get(`${base}/api/v1/nodes`)).json();
  t.equal(list.kind, 'NodeList');
  t.equal(list.metadata.resourceVersion, String(store.version));
  t.strictSame(names(list.items), [NODE_NAME]);
  const node = await get(`${base}/api/v1/nodes/${NODE_NAME}`);
  t.equal(node.status, 200);
  t.match(node.json(), { kind: 'Node', metadata: { name: NODE_NAME }, status: { conditions: [{ type: 'MemoryPressure' }, { type: 'DiskPressure' }, { type: 'PIDPressure' }, { type: 'Ready', status: 'True' }] } });
  const missing = await get(`${base}/api/v1/nodes/other`);
  t.equal(missing.status, 404);
  t.match(missing.json(), { reason: 'NotFound', message: 'nodes "other" not found' });
});

t.test('/pods is the kubelet\'s PodList of every pod', async (t) => {
  const { base, store } = await startApi(t);
  const answer = await get(`${base}/pods`);
  t.equal(answer.status, 200);
  const list = answer.json();
  t.equal(list.kind, 'PodList');
  t.equal(list.metadata.resourceVersion, String(store.version));
  t.strictSame(list.items, store.list('pods'));
});

t.test('a list reflects the store as it is now', async (t) => {
  const { base, store } = await startApi(t);
  const before = (await get(`${base}/api/v1/pods`)).json();
  store.replace('pods', fixturePods().filter((pod) => pod.metadata.name !== 'job-node1'));
  const after = (await get(`${base}/api/v1/pods`)).json();
  t.notOk(names(after.items).includes('job-node1'));
  t.ok(Number(after.metadata.resourceVersion) > Number(before.metadata.resourceVersion), 'the version moved on with the deletion');
});

t.test('a malformed percent-escape in a path is the client\'s error, not the server\'s', async (t) => {
  const { base, logLines } = await startApi(t);
  const answer = await get(`${base}/api/v1/namespaces/%E0%A4%A/pods`);
  // BUG (src/api/server.ts parseResourcePath, decodeURIComponent at lines 64/73): a malformed
  // escape throws URIError, which #handle answers as a 500 InternalError and logs as a server
  // error. It should be a 4xx (the API server answers 400 or 404) and not be logged as a failure.
  t.ok(answer.status >= 400 && answer.status < 500, `a 4xx (got ${answer.status}: ${answer.text})`);
  t.strictSame(logLines.filter((line) => line.startsWith('error')), [], 'no error logged for a bad client path');
});
