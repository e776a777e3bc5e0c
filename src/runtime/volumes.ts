// The host side of a pod's volumes, prepared before its containers are created: hostPath
// checked (or created) per its `type`, emptyDir as a directory under the state directory that
// lives exactly as long as the pod (a tmpfs for `medium: Memory`), downwardAPI files written.
import { chmod, lstat, mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, normalize } from 'node:path';
import { execa } from 'execa';
import { errorMessage, PodvisorError } from '../errors.js';
import type { DesiredPod } from '../manifest/identity.js';
import type { HostPathType, Volume } from '../manifest/pod-schema.js';
import { parseQuantity } from '../manifest/quantity.js';
import { fieldRefValue, resourceFieldValue, type PodFacts } from './environment.js';
import { allContainers } from '../manifest/pod-containers.js';

/** Where a volume's content is on the host, and whether containers may only read it. */
export interface HostVolume {
  path: string;
  readOnly: boolean;
}

/** The directory that holds everything podvisor keeps for one pod. */
export function podDirectory(stateDir: string, uid: string): string {
  return join(stateDir, 'pods', uid);
}

/** Checks a hostPath against its declared type, creating it for the *OrCreate types. */
export async function checkHostPath(path: string, type: HostPathType | undefined, field: string): Promise<void> {
  const fail = (message: string, cause?: unknown) => new PodvisorError('E_HOST_PATH', `${field}: ${path} ${message}`, { cause });
  const info = await lstat(path).catch(() => undefined);
  switch (type ?? '') {
    case '': return;
    case 'DirectoryOrCreate':
      if (!info) await mkdir(path, { recursive: true, mode: 0o755 }).catch((error: unknown) => { throw fail(`cannot be created: ${errorMessage(error)}`, error); });
      else if (!info.isDirectory()) throw fail('exists and is not a directory');
      return;
    case 'FileOrCreate':
      if (!info) {
        const handle = await open(path, 'a', 0o644).catch((error: unknown) => { throw fail(`cannot be created: ${errorMessage(error)}`, error); });
        await handle.close();
      } else if (!info.isFile()) throw fail('exists and is not a file');
      return;
    case 'Directory': if (!info?.isDirectory()) throw fail(info ? 'is not a directory' : 'does not exist (type Directory)'); return;
    case 'File': if (!info?.isFile()) throw fail(info ? 'is not a file' : 'does not exist (type File)'); return;
    case 'Socket': if (!info?.isSocket()) throw fail('is not a socket'); return;
    case 'CharDevice': if (!info?.isCharacterDevice()) throw fail('is not a character device'); return;
    case 'BlockDevice': if (!info?.isBlockDevice()) throw fail('is not a block device'); return;
  }
}

/** True when `path` is a mount point, read from the kernel's own table. */
async function isMountPoint(path: string): Promise<boolean> {
  const table = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  return table.split('\n').some((line) => line.split(' ')[4] === path);
}

/** Prepares every volume of the pod and returns where each one is on the host. */
export async function prepareVolumes(pod: DesiredPod, stateDir: string, facts: PodFacts): Promise<Map<string, HostVolume>> {
  const result = new Map<string, HostVolume>();
  const volumes = pod.pod.spec.volumes ?? [];
  // hostPaths first: a missing one should fail the pod before anything is made for it.
  for (const [index, volume] of volumes.entries()) {
    if (volume.hostPath) await checkHostPath(volume.hostPath.path, volume.hostPath.type, `spec.volumes[${index}].hostPath`);
  }
  for (const volume of volumes) {
    if (volume.hostPath) {
      result.set(volume.name, { path: volume.hostPath.path, readOnly: false });
      continue;
    }
    const path = join(podDirectory(stateDir, pod.uid), 'volumes', volume.name);
    await mkdir(path, { recursive: true });
    if (volume.emptyDir) {
      await prepareEmptyDir(path, volume);
      result.set(volume.name, { path, readOnly: false });
    } else if (volume.downwardAPI) {
      await writeDownwardApi(path, volume, pod, facts);
      result.set(volume.name, { path, readOnly: true });
    }
  }
  return result;
}

async function prepareEmptyDir(path: string, volume: Volume): Promise<void> {
  // World-writable, as the kubelet makes it, so containers running as any user can write.
  if (volume.emptyDir?.medium === 'Memory' && !(await isMountPoint(path))) {
    const size = volume.emptyDir.sizeLimit === undefined ? undefined : parseQuantity(volume.emptyDir.sizeLimit);
    const options = ['mode=0777', ...(size ? [`size=${Math.ceil(size)}`] : [])].join(',');
    try {
      await execa('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', path], { stdin: 'ignore', timeout: 10_000 });
    } catch (error) {
      throw new PodvisorError('E_HOST_PATH', `emptyDir "${volume.name}" (medium: Memory): cannot mount a tmpfs at ${path}: ${errorMessage(error)}`, { cause: error });
    }
  }
  await chmod(path, 0o777);
}

async function writeDownwardApi(path: string, volume: Volume, pod: DesiredPod, facts: PodFacts): Promise<void> {
  const all = allContainers(pod.pod.spec);
  for (const item of volume.downwardAPI?.items ?? []) {
    const target = normalize(join(path, item.path));
    if (!target.startsWith(`${path}/`)) throw new PodvisorError('E_HOST_PATH', `downwardAPI item path "${item.path}" leaves the volume`);
    let content = '';
    if (item.fieldRef) content = fieldRefValue(item.fieldRef.fieldPath, pod, facts);
    else if (item.resourceFieldRef) {
      const { containerName, resource, divisor } = item.resourceFieldRef;
      content = resourceFieldValue(resource, divisor, all.find((container) => container.name === containerName));
    }
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, content, { mode: item.mode ?? volume.downwardAPI?.defaultMode ?? 0o644 });
  }
}

/** Removes everything podvisor kept for a pod: unmounts its tmpfs volumes, deletes its directory. */
export async function removePodDirectory(stateDir: string, uid: string): Promise<void> {
  const directory = podDirectory(stateDir, uid);
  const table = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  const mounts = table.split('\n').map((line) => line.split(' ')[4] ?? '').filter((mount) => mount.startsWith(`${directory}/`));
  for (const mount of mounts.sort().reverse()) {
    await execa('umount', [mount], { stdin: 'ignore', timeout: 10_000, reject: false });
  }
  await rm(directory, { recursive: true, force: true });
}
