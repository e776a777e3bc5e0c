// Label and field selectors over real HTTP, as kubectl -l and --field-selector send them: every
// label operator, the fields the API server selects pods, events and nodes by, and a 400
// BadRequest Status for a selector that is not understood.
import t from 'tap';
import { parseFieldSelector, parseLabelSelector, SelectorError } from '../../src/api/selectors.js';
import { get, NODE_NAME, startApi } from './fixtures/api.js';

const ALL = ['db-node1', 'job-node1', 'pending-node1', 'web-node1'];

t.test('label selectors: =, ==, !=, in, notin, exists, !key and their conjunction', async (t) => {
  const { base } = await startApi(t);
  const cases: [string, string[]][] = [
    ['app=web', ['web-node1']],
    ['app==web', ['web-node1']],
    ['app!=web', ['db-node1', 'job-node1', 'pending-node1']],
    ['app in (web, db)', ['db-node1', 'web-node1']],
    ['app notin (web,db)', ['job-node1', 'pending-node1']],
    ['tier', ['web-node1']],
    ['!tier', ['db-node1', 'job-node1', 'pending-node1']],
    ['app', ['db-node1', 'job-node1', 'web-node1']],
    ['!app', ['pending-node1']],
    ['app in (web,db),tier', ['web-node1']],
    ['app=web,tier!=frontend', []],
    ['', ALL],
  ];
  for (const [selector, expected] of cases) {
    const answer = await get(`${base}/api/v1/pods?labelSelector=${encodeURIComponent(selector)}`);
    t.equal(answer.status, 200, selector);
    t.strictSame(answer.json().items.map((pod: { metadata: { name: string } }) => pod.metadata.name).sort(), expected, `-l '${selector}'`);
  }
});

t.test('pod field selectors: name, namespace, phase, node, and !=', async (t) => {
  const { base } = await startApi(t);
  const cases: [string, string[]][] = [
    ['metadata.name=web-node1', ['web-node1']],
    ['metadata.namespace=infra', ['db-node1']],
    ['metadata.namespace!=infra', ['job-node1', 'pending-node1', 'web-node1']],
    ['status.phase=Running', ['db-node1', 'web-node1']],
    ['status.phase!=Running', ['job-node1', 'pending-node1']],
    ['status.phase==Succeeded', ['job-node1']],
    [`spec.nodeName=${NODE_NAME}`, ALL],
    ['spec.nodeName=another-node', []],
    ['status.phase=Running,metadata.namespace=default', ['web-node1']],
  ];
  for (const [selector, expected] of cases) {
    const answer = await get(`${base}/api/v1/pods?fieldSelector=${encodeURIComponent(selector)}`);
    t.equal(answer.status, 200, selector);
    t.strictSame(answer.json().items.map((pod: { metadata: { name: string } }) => pod.metadata.name).sort(), expected, `--field-selector '${selector}'`);
  }
});

t.test('selectors combine with the namespace of the path', async (t) => {
  const { base } = await startApi(t);
  const answer = await get(`${base}/api/v1/namespaces/default/pods?labelSelector=app&fieldSelector=status.phase%3DRunning`);
  t.strictSame(answer.json().items.map((pod: { metadata: { name: string } }) => pod.metadata.name), ['web-node1']);
});

t.test('event field selectors: the involved object, reason, type (kubectl describe uses them)', async (t) => {
  const { base } = await startApi(t);
  const cases: [string, string[]][] = [
    ['involvedObject.name=db-node1', ['BackOff']],
    ['involvedObject.kind=Pod', ['BackOff', 'Started']],
    ['involvedObject.namespace=default', ['Started']],
    ['involvedObject.uid=hash-web-node1', ['Started']],
    ['involvedObject.name=web-node1,involvedObject.namespace=default,involvedObject.kind=Pod', ['Started']],
    ['involvedObject.fieldPath=spec.containers{db}', ['BackOff']],
    ['reason=BackOff', ['BackOff']],
    ['type=Warning', ['BackOff']],
    ['type!=Warning', ['Started']],
  ];
  for (const [selector, expected] of cases) {
    const answer = await get(`${base}/api/v1/events?fieldSelector=${encodeURIComponent(selector)}`);
    t.equal(answer.status, 200, selector);
    t.strictSame(answer.json().items.map((event: { reason: string }) => event.reason).sort(), expected, `--field-selector '${selector}'`);
  }
});

t.test('node selectors: metadata.name and labels', async (t) => {
  const { base } = await startApi(t);
  t.equal((await get(`${base}/api/v1/nodes?fieldSelector=metadata.name%3D${NODE_NAME}`)).json().items.length, 1);
  t.equal((await get(`${base}/api/v1/nodes?fieldSelector=metadata.name%3Dother`)).json().items.length, 0);
  t.equal((await get(`${base}/api/v1/nodes?labelSelector=kubernetes.io%2Fos%3Dlinux`)).json().items.length, 1);
});

t.test('an unsupported field is a 400 BadRequest Status: "field label not supported"', async (t) => {
  const { base } = await startApi(t);
  for (const [path, field] of [
    ['/api/v1/pods', 'spec.foo'],
    ['/api/v1/pods', 'metadata.labels'],
    ['/api/v1/events', 'status.phase'],
    ['/api/v1/nodes', 'metadata.namespace'],
  ] as const) {
    const answer = await get(`${base}${path}?fieldSelector=${encodeURIComponent(`${field}=x`)}`);
    t.equal(answer.status, 400, `${path} ${field}`);
    t.match(answer.json(), { kind: 'Status', status: 'Failure', reason: 'BadRequest', code: 400, message: `field label not supported: ${field}` }, `${path} ${field}`);
  }
});

t.test('an unparsable selector is a 400 BadRequest Status, for lists and watches alike', async (t) => {
  const { base } = await startApi(t);
  for (const query of ['labelSelector=a%20b%20c', 'labelSelector=app%3Dweb%2C', 'labelSelector=%2Fbad%3Dx', 'fieldSelector=nonsense', 'watch=true&labelSelector=a%20b%20c', 'watch=true&fieldSelector=spec.foo%3Dx']) {
    const answer = await get(`${base}/api/v1/pods?${query}`);
    t.equal(answer.status, 400, query);
    t.match(answer.json(), { kind: 'Status', reason: 'BadRequest', code: 400 }, query);
  }
});

t.test('the parsers on their own: what matches, and the words of their errors', async (t) => {
  const labels = { metadata: { labels: { app: 'web', 'example.com/role': 'edge' } } };
  t.ok(parseLabelSelector('example.com/role=edge')(labels), 'a prefixed key');
  t.notOk(parseLabelSelector('example.com/role in (core)')(labels));
  t.ok(parseLabelSelector('missing notin (x)')(labels), 'notin matches an object without the label');
  t.notOk(parseLabelSelector('missing=x')({}), 'no labels at all: = does not match');
  t.throws(() => parseLabelSelector('app in (a,b'), SelectorError, 'an unclosed set');
  t.throws(() => parseLabelSelector('app=in valid'), { name: 'SelectorError', message: /unable to parse requirement/ });
  t.throws(() => parseLabelSelector('app=not a value!'), SelectorError);
  t.throws(() => parseFieldSelector('spec.foo=x', 'pods'), { name: 'SelectorError', message: 'field label not supported: spec.foo' });
  t.throws(() => parseFieldSelector('metadata.name', 'pods'), { message: /^invalid selector: 'metadata.name'/ });
  const escaped = parseFieldSelector('metadata.name=a\\,b', 'pods');
  t.ok(escaped({ metadata: { name: 'a,b' } }), 'an escaped comma is part of the value');
  t.notOk(escaped({ metadata: { name: 'a' } }));
  t.ok(parseFieldSelector('', 'nodes')({}), 'an empty selector selects everything');
});
