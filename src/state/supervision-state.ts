// What supervision must remember across an agent restart: each container's restart count and
// back-off, and when each pod started. Kept in memory, saved to <state-dir>/supervision.json
// (atomically, at most once a second) whenever it changes.
import { join } from 'node:path';
import { z } from 'zod';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { Backoff, type BackoffOptions } from '../pods/backoff.js';
import type { Supervision } from '../pods/supervision.js';
import { readJson, readStateFile, removeStaleTemporaries, StateFileWriter } from './state-file.js';

const fileSchema = z.object({
  version: z.literal(1),
  restartCounts: z.record(z.string(), z.number().int().min(0)),
  backoff: z.array(z.tuple([z.string(), z.object({ delayMs: z.number().min(0), lastUpdate: z.number() })])),
  podStartTimes: z.record(z.string(), z.string()),
});

/** supervision.json as saved. */
export type SavedSupervision = z.infer<typeof fileSchema>;

/**
 * The saved state, only read (`podvisor plan`): no temporaries removed, a corrupt file left where
 * it is for the agent to set aside; undefined when there is none or it cannot be used.
 */
export async function readSupervisionFile(stateDir: string): Promise<SavedSupervision | undefined> {
  const raw = await readJson(join(stateDir, 'supervision.json')).catch(() => undefined);
  const parsed = fileSchema.safeParse(raw);
  return parsed.success ? parsed.data : undefined;
}

const SAVE_INTERVAL_MS = 1000;
/** After a failed save (a full disk), the next attempt: the state is kept in memory meanwhile. */
const RETRY_INTERVAL_MS = 5000;

export class SupervisionState implements Supervision {
  readonly backoff: Backoff;
  readonly #restartCounts: Map<string, number>;
  readonly #podStartTimes: Map<string, string>;
  readonly #writer: StateFileWriter;
  #saveTimer: NodeJS.Timeout | undefined;
  /** Something changed since the last snapshot was taken for a write. */
  #unsaved = false;
  #saving: Promise<void> = Promise.resolve();

  private constructor(path: string, logger: Logger, backoff: Backoff, restartCounts: Map<string, number>, podStartTimes: Map<string, string>) {
    this.#writer = new StateFileWriter(path, logger);
    this.backoff = backoff;
    this.#restartCounts = restartCounts;
    this.#podStartTimes = podStartTimes;
  }

  /** Loads the saved state (a missing file starts empty; a corrupt one is set aside, with a warning). */
  static async load(stateDir: string, options: BackoffOptions, logger: Logger): Promise<SupervisionState> {
    const path = join(stateDir, 'supervision.json');
    let saved: z.infer<typeof fileSchema> | undefined;
    // Left by an agent killed mid-write (of this file or status.json): never read, only in the way.
    const stale = await removeStaleTemporaries(stateDir);
    if (stale > 0) logger.info(`removed ${stale} temporary files an earlier agent left in ${stateDir}`);
    try {
      saved = await readStateFile(path, logger, (raw) => {
        const parsed = fileSchema.safeParse(raw);
        return parsed.success ? parsed.data : 'not a podvisor supervision state file';
      });
    } catch (error) {
      logger.warn(`cannot read ${path}: ${errorMessage(error)}; starting with empty restart counts`);
    }
    return new SupervisionState(
      path,
      logger,
      new Backoff(options, saved?.backoff ?? []),
      new Map(Object.entries(saved?.restartCounts ?? {})),
      new Map(Object.entries(saved?.podStartTimes ?? {})),
    );
  }

  restartCount(key: string): number {
    return this.#restartCounts.get(key) ?? 0;
  }

  /** Records a restart of a container that exited at `finishedAt`. */
  recordRestart(key: string, finishedAt: number): void {
    this.#restartCounts.set(key, this.restartCount(key) + 1);
    this.backoff.next(key, finishedAt);
    this.#scheduleSave();
  }

  /** Records a failed attempt (an image pull, a start) so the next one backs off. */
  recordFailure(key: string, at: number): void {
    this.backoff.next(key, at);
    this.#scheduleSave();
  }

  podStartTime(uid: string): string | undefined {
    return this.#podStartTimes.get(uid);
  }

  setPodStartTime(uid: string, time: string): void {
    if (this.#podStartTimes.has(uid)) return;
    this.#podStartTimes.set(uid, time);
    this.#scheduleSave();
  }

  /** Forgets pods whose uid is not in `uids` (removed, or replaced by new content). */
  retainPods(uids: ReadonlySet<string>): void {
    const known = (key: string) => uids.has(key.slice(0, key.indexOf('/')));
    let changed = false;
    for (const key of this.#restartCounts.keys()) if (!known(key)) { this.#restartCounts.delete(key); changed = true; }
    for (const uid of this.#podStartTimes.keys()) if (!uids.has(uid)) { this.#podStartTimes.delete(uid); changed = true; }
    const before = this.backoff.entries().length;
    this.backoff.retain(known);
    if (changed || this.backoff.entries().length !== before) this.#scheduleSave();
  }

  /** Writes now what is not saved yet (at shutdown, before a status write), waiting for any write in flight. */
  async flush(): Promise<void> {
    clearTimeout(this.#saveTimer);
    this.#saveTimer = undefined;
    if (this.#unsaved) await this.#save();
    else await this.#saving;
  }

  #scheduleSave(delayMs = SAVE_INTERVAL_MS): void {
    this.#unsaved = true;
    if (this.#saveTimer) return;
    this.#saveTimer = setTimeout(() => {
      this.#saveTimer = undefined;
      void this.#save();
    }, delayMs);
    // A retry alone does not keep a stopping agent alive (stop flushes once more).
    if (delayMs !== SAVE_INTERVAL_MS) this.#saveTimer.unref();
  }

  #save(): Promise<void> {
    this.#saving = this.#saving.then(async () => {
      // The snapshot is taken when the write begins, so a queued write carries the latest state.
      this.#unsaved = false;
      const snapshot: z.infer<typeof fileSchema> = {
        version: 1,
        restartCounts: Object.fromEntries(this.#restartCounts),
        backoff: this.backoff.entries(),
        podStartTimes: Object.fromEntries(this.#podStartTimes),
      };
      // A failed write (reported once by the writer) is tried again, changed or not.
      if (!(await this.#writer.write(snapshot))) this.#scheduleSave(RETRY_INTERVAL_MS);
    });
    return this.#saving;
  }
}
