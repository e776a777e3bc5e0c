// A full disk (issue 11): the agent's state directory is a small tmpfs of the test's own, filled
// up while the agent supervises a container that keeps exiting. The agent keeps restarting it,
// reports each failing state file once (not at every write), and when space returns writes
// again and says so. Needs root (mount); the tmpfs is always unmounted at teardown.
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import t from 'tap';
import { IMAGE, podYaml, putManifest, setup, sleeper, statusItems, waitFor } from '../e2e/harness.js';

/** Fills the file system of `path` with one file until it says ENOSPC; returns the bytes written. */
async function fillUp(path: string): Promise<number> {
  const handle = await open(path, 'w');
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  let written = 0;
  try {
    for (;;) written += (await handle.write(chunk)).bytesWritten;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    await handle.close().catch(() => undefined);
  }
  return written;
}

t.test('a full state directory: supervision goes on, one report per file, recovery logged', async (t) => {
  const world = await setup(t, 'fulldisk');
  const { node } = world;
  // The tmpfs lives outside the world's directory, so its removal never meets a mount point.
  const stateDir = await mkdtemp(join(tmpdir(), `podvisor-${node}-tmpfs-`));
  await execa('mount', ['-t', 'tmpfs', '-o', 'size=4m,mode=0700', 'tmpfs', stateDir]);
  t.teardown(async () => {
    // After the harness's teardown has killed the agents: nothing holds the mount any more.
    const unmounted = await execa('umount', [stateDir], { reject: false });
    if (unmounted.exitCode !== 0) await execa('umount', ['-l', stateDir], { reject: false });
    await rm(stateDir, { recursive: true, force: true });
  });

  await putManifest(world.manifestDir, 'crashy.yaml', podYaml({
    name: 'crashy',
    containers: ['    - name: main', `      image: ${IMAGE}`, '      command: ["sh", "-c", "sleep 1; exit 3"]', ''].join('\n'),
  }));
  await putManifest(world.manifestDir, 'steady.yaml', podYaml({ name: 'steady', containers: sleeper('main') }));
  const agent = await world.startAgent(['--state-dir', stateDir, '--backoff-max', '2'], { timeoutMs: 120_000 });
  const crashy = `default/crashy-${node}`;
  const restarts = () => agent.find({ event: 'ContainerRestarting' }, crashy).length;
  await agent.waitForCount({ event: 'ContainerRestarting' }, 2, { pod: crashy, timeoutMs: 90_000 });
  const files = ['status.json', 'supervision.json'].map((name) => join(stateDir, name));
  await waitFor('both state files', async () => (await Promise.all(files.map((file) => readFile(file).then(() => true, () => false)))).every(Boolean), { timeoutMs: 30_000 });

  const filler = join(stateDir, 'filler');
  const filled = await fillUp(filler);
  t.comment(`filled the ${stateDir} tmpfs with ${filled} bytes`);
  const restartsAtFull = restarts();
  // Both files fail (the status at least every 2 s while it changes, the supervision state at
  // every restart), and supervision goes on: several more restarts while the disk stays full.
  for (const file of files) await agent.waitForLog({ event: 'StateWriteFailed', file }, { timeoutMs: 60_000 });
  await agent.waitForCount({ event: 'ContainerRestarting' }, restartsAtFull + 4, { pod: crashy, timeoutMs: 120_000 });
  await agent.waitForRelists(5);
  t.ok(restarts() >= restartsAtFull + 4, `the exiting container was restarted ${restarts() - restartsAtFull} times on a full disk`);
  for (const file of files) {
    t.equal(agent.find({ event: 'StateWriteFailed', file }).length, 1, `${file}: the failure reported once`);
    const again = agent.lines.filter((line) => line.file === file && line.level === 'debug' && /failed again/.test(line.message)).length;
    t.ok(again >= 1, `${file}: later failures (${again}) only at debug level`);
  }
  t.equal(agent.find({ event: 'StateWriteRecovered' }).length, 0, 'no recovery while full');
  t.notOk(agent.find({ event: 'StateWriteFailed' }).some((line) => line.level !== 'error'), 'reported as errors');

  // Space returns: both files are written again and the agent says so, once each.
  await rm(filler);
  const freedAt = Date.now();
  for (const file of files) {
    const recovered = await agent.waitForLog({ event: 'StateWriteRecovered', file }, { timeoutMs: 60_000 });
    t.ok(Number(recovered.failedWrites) >= 1, `${file}: recovered after ${String(recovered.failedWrites)} failed writes`);
  }
  const restartsAfter = restarts();
  await agent.waitForCount({ event: 'ContainerRestarting' }, restartsAfter + 2, { pod: crashy, timeoutMs: 60_000 });
  const status = await waitFor('a status written after the disk had space again', async () => {
    const text = await readFile(files[0] ?? '', 'utf8');
    const parsed = JSON.parse(text) as { writtenAt: string };
    return Date.parse(parsed.writtenAt) > freedAt ? parsed : undefined;
  }, { timeoutMs: 30_000 });
  t.ok(status, 'the status file is current again');
  const items = await statusItems(stateDir);
  const count = items.find((item) => item.metadata.name === `crashy-${node}`)?.status.containerStatuses[0]?.restartCount ?? 0;
  t.ok(count >= restartsAtFull + 4, `the restarts made on the full disk are counted (${count})`);
  const saved = JSON.parse(await readFile(files[1] ?? '', 'utf8')) as { restartCounts: Record<string, number> };
  t.ok(Math.max(...Object.values(saved.restartCounts)) >= restartsAtFull + 4, 'and saved in the supervision state');
  t.equal(agent.find({ event: 'StateWriteFailed' }).length, 2, 'two failures reported in all, one per file');
  t.equal(agent.find({ event: 'StateWriteRecovered' }).length, 2, 'two recoveries, one per file');
  t.comment(`full disk: ${restarts() - restartsAtFull} restarts while full or after, ${files.length} files failed and recovered, one report each`);
});
