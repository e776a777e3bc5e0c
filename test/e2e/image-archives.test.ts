// Offline images (issue 12) with real podman: an image made here (no registry is reachable),
// saved as docker-archive and oci-archive, each plain, gzip and zstd, removed from podman, and dropped into the
// images directory. Pods with imagePullPolicy Never start from those archives without a single
// failed `podman run` (their creation waited for the loads); a corrupt archive gives one clear
// error while the other pods run; a restart loads nothing again; an archive written slowly is
// not loaded before it is complete, and a pod added meanwhile waits for it. Every image this test
// makes has a name of its own and is removed at the end.
import { randomBytes } from 'node:crypto';
import { appendFile, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import t from 'tap';
import { exec, IMAGE, podman, podmanContainer, podmanStatus, podYaml, putManifest, setup, waitFor, type AgentProcess } from './harness.js';

const FORMATS = [
  { key: 'docker', file: 'app-docker.tar', save: 'docker-archive', compress: undefined },
  { key: 'oci', file: 'app-oci.tar', save: 'oci-archive', compress: undefined },
  { key: 'gzip', file: 'app-docker.tar.gz', save: 'docker-archive', compress: ['gzip', '-c'] },
  { key: 'zstd', file: 'app-oci.tar.zst', save: 'oci-archive', compress: ['zstd', '-q', '-c'] },
  // Each format with each compression: podvisor gunzips a .tar.gz itself, podman reads a .tar.zst.
  { key: 'gzip-oci', file: 'app-oci.tar.gz', save: 'oci-archive', compress: ['gzip', '-c'] },
  { key: 'zstd-docker', file: 'app-docker.tar.zst', save: 'docker-archive', compress: ['zstd', '-q', '-c'] },
] as const;

/** A pod whose one container runs `image` (imagePullPolicy Never) and sleeps. */
function offlinePod(name: string, image: string): string {
  return podYaml({
    name,
    containers: [
      '    - name: app',
      `      image: ${image}`,
      '      imagePullPolicy: Never',
      `      command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]`,
      '',
    ].join('\n'),
  });
}

/** The failed `podman run` calls the agent made (each a container that could not be created). */
function failedRuns(agent: AgentProcess): number {
  return agent.find({ event: 'PodmanCall' }).filter((line) => typeof line.args === 'string' && line.args.startsWith('run') && line.exitCode !== 0).length;
}

/** Waits until the container of pod `name` runs, and returns what it reads from /marker. */
async function markerOf(node: string, name: string): Promise<string> {
  const container = podmanContainer(`${name}-${node}`, 'app');
  return await waitFor(`${container} to run`, async () => {
    const state = (await podman('inspect', '--type', 'container', '--format', '{{.State.Status}}', container).catch(() => '')).trim();
    return state === 'running' ? await exec(container, 'cat', '/marker') : undefined;
  }, { timeoutMs: 90_000, intervalMs: 500 });
}

t.test('pods start from image archives in the images directory, loaded once each', async (t) => {
  const world = await setup(t, 'images');
  const { node } = world;
  const imagesDir = join(world.root, 'images');
  const staging = join(world.root, 'staging');
  await mkdir(imagesDir);
  await mkdir(staging);
  const tag = randomBytes(4).toString('hex');
  const name = (key: string) => `localhost/podvisor-archive-${tag}:${key}`;
  const made = [...FORMATS.map((format) => name(format.key)), name('slow')];
  t.teardown(async () => {
    // Only the names this test made; the base image stays.
    await execa('podman', ['rmi', '--force', '--ignore', ...made], { reject: false, stdin: 'ignore' });
  });

  // An image of its own: the local busybox image and a marker file, so the pod shows it runs the archive's content.
  const marker = `archive-${tag}`;
  await writeFile(join(staging, 'marker'), `${marker}\n`);
  await writeFile(join(staging, 'Containerfile'), `FROM ${IMAGE}\nCOPY marker /marker\n`);
  await podman('build', '--quiet', '--tag', name('docker'), '--file', join(staging, 'Containerfile'), staging);
  for (const one of made.slice(1)) await podman('tag', name('docker'), one);
  for (const format of FORMATS) {
    const plain = join(staging, format.file.replace(/\.(gz|zst)$/, ''));
    await podman('save', '--quiet', '--format', format.save, '--output', `${plain}.${format.key}`, name(format.key));
    if (format.compress) {
      const [bin, ...args] = format.compress;
      await execa(bin, [...args, `${plain}.${format.key}`], { stdout: { file: join(staging, format.file) } });
    } else {
      await rename(`${plain}.${format.key}`, join(staging, format.file));
    }
  }
  await podman('save', '--quiet', '--format', 'docker-archive', '--output', join(staging, 'slow.tar'), name('slow'));
  await podman('rmi', ...made);
  for (const one of made) t.equal(await podmanStatus('image', 'exists', one), 1, `${one} is not in podman`);

  // The archives renamed in (as a deployment tool writes them), a corrupt one beside them, and the pods.
  for (const format of FORMATS) await rename(join(staging, format.file), join(imagesDir, format.file));
  await writeFile(join(imagesDir, 'broken.tar'), 'this is not an image archive\n'.repeat(100));
  for (const format of FORMATS) await putManifest(world.manifestDir, `${format.key}.yaml`, offlinePod(`offline-${format.key}`, name(format.key)));
  await putManifest(world.manifestDir, 'plain.yaml', offlinePod('plain', IMAGE));

  const agent = await world.startAgent(['--images-dir', imagesDir]);
  for (const format of FORMATS) {
    t.equal(await markerOf(node, `offline-${format.key}`), marker, `the ${format.key} archive's pod runs its content`);
  }
  const loaded = agent.find({ event: 'ImageArchiveLoaded' });
  t.same(loaded.map((line) => line.file).sort(), FORMATS.map((format) => format.file).sort(), 'each archive loaded once');
  for (const format of FORMATS) {
    const line = loaded.find((one) => one.file === format.file);
    t.ok(Array.isArray(line?.images) && (line.images as string[]).includes(name(format.key)), `${format.file}: names ${name(format.key)} (${JSON.stringify(line?.images)})`);
    t.match(line, { digest: /^sha256:[0-9a-f]{64}$/, ms: Number }, `${format.file}: digest and duration logged`);
  }
  t.equal(failedRuns(agent), 0, 'no container was tried before its image was loaded (creation waited)');

  // The corrupt archive: one clear error, in podman's words, and the other pods run.
  const failed = await agent.waitForLog({ event: 'ImageArchiveFailed' }, { timeoutMs: 30_000 });
  t.equal(failed.level, 'warn');
  t.equal(failed.file, 'broken.tar');
  t.match(failed.message, /^cannot load image archive broken\.tar: .+/, `the file named, then podman's words: ${failed.message}`);
  t.equal(await podman('inspect', '--type', 'container', '--format', '{{.State.Status}}', podmanContainer(`plain-${node}`, 'app')), 'running', 'a pod with an image already in podman runs');
  await agent.waitForRelists(3);
  t.equal(agent.find({ event: 'ImageArchiveFailed' }).length, 1, 'reported once over several rescans');
  t.equal(agent.find({ event: 'PodmanCall' }).filter((line) => line.args === 'load --input ' + join(imagesDir, 'broken.tar')).length, 1, 'tried once');

  // A restart: nothing is loaded again, the corrupt archive is not tried again, and the pods are left running.
  const before = Object.fromEntries(await Promise.all(FORMATS.map(async (format) => [format.key, await podman('inspect', '--type', 'container', '--format', '{{.Id}}', podmanContainer(`offline-${format.key}-${node}`, 'app'))])));
  await agent.stop('SIGTERM');
  const second = await world.startAgent(['--images-dir', imagesDir]);
  await second.waitForRelists(3);
  await waitFor('the known archives to be looked at', () => second.find({ event: 'ImageArchiveKnown' }).length >= FORMATS.length ? true : undefined, { timeoutMs: 30_000 });
  t.equal(second.find({ event: ['ImageArchiveLoading', 'ImageArchiveLoaded', 'ImageArchiveFailed'] }).length, 0, 'a restart loads nothing again');
  t.equal(second.find({ event: 'PodmanCall' }).filter((line) => typeof line.args === 'string' && line.args.startsWith('load')).length, 0, 'no podman load at all');
  for (const format of FORMATS) {
    t.equal(await podman('inspect', '--type', 'container', '--format', '{{.Id}}', podmanContainer(`offline-${format.key}-${node}`, 'app')), before[format.key], `${format.key}: the same container runs on`);
  }

  // An archive written slowly, in place: nothing is loaded until it is complete, and a pod added
  // while it is being written waits for it rather than failing.
  const slow = await readFile(join(staging, 'slow.tar'));
  const target = join(imagesDir, 'slow.tar');
  const pieces = 24;
  const size = Math.ceil(slow.length / pieces);
  let lastWriteAt = 0;
  for (let index = 0; index < pieces; index++) {
    await appendFile(target, slow.subarray(index * size, (index + 1) * size));
    lastWriteAt = Date.now();
    if (index === 2) {
      await second.waitForLog({ event: 'ImageArchiveSettling', file: 'slow.tar' }, { timeoutMs: 10_000 });
      await putManifest(world.manifestDir, 'slow.yaml', offlinePod('offline-slow', name('slow')));
    }
    // Pauses well within the 2 s settle period: a writer that is slow, not stalled.
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  t.equal(await markerOf(node, 'offline-slow'), marker, 'the pod added meanwhile runs the slowly written archive');
  const loading = second.find({ event: 'ImageArchiveLoading' });
  t.same(loading.map((line) => line.file), ['slow.tar'], 'loaded once');
  t.ok(Date.parse(loading[0]?.timestamp ?? '') >= lastWriteAt, `not before its last piece was written (${Date.parse(loading[0]?.timestamp ?? '') - lastWriteAt} ms after)`);
  t.equal(second.find({ event: 'ImageArchiveFailed' }).length, 0, 'never tried half-written');
  t.equal(failedRuns(second), 0, 'the pod was not tried before its image was there');
  t.ok(second.find({ event: 'ImageArchivesWaited' }).length >= 1, 'its creation waited for the load');
});
