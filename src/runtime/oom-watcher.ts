// Which containers the kernel's OOM killer struck, read from the kernel log as the kubelet's
// OOM watcher (cAdvisor's oomparser) reads it. podman's own `State.OOMKilled` comes from conmon
// watching the container's memory cgroup, and on some hosts (a hybrid cgroup v1/v2 layout, seen
// here with podman 4.3) it stays false for a container the kernel killed for its memory limit.
// The kernel names the container's memory cgroup in its `oom-kill:` line, and the cgroup's name
// holds the container id.
import { createInterface } from 'node:readline';
import { execa, type ResultPromise } from 'execa';
import type { Logger } from '../log/logger.js';

/** The container id in an `oom-kill:` kernel line's task_memcg, if the cgroup is a podman container's. */
export function oomKilledContainer(line: string): string | undefined {
  const at = line.indexOf('oom-kill:');
  if (at === -1) return undefined;
  const memcg = /task_memcg=([^,\s]+)/.exec(line.slice(at))?.[1];
  // cgroup v1: /libpod_parent/libpod-<id>; v2 with systemd: /machine.slice/libpod-<id>.scope[/container]
  return memcg ? /libpod-([0-9a-f]{64})(?:\.scope)?(?:\/|$)/.exec(memcg)?.[1] : undefined;
}

export interface OomWatcherOptions {
  logger: Logger;
  signal: AbortSignal;
  /** The dmesg binary (util-linux). */
  dmesgPath?: string;
  /** How many OOM-killed container ids are remembered (the oldest are forgotten). */
  capacity?: number;
}

export class OomWatcher {
  readonly #options: OomWatcherOptions;
  /** When each container last had a process OOM-killed (ms, as the line arrived), oldest first. */
  readonly #killed = new Map<string, number>();
  #process: ResultPromise | undefined;

  constructor(options: OomWatcherOptions) {
    this.#options = options;
  }

  /** Follows new kernel messages (`dmesg --follow-new`); without access to them, does nothing. */
  start(): void {
    const { logger, signal } = this.#options;
    const child = execa(this.#options.dmesgPath ?? 'dmesg', ['--follow-new', '--nopager'], { cancelSignal: signal, reject: false, stdin: 'ignore', buffer: false, lines: false });
    this.#process = child;
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-500);
    });
    if (child.stdout) createInterface({ input: child.stdout, crlfDelay: Infinity }).on('line', (line) => this.#take(line));
    void child.then((result) => {
      if (signal.aborted) return;
      logger.info(`kernel log not readable (${stderr.trim() || `dmesg exit ${String(result.exitCode)}`}): an OOM kill is recognised by podman's own flag alone`);
    });
  }

  /**
   * Whether the kernel's OOM killer struck this container during the run that started at
   * `startedAt` and ended at `finishedAt`: podman restarts a container under the same id, so an
   * earlier run's kill must not mark a later run's end.
   */
  killedDuring(containerId: string, startedAt: Date | undefined, finishedAt: Date | undefined): boolean {
    const at = this.#killed.get(containerId);
    if (at === undefined) return false;
    // The line arrives a little after the kill; the run's times are podman's whole-ms readings.
    return (startedAt === undefined || at >= startedAt.getTime() - 1000) && (finishedAt === undefined || at <= finishedAt.getTime() + 5000);
  }

  #take(line: string): void {
    const id = oomKilledContainer(line);
    if (!id) return;
    this.#killed.delete(id);
    this.#killed.set(id, Date.now());
    const capacity = this.#options.capacity ?? 1000;
    for (const old of this.#killed.keys()) {
      if (this.#killed.size <= capacity) break;
      this.#killed.delete(old);
    }
    this.#options.logger.debug('the kernel OOM-killed a process of a container', { containerId: id.slice(0, 12) });
  }

  /** Stops following; resolves once dmesg has exited. */
  async stop(): Promise<void> {
    this.#process?.kill();
    await this.#process?.catch(() => undefined);
  }
}
