// A bad new file from the status owner to GET /rollout: the mirror feed puts the invalid files
// on the node object (no pod can carry them), and the report reads them back from the store.
import t from 'tap';
import { rolloutReport } from '../../src/api/rollout-report.js';
import { MirrorFeed } from '../../src/mirror/mirror-feed.js';
import { MirrorStore } from '../../src/mirror/mirror-store.js';
import { INVALID_MANIFESTS_ANNOTATION, type InvalidManifest } from '../../src/rollout/rollout-outcome.js';
import { FACTS, NODE_NAME } from './fixtures/api.js';

t.test('the invalid files ride on the node, and GET /rollout reads them from the store', async (t) => {
  let invalid: InvalidManifest[] = [{ source: '/etc/pods.d/new.yaml', outcome: 'Invalid', reason: 'ManifestInvalid', message: '/etc/pods.d/new.yaml:8:7: spec.containers[0].image: Required', since: '2026-12-04T10:00:00Z' }];
  const store = new MirrorStore({ initialVersion: 1 });
  const feed = new MirrorFeed({ store, facts: FACTS, health: () => ({ ready: true, message: 'ok' }), status: { pods: () => [], events: { list: () => [] }, invalidManifests: () => invalid } });
  const nodeAnnotations = () => (store.get('nodes', undefined, NODE_NAME) as unknown as { metadata: { annotations: Record<string, string> } }).metadata.annotations;
  const report = () => rolloutReport(store.list('pods') as never, NODE_NAME, String(store.version), store.get('nodes', undefined, NODE_NAME) as never);
  feed.sync();
  t.same(JSON.parse(nodeAnnotations()[INVALID_MANIFESTS_ANNOTATION] ?? '[]'), invalid, 'on the node object');
  t.match(report(), { settled: false, pods: [], invalid }, 'GET /rollout: the file, not settled');
  invalid = [];
  feed.sync();
  t.notOk(INVALID_MANIFESTS_ANNOTATION in nodeAnnotations(), 'none: no annotation');
  t.match(report(), { settled: true, invalid: [] }, 'fixed: settled');
});
