// Publishing through the running agent, to test receivers on 127.0.0.1 (no real API server can
// run here): the webhook gets the node's PodList, and keeps getting the latest after it was down
// for a while, without supervision waiting for it; a Kubernetes API test receiver gets the mirror
// pods created with their Running status, and a deleted pod's mirror pod goes.
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { KubeTestReceiver } from '../publish/kube-test-receiver.js';
import { WebhookTestReceiver } from '../publish/webhook-test-receiver.js';
import { IMAGE, putManifest, setup, waitFor } from './harness.js';

const manifest = (name: string, marker: string) => `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: main
      image: ${IMAGE}
      command: ["sh", "-c", "trap 'exit 0' TERM; echo ${marker}; while true; do sleep 1; done"]
`;

t.test('webhook: the PodList arrives, and the latest state after the receiver was down', async (t) => {
  const world = await setup(t, 'publish-hook');
  const receiver = new WebhookTestReceiver();
  await receiver.start();
  t.teardown(() => receiver.stop());
  const tokenFile = join(world.root, 'token');
  await writeFile(tokenFile, 's3cret\n');
  await putManifest(world.manifestDir, 'app.yaml', manifest('app', 'one'));
  const agent = await world.startAgent(['--publish-webhook', receiver.url, '--publish-token-file', tokenFile, '--publish-interval', '1']);
  const name = `app-${world.node}`;
  const running = await waitFor('a POST with the pod Running', () =>
    receiver.posts.find((post) => post.body.items.some((item) => item.metadata.name === name && item.status.phase === 'Running')), { timeoutMs: 60_000 });
  t.equal(running.authorization, 'Bearer s3cret', 'the bearer token from the file');
  t.equal(running.hashHeader, running.hash, 'the content hash header matches the body');
  t.equal(running.node, world.node, 'the node is named');
  t.equal(running.body.kind, 'PodList');

  // The receiver goes away; the manifest changes meanwhile: supervision does not wait for it.
  await receiver.stop();
  const hashOf = (post: (typeof receiver.posts)[number]) => post.body.items.find((item) => item.metadata.name === name) as { metadata: { annotations?: Record<string, string> } } | undefined;
  const oldHash = hashOf(running)?.metadata.annotations?.['kubernetes.io/config.hash'];
  await putManifest(world.manifestDir, 'app.yaml', manifest('app', 'two'));
  await agent.waitForCount({ event: 'PodStarted' }, 2, { pod: `default/${name}`, timeoutMs: 60_000 });
  t.pass('the pod was replaced while the endpoint was down');
  await waitFor('the publisher to notice the failure', () => agent.find(/delivery failed/).length > 0, { timeoutMs: 20_000 });

  const before = receiver.posts.length;
  await receiver.start();
  const latest = await waitFor('the new state delivered once the receiver is back', () => {
    const post = receiver.posts.slice(before).find((one) => {
      const item = hashOf(one) as { metadata: { annotations?: Record<string, string> }; status?: { phase: string } } | undefined;
      return item && item.metadata.annotations?.['kubernetes.io/config.hash'] !== oldHash && item.status?.phase === 'Running';
    });
    return post;
  }, { timeoutMs: 60_000 });
  t.ok(latest, 'the final state arrived after the outage');
});

function kubeconfig(server: string, token: string): string {
  return `apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: ${server}
users:
- name: podvisor
  user:
    token: ${token}
contexts:
- name: test
  context: {cluster: test, user: podvisor}
current-context: test
`;
}

t.test('kubernetes: mirror pods created with their status, removed with their pod', async (t) => {
  const world = await setup(t, 'publish-kube');
  const receiver = new KubeTestReceiver({ token: 'kube-token' });
  await receiver.start();
  t.teardown(() => receiver.stop());
  const config = join(world.root, 'kubeconfig');
  await writeFile(config, kubeconfig(receiver.url, 'kube-token'));
  await putManifest(world.manifestDir, 'keep.yaml', manifest('keep', 'k'));
  const gone = await putManifest(world.manifestDir, 'gone.yaml', manifest('gone', 'g'));
  await world.startAgent(['--publish-kubeconfig', config]);
  const keepKey = `default/keep-${world.node}`;
  const goneKey = `default/gone-${world.node}`;
  const mirror = await waitFor('both mirror pods Running in the test receiver', () => {
    const pods = [receiver.pod(keepKey), receiver.pod(goneKey)];
    return pods.every((pod) => pod?.status.phase === 'Running') ? pods : undefined;
  }, { timeoutMs: 60_000 });
  const node = receiver.nodes.get(world.node);
  t.ok(node, 'the node was registered');
  t.match(mirror[0]?.metadata.ownerReferences, [{ kind: 'Node', name: world.node, uid: node?.metadata.uid }], "owned by the Node, with the server's uid for it");
  t.ok(mirror[0]?.metadata.annotations?.['kubernetes.io/config.mirror'], 'the mirror annotation');

  await rm(gone);
  await waitFor('the removed pod\'s mirror pod deleted', () => receiver.pod(goneKey) === undefined, { timeoutMs: 60_000 });
  t.ok(receiver.pod(keepKey), 'the other stays');
  const deletes = receiver.calls('DELETE', /\/pods\//);
  t.ok(deletes.length >= 1, 'deleted with a DELETE');
});
