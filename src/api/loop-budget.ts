// The API's share of the event loop. The loop that answers API requests also acts on container
// exits, probes and manifest changes, and supervision comes first: a hundred clients asking as
// fast as they can must not delay a restart decision. Requests are run while the API has time
// left in the current window (a quarter of it by default) and for at most a slice of one turn of
// the loop; the rest wait in order, and since a client waits for its answer before asking again,
// waiting answers slow the clients down to what the budget allows instead of queueing without end.
import { performance } from 'node:perf_hooks';

export interface LoopBudgetOptions {
  /** The window over which the API's time is counted. */
  windowMs?: number;
  /** The API's time per window. */
  budgetMs?: number;
  /** The API's time in one turn of the loop, before it lets I/O run. */
  sliceMs?: number;
  /** Tasks waiting at most; run() refuses more (the caller answers 429). */
  maxWaiting?: number;
}

/** Runs tasks within a bounded share of the event loop's time. */
export class LoopBudget {
  readonly #windowMs: number;
  readonly #budgetMs: number;
  readonly #sliceMs: number;
  readonly #maxWaiting: number;
  readonly #waiting: (() => void)[] = [];
  #windowStart = 0;
  #spent = 0;
  #turnSpent = 0;
  #turnResetPending = false;
  #drainScheduled = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: LoopBudgetOptions = {}) {
    this.#windowMs = options.windowMs ?? 100;
    this.#budgetMs = options.budgetMs ?? 25;
    this.#sliceMs = options.sliceMs ?? 5;
    this.#maxWaiting = options.maxWaiting ?? 1024;
  }

  /** Tasks waiting for time. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Runs `task` now if there is time, or later in order; false when too many already wait. */
  run(task: () => void): boolean {
    if (this.#waiting.length === 0 && this.#hasTime()) {
      this.#execute(task);
      return true;
    }
    if (this.#waiting.length >= this.#maxWaiting) return false;
    this.#waiting.push(task);
    this.#scheduleDrain();
    return true;
  }

  /** Drops what waits (the server is stopping). */
  clear(): void {
    this.#waiting.length = 0;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #hasTime(): boolean {
    const now = performance.now();
    if (now - this.#windowStart >= this.#windowMs) {
      this.#windowStart = now;
      this.#spent = 0;
    }
    return this.#spent < this.#budgetMs && this.#turnSpent < this.#sliceMs;
  }

  #execute(task: () => void): void {
    const start = performance.now();
    try {
      task();
    } finally {
      const spent = performance.now() - start;
      this.#spent += spent;
      this.#turnSpent += spent;
      if (!this.#turnResetPending) {
        // The turn's slice starts afresh once the loop has gone round (after this turn's I/O).
        this.#turnResetPending = true;
        setImmediate(() => {
          this.#turnResetPending = false;
          this.#turnSpent = 0;
        });
      }
    }
  }

  #scheduleDrain(): void {
    if (this.#drainScheduled || this.#timer) return;
    this.#drainScheduled = true;
    setImmediate(() => {
      this.#drainScheduled = false;
      this.#drain();
    });
  }

  #drain(): void {
    // A new turn: what ran before it in the poll phase counts towards this turn's slice.
    while (this.#waiting.length > 0 && this.#hasTime()) this.#execute(this.#waiting.shift()!);
    if (this.#waiting.length === 0) return;
    if (this.#spent < this.#budgetMs) {
      // Slice used, window not: let the loop do its I/O, then go on.
      this.#scheduleDrain();
      return;
    }
    const wait = Math.max(1, this.#windowMs - (performance.now() - this.#windowStart));
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#drain();
    }, wait);
  }
}
