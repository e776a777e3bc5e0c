// The kubelet's crash-loop back-off, per container: the first restart is immediate; after that a
// container that exits again waits `delay` from its exit, the delay doubling from the initial
// value up to the maximum. A container that ran longer than twice the maximum (10 minutes with
// the defaults) starts again from the initial delay. Pure state, so the planner can ask without
// acting and the state survives an agent restart.

export interface BackoffEntry {
  /** The current delay. */
  delayMs: number;
  /** The exit time the delay was last advanced for (ms since the epoch). */
  lastUpdate: number;
}

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
}

/** What the back-off says about a container that exited at `finishedAt`. */
export interface BackoffVerdict {
  /** True while the container must wait. */
  waiting: boolean;
  /** When the wait is over (ms since the epoch), if waiting. */
  until: number;
  /** The current delay, for the kubelet's message "back-off 40s restarting failed container=...". */
  delayMs: number;
}

/**
 * The exit time a back-off counts from. podman's listing gives exits in whole seconds: a time
 * that falls on a whole second is taken as the end of that second, so a restart is never early
 * (it may be up to a second late; the exit-file path gives exact times).
 */
export function backoffSince(finishedAt: Date | undefined): number | undefined {
  if (!finishedAt) return undefined;
  const ms = finishedAt.getTime();
  return ms % 1000 === 0 ? ms + 999 : ms;
}

/** The key of a container's back-off: a new pod uid (new content) starts afresh, as in the kubelet. */
export function backoffKey(podUid: string, containerName: string): string {
  return `${podUid}/${containerName}`;
}

export class Backoff {
  #options: BackoffOptions;
  readonly #entries: Map<string, BackoffEntry>;

  constructor(options: BackoffOptions, entries: Iterable<[string, BackoffEntry]> = []) {
    this.#options = options;
    this.#entries = new Map(entries);
  }

  /** New bounds (a reload): delays already running are kept, within the new maximum. */
  setOptions(options: BackoffOptions): void {
    this.#options = options;
    for (const entry of this.#entries.values()) entry.delayMs = Math.min(entry.delayMs, options.maxMs);
  }

  /**
   * Whether the container that exited at `finishedAt` must still wait at `now`. Without an exit
   * time (a container that never started), the last recorded failure counts instead.
   */
  verdict(key: string, finishedAt: number | undefined, now: number): BackoffVerdict {
    const entry = this.#entries.get(key);
    const since = finishedAt ?? entry?.lastUpdate ?? now;
    if (!entry || this.#expired(entry, since)) return { waiting: false, until: since, delayMs: 0 };
    const until = since + entry.delayMs;
    return { waiting: now < until, until, delayMs: entry.delayMs };
  }

  /** Records a restart of the container that exited at `finishedAt`: the next wait doubles. */
  next(key: string, finishedAt: number): void {
    const entry = this.#entries.get(key);
    if (!entry || this.#expired(entry, finishedAt)) {
      this.#entries.set(key, { delayMs: this.#options.initialMs, lastUpdate: finishedAt });
      return;
    }
    this.#entries.set(key, { delayMs: Math.min(entry.delayMs * 2, this.#options.maxMs), lastUpdate: finishedAt });
  }

  /** Forgets the containers of pods no longer known (their uid is gone). */
  retain(isKnown: (key: string) => boolean): void {
    for (const key of this.#entries.keys()) if (!isKnown(key)) this.#entries.delete(key);
  }

  entries(): [string, BackoffEntry][] {
    return [...this.#entries];
  }

  /** An entry not advanced for twice the maximum delay is stale: the container ran long enough. */
  #expired(entry: BackoffEntry, at: number): boolean {
    return at - entry.lastUpdate > 2 * this.#options.maxMs;
  }
}

/** "40s", "5m0s": Go's duration format, as the kubelet's messages print it. */
export function formatGoDuration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m${seconds % 60}s`;
  return `${Math.floor(minutes / 60)}h${minutes % 60}m${seconds % 60}s`;
}
