// Update locks on a real directory: which names hold a pod, and the watcher seeing locks come and go.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import t from 'tap';
import { createLogger } from '../../src/log/logger.js';
import { toDesiredPod } from '../../src/manifest/identity.js';
import { lockNames, UpdateLocks } from '../../src/rollout/update-locks.js';

const pod = toDesiredPod({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web', namespace: 'shop' }, spec: { containers: [{ name: 'app', image: 'x' }] } }, '/etc/pods.d/web.yaml', 'edge-1');

t.test('the names that hold a pod', async (t) => {
  t.same(lockNames(pod), ['shop_web', 'shop_web-edge-1', 'all'], 'the manifest\'s name, the static pod\'s, and all');
});

t.test('locks come and go, each change told once', async (t) => {
  const dir = join(await mkdtemp(join(tmpdir(), 'podvisor-locks-')), 'locks');
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  let changes = 0;
  const locks = new UpdateLocks({ dir, logger: createLogger({ level: 'error', stream: new PassThrough() }), onChange: () => changes++ });
  await locks.start();
  t.teardown(() => locks.stop());
  t.equal(locks.holding(pod), undefined, 'the directory is made, empty: nothing held');
  await writeFile(join(dir, 'shop_web'), '');
  await waitUntil(() => locks.holding(pod) !== undefined);
  t.equal(locks.holding(pod), join(dir, 'shop_web'), 'a lock by the manifest\'s name holds it');
  t.equal(changes, 1, 'the change told once');
  await rm(join(dir, 'shop_web'));
  await waitUntil(() => locks.holding(pod) === undefined);
  t.pass('the lock removed: released');
  await writeFile(join(dir, 'all'), '');
  await waitUntil(() => locks.holding(pod) !== undefined);
  t.equal(locks.holding(pod), join(dir, 'all'), 'all holds every pod');
  await writeFile(join(dir, 'other_thing'), '');
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.equal(locks.holding(pod), join(dir, 'all'));
});

async function waitUntil(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
