// Replace windows: a cron expression (`replace-window: "0 2 * * *"`) and a duration
// (`replace-window-duration: 1h`) say when an edit may replace a running pod. Outside every
// window the replace is held (the pod keeps its running spec, `Pending replace`), as an update
// lock holds it; a window that opens lets every held replace go. Creating and removing pods are
// never held. A device that runs a job by day takes its updates at night.
//
// A window is open at a moment when the expression matched a minute within the duration before
// it, so a window that opened while the agent was down is still open when it starts. The
// expression is read in the device's local time (TZ), as cron reads it. Five fields only: a
// window opens at a minute, and a seconds field would make a window the reader cannot see.
import { errorMessage } from '../errors.js';
import { apiTime } from '../status/conditions.js';

const MINUTE_MS = 60_000;
const DAY_MS = 24 * 3600_000;
/** The longest window: a week (every match within it is looked at when the window is judged). */
export const MAX_WINDOW_SECONDS = 7 * 24 * 3600;

/** What node-cron gives for an expression: does it match this minute. */
type Matcher = (minute: Date) => boolean;

/** Parses `90m`, `2h`, `1h30m`, `45s` or a number of seconds; undefined when it is none of these. */
export function parseDuration(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  const text = value.trim();
  if (/^\d+(?:\.\d+)?$/.test(text)) return Number(text);
  const match = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(text);
  if (!match || text === '') return undefined;
  const [days, hours, minutes, seconds] = match.slice(1).map((part) => Number(part ?? 0)) as [number, number, number, number];
  return ((days * 24 + hours) * 60 + minutes) * 60 + seconds;
}

/** How a window reads in a message: `"0 2 * * *" for 1h`. */
export function describeWindow(expression: string, seconds: number): string {
  const hours = Math.floor(seconds / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  const rest = seconds % 60;
  const parts = [hours ? `${hours}h` : '', minutes ? `${minutes}m` : '', rest ? `${rest}s` : ''].join('');
  return `"${expression}" for ${parts || '0s'}`;
}

/** Why an expression cannot be a replace window, or undefined when it can. */
export async function windowExpressionProblem(expression: string): Promise<string | undefined> {
  const fields = expression.trim().split(/\s+/);
  if (fields.length !== 5) return `must be a cron expression of five fields (minute hour day-of-month month day-of-week), such as "0 2 * * *"; it has ${fields.length}`;
  const { validateDetailed } = await import('node-cron');
  const result = validateDetailed(expression);
  if (result.valid) return undefined;
  const why = result.errors.map((error) => `${error.field}: ${error.message}`).join('; ');
  return `is not a cron expression${why ? ` (${why})` : ''}`;
}

export class ReplaceWindow {
  readonly expression: string;
  readonly seconds: number;
  readonly #matches: Matcher;
  /** The last judgement, by minute: a burst of applies judges once. */
  #cached: { minute: number; openUntil: number | undefined } | undefined;
  #nextCached: { minute: number; next: Date | undefined } | undefined;

  private constructor(expression: string, seconds: number, matches: Matcher) {
    this.expression = expression;
    this.seconds = seconds;
    this.#matches = matches;
  }

  /** node-cron is loaded only when a window is set: an agent without one need not carry it. */
  static async create(expression: string, seconds: number): Promise<ReplaceWindow> {
    const problem = await windowExpressionProblem(expression);
    if (problem) throw new Error(`replace-window ${problem}`);
    const { createTask } = await import('node-cron');
    // A task never started: no timer runs; it is only asked whether a minute matches.
    const task = createTask(expression, () => undefined);
    return new ReplaceWindow(expression, Math.min(seconds, MAX_WINDOW_SECONDS), (minute) => {
      try {
        return task.match(minute);
      } catch (error) {
        throw new Error(`replace-window "${expression}": ${errorMessage(error)}`, { cause: error });
      }
    });
  }

  /** For tests: a window on a matcher of its own. */
  static withMatcher(expression: string, seconds: number, matches: Matcher): ReplaceWindow {
    return new ReplaceWindow(expression, seconds, matches);
  }

  /** When the window open at `at` closes (ms since the epoch), or undefined when none is open. */
  openUntil(at: Date): number | undefined {
    const minute = Math.floor(at.getTime() / MINUTE_MS) * MINUTE_MS;
    if (this.#cached?.minute === minute) return this.#cached.openUntil;
    const durationMs = this.seconds * 1000;
    let openUntil: number | undefined;
    // The latest match within the duration decides: windows that overlap make one longer window.
    for (let start = minute; start > at.getTime() - durationMs; start -= MINUTE_MS) {
      if (this.#matches(new Date(start))) {
        openUntil = start + durationMs;
        break;
      }
    }
    this.#cached = { minute, openUntil };
    return openUntil;
  }

  isOpen(at: Date): boolean {
    return this.openUntil(at) !== undefined;
  }

  /**
   * The next minute after `at` at which a window opens, looked for up to a day and a minute ahead
   * (a window rarer than daily is judged again each day). Kept by minute, as `openUntil` is.
   */
  nextOpen(at: Date): Date | undefined {
    const minute = Math.floor(at.getTime() / MINUTE_MS) * MINUTE_MS;
    if (this.#nextCached?.minute === minute) return this.#nextCached.next;
    let next: Date | undefined;
    for (let start = minute + MINUTE_MS; start <= minute + DAY_MS + MINUTE_MS; start += MINUTE_MS) {
      if (this.#matches(new Date(start))) {
        next = new Date(start);
        break;
      }
    }
    this.#nextCached = { minute, next };
    return next;
  }

  describe(): string {
    return describeWindow(this.expression, this.seconds);
  }
}

/**
 * What holds a pod's replace now, in words: its update lock (a lock names the pod, so it says
 * more), else the window when it is closed. Undefined: the replace may go.
 */
export function holdingOf(lock: string | undefined, window: ReplaceWindow | undefined, now: Date): string | undefined {
  if (lock !== undefined) return `the update lock ${lock}`;
  if (!window || window.isOpen(now)) return undefined;
  const next = window.nextOpen(now);
  return `the replace window ${window.describe()}, closed ${next ? `until ${apiTime(next)}` : 'for more than a day'}`;
}

/** When a closed window opens next (ms since the epoch), for the timer that lets held replaces go; at most a day ahead. */
export function windowOpensAt(window: ReplaceWindow | undefined, now: Date): number | undefined {
  if (!window || window.isOpen(now)) return undefined;
  return window.nextOpen(now)?.getTime() ?? now.getTime() + DAY_MS;
}
