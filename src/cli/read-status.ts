// Reads the status the agent writes (<state-dir>/status.json) for `podvisor status` and
// `podvisor describe` and `podvisor logs`.
import { join } from 'node:path';
import { PodvisorError } from '../errors.js';
import { readJson } from '../state/state-file.js';
import { readFileSync } from 'node:fs';
import { STATUS_FILE, STATUS_HEARTBEAT_MS, type StatusFile, type StatusPod } from '../status/status-manager.js';
import { humanDuration } from '../status/printers.js';
import { withoutEnvValues } from '../mirror/env-values.js';

/**
 * The status file for a command that shows it: read, with a warning on stderr when it is stale,
 * and the env values left out unless `serveEnvValues` (as the API leaves them out).
 */
export async function readStatusForDisplay(stateDir: string, options: { serveEnvValues?: boolean } = {}): Promise<StatusFile> {
  const file = await readStatusFile(stateDir);
  const stale = staleness(file);
  if (stale) process.stderr.write(`podvisor: warning: ${stale}\n`);
  return options.serveEnvValues ? file : { ...file, items: file.items.map((pod) => withoutEnvValues(pod)) };
}

/** The status file the agent last wrote; a clear error when there is none. */
export async function readStatusFile(stateDir: string): Promise<StatusFile> {
  const path = join(stateDir, STATUS_FILE);
  const file = (await readJson(path)) as StatusFile | undefined;
  if (!file) throw new PodvisorError('E_CONFIG', `no status at ${path}: is the agent running with --state-dir ${stateDir}?`);
  if (file.kind !== 'PodList' || !Array.isArray(file.items)) throw new PodvisorError('E_CONFIG', `${path} is not a podvisor status file`);
  return file;
}


/** True when `pid` is a running podvisor agent (not a process that reused the number). */
export function agentAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    return /podvisor|cli\.js/.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8'));
  } catch {
    return false;
  }
}

/**
 * Why the figures in `file` may not be live, or undefined when they are: the agent that wrote
 * it is not running, or it has not written for three heartbeats (it may be stuck).
 */
export function staleness(file: StatusFile, now = Date.now(), alive: (pid: number) => boolean = agentAlive): string | undefined {
  const written = Date.parse(file.writtenAt);
  const ago = Number.isNaN(written) ? 'an unknown time' : `${humanDuration(now - written)}`;
  if (file.agent && !alive(file.agent.pid)) return `the agent is not running (pid ${file.agent.pid} is gone): this is what it last wrote, ${ago} ago`;
  if (!Number.isNaN(written) && now - written > 3 * STATUS_HEARTBEAT_MS) return `the status was last written ${ago} ago: the agent may be stuck or stopped`;
  return undefined;
}

/**
 * The pods `name` names: the pod's name (<name>-<node>), the manifest's name without the node
 * suffix, or NAMESPACE/NAME; `namespace` narrows a bare name.
 */
export function findPods(file: StatusFile, name: string, namespace?: string): StatusPod[] {
  const [inNamespace, podName] = name.includes('/') ? name.split('/', 2) : [namespace, name];
  return file.items.filter((pod) =>
    (inNamespace === undefined || pod.metadata.namespace === inNamespace) &&
    (pod.metadata.name === podName || pod.metadata.name === `${podName}-${String(pod.spec.nodeName ?? '')}`));
}

/** kubectl's words for a pod that is not there. */
export function notFound(name: string, namespace?: string): string {
  return `pods "${name}" not found${namespace === undefined || name.includes('/') ? '' : ` in namespace "${namespace}"`}`;
}
