// What the image-archive loader remembers across restarts, in <state-dir>/image-archives.json:
// each archive content (by sha256) that was loaded or failed, and for each file of the directory
// the digest it had with the facts (inode, size, times) it was hashed at. The first keeps a
// restart from loading again; the second keeps it from reading gigabytes again at every boot just
// to find the same digest (any write moves a file's change time, so equal facts mean equal bytes).
//
// Written as the other state files are (temporary file, fsync, rename); a file that is corrupt or
// truncated anyway is set aside with a warning and the memory starts empty: the cost is one more
// load of each archive, never a stop.
import { join } from 'node:path';
import type { Logger } from '../log/logger.js';
import { readStateFile, StateFileWriter } from '../state/state-file.js';
import { sameFacts, type FileFacts } from './archive-files.js';

export const ARCHIVE_STATE_FILE = 'image-archives.json';

/** How many archive contents no longer in the directory are still remembered (the newest). */
const KEEP_GONE = 50;

/** What became of one archive content. */
export interface ArchiveRecord {
  digest: string;
  result: 'loaded' | 'failed';
  /** The file it was read from (its name in the directory). */
  file: string;
  /** The images podman said it loaded. */
  images: string[];
  /** When (RFC 3339). */
  at: string;
  /** podman's words, for a failure. */
  error?: string;
  /**
   * A failure that says nothing about the archive (the load timed out or was killed): the next
   * agent run tries it once more. A failure in podman's words stays until the file changes.
   */
  retryNextRun?: boolean;
  /** Set on loading the memory for a failure to try again in this run (not written). */
  retryNow?: boolean;
}

/** A file's digest, with the facts it was hashed at. */
export interface FileRecord extends FileFacts {
  name: string;
  digest: string;
}

interface StateFile {
  version: 1;
  archives: ArchiveRecord[];
  files: FileRecord[];
}

const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** The state file's content if it has the right shape; else why not. */
export function acceptArchiveState(raw: unknown): StateFile | string {
  const value = raw as Partial<StateFile> | null;
  if (value === null || typeof value !== 'object' || value.version !== 1) return 'not a version 1 image-archives state';
  if (!Array.isArray(value.archives) || !Array.isArray(value.files)) return 'archives or files missing';
  for (const record of value.archives) {
    if (typeof record !== 'object' || record === null || !DIGEST.test(String(record.digest)) || (record.result !== 'loaded' && record.result !== 'failed') || typeof record.file !== 'string' || !Array.isArray(record.images)) {
      return 'an archive entry has the wrong shape';
    }
  }
  for (const record of value.files) {
    if (typeof record !== 'object' || record === null || typeof record.name !== 'string' || !DIGEST.test(String(record.digest)) || ![record.size, record.mtimeMs, record.ctimeMs, record.ino].every((n) => typeof n === 'number')) {
      return 'a file entry has the wrong shape';
    }
  }
  return value as StateFile;
}

/** The loader's memory, kept in the state directory. */
export class ArchiveMemory {
  readonly #archives = new Map<string, ArchiveRecord>();
  readonly #files = new Map<string, FileRecord>();
  readonly #writer: StateFileWriter;
  /** Writes one after another: the last written is the newest. */
  #writing: Promise<unknown> = Promise.resolve();
  /** Changed since the last write (a rescan of unchanged files writes nothing: flash wears). */
  #dirty = false;

  private constructor(path: string, logger: Logger) {
    this.#writer = new StateFileWriter(path, logger);
  }

  /** Reads the memory from `stateDir` (empty when missing or corrupt: never fatal). */
  static async load(stateDir: string, logger: Logger): Promise<ArchiveMemory> {
    const path = join(stateDir, ARCHIVE_STATE_FILE);
    const memory = new ArchiveMemory(path, logger);
    let state: StateFile | undefined;
    try {
      state = await readStateFile(path, logger, acceptArchiveState);
    } catch (error) {
      // Unreadable for another reason (EACCES, EIO): start empty all the same, and say so.
      logger.warn(`cannot read ${path}: ${String(error)}; image archives will be loaded again`, { event: 'StateFileCorrupt', file: path });
    }
    for (const record of state?.archives ?? []) {
      memory.#archives.set(record.digest, record.result === 'failed' && record.retryNextRun ? { ...record, retryNow: true } : record);
    }
    for (const record of state?.files ?? []) memory.#files.set(record.name, record);
    return memory;
  }

  get path(): string {
    return this.#writer.path;
  }

  /** The digest a file had when hashed, if its facts are still the same. */
  knownDigest(name: string, facts: FileFacts): string | undefined {
    const record = this.#files.get(name);
    return record && sameFacts(record, facts) ? record.digest : undefined;
  }

  /** What became of a content, if anything. */
  archive(digest: string): ArchiveRecord | undefined {
    return this.#archives.get(digest);
  }

  /** Every remembered content, newest first. */
  archives(): ArchiveRecord[] {
    return [...this.#archives.values()].sort((a, b) => b.at.localeCompare(a.at));
  }

  rememberFile(name: string, facts: FileFacts, digest: string): void {
    if (this.#files.get(name)?.digest === digest && sameFacts(this.#files.get(name), facts)) return;
    this.#files.set(name, { name, ...facts, digest });
    this.#dirty = true;
  }

  forgetFile(name: string): void {
    if (this.#files.delete(name)) this.#dirty = true;
  }

  remember(record: ArchiveRecord): void {
    this.#archives.delete(record.digest);
    this.#archives.set(record.digest, record);
    this.#dirty = true;
  }

  /** Saves the memory if it changed (atomically); never throws, a failing disk is reported once by the writer. */
  save(): Promise<boolean> {
    const write = this.#writing.then(async () => {
      if (!this.#dirty) return true;
      this.#dirty = false;
      const written = await this.#writer.write(this.#snapshot());
      // Tried again with the next change (or the next save).
      if (!written) this.#dirty = true;
      return written;
    });
    this.#writing = write;
    return write;
  }

  /** The file's content: contents of files in the directory, and the newest KEEP_GONE others. */
  #snapshot(): StateFile {
    const present = new Set([...this.#files.values()].map((file) => file.digest));
    const archives = this.archives();
    const kept = [...archives.filter((one) => present.has(one.digest)), ...archives.filter((one) => !present.has(one.digest)).slice(0, KEEP_GONE)];
    return {
      version: 1,
      archives: kept.map(({ retryNow: _retryNow, ...record }) => record),
      files: [...this.#files.values()],
    };
  }
}
