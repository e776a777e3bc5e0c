// One probe of one container instance, run periodically, as the kubelet's worker.go: the first run
// once initialDelaySeconds have passed, then one every periodSeconds (measured from the start of the
// previous run; a run that takes longer is followed at once). It counts runs against the thresholds
// and hands each run to its container prober, which owns the settled results. It holds (stops
// probing) after a failure that kills, until its container prober is replaced by a new instance.
import type { Logger } from '../log/logger.js';
import { countResult, EMPTY_RUN, mayProbe, type ResultRun } from './probe-results.js';
import type { ProbeRunner, ProbeTarget } from './probe-runner.js';
import type { ProbeSpec } from './probe-spec.js';
import type { ProbeKind, ProbeOutcome } from './types.js';

export interface ProbeWorkerOptions {
  kind: ProbeKind;
  spec: ProbeSpec;
  runner: ProbeRunner;
  now: () => number;
  logger: Logger;
  /** Cancels the worker: its timer and any run in flight. */
  signal: AbortSignal;
  startedAtMs: number;
  /** The container as it is now (its pid may be refreshed). */
  target: () => ProbeTarget;
  /** Whether the container has started (its startup probe, if any, succeeded). */
  isStarted: () => boolean;
  /** Takes one counted run; returns 'hold' when probing must stop until a new instance. */
  onRun: (kind: ProbeKind, outcome: ProbeOutcome, settle: 'success' | 'failure' | undefined) => 'hold' | undefined;
}

export class ProbeWorker {
  readonly kind: ProbeKind;
  readonly #options: ProbeWorkerOptions;
  #run: ResultRun = EMPTY_RUN;
  #onHold = false;
  #timer: NodeJS.Timeout | undefined;
  #inFlight: Promise<void> | undefined;
  #triggered = false;

  constructor(options: ProbeWorkerOptions) {
    this.kind = options.kind;
    this.#options = options;
    options.signal.addEventListener('abort', () => this.#clearTimer(), { once: true });
  }

  /** Schedules the first run after `delayMs`. */
  start(delayMs: number): void {
    this.#schedule(delayMs);
  }

  /** Runs the probe now rather than at its next tick (after the run in flight, if any). */
  trigger(): void {
    if (this.#options.signal.aborted) return;
    if (this.#inFlight) {
      this.#triggered = true;
      return;
    }
    this.#schedule(0);
  }

  /** Resolves when no run is in flight. */
  async idle(): Promise<void> {
    await this.#inFlight;
  }

  /** Arms the timer (unref'd: probes never keep the agent alive). */
  #schedule(delayMs: number): void {
    this.#clearTimer();
    if (this.#options.signal.aborted) return;
    this.#timer = setTimeout(() => void this.#tick(), delayMs);
    this.#timer.unref();
  }

  /** Disarms the timer. */
  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** One tick: a run (when due) and the next tick. */
  async #tick(): Promise<void> {
    this.#timer = undefined;
    const { signal, now, spec } = this.#options;
    if (signal.aborted) return;
    const began = now();
    this.#inFlight = this.#probeOnce();
    await this.#inFlight;
    this.#inFlight = undefined;
    if (signal.aborted) return;
    if (this.#triggered) {
      this.#triggered = false;
      this.#schedule(0);
      return;
    }
    this.#schedule(Math.max(0, spec.periodSeconds * 1000 - (now() - began)));
  }

  /** Runs the probe if this worker may now, counts the result and hands it on. */
  async #probeOnce(): Promise<void> {
    const { kind, spec, runner, now, signal, logger } = this.#options;
    if (this.#onHold) return;
    if (!mayProbe(kind, this.#options.isStarted(), this.#options.startedAtMs, now(), spec.initialDelaySeconds)) return;
    const target = this.#options.target();
    let outcome: ProbeOutcome;
    try {
      outcome = await runner.run(target, spec, signal);
    } catch (error) {
      outcome = { result: 'unknown', output: error instanceof Error ? error.message : String(error) };
    }
    if (signal.aborted) return;
    logger.debug('probe', { container: target.containerId.slice(0, 12), probe: kind, result: outcome.result, output: outcome.output.slice(0, 200) });
    const counted = countResult(this.#run, outcome.result, spec);
    this.#run = counted.run;
    let verdict: 'hold' | undefined;
    try {
      verdict = this.#options.onRun(kind, outcome, counted.settle);
    } catch (error) {
      logger.error(`probe result handler failed: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (verdict === 'hold') {
      this.#onHold = true;
      this.#run = EMPTY_RUN;
    }
  }
}
