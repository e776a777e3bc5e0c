// The delay between attempts to reach a publish endpoint that failed: exponential back-off with
// full jitter (a random delay between 0 and a cap that doubles from `initialMs` to `maxMs`), so
// that many devices that lost the same endpoint do not come back to it in step. Reset on success.

/** The cap of the first delay, unless options say otherwise. */
export const DEFAULT_RETRY_INITIAL_MS = 1000;
/** The largest cap: while an endpoint is down, no attempt is further than this from the one before. */
export const DEFAULT_RETRY_MAX_MS = 60_000;

export interface RetryOptions {
  /** The cap of the first delay (default 1000 ms). */
  initialMs?: number;
  /** The largest cap (default 60000 ms). */
  maxMs?: number;
  /** A number in [0, 1): Math.random unless a test gives its own. */
  random?: () => number;
}

export class RetryBackoff {
  readonly #initialMs: number;
  readonly #maxMs: number;
  readonly #random: () => number;
  #failures = 0;

  constructor(options: RetryOptions = {}) {
    this.#initialMs = Math.max(1, options.initialMs ?? DEFAULT_RETRY_INITIAL_MS);
    this.#maxMs = Math.max(this.#initialMs, options.maxMs ?? DEFAULT_RETRY_MAX_MS);
    this.#random = options.random ?? Math.random;
  }

  /** Failures since the last success. */
  get failures(): number {
    return this.#failures;
  }

  /** The cap the next delay is drawn under. */
  get cap(): number {
    // 2 ** 30 is far past any maximum; stopping there keeps the number finite.
    return Math.min(this.#maxMs, this.#initialMs * 2 ** Math.min(this.#failures, 30));
  }

  /** Counts a failure and returns how long to wait before the next attempt: at least `askedMs`, the server's Retry-After. */
  next(askedMs = 0): number {
    const delay = Math.floor(this.#random() * this.cap);
    this.#failures++;
    return Math.max(delay, askedMs);
  }

  reset(): void {
    this.#failures = 0;
  }
}
