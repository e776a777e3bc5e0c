// Each pod's directory under the state directory keeps the spec it was made from (pod.json,
// written by the runtime), read when the pod is stopped after an agent restart. At start the
// agent checks them once: a corrupt one is set aside with a warning (readStateFile), so the
// runtime finds none and stops that pod from what podman reports, rather than from half a file.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { DesiredPod } from '../manifest/identity.js';
import { readJson, readStateFile, removeStaleTemporaries } from './state-file.js';

/** The file in `<state-dir>/pods/<uid>/` that holds the spec a pod was made from. */
export const POD_SPEC_FILE = 'pod.json';

/**
 * The spec saved for pod `uid` by the agent that made it, or undefined when none is readable.
 * Only reads: a corrupt file is left where it is (checkPodSpecs sets it aside at start).
 */
export async function readSavedSpec(stateDir: string, uid: string): Promise<DesiredPod | undefined> {
  const saved = (await readJson(join(stateDir, 'pods', uid, POD_SPEC_FILE)).catch(() => undefined)) as DesiredPod | undefined;
  return saved?.uid === uid && Array.isArray(saved.pod?.spec?.containers) ? saved : undefined;
}

/** Sets aside every corrupt pod.json under `<state-dir>/pods`, each with a warning, and removes stale temporary files. */
export async function checkPodSpecs(stateDir: string, logger: Logger): Promise<void> {
  const podsDir = join(stateDir, 'pods');
  let uids: string[];
  try {
    uids = (await readdir(podsDir, { withFileTypes: true })).filter((entry) => entry.isDirectory()).map((entry) => entry.name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') logger.warn(`cannot list ${podsDir}: ${errorMessage(error)}`);
    return;
  }
  for (const uid of uids) {
    await removeStaleTemporaries(join(podsDir, uid));
    try {
      await readStateFile(join(podsDir, uid, POD_SPEC_FILE), logger, (raw) => {
        const saved = raw as { uid?: unknown; pod?: { spec?: { containers?: unknown } } } | null;
        if (saved?.uid === uid && Array.isArray(saved.pod?.spec?.containers)) return true;
        return `not the spec of pod ${uid}`;
      });
    } catch (error) {
      logger.warn(`cannot read the saved spec of pod ${uid}: ${errorMessage(error)}`);
    }
  }
}
