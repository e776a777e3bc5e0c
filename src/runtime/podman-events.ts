// Follows podman's container events for podvisor's containers through one long-lived
// `podman events` process, so that a container's death is noticed within moments instead of at
// the next relist. Events are a fast signal, not the truth: podman can miss events, so the
// periodic relist stays. This file parses the JSON lines of podman 4.x and 5.x, and keeps the
// process running: on exit it reconnects with back-off, asking podman with `--since` for the
// events it printed while no process was reading.
//
// Shapes of one `podman events --format json` line, for a container event:
// - podman 4.x marshals libpod's event itself: `Time` is an RFC 3339 string with nanoseconds,
//   `ContainerExitCode` is an int with `omitempty` (absent when 0, also on `died`), `PodID`
//   (absent on `died` and `exec_died`), `Attributes` holding the container's labels.
//   Recorded on Debian 12's 4.3.1: test/fixtures/runtime/events/podman-4.3.jsonl.
// - podman 5.x prints its own struct (cmd/podman/system/events.go): `time` in unix seconds and
//   `timeNano` in nanoseconds, `ContainerExitCode` a pointer (present on `died`, `exec_died` and
//   `remove`, even when 0), `PodID`, `Attributes`, `Error`, `health_status`.
//
// Label filters: on podman 4.3 two `--filter label=...` are OR-ed (seen here: a container of
// another node came through `label=io.podvisor.managed=true` plus `label=io.podvisor.node=X`),
// so only one label filter is passed, the most selective, and both labels are checked in code.
// Events carry labels as `Attributes` on every container event (4.3 and 5.x), so the code check
// needs no extra podman call.
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { errorMessage, PodvisorError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { LABEL } from './labels.js';
import type { PodmanCli } from './podman-cli.js';

/** podman's container event statuses podvisor names; any other status is 'other'. */
export const CONTAINER_EVENT_KINDS = [
  'create', 'init', 'start', 'restart', 'attach', 'exec', 'exec_died', 'died', 'kill', 'stop',
  'cleanup', 'remove', 'pause', 'unpause', 'mount', 'unmount', 'checkpoint', 'restore',
  'health_status', 'rename', 'sync', 'prune',
] as const;

export type ContainerEventKind = (typeof CONTAINER_EVENT_KINDS)[number] | 'other';

/** One container event, the same whatever podman version printed it. */
export interface ContainerEvent {
  kind: ContainerEventKind;
  /** podman's status word as printed (differs from `kind` only when kind is 'other'). */
  status: string;
  containerId: string;
  /** The container's pod; podman leaves it out of `died` and `exec_died` events. */
  podId: string | undefined;
  /** The container's name. */
  name: string;
  image: string | undefined;
  /**
   * The exit code, for `died` and `exec_died` (podman 4.x leaves out 0: it is filled in here),
   * and for `remove` on podman 5.x (the last run's). Undefined otherwise.
   */
  exitCode: number | undefined;
  time: Date;
  /** podman's timestamp exactly, in nanoseconds since the epoch (a Date keeps milliseconds). */
  timeNano: bigint;
  /** The container's labels. */
  labels: Record<string, string>;
}

/** A `podman events` line that is not JSON or lacks what a container event needs. */
export class EventParseError extends PodvisorError {
  readonly line: string;

  constructor(message: string, line: string, options?: { cause?: unknown }) {
    super('E_PODMAN', message, options);
    this.name = 'EventParseError';
    this.line = line;
  }
}

const KINDS: ReadonlySet<string> = new Set(CONTAINER_EVENT_KINDS);
const NANOS_PER_SECOND = 1_000_000_000n;
const NANOS_PER_MS = 1_000_000n;

/** Parses an RFC 3339 time with up to nanosecond precision (Go's RFC3339Nano) into nanoseconds. */
export function parseRfc3339Nano(text: string): bigint | undefined {
  const match = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(text);
  if (!match) return undefined;
  const seconds = Date.parse(`${match[1] ?? ''}${match[3] ?? ''}`);
  if (Number.isNaN(seconds)) return undefined;
  const fraction = (match[2] ?? '').padEnd(9, '0');
  return BigInt(seconds / 1000) * NANOS_PER_SECOND + BigInt(fraction);
}

/** Formats nanoseconds since the epoch as RFC 3339 in UTC with nine fraction digits, for `--since`. */
export function formatRfc3339Nano(timeNano: bigint): string {
  const seconds = timeNano / NANOS_PER_SECOND;
  const fraction = (timeNano % NANOS_PER_SECOND).toString().padStart(9, '0');
  return `${new Date(Number(seconds) * 1000).toISOString().slice(0, 19)}.${fraction}Z`;
}

/** A Date's milliseconds as nanoseconds since the epoch. */
export function dateToNano(date: Date): bigint {
  return BigInt(date.getTime()) * NANOS_PER_MS;
}

/** The event's time in nanoseconds: 5.x `timeNano` (read from the raw text: it exceeds 2^53), 5.x `time`, or 4.x `Time`. */
function eventTimeNano(raw: Record<string, unknown>, line: string): bigint | undefined {
  if (typeof raw.timeNano === 'number' && Number.isFinite(raw.timeNano)) {
    const nano = /"timeNano"\s*:\s*(\d+)/.exec(line)?.[1];
    // The exact digits, as long as they are the field JSON.parse read (rounded to a double).
    if (nano !== undefined && Math.abs(Number(nano) - raw.timeNano) < 1e6) return BigInt(nano);
    return BigInt(Math.trunc(raw.timeNano));
  }
  if (typeof raw.time === 'number' && Number.isFinite(raw.time)) return BigInt(Math.trunc(raw.time)) * NANOS_PER_SECOND;
  if (typeof raw.Time === 'string') return parseRfc3339Nano(raw.Time);
  return undefined;
}

/** Only the string values of podman's `Attributes` (null on podman 5.x when a container has no labels). */
function stringRecord(value: unknown): Record<string, string> {
  const record: Record<string, string> = {};
  if (value === null || typeof value !== 'object') return record;
  for (const [key, entry] of Object.entries(value)) if (typeof entry === 'string') record[key] = entry;
  return record;
}

/**
 * Parses one line of `podman events --format json` (podman 4.x or 5.x). Returns undefined for an
 * event that is not about a container; throws an EventParseError for a line it cannot read.
 */
export function parseEventLine(line: string): ContainerEvent | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch (error) {
    throw new EventParseError('podman events: line is not JSON', line, { cause: error });
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new EventParseError('podman events: line is not a JSON object', line);
  }
  const event = raw as Record<string, unknown>;
  if (event.Type !== 'container') return undefined;
  const status = event.Status;
  const id = event.ID;
  if (typeof status !== 'string' || typeof id !== 'string' || id === '') {
    throw new EventParseError('podman events: container event without Status or ID', line);
  }
  const timeNano = eventTimeNano(event, line);
  if (timeNano === undefined) throw new EventParseError('podman events: event without a readable time', line);
  const kind: ContainerEventKind = KINDS.has(status) ? (status as ContainerEventKind) : 'other';
  let exitCode = typeof event.ContainerExitCode === 'number' ? event.ContainerExitCode : undefined;
  // podman 4.x marshals the exit code with omitempty: a death without one exited 0.
  if (exitCode === undefined && (kind === 'died' || kind === 'exec_died')) exitCode = 0;
  return {
    kind,
    status,
    containerId: id,
    podId: typeof event.PodID === 'string' && event.PodID !== '' ? event.PodID : undefined,
    name: typeof event.Name === 'string' ? event.Name : '',
    image: typeof event.Image === 'string' && event.Image !== '' ? event.Image : undefined,
    exitCode,
    time: new Date(Number(timeNano / NANOS_PER_MS)),
    timeNano,
    labels: stringRecord(event.Attributes),
  };
}

export interface PodmanEventStreamOptions {
  /** The podman binary comes from here (`cli.bin`), so tests' wrappers apply to the stream too. */
  cli: PodmanCli;
  logger: Logger;
  /** Called with every event of a podvisor container (of `nodeName` when given), in podman's order. */
  onEvent: (event: ContainerEvent) => void;
  /** Only containers labelled for this node name. */
  nodeName?: string | undefined;
  /** Where the first connection starts; the stream's creation when not given. */
  since?: Date | undefined;
  /** Stops the stream (and kills the `podman events` process). */
  signal?: AbortSignal | undefined;
  /** Called when a `podman events` process has started (its pid), for tests and logs. */
  onConnect?: ((pid: number) => void) | undefined;
  /** Reconnect back-off: first delay (1 s), doubling up to the maximum (30 s). */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** A process that ran this long (60 s) before exiting resets the back-off. */
  healthyAfterMs?: number;
  /**
   * How far back of the newest event seen a reconnect asks podman to start (2 s): podman's
   * processes write events to the log in an order that is not strictly their time order.
   * Events seen already are recognised and dropped.
   */
  replayOverlapMs?: number;
}

/** How many bytes of a `podman events` process's stderr are kept for the log line when it exits. */
const STDERR_TAIL = 2000;

/**
 * `podman events` for podvisor's containers, reconnecting when the process ends. Call start()
 * once; stop() (or the signal) kills the process and ends the stream.
 */
export class PodmanEventStream {
  readonly #options: PodmanEventStreamOptions;
  readonly #controller = new AbortController();
  readonly #initialMs: number;
  readonly #maxMs: number;
  readonly #healthyMs: number;
  readonly #overlapNs: bigint;
  /** Events seen recently, by time, id and status: a replay after a reconnect repeats them. */
  readonly #recent = new Map<string, bigint>();
  #newestNano: bigint | undefined;
  #sinceNano: bigint;
  #pid: number | undefined;
  #reconnects = 0;
  #useLabelFilter = true;
  #loop: Promise<void> | undefined;

  constructor(options: PodmanEventStreamOptions) {
    this.#options = options;
    this.#initialMs = options.backoffInitialMs ?? 1000;
    this.#maxMs = options.backoffMaxMs ?? 30_000;
    this.#healthyMs = options.healthyAfterMs ?? 60_000;
    this.#overlapNs = BigInt(options.replayOverlapMs ?? 2000) * NANOS_PER_MS;
    this.#sinceNano = dateToNano(options.since ?? new Date());
  }

  /** The running `podman events` process's pid (tests kill it to exercise the reconnect). */
  get pid(): number | undefined {
    return this.#pid;
  }

  /** How many times a new `podman events` process was started after the first. */
  get reconnects(): number {
    return this.#reconnects;
  }

  /** The time of the newest event seen. */
  get lastEventTime(): Date | undefined {
    return this.#newestNano === undefined ? undefined : new Date(Number(this.#newestNano / NANOS_PER_MS));
  }

  /** Starts following events; a second call does nothing. */
  start(): void {
    if (this.#loop) return;
    const external = this.#options.signal;
    if (external) {
      if (external.aborted) this.#controller.abort();
      else external.addEventListener('abort', () => this.#controller.abort(), { once: true });
    }
    this.#loop = this.#run();
  }

  /** Kills the process and resolves when the stream has ended. */
  async stop(): Promise<void> {
    this.#controller.abort();
    await this.#loop;
  }

  /** Keeps one `podman events` process running until stopped, waiting between attempts. */
  async #run(): Promise<void> {
    const signal = this.#controller.signal;
    let delay = this.#initialMs;
    while (!signal.aborted) {
      const startedAt = performance.now();
      const outcome = await this.#follow(signal);
      this.#pid = undefined;
      if (signal.aborted) break;
      if (performance.now() - startedAt >= this.#healthyMs) delay = this.#initialMs;
      this.#options.logger.warn(`podman events ended (${outcome}); reconnecting in ${delay / 1000} s`, { event: 'PodmanEventsEnded', reconnects: this.#reconnects + 1 });
      try {
        await sleep(delay, undefined, { signal });
      } catch {
        break;
      }
      delay = Math.min(delay * 2, this.#maxMs);
      this.#reconnects += 1;
    }
  }

  /** The arguments of one `podman events` process, starting where the last one left off. */
  #args(): string[] {
    const { nodeName } = this.#options;
    const args = ['events', '--format', 'json', '--filter', 'type=container'];
    if (this.#useLabelFilter) {
      args.push('--filter', nodeName === undefined ? `label=${LABEL.MANAGED}=true` : `label=${LABEL.NODE}=${nodeName}`);
    }
    return [...args, '--since', formatRfc3339Nano(this.#sinceNano)];
  }

  /** Runs one `podman events` process to its end, handing on its lines; says how it ended. */
  async #follow(signal: AbortSignal): Promise<string> {
    const { cli, logger } = this.#options;
    // PodmanCli.run buffers a process's output and returns when it exits; this process never
    // exits on its own and its lines matter as they come, so it is started here with execa
    // directly (the same binary, cli.bin), unbuffered, killed through the signal.
    const child = execa(cli.bin, this.#args(), {
      buffer: false,
      stdin: 'ignore',
      reject: false,
      cancelSignal: signal,
      forceKillAfterDelay: 2000,
    });
    if (child.pid !== undefined) {
      this.#pid = child.pid;
      logger.debug('podman events started', { pid: child.pid, since: formatRfc3339Nano(this.#sinceNano) });
      this.#options.onConnect?.(child.pid);
    }
    let stderr = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-STDERR_TAIL);
    });
    const lines = createInterface({ input: child.stdout!, crlfDelay: Infinity });
    const closed = new Promise<void>((resolve) => {
      lines.once('close', resolve);
      // A destroyed stream closes without ending, and readline waits for an end.
      child.stdout?.once('close', resolve);
    });
    lines.on('line', (line) => this.#onLine(line));
    // When stopping, stop reading too: a process left holding the pipe must not hold up stop().
    const stopReading = () => {
      child.stdout?.destroy();
      child.stderr?.destroy();
    };
    signal.addEventListener('abort', stopReading, { once: true });
    const result = await child;
    await closed;
    signal.removeEventListener('abort', stopReading);
    const words = stderr
      .split('\n')
      .map((line) => line.replace(/^time="[^"]*" level=\w+ msg="(.*)"$/, '$1').replace(/^Error: /, '').trim())
      .filter(Boolean)
      .join('; ');
    if (this.#useLabelFilter && /invalid filter/i.test(words)) {
      // An old podman without label filters for events: filter in code only.
      this.#useLabelFilter = false;
      logger.warn(`podman events refused the label filter (${words}); filtering events in podvisor`);
    }
    if (result.failed && result.exitCode === undefined && result.signal === undefined) {
      return errorMessage(result.cause ?? result.shortMessage);
    }
    const how = result.signal !== undefined ? `killed by ${result.signal}` : `exit code ${result.exitCode ?? '?'}`;
    return words ? `${how}: ${words}` : how;
  }

  /** Parses a line and hands on the event when it is one of ours and not seen already. */
  #onLine(line: string): void {
    if (line.trim() === '') return;
    let event: ContainerEvent | undefined;
    try {
      event = parseEventLine(line);
    } catch (error) {
      this.#options.logger.warn(`${errorMessage(error)}; skipped`, { event: 'PodmanEventUnreadable', line: line.slice(0, 300) });
      return;
    }
    if (!event || !this.#isOurs(event) || !this.#remember(event)) return;
    try {
      this.#options.onEvent(event);
    } catch (error) {
      this.#options.logger.error(`container event handler failed: ${errorMessage(error)}`, { event: event.kind, container: event.containerId });
    }
  }

  /** True for a container podvisor manages (on this node, when the stream has one). */
  #isOurs(event: ContainerEvent): boolean {
    if (event.labels[LABEL.MANAGED] !== 'true') return false;
    const { nodeName } = this.#options;
    return nodeName === undefined || event.labels[LABEL.NODE] === nodeName;
  }

  /** Records an event; false when it was seen already (a replay after a reconnect). */
  #remember(event: ContainerEvent): boolean {
    const key = `${event.timeNano}|${event.containerId}|${event.status}`;
    if (this.#recent.has(key)) return false;
    this.#recent.set(key, event.timeNano);
    if (this.#newestNano === undefined || event.timeNano > this.#newestNano) {
      this.#newestNano = event.timeNano;
      const since = event.timeNano - this.#overlapNs;
      if (since > this.#sinceNano) this.#sinceNano = since;
    }
    // Forget what no replay can bring back (older than the window a reconnect asks for).
    if (this.#recent.size > 512) {
      for (const [seen, time] of this.#recent) if (time < this.#sinceNano) this.#recent.delete(seen);
    }
    return true;
  }
}

