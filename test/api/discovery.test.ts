// Discovery as a Kubernetes client reads it before anything else: /api, /api/v1, /apis and
// /version, served by a real ApiServer on 127.0.0.1. Only read verbs may be advertised: a client
// must never learn of a verb the agent refuses.
import t from 'tap';
import { get, NODE_NAME, startApi } from './fixtures/api.js';

t.test('/api lists the core group\'s one version and the address the client used', async (t) => {
  const { base, port } = await startApi(t);
  const answer = await get(`${base}/api`);
  t.equal(answer.status, 200);
  t.match(answer.headers['content-type'], /^application\/json/);
  const body = answer.json();
  t.equal(body.kind, 'APIVersions');
  t.strictSame(body.versions, ['v1']);
  t.strictSame(body.serverAddressByClientCIDRs, [{ clientCIDR: '0.0.0.0/0', serverAddress: `127.0.0.1:${port}` }]);
});

t.test('/api/v1 lists pods, pods/status, events and nodes with read verbs only', async (t) => {
  const { base } = await startApi(t);
  const answer = await get(`${base}/api/v1`);
  t.equal(answer.status, 200);
  const body = answer.json();
  t.match(body, { kind: 'APIResourceList', groupVersion: 'v1' });
  const byName = new Map<string, { name: string; namespaced: boolean; kind: string; verbs: string[] }>(body.resources.map((resource: { name: string }) => [resource.name, resource]));
  t.match(byName.get('pods'), { namespaced: true, kind: 'Pod' });
  t.strictSame(byName.get('pods')?.verbs, ['get', 'list', 'watch']);
  t.match(byName.get('events'), { namespaced: true, kind: 'Event' });
  t.strictSame(byName.get('events')?.verbs, ['get', 'list', 'watch']);
  t.match(byName.get('nodes'), { namespaced: false, kind: 'Node' });
  t.strictSame(byName.get('nodes')?.verbs, ['get', 'list', 'watch']);
  t.strictSame(byName.get('pods/status')?.verbs, ['get']);
  for (const resource of byName.values()) {
    t.strictSame(resource.verbs.filter((verb) => !['get', 'list', 'watch'].includes(verb)), [], `${resource.name} advertises no write verb`);
  }
  t.strictSame([...byName.keys()].filter((name) => !/^(pods|events|nodes)(\/status)?$/.test(name)), [], 'nothing else is advertised');
});

t.test('/apis has no named groups', async (t) => {
  const { base } = await startApi(t);
  const answer = await get(`${base}/apis`);
  t.equal(answer.status, 200);
  t.strictSame(answer.json(), { kind: 'APIGroupList', apiVersion: 'v1', groups: [] });
});

t.test('/version says which Kubernetes it follows and that it is podvisor', async (t) => {
  const { base } = await startApi(t, { podvisorVersion: '9.8.7' });
  const answer = await get(`${base}/version`);
  t.equal(answer.status, 200);
  const body = answer.json();
  t.equal(body.major, '1');
  t.match(body.minor, /^\d+$/);
  t.equal(body.gitVersion, `v1.${body.minor}.0-podvisor.9.8.7`);
  t.match(body.platform, /^linux\/\w+$/);
});

t.test('/version is not to be cached; other answers are private and revalidated', async (t) => {
  const { base } = await startApi(t);
  t.equal((await get(`${base}/version`)).headers['cache-control'], 'no-store');
  t.equal((await get(`${base}/api/v1/pods`)).headers['cache-control'], 'no-cache, private');
});

t.test('the node\'s Lease (kubectl describe node reads it) renews with the Ready heartbeat', async (t) => {
  const { base, store } = await startApi(t);
  const answer = await get(`${base}/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${NODE_NAME}`);
  t.equal(answer.status, 200);
  const node = store.get('nodes', undefined, NODE_NAME) as unknown as { metadata: { uid: string }; status: { conditions: { type: string; lastHeartbeatTime: string }[] } };
  const heartbeat = node.status.conditions.find((condition) => condition.type === 'Ready')!.lastHeartbeatTime;
  t.match(answer.json(), { kind: 'Lease', apiVersion: 'coordination.k8s.io/v1', metadata: { name: NODE_NAME, namespace: 'kube-node-lease', uid: node.metadata.uid }, spec: { holderIdentity: NODE_NAME, leaseDurationSeconds: 40, renewTime: heartbeat.replace(/Z$/, '.000000Z') } });
  const missing = await get(`${base}/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/other`);
  t.equal(missing.status, 404);
  t.match(missing.json(), { kind: 'Status', reason: 'NotFound', message: 'leases.coordination.k8s.io "other" not found' });
});
