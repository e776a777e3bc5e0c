// The loop that makes podman match the files: a pass lists podvisor's pods once, plans, and
// hands each pod's action to its worker. Passes are triggered by new snapshots, by the relist
// timer (podman can change behind podvisor's back), by workers finishing and by due restarts,
// and are coalesced: at most one runs, and at most one more is queued behind it.
import { errorMessage } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { DesiredState } from '../manifest/desired-state.js';
import type { PodRuntime } from '../runtime/types.js';
import { planPods } from './plan.js';
import { PodWorkers } from './pod-workers.js';

export interface ReconcilerOptions {
  runtime: PodRuntime;
  logger: Logger;
  relistIntervalMs: number;
  restartDelayMs: number;
  maxConcurrentStarts?: number;
  now?: () => number;
}

export class Reconciler {
  readonly #options: ReconcilerOptions;
  readonly #workers: PodWorkers;
  readonly #now: () => number;
  /** Pods whose last action failed: left alone until the retry time, so failures cannot spin. */
  readonly #retryAt = new Map<string, number>();
  readonly #keptReported = new Set<string>();
  #desired: DesiredState | undefined;
  #running: Promise<void> | undefined;
  #queued = false;
  #stopped = false;
  #relistTimer: NodeJS.Timeout | undefined;
  #wakeTimer: NodeJS.Timeout | undefined;
  #foreignReported = false;
  passes = 0;

  constructor(options: ReconcilerOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#workers = new PodWorkers({
      runtime: options.runtime,
      logger: options.logger,
      ...(options.maxConcurrentStarts === undefined ? {} : { maxConcurrentStarts: options.maxConcurrentStarts }),
      onIdle: (key, error) => {
        if (error !== undefined) this.#retryAt.set(key, this.#now() + options.restartDelayMs);
        else this.#retryAt.delete(key);
        this.trigger();
      },
    });
  }

  /** Starts the relist timer. Nothing is planned until the first desired state arrives. */
  start(): void {
    this.#relistTimer = setInterval(() => this.trigger(), this.#options.relistIntervalMs);
    this.#relistTimer.unref();
  }

  /** Takes a new desired state (from the manifest source) and plans against it. */
  setDesired(state: DesiredState): void {
    this.#desired = state;
    this.trigger();
  }

  /** Asks for a pass; coalesced with any pass already running or queued. */
  trigger(): void {
    if (this.#stopped || !this.#desired) return;
    if (this.#running) {
      this.#queued = true;
      return;
    }
    this.#running = this.#pass().finally(() => {
      this.#running = undefined;
      if (this.#queued) {
        this.#queued = false;
        this.trigger();
      }
    });
  }

  /** Stops planning, lets work in flight finish within `deadlineMs`, then cancels the rest. */
  async stop(deadlineMs: number): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#relistTimer);
    clearTimeout(this.#wakeTimer);
    await this.#running;
    await this.#workers.drain(deadlineMs);
  }

  /** Cancels all work in flight at once (a second signal). */
  abort(): void {
    this.#workers.abortAll();
  }

  async #pass(): Promise<void> {
    const desired = this.#desired;
    if (!desired) return;
    const { logger } = this.#options;
    this.passes++;
    let observation;
    try {
      observation = await this.#options.runtime.list();
    } catch (error) {
      logger.error(`listing pods failed: ${errorMessage(error)}`);
      return;
    }
    if (observation.foreignPods > 0 && !this.#foreignReported) {
      logger.warn(`${observation.foreignPods} podvisor pod(s) of another node name are left alone`);
      this.#foreignReported = true;
    }
    const now = this.#now();
    const busy = new Set(this.#workers.busyKeys());
    for (const [key, at] of this.#retryAt) if (at > now) busy.add(key);
    const plan = planPods({ desired: desired.pods, observed: observation.pods, erroredSources: desired.erroredSources, busy, now, restartDelayMs: this.#options.restartDelayMs });
    for (const pod of plan.kept) {
      if (this.#keptReported.has(pod.key)) continue;
      logger.warn('keeping pod: its manifest has errors', { pod: pod.key, source: pod.source });
      this.#keptReported.add(pod.key);
    }
    for (const action of plan.actions) {
      this.#keptReported.delete(action.key);
      if (!this.#stopped) this.#workers.dispatch(action);
    }
    const retries = [...this.#retryAt.values()].filter((at) => at > now);
    const wakeAt = Math.min(plan.wakeAt ?? Infinity, ...retries);
    clearTimeout(this.#wakeTimer);
    if (Number.isFinite(wakeAt) && !this.#stopped) {
      this.#wakeTimer = setTimeout(() => this.trigger(), Math.max(0, wakeAt - this.#now()) + 50);
      this.#wakeTimer.unref();
    }
  }
}
