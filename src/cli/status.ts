// `podvisor status`: the pods as `kubectl get pods` shows them (NAME, READY, STATUS, RESTARTS,
// AGE), or with `-o json` a v1 PodList, read from the status the agent writes.
import { humanDuration, printedStatus } from '../status/printers.js';
import { readStatusFile, staleness } from './read-status.js';


/** Prints the table or the PodList; returns the exit status. */
export async function statusCommand(options: { stateDir: string; output?: string | undefined }): Promise<number> {
  const file = await readStatusFile(options.stateDir);
  const stale = staleness(file);
  if (stale) process.stderr.write(`podvisor: warning: ${stale}\n`);
  if (options.output === 'json') {
    process.stdout.write(`${JSON.stringify({ apiVersion: 'v1', kind: 'PodList', metadata: file.metadata, items: file.items }, null, 2)}\n`);
    return 0;
  }
  const rows = [['NAMESPACE', 'NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE']];
  for (const pod of file.items) {
    const printed = printedStatus(pod);
    const started = pod.status.startTime ?? pod.metadata.creationTimestamp;
    rows.push([pod.metadata.namespace ?? 'default', pod.metadata.name, printed.ready, printed.status, printed.restarts, started ? humanDuration(Date.now() - Date.parse(started)) : '<unknown>']);
  }
  if (rows.length === 1) {
    process.stdout.write('No pods found.\n');
    return 0;
  }
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length))) ?? [];
  for (const row of rows) process.stdout.write(`${row.map((cell, column) => cell.padEnd((widths[column] ?? 0) + 3)).join('').trimEnd()}\n`);
  return 0;
}
