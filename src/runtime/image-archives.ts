// Offline images, as k3s's agent/images directory: image archives (`podman save` / `docker save`
// output, docker-archive or oci-archive, plain, gzip or zstd) dropped into the images directory
// are loaded into podman once each, before the pods that need them are created. Devices in the
// field often have no registry to pull from; this is how their images arrive.
//
// Once each: every archive is known by the sha256 of its bytes, remembered in the state directory
// (image-archive-state.ts), so a restart loads nothing again and a file replaced with new content
// is loaded again. A failure (a corrupt or unsupported archive) is logged once with podman's words
// and remembered for that content: not retried in a loop, retried when the file changes (or once
// by the next agent run, in case the cause was podman's and not the file's). Nothing here ever
// stops supervision: every error becomes a log line.
//
// The directory is watched with chokidar and rescanned on a period (watchers miss events); a file
// is taken once complete (archive-files.ts: renamed in, or unchanged for a settle period), then
// hashed and loaded, one file at a time (podman load is heavy, and the device has few cores).
// While anything is settling, hashing or loading, settled() waits, bounded: pods are created after
// the archives they may need are in, but a hung load cannot hold pod creation for long.
import { mkdir, readdir, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { archiveCompression, factsOf, type ArchiveCompression, loadedImages, readiness, sameFacts, type FileFacts, type Look } from './archive-files.js';
import { ArchiveMemory } from './image-archive-state.js';
import { hashFile, loadArchive } from './load-archive.js';
import { PodmanError, type PodmanCli } from './podman-cli.js';

/** How long a file must stay unchanged before it is taken as complete (not renamed in). */
export const ARCHIVE_SETTLE_MS = 2000;
/** One `podman load`: an archive of gigabytes on an SD card takes minutes; a hung one is killed. */
export const ARCHIVE_LOAD_TIMEOUT_MS = 20 * 60_000;
/** How often a long hash or load says how it goes. */
export const ARCHIVE_PROGRESS_MS = 10_000;
/**
 * How long pod creation waits for archives being settled, hashed or loaded: long enough for an
 * archive of a few hundred MB on a slow card, short enough that a hung load (killed only at
 * ARCHIVE_LOAD_TIMEOUT_MS) cannot keep pods from being made; counted from when the loading began.
 */
export const IMAGES_WAIT_BOUND_MS = 2 * 60_000;

export type ArchiveResult = 'loaded' | 'failed';

export interface ImageArchivesOptions {
  dir: string;
  stateDir: string;
  cli: PodmanCli;
  logger: Logger;
  /** Full rescan period (events can be missed); 0 turns it off. */
  rescanIntervalMs: number;
  settleMs?: number;
  loadTimeoutMs?: number;
  progressIntervalMs?: number;
  /** Told of every load's result (metrics). */
  onResult?: (result: ArchiveResult) => void;
  /** Told after images were loaded (a reconcile pass may now create what waited for them). */
  onLoaded?: (images: string[]) => void;
}

/** Loads the image archives of a directory into podman, once each. */
export class ImageArchives {
  readonly dir: string;
  readonly #options: ImageArchivesOptions;
  readonly #settleMs: number;
  #memory: ArchiveMemory | undefined;
  readonly #stopping = new AbortController();
  #watcher: FSWatcher | undefined;
  #rescanTimer: NodeJS.Timeout | undefined;
  /** The first look at each file's current facts, for settling (see archive-files.ts). */
  readonly #looks = new Map<string, Look>();
  /** Files to look at again, by name. */
  readonly #timers = new Map<string, NodeJS.Timeout>();
  /** Files complete and waiting their turn to be hashed and loaded. */
  readonly #queued = new Set<string>();
  #chain: Promise<void> = Promise.resolve();
  #working = 0;
  #scanning = 0;
  #looking = 0;
  /** Since when something has been settling, hashing or loading (ms), while it is. */
  #busySince: number | undefined;
  readonly #idleWaiters = new Set<() => void>();
  /** Files reported as waiting to be complete, and the contents reported as already loaded. */
  readonly #reported = new Set<string>();
  #dirProblem: string | undefined;
  #closed = false;

  constructor(options: ImageArchivesOptions) {
    this.#options = options;
    this.dir = resolve(options.dir);
    this.#settleMs = options.settleMs ?? ARCHIVE_SETTLE_MS;
  }

  /** Reads the memory, starts watching and takes in the directory's files (their loads go on after). */
  async start(): Promise<void> {
    this.#memory = await ArchiveMemory.load(this.#options.stateDir, this.#options.logger);
    // The default directory is made, so an operator finds where to put archives.
    await mkdir(this.dir, { recursive: true }).catch(() => undefined);
    this.#scanning++;
    this.#markBusy();
    try {
      await this.#watch();
      await this.rescan();
    } finally {
      this.#scanning--;
      this.#maybeIdle();
    }
    if (this.#options.rescanIntervalMs > 0) {
      this.#rescanTimer = setInterval(() => void this.rescan(), this.#options.rescanIntervalMs);
      this.#rescanTimer.unref();
    }
  }

  async #watch(): Promise<void> {
    const watcher = watch(this.dir, {
      depth: 0,
      ignoreInitial: true,
      persistent: true,
      ignored: (path) => resolve(path) !== this.dir && archiveCompression(basename(path)) === undefined,
    });
    this.#watcher = watcher;
    const onPath = (path: string) => {
      if (resolve(path) !== this.dir) this.#see(basename(path));
    };
    watcher.on('add', onPath).on('change', onPath).on('unlink', onPath);
    watcher.on('error', (error) => this.#options.logger.warn(`watching ${this.dir}: ${errorMessage(error)}; rescanning meanwhile`, { event: 'ImageArchivesDirectory' }));
    await new Promise<void>((done) => watcher.once('ready', () => done()));
  }

  /** Looks at every archive in the directory again (what is unchanged costs one stat). */
  async rescan(): Promise<void> {
    if (this.#closed) return;
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (error) {
      const problem = errorMessage(error);
      if (this.#dirProblem !== problem) this.#options.logger.warn(`cannot read the images directory ${this.dir}: ${problem}; no image archives are loaded until it can be read`, { event: 'ImageArchivesDirectory', dir: this.dir });
      this.#dirProblem = problem;
      return;
    }
    if (this.#dirProblem !== undefined) this.#options.logger.info(`the images directory ${this.dir} can be read again`, { event: 'ImageArchivesDirectory', dir: this.dir });
    this.#dirProblem = undefined;
    for (const name of names) if (archiveCompression(name) !== undefined) this.#see(name);
  }

  /** True while an archive is settling, being hashed or loaded, or the directory's first scan runs. */
  get busy(): boolean {
    return this.#scanning > 0 || this.#looking > 0 || this.#timers.size > 0 || this.#queued.size > 0 || this.#working > 0;
  }

  /**
   * Resolves true once nothing is settling, hashing or loading; false when that has gone on for
   * `boundMs` (counted from when it began, not from this call: once a load has outlasted the bound,
   * nothing waits for it any more). Rejects when `signal` aborts.
   */
  async settled(options: { boundMs: number; signal?: AbortSignal | undefined }): Promise<boolean> {
    options.signal?.throwIfAborted();
    if (!this.busy) return true;
    const remaining = (this.#busySince ?? Date.now()) + options.boundMs - Date.now();
    if (remaining <= 0) return false;
    return await new Promise<boolean>((done, fail) => {
      const cleanUp = () => {
        clearTimeout(timer);
        this.#idleWaiters.delete(onIdle);
        options.signal?.removeEventListener('abort', onAbort);
      };
      const finish = (value: boolean) => {
        cleanUp();
        done(value);
      };
      const onIdle = () => finish(true);
      const onAbort = () => {
        cleanUp();
        fail(options.signal?.reason);
      };
      const timer = setTimeout(() => finish(false), remaining);
      this.#idleWaiters.add(onIdle);
      options.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Stops watching and cancels a hash or load in flight (an interrupted load is not remembered as failed). */
  async stop(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#rescanTimer);
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    this.#queued.clear();
    this.#stopping.abort(new Error('podvisor is stopping'));
    await this.#watcher?.close();
    await this.#chain;
    this.#maybeIdle();
  }

  #markBusy(): void {
    this.#busySince ??= Date.now();
  }

  #maybeIdle(): void {
    if (this.busy && !this.#closed) return;
    this.#busySince = undefined;
    for (const waiter of [...this.#idleWaiters]) waiter();
  }

  /** Something happened to `name` (an event, a rescan): look at it soon, unless a look is due already. */
  #see(name: string): void {
    if (this.#closed || this.#timers.has(name) || this.#queued.has(name)) return;
    this.#schedule(name, 0);
  }

  #schedule(name: string, inMs: number): void {
    this.#markBusy();
    clearTimeout(this.#timers.get(name));
    this.#timers.set(name, setTimeout(() => void this.#look(name), inMs));
  }

  /** Decides what to do with a file now: forget it, wait for it to settle, or queue it for loading. */
  async #look(name: string): Promise<void> {
    // This look's timer has fired; one set while looking is the next look.
    this.#timers.delete(name);
    this.#looking++;
    try {
      if (this.#closed) return;
      const path = join(this.dir, name);
      const info = await stat(path).catch(() => undefined);
      if (!info?.isFile()) {
        // Gone (or not a file): nothing to wait for; its digest is forgotten with it.
        this.#looks.delete(name);
        this.#memory?.forgetFile(name);
        void this.#memory?.save();
        return;
      }
      const facts = factsOf(info);
      // Hashed before with these very facts: complete, and its digest is known.
      if (this.#memory?.knownDigest(name, facts) !== undefined) {
        this.#enqueue(name);
        return;
      }
      const previous = this.#looks.get(name);
      const verdict = readiness(info, previous, Date.now(), this.#settleMs);
      // The first look at these facts is kept: settling is counted from it.
      if (!sameFacts(previous?.facts, facts)) this.#looks.set(name, { facts, at: Date.now() });
      if (verdict.kind === 'ready') {
        this.#enqueue(name);
      } else if (verdict.kind === 'wait') {
        if (!this.#reported.has(`wait:${name}`)) this.#options.logger.debug(`image archive ${name} is being written: waiting until it is complete`, { event: 'ImageArchiveSettling', file: name });
        this.#reported.add(`wait:${name}`);
        this.#schedule(name, verdict.inMs);
        return;
      }
    } finally {
      this.#looking--;
      this.#maybeIdle();
    }
  }

  /** Queues a complete file for hashing and loading, one file at a time. */
  #enqueue(name: string): void {
    if (this.#queued.has(name)) return;
    this.#queued.add(name);
    this.#chain = this.#chain.then(async () => {
      if (!this.#queued.delete(name) || this.#closed) return;
      this.#working++;
      try {
        await this.#process(name);
      } catch (error) {
        // Never a stop of supervision: the file is looked at again at the next rescan.
        if (!this.#closed) this.#options.logger.warn(`image archive ${name}: ${errorMessage(error)}`, { event: 'ImageArchiveFailed', file: name, error: errorMessage(error) });
      } finally {
        this.#working--;
        this.#maybeIdle();
      }
    });
  }

  /** Hashes a file unless its digest is known, then loads it unless that content was loaded (or failed) before. */
  async #process(name: string): Promise<void> {
    const memory = this.#memory;
    if (!memory) return;
    const path = join(this.dir, name);
    const compression = archiveCompression(name) ?? 'none';
    const info = await stat(path).catch(() => undefined);
    if (!info?.isFile()) return;
    const facts = factsOf(info);
    let digest = memory.knownDigest(name, facts);
    if (digest === undefined) {
      const hashed = await this.#hash(name, path, facts);
      if (!hashed) return;
      digest = hashed;
      memory.rememberFile(name, facts, digest);
      this.#looks.delete(name);
      this.#reported.delete(`wait:${name}`);
    }
    const record = memory.archive(digest);
    if (record?.result === 'loaded') {
      if (!this.#reported.has(`${name}@${digest}`)) this.#options.logger.debug(`image archive ${name} was loaded before (${record.at}): not loading it again`, { event: 'ImageArchiveKnown', file: name, digest, images: record.images });
      this.#reported.add(`${name}@${digest}`);
      await memory.save();
      return;
    }
    if (record?.result === 'failed' && !record.retryNow) {
      // Reported when it failed (in this run or one before); tried again once the file changes.
      await memory.save();
      return;
    }
    await this.#load(name, path, compression, digest, facts.size);
    await memory.save();
  }

  /** The file's digest, or undefined when it changed while being read (it is then settled again). */
  async #hash(name: string, path: string, facts: FileFacts): Promise<string | undefined> {
    const started = Date.now();
    let bytes = 0;
    const progress = setInterval(() => {
      this.#options.logger.info(`hashing image archive ${name}: ${mib(bytes)} of ${mib(facts.size)} MiB in ${seconds(Date.now() - started)} s`, { event: 'ImageArchiveProgress', file: name, phase: 'hashing', bytes, totalBytes: facts.size, ms: Date.now() - started });
    }, this.#options.progressIntervalMs ?? ARCHIVE_PROGRESS_MS);
    try {
      const { digest } = await hashFile(path, { signal: this.#stopping.signal, onProgress: (read) => (bytes = read) });
      const after = await stat(path).catch(() => undefined);
      if (after && sameFacts(factsOf(after), facts)) return digest;
      // Written to while it was read: what was read is no content of it.
      this.#options.logger.debug(`image archive ${name} changed while it was read: waiting until it is complete`, { event: 'ImageArchiveSettling', file: name });
      if (after?.isFile()) {
        this.#looks.set(name, { facts: factsOf(after), at: Date.now() });
        this.#schedule(name, this.#settleMs);
      }
      return undefined;
    } finally {
      clearInterval(progress);
    }
  }

  async #load(name: string, path: string, compression: ArchiveCompression, digest: string, size: number): Promise<void> {
    const { logger } = this.#options;
    const started = Date.now();
    logger.info(`loading image archive ${name} (${mib(size)} MiB) into podman`, { event: 'ImageArchiveLoading', file: name, digest, bytes: size });
    const progress = setInterval(() => {
      logger.info(`still loading image archive ${name}: ${seconds(Date.now() - started)} s so far (${mib(size)} MiB)`, { event: 'ImageArchiveProgress', file: name, phase: 'loading', bytes: size, ms: Date.now() - started });
    }, this.#options.progressIntervalMs ?? ARCHIVE_PROGRESS_MS);
    try {
      const stdout = await loadArchive(this.#options.cli, path, compression, { signal: this.#stopping.signal, timeoutMs: this.#options.loadTimeoutMs ?? ARCHIVE_LOAD_TIMEOUT_MS });
      const images = loadedImages(stdout);
      const ms = Date.now() - started;
      this.#memory?.remember({ digest, result: 'loaded', file: name, images, at: new Date().toISOString() });
      logger.info(`loaded image archive ${name}: ${images.join(', ') || 'no named image'} in ${seconds(ms)} s`, { event: 'ImageArchiveLoaded', file: name, digest, images, ms });
      this.#options.onResult?.('loaded');
      this.#options.onLoaded?.(images);
    } catch (error) {
      // Cut short by the agent stopping: no verdict on the archive, it is loaded at the next start.
      if (this.#stopping.signal.aborted) return;
      // podman's words without the command line PodmanCli puts before them.
      const words = errorMessage(error).replace(`podman load --input ${path}: `, '').replace(/^podman load: /, '');
      // A load that timed out (or was killed) says nothing about the archive: the next run tries again.
      const retryNextRun = error instanceof PodmanError && error.exitCode === undefined;
      this.#memory?.remember({ digest, result: 'failed', file: name, images: [], at: new Date().toISOString(), error: words, ...(retryNextRun ? { retryNextRun } : {}) });
      const until = retryNextRun ? 'the agent restarts or the file changes' : 'the file changes';
      logger.warn(`cannot load image archive ${name}: ${words}; not tried again until ${until}`, { event: 'ImageArchiveFailed', file: name, digest, error: words, ms: Date.now() - started });
      this.#options.onResult?.('failed');
    } finally {
      clearInterval(progress);
    }
  }
}

function mib(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}

function seconds(ms: number): string {
  return (ms / 1000).toFixed(1);
}
