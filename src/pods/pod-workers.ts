// Carries out plans: one worker per pod, so each pod's operations happen in order while pods
// proceed concurrently. A pod whose worker is busy is left out of planning until it is done;
// the reconciler then plans it again from a fresh listing (the newest desired state wins).
import type { Logger } from '../log/logger.js';
import { errorMessage } from '../errors.js';
import type { PodRuntime } from '../runtime/types.js';
import type { DesiredPod, PodIdentity } from '../manifest/identity.js';
import { ContainerStartError } from '../runtime/container-errors.js';
import type { ObservedPod } from '../runtime/types.js';
import type { StatusSink } from '../status/status-manager.js';
import { backoffKey, backoffSince } from './backoff.js';
import type { PodAction } from './plan.js';
import type { Supervision } from './supervision.js';

export interface PodWorkersOptions {
  runtime: PodRuntime;
  logger: Logger;
  /**
   * How many podman start calls (pod create, run) may run at once: 3 brought 20 pods up in 0.91x
   * the time 2 took, in one run of bench/bring-up.mjs (2026-12-03); podman gains little beyond.
   */
  maxConcurrentStarts?: number;
  /**
   * How many pod stops (podman pod stop and rm) may begin at once. Unbounded, 200 edited pods
   * started 200 podman processes together: on 2 cores each took over a minute, the agent's loop
   * was held 58 s starting them, and most stops timed out and were done again (the 200-manifest
   * run, 2026-12-04). A stop waiting out a long grace period lets the next one begin after
   * STOP_SLOT_HOLD_MS, so a pod that ignores SIGTERM does not hold up the others' removal.
   */
  maxConcurrentStops?: number;
  /** How long one stop holds its slot at the most (STOP_SLOT_HOLD_MS unless told; tests shorten it). */
  stopSlotHoldMs?: number;
  /** Where restarts and failed starts are recorded (restart counts, back-off). */
  supervision: Supervision;
  now: () => number;
  /** The status owner, told of starts, failures and events. */
  status?: StatusSink;
  /** Called whenever a worker finishes (the action it carried out, and its error), so the pod is planned again. */
  onIdle(action: PodAction, error?: unknown): void;
}

/** How long one pod stop holds its slot at the most: podman's work is done by then, what is left is the grace period. */
const STOP_SLOT_HOLD_MS = 10_000;

/** A counting semaphore for the expensive start and stop paths. */
class Semaphore {
  #available: number;
  readonly #waiting: (() => void)[] = [];
  constructor(count: number) { this.#available = count; }
  /**
   * Waits for a slot (a signal's abort ends the wait with its reason); the slot is given back by
   * the returned function, or after `holdLimitMs` if that comes first.
   */
  async acquire(holdLimitMs?: number, signal?: AbortSignal): Promise<() => void> {
    signal?.throwIfAborted();
    if (this.#available > 0) this.#available--;
    else {
      await new Promise<void>((resolve, reject) => {
        const granted = () => {
          signal?.removeEventListener('abort', aborted);
          resolve();
        };
        const aborted = () => {
          this.#waiting.splice(this.#waiting.indexOf(granted), 1);
          reject(signal?.reason);
        };
        this.#waiting.push(granted);
        signal?.addEventListener('abort', aborted, { once: true });
      });
    }
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      clearTimeout(timer);
      const next = this.#waiting.shift();
      if (next) next();
      else this.#available++;
    };
    const timer = holdLimitMs === undefined ? undefined : setTimeout(release, holdLimitMs);
    return release;
  }
}

export class PodWorkers {
  readonly #options: PodWorkersOptions;
  readonly #inFlight = new Map<string, { promise: Promise<void>; controller: AbortController; action: PodAction }>();
  readonly #starts: Semaphore;
  readonly #stops: Semaphore;

  constructor(options: PodWorkersOptions) {
    this.#options = options;
    this.#starts = new Semaphore(options.maxConcurrentStarts ?? 3);
    this.#stops = new Semaphore(options.maxConcurrentStops ?? 4);
  }

  /** Keys whose worker is busy. */
  busyKeys(): ReadonlySet<string> {
    return new Set(this.#inFlight.keys());
  }

  /** Starts the action on its pod's worker; returns false if that worker is busy. */
  dispatch(action: PodAction): boolean {
    if (this.#inFlight.has(action.key)) return false;
    const controller = new AbortController();
    const promise = this.#run(action, controller.signal)
      .then(() => undefined, (error: unknown) => error)
      .then((error) => {
        this.#inFlight.delete(action.key);
        this.#options.onIdle(action, error);
      });
    this.#inFlight.set(action.key, { promise, controller, action });
    return true;
  }

  /** The action a pod's worker is carrying out, if any. */
  inFlight(key: string): PodAction | undefined {
    return this.#inFlight.get(key)?.action;
  }

  /** Cancels a pod's work in flight (its podman calls are killed); the worker then goes idle. */
  cancel(key: string, reason: string): void {
    this.#inFlight.get(key)?.controller.abort(new Error(reason));
  }

  /** Waits for the work in flight; after `deadlineMs` it is cancelled. */
  async drain(deadlineMs: number): Promise<void> {
    const all = Promise.all([...this.#inFlight.values()].map((work) => work.promise));
    const timer = setTimeout(() => this.abortAll(), deadlineMs);
    try {
      await all;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Cancels all work in flight (its podman calls are killed). */
  abortAll(): void {
    for (const work of this.#inFlight.values()) work.controller.abort(new Error('podvisor is shutting down'));
  }

  async #run(action: PodAction, signal: AbortSignal): Promise<void> {
    const { runtime, logger } = this.#options;
    const log = (event: string, message: string) => logger.info(message, { event, pod: action.key, reason: action.reason });
    try {
      switch (action.kind) {
        case 'createPod':
          log('PodCreating', 'creating pod');
          this.#started(action.desired, await this.#withStartSlot(() => runtime.createPod(action.desired, signal)));
          return;
        case 'replacePod':
          log('PodReplacing', 'replacing pod');
          await this.#withStopSlot(signal, () => {
            this.#killing(action.observed);
            return runtime.killPod(action.observed, action.observed.gracePeriodSeconds, signal, action.running);
          });
          this.#started(action.desired, await this.#withStartSlot(() => runtime.createPod(action.desired, signal)));
          return;
        case 'removePod':
          log('PodStopping', `stopping pod (grace period ${action.observed.gracePeriodSeconds}s)`);
          await this.#withStopSlot(signal, () => {
            this.#killing(action.observed);
            return runtime.killPod(action.observed, action.observed.gracePeriodSeconds, signal, action.running);
          });
          logger.info('pod removed', { event: 'PodRemoved', pod: action.key });
          return;
        case 'stopPod':
          log('DeadlineExceeded', 'stopping pod: DeadlineExceeded');
          this.#options.status?.event(action.desired, 'Normal', 'DeadlineExceeded', 'Pod was active on the node longer than the specified deadline');
          await this.#withStopSlot(signal, () => {
            this.#killing(action.observed);
            return runtime.stopPod(action.observed, action.observed.gracePeriodSeconds, signal, action.desired);
          });
          return;
        case 'createContainers': {
          log('ContainersCreating', `creating containers ${action.names.join(', ')}`);
          // Re-running an init container that failed is a restart of it.
          const retried = action.observed.containers.filter((container) => container.kind === 'init' && container.state === 'exited' && container.exitCode !== 0);
          for (const container of retried) {
            this.#options.supervision.recordRestart(backoffKey(action.observed.uid, container.name), backoffSince(container.finishedAt) ?? this.#options.now());
          }
          this.#started(action.desired, await this.#withStartSlot(() => runtime.createContainers(action.observed, action.desired, action.names, signal)));
          return;
        }
        case 'stopContainer': {
          const { kill } = action;
          logger.info(`killing container: ${kill.message}`, { event: 'ContainerKilling', pod: action.key, container: kill.containerName });
          this.#options.status?.event(action.desired, 'Normal', 'Killing', kill.message, { name: kill.containerName, kind: containerKind(action.observed, kill.containerName) });
          await runtime.stopContainer(action.observed, kill.containerId, kill.gracePeriodSeconds, action.desired, signal);
          return;
        }
        case 'restartContainers':
          for (const container of action.containers) {
            const key = backoffKey(action.observed.uid, container.name);
            logger.info('restarting container', { event: 'ContainerRestarting', pod: action.key, container: container.name, reason: action.reason });
            if (container.state === 'exited') this.#options.supervision.recordRestart(key, backoffSince(container.finishedAt) ?? this.#options.now());
            try {
              await runtime.startContainer(action.observed, container.id, signal, action.desired, container.name);
            } catch (error) {
              this.#options.supervision.recordFailure(key, this.#options.now());
              throw new ContainerStartError(container.name, 'RunContainerError', errorMessage(error), { cause: error });
            }
            this.#started(action.observed, [container.name]);
          }
          return;
      }
    } catch (error) {
      if (signal.aborted) {
        logger.info(`${action.kind} cancelled: ${errorMessage(signal.reason)}`, { event: 'ActionCancelled', action: action.kind, pod: action.key });
        throw error;
      }
      logger.error(`${action.kind} failed: ${errorMessage(error)}`, { event: 'ActionFailed', action: action.kind, pod: action.key });
      this.#failed(action, error);
      throw error;
    }
  }

  /**
   * Logs a start step (event PodStarted once its app containers are started, InitContainerStarted
   * before) and tells the status owner: Started events, failures cleared.
   */
  #started(pod: DesiredPod | ObservedPod, names: string[]): void {
    if ('pod' in pod) {
      const apps = new Set(pod.pod.spec.containers.map((container) => container.name));
      if (names.some((name) => apps.has(name))) this.#options.logger.info('pod started', { event: 'PodStarted', pod: pod.key, hash: pod.hash, containers: names });
      else if (names.length > 0) this.#options.logger.info(`init container ${names.join(', ')} started`, { event: 'InitContainerStarted', pod: pod.key, containers: names });
    }
    const status = this.#options.status;
    if (!status) return;
    for (const name of names) {
      status.containerStarted(pod, name);
      status.event(pod, 'Normal', 'Started', `Started container ${name}`, { name, kind: containerKind(pod, name) });
    }
  }

  #killing(pod: ObservedPod): void {
    for (const container of pod.containers.filter((one) => one.state === 'running')) {
      this.#options.status?.event(pod, 'Normal', 'Killing', `Stopping container ${container.name}`, { name: container.name, kind: container.kind });
    }
  }

  /** Records why an action failed: the container's waiting reason, its back-off, a Failed event. */
  #failed(action: PodAction, error: unknown): void {
    const pod: PodIdentity = 'desired' in action ? action.desired : action.observed;
    if (error instanceof ContainerStartError) {
      this.#options.supervision.recordFailure(backoffKey(pod.uid, error.containerName), this.#options.now());
      const kind = 'desired' in action && (action.desired.pod.spec.initContainers ?? []).some((one) => one.name === error.containerName) ? 'init' : 'app';
      this.#options.status?.containerFailed(pod, error.containerName, { reason: error.reason, message: error.message.replace(/^container "[^"]*": [A-Za-z]+: /, '') });
      this.#options.status?.event(pod, 'Warning', 'Failed', `Error: ${error.reason}`, { name: error.containerName, kind });
      return;
    }
    this.#options.status?.event(pod, 'Warning', 'FailedSync', errorMessage(error));
  }

  /** Runs a pod stop in a stop slot; a cancel while it waits for one ends the wait. */
  async #withStopSlot<T>(signal: AbortSignal, work: () => Promise<T>): Promise<T> {
    const release = await this.#stops.acquire(this.#options.stopSlotHoldMs ?? STOP_SLOT_HOLD_MS, signal);
    try {
      return await work();
    } finally {
      release();
    }
  }

  async #withStartSlot<T>(work: () => Promise<T>): Promise<T> {
    const release = await this.#starts.acquire();
    try {
      return await work();
    } finally {
      release();
    }
  }
}

/** Whether `name` is an init container (sidecars included) or an app container of the pod. */
function containerKind(pod: DesiredPod | ObservedPod, name: string): 'init' | 'app' {
  if ('pod' in pod) return (pod.pod.spec.initContainers ?? []).some((one) => one.name === name) ? 'init' : 'app';
  return pod.containers.find((one) => one.name === name)?.kind ?? 'app';
}
