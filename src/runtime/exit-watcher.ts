// Notices a container's exit the moment it happens. conmon, which watches each container's
// main process, writes the exit code to a file named after the container id in podman's exits
// directory (`<engine tmp_dir>/exits`) when the process ends: conmon 2.1 writes `<id>.XXXXXX`
// and renames it to `<id>`, older conmons write `<id>` in place. podman's cleanup reads and
// removes the file a few hundred milliseconds later, and only then writes its `died` event, so
// this is the earliest signal there is. It is a signal beside the events stream, never instead
// of it: only exits, nothing about creation, start or removal, and nothing if podvisor runs
// where it cannot read that directory.
//
// The directory is watched with fs.watch (inotify), not polled. When it is missing (no container
// has run since boot, or podman's tmp_dir is elsewhere) the watcher says so once and tries again
// on a timer; when it is removed and made again (a reboot of podman's state) it watches anew.
import { closeSync, constants, fstatSync, openSync, readSync, watch, type FSWatcher } from 'node:fs';
import { basename, join } from 'node:path';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { PodmanCli } from './podman-cli.js';

/** A container exit, as the exit file told it. */
export interface ContainerExit {
  containerId: string;
  /** The code conmon wrote (128 + signal for a killed process); undefined if unreadable. */
  exitCode: number | undefined;
  /** When conmon wrote the file: the moment of the exit, to the file system's clock tick. */
  time: Date;
}

export interface ExitWatcherOptions {
  /** podman's exits directory; findExitsDirectory() derives it from podman. */
  dir: string;
  /** True for the containers the caller supervises; other containers' exits are not read. */
  isOurs: (containerId: string) => boolean;
  onExit: (exit: ContainerExit) => void;
  logger: Logger;
  signal?: AbortSignal | undefined;
  /** How often to try again while the directory is missing or cannot be watched (5 s). */
  retryMs?: number;
}

/** A full podman container id: the exit file's name. conmon's temporary names have a suffix. */
const CONTAINER_ID = /^[0-9a-f]{64}$/;

/** An exit code is a few digits; more than this is not an exit file conmon wrote. */
const EXIT_FILE_MAX_BYTES = 64;

/** At most this many exit files are remembered (entries go when their file goes). */
const MAX_REMEMBERED = 1024;

/** Watches podman's exits directory and reports the exits of the caller's containers. */
export class ExitWatcher {
  readonly #options: ExitWatcherOptions;
  readonly #retryMs: number;
  /** For each exit file reported: its inode and mtime, so one file is reported once. */
  readonly #reported = new Map<string, string>();
  #watcher: FSWatcher | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #unavailableReported = false;
  #started = false;
  #stopped = false;

  constructor(options: ExitWatcherOptions) {
    this.#options = options;
    this.#retryMs = options.retryMs ?? 5000;
  }

  /** True while the directory is being watched. */
  get watching(): boolean {
    return this.#watcher !== undefined;
  }

  /** Starts watching; a second call does nothing. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    const { signal } = this.#options;
    if (signal?.aborted) {
      this.#stopped = true;
      return;
    }
    signal?.addEventListener('abort', () => this.stop(), { once: true });
    this.#watch();
  }

  /** Stops watching and cancels the retry timer. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
    this.#close();
  }

  /** Watches the directory, or schedules another try when it cannot. */
  #watch(): void {
    if (this.#stopped || this.#watcher) return;
    const { dir, logger } = this.#options;
    try {
      // Not persistent: the watcher alone never keeps the agent's process alive.
      const watcher = watch(dir, { persistent: false }, (_event, filename) => this.#onChange(filename));
      watcher.on('error', (error) => {
        logger.warn(`watching exits directory ${dir} failed: ${errorMessage(error)}; watching again`);
        this.#restart();
      });
      this.#watcher = watcher;
    } catch (error) {
      if (!this.#unavailableReported) {
        this.#unavailableReported = true;
        logger.warn(`cannot watch podman's exits directory ${dir}: ${errorMessage(error)}; trying every ${this.#retryMs / 1000} s (container exits are noticed from podman events meanwhile)`);
      }
      this.#retryTimer = setTimeout(() => this.#watch(), this.#retryMs);
      this.#retryTimer.unref();
      return;
    }
    if (this.#unavailableReported) logger.info(`watching podman's exits directory ${dir}`);
    else logger.debug(`watching podman's exits directory ${dir}`);
    this.#unavailableReported = false;
  }

  #close(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
  }

  /** Closes the watcher and watches again (at once, or on the timer if the directory is gone). */
  #restart(): void {
    this.#close();
    this.#watch();
  }

  /** One inotify event: an exit file appeared, changed or went, or the directory itself did. */
  #onChange(filename: string | null): void {
    if (this.#stopped || filename === null) return;
    if (CONTAINER_ID.test(filename)) {
      if (this.#options.isOurs(filename)) this.#read(filename);
      return;
    }
    // The directory's own name: it was removed or moved away. inotify watches an inode, so the
    // old watch would see nothing more: watch the path anew (or wait for it to come back).
    if (filename === basename(this.#options.dir)) this.#restart();
  }

  /**
   * Reads an exit file and reports it, once per file. Synchronously, on purpose: the file is a few
   * bytes on podman's tmpfs, read in microseconds, while each step of an asynchronous read (open,
   * stat, read, stat, close) waits for a turn of the event loop, and under API load a turn takes
   * tens of milliseconds: five of them put 100-250 ms between conmon's file and the restart.
   */
  #read(containerId: string): void {
    const path = join(this.#options.dir, containerId);
    let content: string;
    let key: string;
    let time: Date;
    try {
      // Non-blocking: a FIFO given a container's name must not hold the agent's loop.
      const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
      try {
        // The content and the mtime must belong together: a write between them brings its own event.
        const before = fstatSync(fd, { bigint: true });
        if (!before.isFile()) return;
        const buffer = Buffer.alloc(EXIT_FILE_MAX_BYTES);
        const length = readSync(fd, buffer, 0, buffer.length, 0);
        content = buffer.toString('utf8', 0, length).trim();
        const after = fstatSync(fd, { bigint: true });
        if (after.mtimeNs !== before.mtimeNs) return;
        key = `${after.ino}:${after.mtimeNs}`;
        time = new Date(Number(after.mtimeNs / 1_000_000n));
      } finally {
        closeSync(fd);
      }
    } catch (error) {
      // Gone: podman's cleanup removed it. A later file for this id is a later exit.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') this.#reported.delete(containerId);
      else this.#options.logger.warn(`reading exit file ${path} failed: ${errorMessage(error)}`);
      return;
    }
    // An older conmon creates the file before writing it: its write brings another event.
    if (content === '' || this.#stopped) return;
    if (this.#reported.get(containerId) === key) return;
    this.#reported.delete(containerId);
    this.#reported.set(containerId, key);
    if (this.#reported.size > MAX_REMEMBERED) {
      const oldest = this.#reported.keys().next().value;
      if (oldest !== undefined) this.#reported.delete(oldest);
    }
    const exitCode = /^-?\d+$/.test(content) ? Number(content) : undefined;
    if (exitCode === undefined) this.#options.logger.warn(`exit file ${path} holds no exit code`, { content: content.slice(0, 40) });
    try {
      this.#options.onExit({ containerId, exitCode, time });
    } catch (error) {
      this.#options.logger.error(`container exit handler failed: ${errorMessage(error)}`, { container: containerId });
    }
  }
}

/** Where podman's exits directory is, and how that was learnt. */
export interface ExitsDirectory {
  dir: string;
  /** 'podman': podman's own resolved tmp_dir; 'default': podman's default, podman did not say. */
  source: 'podman' | 'default';
}

/**
 * Finds podman's exits directory: `<tmp_dir>/exits`, where tmp_dir is the engine's
 * (containers.conf `[engine] tmp_dir`, `--tmpdir`, or the value stored in podman's database,
 * which wins over the configuration files). `podman info` does not print it (4.3 nor 5.x), but
 * every podman that sets up its runtime logs "Using tmp dir <path>" at debug level, after
 * merging all of those: that line is read. When podman does not say, podman's defaults apply:
 * `/run/libpod` for root, `$XDG_RUNTIME_DIR/libpod/tmp` rootless.
 */
export async function findExitsDirectory(cli: PodmanCli, options: { signal?: AbortSignal | undefined; logger?: Logger | undefined } = {}): Promise<ExitsDirectory> {
  let rootless = process.getuid?.() !== 0;
  try {
    const { stdout, stderr } = await cli.run(['--log-level=debug', 'info', '--format', '{{.Host.Security.Rootless}}'], { signal: options.signal, timeoutMs: 30_000 });
    if (stdout.trim() === 'true' || stdout.trim() === 'false') rootless = stdout.trim() === 'true';
    const tmpDir = parseTmpDir(stderr);
    if (tmpDir !== undefined) return { dir: join(tmpDir, 'exits'), source: 'podman' };
    options.logger?.warn("podman did not name its tmp dir; assuming podman's default exits directory");
  } catch (error) {
    options.logger?.warn(`podman info failed: ${errorMessage(error)}; assuming podman's default exits directory`);
  }
  return { dir: defaultExitsDirectory(rootless), source: 'default' };
}

/** The "Using tmp dir <path>" line of podman's debug log, if any. */
export function parseTmpDir(stderr: string): string | undefined {
  const match = /msg="Using tmp dir (.+?)"\s*$/m.exec(stderr);
  return match?.[1];
}

/** podman's default exits directory, for root or rootless. */
export function defaultExitsDirectory(rootless: boolean): string {
  if (!rootless) return '/run/libpod/exits';
  const runtimeDir = process.env.XDG_RUNTIME_DIR || `/run/user/${process.getuid?.() ?? 0}`;
  return join(runtimeDir, 'libpod', 'tmp', 'exits');
}
