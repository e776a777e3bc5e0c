// Reads the status the agent writes (<state-dir>/status.json) for `podvisor status` and
// `podvisor describe`.
import { join } from 'node:path';
import { PodvisorError } from '../errors.js';
import { readJson } from '../state/state-file.js';
import { STATUS_FILE, type StatusFile } from '../status/status-manager.js';

/** The status file the agent last wrote; a clear error when there is none. */
export async function readStatusFile(stateDir: string): Promise<StatusFile> {
  const path = join(stateDir, STATUS_FILE);
  const file = (await readJson(path)) as StatusFile | undefined;
  if (!file) throw new PodvisorError('E_CONFIG', `no status at ${path}: is the agent running with --state-dir ${stateDir}?`);
  if (file.kind !== 'PodList' || !Array.isArray(file.items)) throw new PodvisorError('E_CONFIG', `${path} is not a podvisor status file`);
  return file;
}

