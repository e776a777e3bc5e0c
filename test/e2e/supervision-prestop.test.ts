// Supervision 5, stopping a container as the kubelet does: the preStop hook runs to its end
// before the stop signal (the hook and the container's TERM trap stamp a hostPath file on the
// kernel's uptime clock), and a container that ignores SIGTERM is killed only once
// terminationGracePeriodSeconds have passed, with or without a preStop hook.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import {
  DiedEvents,
  fileLines,
  IMAGE,
  parseStamps,
  podExists,
  podmanContainer,
  podsOf,
  putManifest,
  setup,
  stamp,
  waitFor,
} from './harness.js';

const LOG = '/data/log';

function manifest(options: { name: string; dir: string; grace: number; script: string; preStop?: string }): string {
  return `apiVersion: v1
kind: Pod
metadata:
  name: ${options.name}
spec:
  terminationGracePeriodSeconds: ${options.grace}
  volumes:
    - name: data
      hostPath: { path: ${options.dir}, type: DirectoryOrCreate }
  containers:
    - name: main
      image: ${IMAGE}
      command: ["sh", "-c", ${JSON.stringify(options.script)}]
      volumeMounts: [{ name: data, mountPath: /data }]
${options.preStop ? `      lifecycle:
        preStop:
          exec:
            command: ["sh", "-c", ${JSON.stringify(options.preStop)}]
` : ''}`;
}

t.test('preStop runs before the stop signal; SIGTERM ignored means SIGKILL after the grace period', async (t) => {
  const world = await setup(t, 'sv-prestop');
  const { node } = world;
  const dirs = { hooked: join(world.root, 'hooked'), stubbornHook: join(world.root, 'stubborn-hook') };
  const ignoreTerm = `trap '' TERM; ${stamp('up', LOG)}; while true; do sleep 1; done`;
  const GRACE = 4;
  const paths = {
    // The hook takes a second: the stop signal must wait for it.
    hooked: await putManifest(world.manifestDir, 'hooked.yaml', manifest({
      name: 'hooked', dir: dirs.hooked, grace: 10,
      script: `trap '${stamp('term', LOG)}; exit 0' TERM; ${stamp('up', LOG)}; sleep 3600 & wait`,
      preStop: `${stamp('prestop-start', LOG)}; sleep 1; ${stamp('prestop-end', LOG)}`,
    })),
    stubborn: await putManifest(world.manifestDir, 'stubborn.yaml', manifest({ name: 'stubborn', dir: join(world.root, 'stubborn'), grace: GRACE, script: ignoreTerm })),
    stubbornHook: await putManifest(world.manifestDir, 'stubborn-hook.yaml', manifest({
      name: 'stubborn-hook', dir: dirs.stubbornHook, grace: GRACE, script: ignoreTerm, preStop: stamp('prestop', LOG),
    })),
  };
  const died = new DiedEvents(node);
  t.teardown(() => died.stop());
  const agent = await world.startAgent();
  for (const name of ['hooked', 'stubborn', 'stubborn-hook']) await agent.waitForLog({ event: 'PodStarted' }, { pod: `default/${name}-${node}`, timeoutMs: 60_000 });
  // Each container has stamped its start, so its TERM trap (or its ignoring of TERM) is in place.
  for (const dir of [dirs.hooked, dirs.stubbornHook, join(world.root, 'stubborn')]) {
    await waitFor(`${dir}/log to be written`, async () => (await fileLines(join(dir, 'log'))).length > 0, { timeoutMs: 10_000 });
  }
  const pods = new Map((await podsOf(node)).map((pod) => [pod.Labels?.['io.podvisor.name'] ?? '', pod.Id]));

  // Delete all three at once and time each removal from the agent's own 'stopping pod' line.
  await Promise.all(Object.values(paths).map((path) => rm(path)));
  const goneAt = new Map<string, number>();
  await waitFor('all three pods to be removed', async () => {
    for (const [name, id] of pods) if (!goneAt.has(name) && !(await podExists(id))) goneAt.set(name, Date.now());
    return goneAt.size === pods.size;
  }, { timeoutMs: 40_000, intervalMs: 100 });
  const stoppingAt = (name: string) => Date.parse(agent.find({ event: ['PodStopping', 'DeadlineExceeded'] }, `default/${name}-${node}`)[0]?.timestamp ?? '');
  const took = (name: string) => {
    const line = agent.find({ event: ['PodStopping', 'DeadlineExceeded'] }, `default/${name}-${node}`)[0];
    return line ? ((goneAt.get(`${name}-${node}`) ?? 0) - Date.parse(line.timestamp)) / 1000 : NaN;
  };

  await t.test('the preStop hook runs to its end before SIGTERM', async (t) => {
    const stamps = parseStamps(await fileLines(join(dirs.hooked, 'log')));
    t.same(stamps.map((one) => one.label), ['up', 'prestop-start', 'prestop-end', 'term'], 'preStop, then the TERM trap');
    const at = Object.fromEntries(stamps.map((one) => [one.label, one.at]));
    t.ok((at['prestop-end'] ?? 0) - (at['prestop-start'] ?? 0) >= 950, 'the hook ran its full second');
    t.ok((at.term ?? 0) >= (at['prestop-end'] ?? Infinity), 'SIGTERM came after the hook ended');
    t.equal(agent.find({ event: ['PodStopping', 'DeadlineExceeded'] }, `default/hooked-${node}`)[0]?.message, 'stopping pod (grace period 10s)', 'stopped with its grace period');
    // Its death, not the pod's removal (which waits on podman's pod stop and rm, seconds on a
    // loaded machine): ended by its TERM trap, before the grace period ran out.
    const death = await died.waitFor(podmanContainer(`hooked-${node}`, 'main'), { timeoutMs: 5_000 });
    const endedAfter = (death.at - stoppingAt('hooked')) / 1000;
    // podman's died event leaves out an exit code of 0.
    t.equal(death.exitCode ?? 0, 0, 'the container that honours SIGTERM ended by its trap (exit 0), not by SIGKILL');
    t.ok(endedAfter < 9, `and within its 10 s grace (${endedAfter.toFixed(2)} s after the stop began; pod removed after ${took('hooked').toFixed(1)} s)`);
  });

  await t.test('a container that ignores SIGTERM is killed only after the grace period', async (t) => {
    t.equal(agent.find({ event: ['PodStopping', 'DeadlineExceeded'] }, `default/stubborn-${node}`)[0]?.message, `stopping pod (grace period ${GRACE}s)`);
    for (const name of ['stubborn', 'stubborn-hook']) {
      // podman's died event: when the container ended, and how (137: SIGKILL).
      const death = await died.waitFor(podmanContainer(`${name}-${node}`, 'main'), { timeoutMs: 5_000 });
      const killedAfter = (death.at - stoppingAt(name)) / 1000;
      t.equal(death.exitCode, 137, `${name}: it died of SIGKILL (exit code 137)`);
      t.ok(killedAfter >= GRACE - 0.1, `${name}: killed ${killedAfter.toFixed(2)} s after the stop began, not before the ${GRACE} s grace period`);
      t.ok(killedAfter <= GRACE + 2, `${name}: and not long after it (${killedAfter.toFixed(2)} s)`);
      t.ok(took(name) >= GRACE - 0.1 && took(name) <= GRACE + 8, `${name}: the pod was removed ${took(name).toFixed(1)} s after the stop began`);
    }
    t.same(parseStamps(await fileLines(join(dirs.stubbornHook, 'log'))).map((one) => one.label), ['up', 'prestop'], 'its hook ran');
  });
});
