// Reads the status the agent writes (<state-dir>/status.json) for `podvisor status` and
// `podvisor describe`, and formats ages as kubectl does.
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

/** A duration as kubectl prints ages (apimachinery's HumanDuration): 45s, 3m12s, 5h, 2d3h, 2y70d. */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) return `${minutes}m${seconds % 60 ? `${seconds % 60}s` : ''}`;
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) return `${hours}h${minutes % 60 ? `${minutes % 60}m` : ''}`;
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) return `${Math.floor(hours / 24)}d${hours % 24 ? `${hours % 24}h` : ''}`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24)}d`;
  if (hours < 24 * 365 * 8) {
    const days = Math.floor(hours / 24) % 365;
    return `${Math.floor(hours / 24 / 365)}y${days ? `${days}d` : ''}`;
  }
  return `${Math.floor(hours / 24 / 365)}y`;
}
