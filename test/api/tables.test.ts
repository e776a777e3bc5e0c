// Server-side printing as kubectl get asks for it (Accept: as=Table): the pod, event and node
// columns with their priorities, the cells for the fixture pods, includeObject=None, Metadata and
// Object, and a 406 for a client that takes nothing but protobuf.
import t from 'tap';
import { get, mirror, NODE_NAME, startApi, TABLE_ACCEPT } from './fixtures/api.js';
import { MirrorStore } from '../../src/mirror/mirror-store.js';

const table = { Accept: TABLE_ACCEPT };

t.test('a pod Table has the API server\'s columns, -o wide ones at priority 1', async (t) => {
  const { base, store } = await startApi(t);
  const answer = await get(`${base}/api/v1/namespaces/default/pods`, { headers: table });
  t.equal(answer.status, 200);
  const body = answer.json();
  t.equal(body.kind, 'Table');
  t.equal(body.apiVersion, 'meta.k8s.io/v1');
  t.equal(body.metadata.resourceVersion, String(store.version));
  t.strictSame(
    body.columnDefinitions.map((column: { name: string; priority: number }) => [column.name, column.priority]),
    [['Name', 0], ['Ready', 0], ['Status', 0], ['Restarts', 0], ['Age', 0], ['IP', 1], ['Node', 1], ['Nominated Node', 1], ['Readiness Gates', 1]],
  );
  t.equal(body.columnDefinitions[0].format, 'name', 'Name is the name column');
  t.equal(body.rows.length, 3);
});

t.test('pod rows: ready count, status, restarts, age, IP, node and gates', async (t) => {
  const { base } = await startApi(t);
  const rows = (await get(`${base}/api/v1/pods`, { headers: table })).json().rows as { cells: unknown[] }[];
  const byName = new Map(rows.map((row) => [row.cells[0], row.cells]));
  t.strictSame(byName.get('web-node1'), ['web-node1', '1/1', 'Running', '0', '5d', '10.88.0.5', NODE_NAME, '<none>', '<none>']);
  const db = byName.get('db-node1')!;
  t.strictSame(db.slice(0, 3), ['db-node1', '1/1', 'Running']);
  t.match(db[3], /^3 \(10m\d*s? ago\)$/, 'restarts with the last one\'s age');
  t.strictSame(byName.get('job-node1')?.slice(0, 3), ['job-node1', '0/1', 'Completed']);
  t.strictSame(byName.get('pending-node1')?.slice(0, 3), ['pending-node1', '0/1', 'ContainerCreating']);
  t.equal(byName.get('pending-node1')?.[5], '<none>', 'no IP yet');
});

t.test('readiness gates print as met/total', async (t) => {
  const store = new MirrorStore({ initialVersion: 1 });
  store.replace('pods', [mirror({ name: 'gated-node1', readinessGates: [{ conditionType: 'example.com/lb', status: 'True' }, { conditionType: 'example.com/dns', status: 'False' }] })]);
  const { base } = await startApi(t, { store });
  const [row] = (await get(`${base}/api/v1/pods`, { headers: table })).json().rows;
  t.equal(row.cells[8], '1/2');
});

t.test('includeObject: Metadata by default, None, Object', async (t) => {
  const { base, store } = await startApi(t);
  const path = `${base}/api/v1/namespaces/infra/pods`;
  const stored = store.get('pods', 'infra', 'db-node1')!;
  const byDefault = (await get(path, { headers: table })).json().rows[0];
  t.strictSame(byDefault.object, { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: stored.metadata });
  const metadata = (await get(`${path}?includeObject=Metadata`, { headers: table })).json().rows[0];
  t.strictSame(metadata.object, byDefault.object);
  const none = (await get(`${path}?includeObject=None`, { headers: table })).json().rows[0];
  t.notOk('object' in none, 'no object at all');
  t.strictSame(none.cells, byDefault.cells);
  const object = (await get(`${path}?includeObject=Object`, { headers: table })).json().rows[0];
  t.strictSame(object.object, stored);
  const bad = await get(`${path}?includeObject=Everything`, { headers: table });
  t.equal(bad.status, 400);
  t.match(bad.json(), { kind: 'Status', reason: 'BadRequest', code: 400 });
});

t.test('one pod by name as a one-row Table', async (t) => {
  const { base } = await startApi(t);
  const body = (await get(`${base}/api/v1/namespaces/default/pods/web-node1`, { headers: table })).json();
  t.equal(body.kind, 'Table');
  t.equal(body.rows.length, 1);
  t.equal(body.rows[0].cells[0], 'web-node1');
});

t.test('an event Table: last seen with the repeat count, object, source, message', async (t) => {
  const { base } = await startApi(t);
  const body = (await get(`${base}/api/v1/namespaces/infra/events`, { headers: table })).json();
  t.strictSame(body.columnDefinitions.map((column: { name: string }) => column.name), ['Last Seen', 'Type', 'Reason', 'Object', 'Subobject', 'Source', 'Message', 'First Seen', 'Count', 'Name']);
  const [cells] = body.rows.map((row: { cells: unknown[] }) => row.cells);
  t.match(cells, ['5h (x5 over 24h)', 'Warning', 'BackOff', 'pod/db-node1', 'spec.containers{db}', `podvisor, ${NODE_NAME}`, 'Back-off restarting failed container db in pod db-node1_infra', '24h', 5, /^db-node1\./]);
});

t.test('a node Table: status from the Ready condition, version, addresses, system info', async (t) => {
  const { base } = await startApi(t);
  const body = (await get(`${base}/api/v1/nodes`, { headers: table })).json();
  t.strictSame(body.columnDefinitions.map((column: { name: string }) => column.name), ['Name', 'Status', 'Roles', 'Age', 'Version', 'Internal-IP', 'External-IP', 'OS-Image', 'Kernel-Version', 'Container-Runtime']);
  t.strictSame(body.rows[0].cells, [NODE_NAME, 'Ready', '<none>', '5d', 'v0.1.0-podvisor', '192.0.2.10', '<none>', 'Debian GNU/Linux 12 (bookworm)', '6.1.0-podvisor-test', 'podman://4.3.1']);
});

t.test('plain JSON when the client does not ask for a Table', async (t) => {
  const { base } = await startApi(t);
  for (const accept of ['application/json', '*/*', 'application/json;as=Table;v=v1;g=other.group,application/json']) {
    const body = (await get(`${base}/api/v1/pods`, { headers: { Accept: accept } })).json();
    t.equal(body.kind, 'PodList', accept);
  }
});

t.test('a client that takes only protobuf gets 406 NotAcceptable', async (t) => {
  const { base } = await startApi(t);
  for (const accept of ['application/vnd.kubernetes.protobuf', 'application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io']) {
    const answer = await get(`${base}/api/v1/pods`, { headers: { Accept: accept } });
    t.equal(answer.status, 406, accept);
    t.match(answer.json(), { kind: 'Status', reason: 'NotAcceptable', code: 406 }, accept);
  }
  const mixed = await get(`${base}/api/v1/pods`, { headers: { Accept: 'application/vnd.kubernetes.protobuf,application/json' } });
  t.equal(mixed.status, 200, 'protobuf first, JSON as the fallback: JSON');
});
