// The manifest directory as a source of complete snapshots, as the kubelet's file source: watched
// with chokidar for speed, rescanned in full on a period because watchers can miss events, and
// read only once a file has stopped changing, so a half-written file is never acted on. A file
// renamed into place (the atomic way to write one) is complete already and is read at once.
//
// The directory itself may vanish (rm -rf), be renamed away, or be swapped for another one renamed
// in. The kubelet sends an empty pod list when its staticPodPath is missing, which stops every
// static pod; on a device with no one to notice, that turns a slip of the hand into an outage, so
// here a missing directory removes nothing (its files' pods keep running, the gap is reported) and
// the watcher follows the path, not the inode: when a directory is there again it is watched
// anew and read at once. A directory that came back is given one rescan period to fill up before
// the pods of files it lacks are removed, so a copy of the files back does not stop and recreate
// them.
import type { Stats } from 'node:fs';
import { lstat, readdir, readlink, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import { errorMessage } from '../errors.js';
import { escapeText } from '../log/escape.js';
import type { DevicePolicy } from './device-policy.js';
import { ownershipProblem, type OwnershipOptions } from './file-ownership.js';
import { errorCode, isGone, loadManifestFile, type FileResult } from './load-file.js';

const MANIFEST_EXTENSIONS = ['.yaml', '.yml', '.json'];
/** How many files are read and parsed at once. */
const READ_CONCURRENCY = 4;
/** How soon a file that could not be read is tried again. */
const RETRY_MS = 2000;
const LEFTOVER = /(~|\.swp|\.swx|\.tmp|\.bak|\.orig|\.rpmnew|\.rpmsave)$|\.dpkg-/;

/**
 * True for a file whose last change was to its metadata, not its content: a rename into the
 * directory (or a chmod, or times set) after the writer was done, which sets the inode's change
 * time past its modification time. Every write sets both to the same instant, so a file still
 * being written never looks like this; an empty one is left to settle (a writer may chmod first).
 */
export function doneWriting(info: Pick<Stats, 'isFile' | 'size' | 'ctimeMs' | 'mtimeMs'>): boolean {
  return info.isFile() && info.size > 0 && info.ctimeMs > info.mtimeMs;
}

/** True for a file name podvisor reads as a manifest; editors' and package managers' leftovers are not. */
export function isManifestName(name: string): boolean {
  if (name.startsWith('.') || LEFTOVER.test(name)) return false;
  return MANIFEST_EXTENSIONS.some((extension) => name.endsWith(extension) && name.length > extension.length);
}

export interface SourceSnapshot {
  /** Every manifest file in the directory, as last read. */
  files: FileResult[];
  /** Files read anew for this snapshot (their findings are worth logging). */
  changed: FileResult[];
  /** Files gone since the last snapshot. */
  removed: string[];
}

export interface DirectorySourceOptions {
  dir: string;
  nodeName: string;
  /** Full rescan period; 0 turns it off. */
  resyncIntervalMs: number;
  /** Who may own the files and the directory (load-file.ts); unchecked when absent. */
  ownership?: OwnershipOptions | undefined;
  /** What the device's owner forbids pods to ask for. */
  devicePolicy?: DevicePolicy | undefined;
  /** Quiet time after a file's last event before it is read. */
  settleMs?: number;
  onSnapshot(snapshot: SourceSnapshot): void;
  onError(message: string, cause?: unknown): void;
  /** A problem reported before has ended (the directory is back, a file can be read again). */
  onRecovered?(message: string): void;
}

/** Watches a manifest directory and emits a complete snapshot whenever something in it changes. */
export class DirectorySource {
  #options: DirectorySourceOptions;
  readonly #dir: string;
  readonly #settleMs: number;
  readonly #files = new Map<string, FileResult>();
  readonly #dirty = new Set<string>();
  #watcher: FSWatcher | undefined;
  #settleTimer: NodeJS.Timeout | undefined;
  /** Dirty files known to be complete (renamed in), with their stats: read on the next turn rather than after settling. */
  readonly #ready = new Map<string, Stats>();
  #readyTimer: NodeJS.Immediate | undefined;
  /** A read of the ready files waits behind the one in flight; files ready meanwhile join it. */
  #readyQueued = false;
  #resyncTimer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();
  #scanning: Promise<void> = Promise.resolve();
  #emittedOnce = false;
  /** A directory came back or was replaced: the next read emits a snapshot even if no file changed, so its gap is seen to end. */
  #announce = false;
  /** Watching (start() was called); a source only rescanned follows no directory. */
  #started = false;
  #closed = false;
  #dirMissingReported = false;
  /** The directory watched now (device:inode), to tell it from another one at its path. */
  #watchedId: string | undefined;
  /** While the directory is missing: a check every RETRY_MS for its return. */
  #dirTimer: NodeJS.Timeout | undefined;
  /** Until then (ms since the epoch), files missing from a directory that came back keep their pods. */
  #holdRemovalsUntil = 0;
  #holdTimer: NodeJS.Timeout | undefined;
  /** Entries reported as not manifests (a directory, a dangling symlink), reported once each. */
  readonly #reported = new Map<string, string>();
  /** Files read under a policy that has since changed: read again even if unchanged. */
  #stale = new Set<string>();
  /** Files that exist but could not be read at the last try; retried every RETRY_MS. */
  readonly #failing = new Set<string>();
  #retryTimer: NodeJS.Timeout | undefined;

  constructor(options: DirectorySourceOptions) {
    this.#options = options;
    this.#dir = resolve(options.dir);
    this.#settleMs = options.settleMs ?? 20;
  }

  #recovered(message: string): void {
    if (this.#options.onRecovered) this.#options.onRecovered(message);
    else this.#options.onError(message);
  }

  /** Starts watching; resolves after the first full scan has been emitted (or failed). */
  async start(): Promise<void> {
    this.#started = true;
    await this.#watch();
    await this.rescan();
    if (this.#options.resyncIntervalMs > 0) {
      this.#resyncTimer = setInterval(() => void this.rescan(), this.#options.resyncIntervalMs);
      this.#resyncTimer.unref();
    }
  }

  /** Watches the directory now at the path (closing any watcher of the one that was there). */
  async #watch(): Promise<void> {
    await this.#watcher?.close();
    this.#watchedId = await directoryId(this.#dir);
    const watcher = watch(this.#dir, {
      depth: 0,
      ignoreInitial: true,
      persistent: true,
      ignored: (path) => path !== this.#dir && !isManifestName(basename(path)),
    });
    this.#watcher = watcher;
    const onPath = (path: string, info?: Stats) => this.#markDirty(resolve(path), info !== undefined && doneWriting(info) ? info : undefined);
    watcher.on('add', onPath).on('change', onPath).on('unlink', onPath);
    // The directory itself removed or renamed away: chokidar watches nothing from then on.
    watcher.on('unlinkDir', (path) => {
      if (resolve(path) !== this.#dir || this.#watcher !== watcher) return;
      // Gone, or already another directory at the path (one renamed in): then watch that one.
      void directoryId(this.#dir).then((id) => {
        if (id === undefined) this.#directoryMissing(new Error('the directory was removed or renamed away'));
        else void this.rescan();
      });
    });
    watcher.on('error', (error) => this.#options.onError(`watching ${this.#dir}: ${errorMessage(error)}`, error));
    // Until chokidar is ready, a file created now would be taken for an initial one and not reported.
    await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
    if (this.#closed) await watcher.close();
  }

  /** The directory is not there (or not a directory): reported once, its pods kept, its return awaited. */
  #directoryMissing(error: unknown): void {
    if (!this.#dirMissingReported) this.#options.onError(`cannot read manifest directory ${this.#dir}: ${errorMessage(error)}; keeping the current pods`, error);
    this.#dirMissingReported = true;
    this.#watchedId = undefined;
    if (this.#closed || this.#dirTimer) return;
    // Checked more often than the rescan period, so a directory put back is watched soon.
    this.#dirTimer = setInterval(() => {
      void directoryId(this.#dir).then((id) => {
        if (id !== undefined) void this.rescan();
      });
    }, RETRY_MS);
    this.#dirTimer.unref();
  }

  /** A new period for the full re-read (a reload); 0 stops it. */
  setResyncInterval(ms: number): void {
    this.#options = { ...this.#options, resyncIntervalMs: ms };
    if (this.#resyncTimer === undefined || this.#closed) return;
    clearInterval(this.#resyncTimer);
    this.#resyncTimer = undefined;
    if (ms > 0) {
      this.#resyncTimer = setInterval(() => void this.rescan(), ms);
      this.#resyncTimer.unref();
    }
  }

  /**
   * A new ownership rule or device policy (a reload): every file is judged again by it at once,
   * changed or not, and the snapshot carries the new verdicts.
   */
  setPolicy(policy: Pick<DirectorySourceOptions, 'ownership' | 'devicePolicy'>): Promise<void> {
    this.#options = { ...this.#options, ownership: policy.ownership, devicePolicy: policy.devicePolicy };
    this.#stale = new Set(this.#files.keys());
    return this.rescan();
  }

  /** Reads the whole directory again; what changed since is re-read and emitted. */
  rescan(): Promise<void> {
    // One at a time: two rescans finding a new directory would each start a watcher on it.
    this.#scanning = this.#scanning.then(() => this.#rescan());
    return this.#scanning;
  }

  async #rescan(): Promise<void> {
    if (this.#closed) return;
    let names: string[];
    try {
      const id = await directoryId(this.#dir, true);
      let replacedNow = false;
      if (this.#started && id !== this.#watchedId) {
        // Back after a gap, or another directory renamed in: watch this one, and let it fill up
        // before what it lacks is taken for deleted.
        const returned = this.#dirMissingReported || this.#watchedId !== undefined;
        await this.#watch();
        if (this.#closed) return;
        if (returned) this.#holdRemovals();
        replacedNow = returned;
        this.#announce = true;
      }
      names = await readdir(this.#dir);
      if (this.#dirMissingReported) this.#recovered(`manifest directory ${this.#dir} is back: reading it again`);
      else if (replacedNow) this.#recovered(`manifest directory ${this.#dir} was replaced by another directory: reading that one`);
      this.#dirMissingReported = false;
      clearInterval(this.#dirTimer);
      this.#dirTimer = undefined;
    } catch (error) {
      // A missing or unreadable directory is not "no pods": nothing is emitted, nothing removed.
      this.#directoryMissing(error);
      return;
    }
    const present = new Set(names.filter(isManifestName).map((name) => join(this.#dir, name)));
    for (const path of present) this.#dirty.add(path);
    for (const path of this.#files.keys()) if (!present.has(path)) this.#dirty.add(path);
    await this.#flush(true);
  }

  /** Files that are there but could not be read at the last try (their pods keep their state). */
  unreadableFiles(): string[] {
    return [...this.#failing];
  }

  /** Stops watching and timers; in-flight reads finish. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#settleTimer);
    if (this.#readyTimer) clearImmediate(this.#readyTimer);
    clearInterval(this.#resyncTimer);
    clearTimeout(this.#retryTimer);
    clearInterval(this.#dirTimer);
    clearTimeout(this.#holdTimer);
    await this.#watcher?.close();
    await this.#flushing;
  }

  /** Marks a file to be read: at once when it is known to be complete (`complete`, its stats then), else once events settle. */
  #markDirty(path: string, complete?: Stats): void {
    if (this.#closed || !isManifestName(basename(path))) return;
    this.#dirty.add(path);
    if (complete) {
      // Files renamed in together arrive together: this turn of the event loop's events are read
      // at its end, without waiting for files still being written. While a read is in flight,
      // what arrives meanwhile waits for one read after it, not one read per turn: 200 files
      // renamed in over 0.4 s made six snapshots of a loaded agent.
      this.#ready.set(path, complete);
      this.#readyTimer ??= setImmediate(() => {
        this.#readyTimer = undefined;
        if (this.#readyQueued) return;
        this.#readyQueued = true;
        void this.#flush(false, () => {
          this.#readyQueued = false;
          const ready = new Map(this.#ready);
          this.#ready.clear();
          return ready;
        });
      });
      return;
    }
    this.#ready.delete(path);
    // Debounce: read once events for the file have been quiet for settleMs.
    clearTimeout(this.#settleTimer);
    this.#settleTimer = setTimeout(() => void this.#flush(false), this.#settleMs);
  }

  /** Holds back removals for a rescan period (at least RETRY_MS), then rescans to carry them out. */
  #holdRemovals(): void {
    const holdMs = Math.max(RETRY_MS, this.#options.resyncIntervalMs);
    this.#holdRemovalsUntil = Date.now() + holdMs;
    clearTimeout(this.#holdTimer);
    this.#holdTimer = setTimeout(() => void this.rescan(), holdMs + 50);
    this.#holdTimer.unref();
  }

  /** The file is gone (ENOENT or ENOTDIR, nothing else): its pods go with it, once #readDirty confirms the directory is there. */
  #gone(path: string, removed: string[]): void {
    this.#failing.delete(path);
    if (this.#files.has(path)) removed.push(path);
  }

  /** Reports once that `path` is no manifest for a reason other than its content (a dangling symlink). */
  #notManifest(path: string, why: string): void {
    if (this.#reported.get(path) === why) return;
    this.#reported.set(path, why);
    this.#options.onError(`${path}: ${why}: not read`);
  }

  /** Why a path that stat cannot find still shows in the directory (a dangling symlink), or undefined. */
  async #danglingLink(path: string): Promise<string | undefined> {
    const link = await lstat(path).catch(() => undefined);
    if (!link?.isSymbolicLink()) return undefined;
    const target = await readlink(path).catch(() => '?');
    return `a symbolic link to ${escapeText(target)}, which does not exist`;
  }

  /**
   * The file is there but cannot be read now (EACCES, EIO, EMFILE...): that is no deletion. Its
   * pods keep their last good state; it is reported once and read again shortly.
   */
  #unreadable(path: string, error: unknown): void {
    if (!this.#failing.has(path)) this.#options.onError(`cannot read ${path}: ${errorMessage(error)}; its pods keep their current state, retrying`, error);
    this.#failing.add(path);
    if (this.#closed) return;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => {
      for (const failing of this.#failing) this.#dirty.add(failing);
      void this.#flush(false);
    }, RETRY_MS);
    this.#retryTimer.unref();
  }

  /**
   * Re-reads the dirty files (or those of `only` still dirty, whose stats the watcher gave; asked
   * for when this flush's turn comes), one flush at a time, and emits a snapshot if anything changed.
   */
  #flush(fullScan: boolean, only?: () => ReadonlyMap<string, Stats>): Promise<void> {
    this.#flushing = this.#flushing.then(() => this.#readDirty(fullScan, only?.()));
    return this.#flushing;
  }

  async #readDirty(fullScan: boolean, only?: ReadonlyMap<string, Stats>): Promise<void> {
    if (this.#closed) return;
    const paths = only ? [...only.keys()].filter((path) => this.#dirty.has(path)) : [...this.#dirty];
    for (const path of paths) this.#dirty.delete(path);
    const changed: FileResult[] = [];
    const removed: string[] = [];
    // A few files at a time: each read holds a buffer of up to a manifest's size until its parse
    // (parses themselves run one at a time on the event loop), so a directory of many large
    // files holds a bounded number of those buffers at once.
    await forEachLimited(paths, READ_CONCURRENCY, async (path) => {
      let info = only?.get(path);
      try {
        info ??= await stat(path);
      } catch (error) {
        if (isGone(errorCode(error))) {
          const dangling = await this.#danglingLink(path);
          if (dangling) this.#notManifest(path, dangling);
          else this.#reported.delete(path);
          this.#gone(path, removed);
        } else this.#unreadable(path, error);
        return;
      }
      // Subdirectories are not manifests (as the kubelet's file source skips them), and ignored
      // without a word, as the README promises, even when named like one.
      if (info.isDirectory()) {
        this.#gone(path, removed);
        return;
      }
      this.#reported.delete(path);
      const known = this.#files.get(path);
      if (known && known.mtimeMs === info.mtimeMs && known.size === info.size && !this.#failing.has(path) && !this.#stale.has(path)) {
        // The same content; but a chmod, a chown or a link moved elsewhere changes no content and
        // may change whether the file may be read: judged again on every scan (a few stats).
        const ownership = this.#options.ownership;
        if (!ownership || (await ownershipProblem(path, ownership)) === known.ownershipProblem) return;
      }
      // The first scan reads everything: a snapshot without a settling file would stop its pods.
      if (fullScan && this.#emittedOnce && info.isFile() && Date.now() - info.mtimeMs < this.#settleMs && !doneWriting(info)) {
        // A rescan found it being written: leave it to the debounced read once it settles.
        this.#markDirty(path);
        return;
      }
      this.#stale.delete(path);
      const result = await loadManifestFile(path, { nodeName: this.#options.nodeName, displayName: path, ownership: this.#options.ownership, devicePolicy: this.#options.devicePolicy });
      if (result.readError !== undefined) {
        if (isGone(result.readError)) this.#gone(path, removed);
        else this.#unreadable(path, new Error(result.findings[0]?.message ?? result.readError));
        return;
      }
      const after = await stat(path).catch(() => undefined);
      if (!after || after.mtimeMs !== result.mtimeMs || (info.isFile() && after.size !== result.size)) {
        this.#markDirty(path); // changed while being read
        return;
      }
      if (this.#failing.delete(path)) this.#recovered(`${path} can be read again`);
      this.#files.set(path, result);
      changed.push(result);
    });
    if (removed.length > 0) {
      // A file gone with its directory (rm -rf, renamed away) is no deletion of that file; nor is
      // one missing from a directory that has just come back and may still be filling up.
      const directory = await directoryId(this.#dir);
      const replaced = directory !== undefined && this.#started && directory !== this.#watchedId;
      if (directory === undefined) this.#directoryMissing(new Error('the directory is gone'));
      if (directory === undefined || replaced || Date.now() < this.#holdRemovalsUntil) {
        // Kept; the rescan once the directory is back (or the hold ends) decides for good.
        if (replaced) setImmediate(() => void this.rescan());
        removed.length = 0;
      }
    }
    for (const path of removed) this.#files.delete(path);
    if (changed.length === 0 && removed.length === 0 && !this.#announce && (this.#emittedOnce || !fullScan)) return;
    this.#emittedOnce = true;
    this.#announce = false;
    this.#options.onSnapshot({ files: [...this.#files.values()], changed, removed });
  }
}

/** The directory's device:inode, or undefined when nothing (or no directory) is at `path`; with `strict`, the error is thrown instead. */
async function directoryId(path: string, strict = false): Promise<string | undefined> {
  try {
    const info = await stat(path);
    if (!info.isDirectory()) throw Object.assign(new Error(`${path} is not a directory`), { code: 'ENOTDIR' });
    return `${info.dev}:${info.ino}`;
  } catch (error) {
    if (strict) throw error;
    return undefined;
  }
}

/** Runs `work` on every item, at most `limit` at a time. */
async function forEachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await work(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}
