// Pod creation waits for image archives being loaded: PodmanRuntime calls its imagesReady hook
// before any podman process for the pod (createPod and createContainers), and is cancelled
// with the pod's work. podman here is a stand-in that records its calls and fails them all.
import { readFile, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { toDesiredPod } from '../../src/manifest/identity.js';
import { PodmanCli } from '../../src/runtime/podman-cli.js';
import { PodmanRuntime } from '../../src/runtime/podman-runtime.js';
import type { ObservedPod } from '../../src/runtime/types.js';

async function recordingPodman(dir: string): Promise<{ bin: string; calls: () => Promise<string[]> }> {
  const bin = join(dir, 'podman');
  const log = join(dir, 'calls');
  await writeFile(bin, `#!/bin/sh\necho "$*" >> '${log}'\necho 'Error: not really podman' >&2\nexit 125\n`);
  await chmod(bin, 0o755);
  return { bin, calls: async () => (await readFile(log, 'utf8').catch(() => '')).split('\n').filter(Boolean) };
}

const pod = toDesiredPod(
  { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web' }, spec: { containers: [{ name: 'app', image: 'localhost/offline:1', imagePullPolicy: 'Never' }] } } as Parameters<typeof toDesiredPod>[0],
  '/etc/pods.d/web.yaml',
  'rt-images',
);

t.test('no podman process for a pod until the images are ready; a cancelled wait makes none', async (t) => {
  const dir = t.testdir();
  const podman = await recordingPodman(dir);
  let release: () => void = () => {};
  const waits: string[] = [];
  const runtime = new PodmanRuntime({
    cli: new PodmanCli({ bin: podman.bin }),
    nodeName: 'rt-images',
    stateDir: dir,
    hostIP: '127.0.0.1',
    imagesReady: async (identity, signal) => {
      waits.push(identity.key);
      await new Promise<void>((resolve, reject) => {
        release = resolve;
        signal?.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
      });
    },
  });
  const creating = runtime.createPod(pod);
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.same(waits, [pod.key], 'the wait was asked for this pod');
  t.same(await podman.calls(), [], 'no podman call while the images are not ready');
  release();
  await t.rejects(creating, 'then podman is called (and fails here)');
  t.match((await podman.calls())[0], /^pod create /, 'the pod is created after the wait');

  // The same for the next step of a pod that exists, and a cancel while waiting.
  const before = (await podman.calls()).length;
  const controller = new AbortController();
  const observed = { id: 'x', podmanName: 'default_web', key: pod.key, name: pod.name, namespace: pod.namespace, uid: pod.uid, hash: pod.hash, source: pod.source, gracePeriodSeconds: 30, infraRunning: true, containers: [] } as ObservedPod;
  const next = runtime.createContainers(observed, pod, ['app'], controller.signal);
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.equal(waits.length, 2, 'createContainers waits too');
  controller.abort(new Error('the pod\'s manifest changed'));
  await t.rejects(next, { message: 'the pod\'s manifest changed' }, 'a cancelled wait ends the step');
  t.equal((await podman.calls()).length, before, 'with no podman call');
});
