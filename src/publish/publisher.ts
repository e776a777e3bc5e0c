// What the publishers share: the input they read the mirror pods from, the interface the agent
// drives them by, and the bookkeeping of a delivery that fails and recovers (health, one log line
// per transition, metrics). A publisher reads the input only when it is about to send, so while
// the endpoint is down nothing piles up: the latest state is all there is to deliver.
import type { CheckResult } from '../health/health.js';
import type { Logger } from '../log/logger.js';
import type { AgentMetrics } from '../metrics/metrics.js';
import type { MirrorPod } from '../mirror/mirror-pod.js';
import type { MirrorStore } from '../mirror/mirror-store.js';
import type { V1Node } from '../mirror/node-object.js';
import { errorMessage } from '../errors.js';
import type { RetryOptions } from './retry.js';

export type PublishMode = 'webhook' | 'kubernetes';

/** What a publisher reads: the node's mirror pods and the node, and a call on every change. */
export interface PublishInput {
  readonly nodeName: string;
  /** The mirror pods as they are now. */
  pods(): MirrorPod[];
  /** The node object, once the agent has made it. */
  node(): V1Node | undefined;
  /** The version of the content (the mirror store's). */
  resourceVersion(): string;
  /** Calls `listener` after every change; returns the function that stops it. */
  subscribe(listener: () => void): () => void;
}

/** The input of a mirror store: its pods and its node named `nodeName`; event changes do not count. */
export function publishInputFrom(store: MirrorStore, nodeName: string): PublishInput {
  return {
    nodeName,
    // The store keeps StoredObjects; the mirror feed is what puts pods and the node there.
    pods: () => store.list('pods') as unknown as MirrorPod[],
    node: () => store.get('nodes', undefined, nodeName) as unknown as V1Node | undefined,
    resourceVersion: () => String(store.version),
    subscribe: (listener) =>
      store.subscribe((change) => {
        if (change.resource !== 'events') listener();
      }),
  };
}

/** A publisher, as the agent drives it. Nothing it does throws into the caller or waits for the endpoint. */
export interface Publisher {
  readonly mode: PublishMode;
  /** Starts the publisher's own loop and sends the current state. */
  start(): void;
  /** Stops the loop: lets a request in flight finish for a short while, then cancels it. */
  stop(): Promise<void>;
  /** ok, or the last failure and since when (informational: it never makes the agent unhealthy). */
  health(): CheckResult;
  /** How many pod states (for the webhook: snapshots, at most one) wait to be delivered. */
  readonly pending: number;
}

export type PublishMetrics = Pick<AgentMetrics, 'publishAttempts' | 'publishPending'>;

/** The deadline of one request unless options say otherwise: a hung endpoint costs at most this. */
export const DEFAULT_TIMEOUT_SECONDS = 10;

/** Options both publishers take. */
export interface PublisherOptions {
  input: PublishInput;
  logger: Logger;
  metrics?: PublishMetrics;
  /** The back-off between failed attempts (default 1 s doubling to 60 s, full jitter). */
  retry?: RetryOptions;
  /** The deadline of one request (default 10 s). */
  timeoutSeconds?: number;
  /** How long stop() lets a request in flight finish before it cancels it (default 2 s). */
  stopTimeoutSeconds?: number;
  /** The clock (ms), for health's "since". */
  now?: () => number;
}

/** How a DeliveryHealth's two log lines name what failed and what works again. */
export interface DeliveryWords {
  /** "delivery failed" in "publish (mode): delivery failed, retrying with back-off: …". */
  failed: string;
  /** "delivering again" in "publish (mode): delivering again after 3 failed attempt(s) over 5 s". */
  recovered: string;
}

const DELIVERY_WORDS: DeliveryWords = { failed: 'delivery failed', recovered: 'delivering again' };

/** Failing or not, since when, and the transitions logged once each. */
export class DeliveryHealth {
  readonly #mode: PublishMode;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #words: DeliveryWords;
  #failure: { message: string; since: number; attempts: number } | undefined;
  #delivered = false;

  constructor(mode: PublishMode, logger: Logger, now: () => number, words: DeliveryWords = DELIVERY_WORDS) {
    this.#mode = mode;
    this.#logger = logger;
    this.#now = now;
    this.#words = words;
  }

  get failing(): boolean {
    return this.#failure !== undefined;
  }

  succeeded(): void {
    const failure = this.#failure;
    this.#delivered = true;
    if (!failure) return;
    this.#failure = undefined;
    const seconds = Math.round((this.#now() - failure.since) / 1000);
    this.#logger.info(`publish (${this.#mode}): ${this.#words.recovered} after ${failure.attempts} failed attempt(s) over ${seconds} s`, { mode: this.#mode });
  }

  failed(error: unknown): void {
    const message = errorMessage(error);
    if (this.#failure) {
      if (message !== this.#failure.message) this.#logger.debug(`publish (${this.#mode}): still failing: ${message}`, { mode: this.#mode });
      this.#failure = { ...this.#failure, message, attempts: this.#failure.attempts + 1 };
      return;
    }
    this.#failure = { message, since: this.#now(), attempts: 1 };
    this.#logger.warn(`publish (${this.#mode}): ${this.#words.failed}, retrying with back-off: ${message}`, { mode: this.#mode });
  }

  health(): CheckResult {
    if (this.#failure) {
      const { message, since, attempts } = this.#failure;
      return { ok: false, message: `${message} (failing since ${new Date(since).toISOString()}, ${attempts} attempt(s))` };
    }
    return this.#delivered ? { ok: true } : { ok: true, message: 'nothing delivered yet' };
  }
}

/** A sleep that a change can cut short. */
export class Wakeup {
  #kicked = false;
  #wake: (() => void) | undefined;

  kick(): void {
    this.#kicked = true;
    this.#wake?.();
  }

  /** Waits `ms` (forever when Infinity) or until kicked; a kick before the wait ends it at once. */
  async wait(ms: number): Promise<void> {
    if (!this.#kicked) {
      await new Promise<void>((resolve) => {
        const timer = Number.isFinite(ms) ? setTimeout(done, Math.max(0, ms)) : undefined;
        function done(): void {
          clearTimeout(timer);
          resolve();
        }
        this.#wake = done;
      });
      this.#wake = undefined;
    }
    this.#kicked = false;
  }
}

/**
 * Waits for a stopping loop: a request in flight gets `graceMs` to finish (it may carry the last
 * state), then `cancel` aborts it, and the loop is awaited to its end.
 */
export async function stopWithin(loop: Promise<void> | undefined, graceMs: number, cancel: () => void): Promise<void> {
  if (!loop) return;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, graceMs);
  });
  await Promise.race([loop, deadline]);
  clearTimeout(timer);
  cancel();
  await loop;
}

/** `namespace/name` of a pod. */
export function podKey(pod: { metadata: { namespace?: string; name: string } }): string {
  return `${pod.metadata.namespace ?? 'default'}/${pod.metadata.name}`;
}
