// A mirror pod whose manifest turned invalid: it still shows, running its last good spec, and
// carries the file's first error (file:line:col) as an annotation and a ManifestValid=False
// condition until the file is fixed. Read through the agent's API, as a client would.
import t from 'tap';
import { freePort, IMAGE, putManifest, setup, waitFor } from './harness.js';

const good = (marker: string) => `apiVersion: v1
kind: Pod
metadata:
  name: keeper
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: main
      image: ${IMAGE}
      command: ["sh", "-c", "echo ${marker}; sleep 3600"]
`;

interface Pod {
  metadata: { uid: string; annotations: Record<string, string> };
  status: { phase: string; conditions: { type: string; status: string; reason?: string; message?: string }[] };
}

t.test('an invalid manifest shows on its mirror pod, which keeps its last good spec', async (t) => {
  const world = await setup(t, 'api-invalid');
  const port = await freePort();
  const path = await putManifest(world.manifestDir, 'keeper.yaml', good('one'));
  const agent = await world.startAgent(['--api-address', `127.0.0.1:${port}`]);
  const name = `keeper-${world.node}`;
  await agent.waitForLog({ event: 'PodStarted' }, { pod: `default/${name}`, timeoutMs: 60_000 });
  const get = async (): Promise<Pod> => (await (await fetch(`http://127.0.0.1:${port}/api/v1/namespaces/default/pods/${name}`)).json()) as Pod;
  const before = await waitFor('the pod Running', async () => {
    const pod = await get();
    return pod.status.phase === 'Running' ? pod : undefined;
  });
  t.notOk(before.metadata.annotations['podvisor.io/manifest-error'], 'no error while the file is good');

  // A typo in a field that must be a number: the file is invalid from here on.
  await putManifest(world.manifestDir, 'keeper.yaml', good('two').replace('terminationGracePeriodSeconds: 1', 'terminationGracePeriodSeconds: soon'));
  const broken = await waitFor('the error on the mirror pod', async () => {
    const pod = await get();
    return pod.metadata.annotations['podvisor.io/manifest-error'] ? pod : undefined;
  });
  t.match(broken.metadata.annotations['podvisor.io/manifest-error'], new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:6:3: spec\\.terminationGracePeriodSeconds: `), 'the annotation names the file, line, column and field');
  t.match(broken.status.conditions.find((condition) => condition.type === 'podvisor.io/ManifestValid'), { status: 'False', reason: 'ManifestInvalid', message: /running the last good spec$/ }, 'a ManifestValid=False condition says so');
  t.equal(broken.metadata.uid, before.metadata.uid, 'the same pod, on its last good spec');
  t.equal(broken.status.phase, 'Running', 'still running');

  await putManifest(world.manifestDir, 'keeper.yaml', good('one'));
  const fixed = await waitFor('the error gone once the file is fixed', async () => {
    const pod = await get();
    return pod.metadata.annotations['podvisor.io/manifest-error'] ? undefined : pod;
  });
  t.notOk(fixed.status.conditions.some((condition) => condition.type === 'podvisor.io/ManifestValid'), 'and the condition');
});
