// Replace windows (issue 12), end to end with real podman and the real clock: with the window
// closed an edit is held (the pod keeps running its spec, "Pending replace" in the status and the
// plan) while a new pod is created; a reload moves the window to the next minute, and when that
// minute comes the held replace goes with no other change.
process.env.TZ = 'UTC'; // the agent inherits it: the windows below are written in UTC
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { checkPendingReplace, replacedFrom, podYaml, putManifest, runningHash, setup, sleeper, waitFor } from './harness.js';

t.setTimeout(300_000);

/** A nightly window's expression opening `hoursAhead` hours from now, at minute `minute`. */
const hoursAway = (hoursAhead: number) => `0 ${(new Date().getUTCHours() + hoursAhead) % 24} * * *`;

t.test('a closed window holds a replace; the window opening lets it go', async (t) => {
  const world = await setup(t, 'replace-window');
  const { node, stateDir } = world;
  const config = join(world.root, 'config.yaml');
  await writeFile(config, `replace-window: "${hoursAway(12)}"\nreplace-window-duration: 1h\n`);
  await putManifest(world.manifestDir, 'web.yaml', podYaml({ name: 'web', containers: sleeper('app', { GEN: '1' }) }));
  const agent = await world.startAgent(['--config', config]);
  const window = await agent.waitForLog({ event: 'ReplaceWindow' }, { timeoutMs: 10_000 });
  t.match(window.message, /replaces of running pods wait for the replace window "0 \d+ \* \* \*" for 1h \(local time\)$/, 'the window is said at start');
  const first = await waitFor('web running', () => runningHash(node, 'web'), { timeoutMs: 60_000 });

  await putManifest(world.manifestDir, 'web.yaml', podYaml({ name: 'web', containers: sleeper('app', { GEN: '2' }) }));
  const held = await agent.waitForLog({ event: 'ReplaceHeld' }, { timeoutMs: 20_000 });
  t.match(held.heldBy, /^the replace window "0 \d+ \* \* \*" for 1h, closed until \d{4}-\d\d-\d\dT\d\d:00:00Z$/, 'the edit is held by the window, named in the log');
  await putManifest(world.manifestDir, 'new.yaml', podYaml({ name: 'new', containers: sleeper('app') }));
  await waitFor('new running', () => runningHash(node, 'new'), { timeoutMs: 60_000 });
  t.pass('a new pod is created with the window closed');
  await agent.waitForRelists(2);
  t.equal(await runningHash(node, 'web'), first, 'the held pod still runs its spec');
  t.equal(agent.find({ event: 'PodReplacing' }).length, 0, 'and was not replaced');

  await checkPendingReplace(t, { stateDir, podName: `web-${node}`, heldBy: 'the replace window', planArgs: ['--config', config, '--manifest-dir', world.manifestDir, '--node-name', node, '--locks-dir', join(world.root, 'locks')] });

  // The window moved to open at the next whole minute at least 5 s away: held until then, released then.
  const opens = new Date(Math.ceil((Date.now() + 5000) / 60_000) * 60_000);
  await writeFile(config, `replace-window: "${opens.getUTCMinutes()} ${opens.getUTCHours()} * * *"\nreplace-window-duration: 2m\n`);
  agent.child.kill('SIGHUP');
  const reloaded = await agent.waitForLog({ event: 'ConfigReloaded' }, { timeoutMs: 10_000 });
  t.match(reloaded, { applied: ['replace-window', 'replace-window-duration'] }, 'the window is taken by a reload');
  const released = await agent.waitForLog({ event: 'ReplaceReleased' }, { timeoutMs: 90_000 });
  t.ok(Date.parse(released.timestamp) >= opens.getTime(), `released when the window opened (${released.timestamp}, window at ${opens.toISOString()}), not before`);
  const second = await replacedFrom(node, 'web', first, { timeoutMs: 90_000 });
  t.not(second, first, 'the window open: the replace went ahead');
});
