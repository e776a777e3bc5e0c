// The agent's state files (supervision.json, status.json, each pod's pod.json), written so that
// a crash or a power loss leaves the previous version or the new one, never half a file:
// temporary file, fsync, rename, fsync of the directory (without the last, the rename itself may
// be lost at power loss). A file that is corrupt anyway (a disk that lied, a hand edit) is set
// aside as `<name>.corrupt-<time>` with a warning and the agent rebuilds from podman: never fatal.
// A full disk is reported once, not at every write, and its end is logged when a write succeeds.
import { mkdir, open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { errorMessage, PodvisorError } from '../errors.js';
import type { Logger } from '../log/logger.js';

/** Writes `value` as JSON to `path`, atomically and durably; on failure nothing is left behind. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const directory = dirname(path);
  const temporary = join(directory, `.${basename(path)}.${process.pid}-${Math.random().toString(36).slice(2)}.tmp`);
  try {
    await mkdir(directory, { recursive: true });
    const handle = await open(temporary, 'w', 0o600);
    try {
      await handle.writeFile(`${JSON.stringify(value)}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
    await syncDirectory(directory);
  } catch (error) {
    // A half-written temporary file on a full disk would only keep it full.
    await unlink(temporary).catch(() => undefined);
    throw new PodvisorError('E_STATE', `cannot write ${path}: ${errorMessage(error)}`, { cause: error });
  }
}

/** A temporary file of writeJsonAtomic (`.<name>.<pid>-<random>.tmp`, or `.<ms>-<pid>-<random>.tmp` before). */
const TEMPORARY = /^\.(?:.+\.(\d+)-|\d+-(\d+)-)[0-9a-z]+\.tmp$/;

/**
 * Removes the temporary files an agent killed mid-write left in `directory` (an agent's own
 * writes in flight are spared). Without it each SIGKILL at the wrong moment would leave one
 * behind for good. Returns how many were removed.
 */
export async function removeStaleTemporaries(directory: string): Promise<number> {
  const names = await readdir(directory).catch(() => [] as string[]);
  let removed = 0;
  for (const name of names) {
    const match = TEMPORARY.exec(name);
    if (!match || Number(match[1] ?? match[2]) === process.pid) continue;
    if (await unlink(join(directory, name)).then(() => true, () => false)) removed += 1;
  }
  return removed;
}

/** fsyncs a directory, so a rename into it survives a power loss. */
async function syncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Reads a JSON file; undefined when it does not exist. A corrupt file is an error. */
export async function readJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new PodvisorError('E_STATE', `${path} is not valid JSON: ${errorMessage(error)}`, { cause: error });
  }
}

/** The name a corrupt state file is set aside under: `<path>.corrupt-<UTC time>`. */
export function corruptName(path: string, now: Date = new Date()): string {
  return `${path}.corrupt-${now.toISOString().replace(/[:.]/g, '-')}`;
}

/**
 * Reads a state file the agent itself owns. Missing: undefined. Unreadable as JSON, or refused by
 * `accept` (which says why): renamed to corruptName(path), a warning naming both (event
 * StateFileCorrupt), and undefined, so the caller starts afresh. Any other read error is thrown.
 */
export async function readStateFile<T>(path: string, logger: Logger, accept: (raw: unknown) => T | string): Promise<T | undefined> {
  let why: string;
  try {
    const raw = await readJson(path);
    if (raw === undefined) return undefined;
    const accepted = accept(raw);
    if (typeof accepted !== 'string') return accepted;
    why = accepted;
  } catch (error) {
    if (!(error instanceof PodvisorError && error.code === 'E_STATE')) throw error;
    why = errorMessage(error);
  }
  const aside = corruptName(path);
  try {
    await rename(path, aside);
    logger.warn(`state file ${path} is corrupt (${why}); set aside as ${basename(aside)}, rebuilding from podman`, { event: 'StateFileCorrupt', file: path, setAside: aside });
  } catch (error) {
    logger.warn(`state file ${path} is corrupt (${why}) and could not be set aside (${errorMessage(error)}); rebuilding from podman`, { event: 'StateFileCorrupt', file: path });
  }
  return undefined;
}

/**
 * Writes one state file again and again (the status, the supervision state) and says how that
 * goes in the log without flooding it: the first failure is an error (event StateWriteFailed),
 * further failures are debug lines, and the first success after them is logged (event
 * StateWriteRecovered) with the number of writes that failed.
 */
export class StateFileWriter {
  readonly path: string;
  readonly #logger: Logger;
  #failedWrites = 0;

  constructor(path: string, logger: Logger) {
    this.path = path;
    this.#logger = logger;
  }

  /** True while the last write failed. */
  get failing(): boolean {
    return this.#failedWrites > 0;
  }

  /** Writes `value` atomically; never throws: returns false when the write failed. */
  async write(value: unknown): Promise<boolean> {
    try {
      await writeJsonAtomic(this.path, value);
    } catch (error) {
      this.#failedWrites += 1;
      if (this.#failedWrites === 1) {
        this.#logger.error(`writing ${this.path} failed: ${errorMessage(error)}; supervision goes on, retrying (reported once until it works again)`, { event: 'StateWriteFailed', file: this.path });
      } else {
        this.#logger.debug(`writing ${this.path} failed again: ${errorMessage(error)}`, { file: this.path, failedWrites: this.#failedWrites });
      }
      return false;
    }
    if (this.#failedWrites > 0) {
      this.#logger.info(`writing ${this.path} works again, after ${this.#failedWrites} failed writes`, { event: 'StateWriteRecovered', file: this.path, failedWrites: this.#failedWrites });
      this.#failedWrites = 0;
    }
    return true;
  }
}
