// Supervision 5b, a manifest removed while the agent was down: the pod is still stopped as its
// spec asks (preStop hook first, then the stop signal), from the spec the agent that made it kept
// beside the pod's volumes, although no manifest describes it any more.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { fileLines, IMAGE, parseStamps, podExists, podsOf, putManifest, setup, stamp, waitFor } from './harness.js';

const LOG = '/data/log';

t.test('a pod whose manifest went away while the agent was down gets its preStop hook', async (t) => {
  const world = await setup(t, 'sv-prestop-off');
  const dir = join(world.root, 'data');
  const path = await putManifest(world.manifestDir, 'hooked.yaml', `apiVersion: v1
kind: Pod
metadata:
  name: hooked
spec:
  terminationGracePeriodSeconds: 10
  volumes:
    - name: data
      hostPath: { path: ${dir}, type: DirectoryOrCreate }
  containers:
    - name: main
      image: ${IMAGE}
      command: ["sh", "-c", ${JSON.stringify(`trap '${stamp('term', LOG)}; exit 0' TERM; ${stamp('up', LOG)}; sleep 3600 & wait`)}]
      volumeMounts: [{ name: data, mountPath: /data }]
      lifecycle:
        preStop:
          exec:
            command: ["sh", "-c", ${JSON.stringify(stamp('prestop', LOG))}]
`);
  const first = await world.startAgent();
  await first.waitForLog({ event: 'PodStarted' }, { pod: `default/hooked-${world.node}`, timeoutMs: 60_000 });
  await waitFor('the container to stamp its start', async () => (await fileLines(join(dir, 'log'))).length > 0, { timeoutMs: 10_000 });
  const id = (await podsOf(world.node))[0]?.Id ?? '';
  t.ok(id, 'the pod runs');

  // The agent dies; the manifest is removed meanwhile; a new agent finds the pod with no manifest.
  await first.stop('SIGKILL');
  await rm(path);
  const second = await world.startAgent();
  await second.waitForLog({ event: ['PodStopping', 'DeadlineExceeded'] }, { pod: `default/hooked-${world.node}`, timeoutMs: 30_000 });
  await waitFor('the pod to be removed', async () => !(await podExists(id)), { timeoutMs: 30_000 });
  t.same(parseStamps(await fileLines(join(dir, 'log'))).map((one) => one.label), ['up', 'prestop', 'term'], 'preStop ran, then the TERM trap');
});
