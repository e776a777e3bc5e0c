// The node's list of invalid files (podvisor.io/invalid-manifests) is for GET /rollout and the
// webhook; the Kubernetes publisher sends a Node's annotations only when it registers it, so the
// list, which changes, is left out rather than left to go stale on the server.
import t from 'tap';
import { KubernetesPublisher } from '../../src/publish/kubernetes.js';
import { parseKubeconfig } from '../../src/publish/kubeconfig.js';
import { INVALID_MANIFESTS_ANNOTATION } from '../../src/rollout/rollout-outcome.js';
import { recordingLogger, untilWithin } from '../support/recording.js';
import { node, NODE, pod, storeInput } from './fixtures.js';
import { kubeconfigFor } from './helpers.js';
import { KubeTestReceiver } from './kube-test-receiver.js';

const TOKEN = 'token-for-the-api-test-receiver';

t.test('a node registered while a file is invalid: the list is not among its annotations', async (t) => {
  const receiver = new KubeTestReceiver({ token: TOKEN });
  await receiver.start();
  t.teardown(() => receiver.stop());
  const withInvalid = node();
  withInvalid.metadata.annotations[INVALID_MANIFESTS_ANNOTATION] = JSON.stringify([{ source: '/m/new.yaml', outcome: 'Invalid', reason: 'ManifestInvalid', message: 'm', since: 's' }]);
  const { input, set } = storeInput([pod('web')], false);
  set([pod('web')], withInvalid);
  const { logger } = recordingLogger();
  const publisher = new KubernetesPublisher({ input, logger, connection: parseKubeconfig(kubeconfigFor(receiver.url, TOKEN), '/test/kubeconfig'), retry: { initialMs: 20, maxMs: 100 }, stopTimeoutSeconds: 0.2 });
  t.teardown(() => publisher.stop());
  publisher.start();
  await untilWithin(15_000)(() => receiver.nodes.has(NODE), 'the node registered');
  const annotations = (receiver.nodes.get(NODE)?.metadata as { annotations?: Record<string, string> } | undefined)?.annotations ?? {};
  t.notOk(INVALID_MANIFESTS_ANNOTATION in annotations, 'left out');
  t.ok(Object.keys(annotations).length > 0, 'the node\'s other annotations are sent');
});
