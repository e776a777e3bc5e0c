// Supervision, OOMKilled: a container that outgrows its memory limit is killed by the kernel and
// its status says so in the kubelet's words (terminated, exit code 137, reason OOMKilled), even
// on a host where podman's own OOMKilled flag stays false (this machine's hybrid cgroups).
import t from 'tap';
import { containerOf, IMAGE, putManifest, setup, waitForStatus } from './harness.js';

const MANIFEST = `apiVersion: v1
kind: Pod
metadata:
  name: hungry
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
    - name: eater
      image: ${IMAGE}
      # A 60 MB shell variable under a 16 MiB limit.
      command: ["sh", "-c", "sleep 1; x=$(head -c 60000000 /dev/zero | tr '\\\\0' a); echo \${#x}"]
      resources:
        limits:
          memory: 16Mi
`;

t.test('a container over its memory limit ends as OOMKilled', async (t) => {
  const world = await setup(t, 'sv-oom');
  await putManifest(world.manifestDir, 'hungry.yaml', MANIFEST);
  await world.startAgent();
  const podName = `hungry-${world.node}`;
  const item = await waitForStatus(world.stateDir, podName, 'the eater terminated', (pod) => (containerOf(pod, 'eater')?.state.terminated ? pod : undefined), { timeoutMs: 60_000 });
  const terminated = containerOf(item, 'eater')?.state.terminated;
  t.equal(terminated?.exitCode, 137, 'killed by SIGKILL');
  t.equal(terminated?.reason, 'OOMKilled', 'the reason is OOMKilled');
  t.equal(item.status.phase, 'Failed', 'restartPolicy Never: the pod failed');
});
