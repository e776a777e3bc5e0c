// The only code that starts podman processes. Every call goes through execa with a timeout and
// the caller's AbortSignal, and a failure becomes a PodmanError that keeps podman's own words.
//
// Starting a process holds the event loop until the child has exec'd, and on a busy 2-core device
// with dozens of podman processes starting that is 50-150 ms a call (measured: 40 pod stops in one
// pass held the loop 9 s). So one podman process is started per turn of the loop: the API, the
// health check and exit decisions are served between starts, never after all of them.
import type { Readable } from 'node:stream';
import { execa } from 'execa';
import { PodvisorError } from '../errors.js';

export class PodmanError extends PodvisorError {
  readonly args: readonly string[];
  readonly exitCode: number | undefined;
  readonly stderr: string;

  constructor(message: string, details: { args: readonly string[]; exitCode?: number | undefined; stderr?: string; timedOut?: boolean; cause?: unknown }) {
    super(details.timedOut ? 'E_PODMAN_TIMEOUT' : 'E_PODMAN', message, { cause: details.cause });
    this.name = 'PodmanError';
    this.args = details.args;
    this.exitCode = details.exitCode;
    this.stderr = details.stderr ?? '';
  }
}

export interface PodmanCallOptions {
  signal?: AbortSignal | undefined;
  timeoutMs?: number;
  /** Exit codes that are not failures (e.g. a container's own exit code for `podman run`). */
  okExitCodes?: readonly number[];
  /** What podman reads on its standard input (a decompressed image archive for `podman load`); nothing when absent. */
  input?: Readable;
}

export interface PodmanResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export interface PodmanCliOptions {
  /** The podman binary (PODVISOR_PODMAN overrides; tests put a wrapper first on PATH). */
  bin?: string;
  defaultTimeoutMs?: number;
  /** Called with every call's arguments and outcome (debug logs, benchmarks). */
  onCall?: (args: readonly string[], result: { exitCode: number | undefined; durationMs: number }) => void;
}

/** True when starting the process failed because the binary is not there. */
function isMissing(cause: unknown): boolean {
  return (cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

export class PodmanCli {
  readonly bin: string;
  readonly #defaultTimeoutMs: number;
  readonly #onCall: PodmanCliOptions['onCall'];
  /** Settles when the last queued start may go: starts are chained one loop turn apart. */
  #lastStart: Promise<void> = Promise.resolve();

  constructor(options: PodmanCliOptions = {}) {
    this.bin = options.bin ?? process.env.PODVISOR_PODMAN ?? 'podman';
    this.#defaultTimeoutMs = options.defaultTimeoutMs ?? 120_000;
    this.#onCall = options.onCall;
  }

  /**
   * Runs podman with its output going straight to this process's own, for as long as it runs
   * (`podvisor logs -f`): no timeout, only the signal. Resolves to podman's exit code.
   */
  async passThrough(args: readonly string[], options: { signal?: AbortSignal } = {}): Promise<number> {
    await this.#startTurn();
    const started = performance.now();
    const result = await execa(this.bin, args, { reject: false, stdin: 'ignore', stdout: 'inherit', stderr: 'inherit', cancelSignal: options.signal });
    this.#onCall?.(args, { exitCode: result.exitCode, durationMs: performance.now() - started });
    if (result.exitCode === undefined && isMissing(result.cause)) throw this.#missing(args, result.cause);
    return result.exitCode ?? 1;
  }

  /** Waits for this call's turn to start a process: the previous start, then a turn of the loop (I/O in between). */
  #startTurn(): Promise<void> {
    const turn = this.#lastStart.then(() => new Promise<void>((resolve) => setImmediate(resolve)));
    this.#lastStart = turn;
    return turn;
  }

  /** The error for a podman binary that is not there. */
  #missing(args: readonly string[], cause: unknown): PodmanError {
    return new PodmanError(`${this.bin} not found: install podman`, { args, cause });
  }

  /** Runs podman with `args`; rejects with a PodmanError unless it exits 0 (or an allowed code). */
  async run(args: readonly string[], options: PodmanCallOptions = {}): Promise<PodmanResult> {
    await this.#startTurn();
    const started = performance.now();
    const result = await execa(this.bin, args, {
      reject: false,
      // Beside 'pipe', execa pipes any stream, not only one backed by a file descriptor.
      stdin: options.input ? [options.input, 'pipe'] : 'ignore',
      timeout: options.timeoutMs ?? this.#defaultTimeoutMs,
      cancelSignal: options.signal,
      // podman's own children (conmon) must outlive a killed podman client.
      forceKillAfterDelay: 2000,
      maxBuffer: 64 * 1024 * 1024,
      stripFinalNewline: true,
    });
    this.#onCall?.(args, { exitCode: result.exitCode, durationMs: performance.now() - started });
    const exitCode = result.exitCode;
    const command = `podman ${args.slice(0, 3).join(' ')}`;
    // Checked before the exit code: podman exits 0 on the SIGTERM a timeout or cancel sends it.
    if (result.isCanceled) {
      throw new PodmanError(`${command}: cancelled`, { args, cause: result.cause });
    }
    if (result.timedOut) {
      throw new PodmanError(`${command}: timed out`, { args, timedOut: true, cause: result.cause });
    }
    if (exitCode === 0 || (exitCode !== undefined && options.okExitCodes?.includes(exitCode))) {
      return { stdout: result.stdout, stderr: result.stderr, exitCode };
    }
    if (result.failed && exitCode === undefined) {
      if (isMissing(result.cause)) throw this.#missing(args, result.cause);
      throw new PodmanError(`${command}: ${result.shortMessage}`, { args, cause: result.cause });
    }
    const stderr = cleanStderr(result.stderr);
    throw new PodmanError(`${command}: ${stderr || `exit code ${exitCode}`}`, { args, exitCode, stderr });
  }

  /** Runs podman and parses its standard output as JSON. */
  async json<T>(args: readonly string[], options: PodmanCallOptions = {}): Promise<T> {
    const { stdout } = await this.run(args, options);
    try {
      return JSON.parse(stdout === '' ? 'null' : stdout) as T;
    } catch (error) {
      throw new PodmanError(`podman ${args.slice(0, 2).join(' ')}: output is not JSON`, { args, cause: error });
    }
  }
}

/** podman's stderr without its log-line framing, as one line. */
function cleanStderr(stderr: string): string {
  return stderr
    .split('\n')
    .map((line) => line.replace(/^time="[^"]*" level=\w+ msg="(.*)"$/, '$1').replace(/^Error: /, ''))
    .filter((line) => line.trim() !== '' && !line.includes('Error validating CNI config file'))
    .join('; ');
}
