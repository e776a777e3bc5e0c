// Container logs are bounded (--container-log-max-size): a container that logs far more than the
// bound keeps a log file under it, and the newest lines are still there for `podman logs`. Without
// the bound (podman's default), this container's file would hold all of its 1.2 MB.
import { stat } from 'node:fs/promises';
import t from 'tap';
import { IMAGE, podman, podmanContainer, podYaml, putManifest, setup, waitFor } from './harness.js';

const LINES = 30_000;

t.test('a chatty container\'s log file stays under the bound', async (t) => {
  const world = await setup(t, 'logs');
  const podName = `chatty-${world.node}`;
  await putManifest(world.manifestDir, 'chatty.yaml', podYaml({ name: 'chatty', grace: 1, containers: `    - name: app
      image: ${IMAGE}
      command: ["sh", "-c", "i=0; while [ $i -lt ${LINES} ]; do echo \\"line $i, padded to be a log line of some length\\"; i=$((i+1)); done; sleep 600"]
` }));
  const agent = await world.startAgent(['--container-log-max-size', '64Ki']);
  await agent.waitForLog({ event: 'PodStarted' }, { pod: `default/${podName}`, timeoutMs: 60_000 });
  const name = podmanContainer(podName, 'app');
  const last = `line ${LINES - 1}, padded to be a log line of some length`;
  await waitFor('the last line logged', async () => ((await podman('logs', '--tail', '1', name)).trim() === last ? true : undefined), { timeoutMs: 60_000, intervalMs: 500 });
  const config = JSON.parse(await podman('inspect', '--format', '{{json .HostConfig.LogConfig}}', name)) as { Path: string; Size: string };
  t.equal(config.Size, '65.54kB', 'podman was given the bound (64Ki, in its own units)');
  const size = (await stat(config.Path)).size;
  t.ok(size > 0 && size <= 64 * 1024, `the log file holds ${size} bytes, at most 64Ki, of the ~1.6 MB written`);
  t.equal((await podman('logs', '--tail', '1', name)).trim(), last, 'and the newest line is kept');
});
