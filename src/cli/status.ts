// `podvisor status`: the pods as `kubectl get pods` shows them (NAME, READY, STATUS, RESTARTS,
// AGE; -o wide adds IP and NODE), or with `-o json` or `-o yaml` a v1 PodList, or with `-o name`
// their names (what the shell completion offers), read from the status the agent writes.
import { stringify } from 'yaml';
import { PROBLEM_CONDITIONS } from '../status/manifest-problem.js';
import { humanDuration, printedStatus } from '../status/printers.js';
import { readStatusForDisplay } from './read-status.js';

/** Prints the table or the PodList; returns the exit status. */
export async function statusCommand(options: { stateDir: string; output?: string | undefined; serveEnvValues?: boolean }): Promise<number> {
  const file = await readStatusForDisplay(options.stateDir, options);
  const list = { apiVersion: 'v1', kind: 'PodList', metadata: file.metadata, items: file.items };
  if (options.output === 'json') {
    process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
    return 0;
  }
  if (options.output === 'yaml') {
    process.stdout.write(stringify(list, { aliasDuplicateObjects: false }));
    return 0;
  }
  if (options.output === 'name') {
    // As kubectl's -o name: one `pod/NAME` a line, nothing when there are none.
    for (const pod of file.items) process.stdout.write(`pod/${pod.metadata.name}\n`);
    return 0;
  }
  const wide = options.output === 'wide';
  const rows = [['NAMESPACE', 'NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE', ...(wide ? ['IP', 'NODE'] : [])]];
  for (const pod of file.items) {
    const printed = printedStatus(pod);
    const started = pod.status.startTime ?? pod.metadata.creationTimestamp;
    const row = [pod.metadata.namespace ?? 'default', pod.metadata.name, printed.ready, printed.status, printed.restarts, started ? humanDuration(Date.now() - Date.parse(started)) : '<unknown>'];
    if (wide) row.push(pod.status.podIP || '<none>', String(pod.spec.nodeName ?? '') || '<none>');
    rows.push(row);
  }
  if (rows.length === 1) {
    process.stdout.write('No pods found.\n');
    return 0;
  }
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length))) ?? [];
  for (const row of rows) process.stdout.write(`${row.map((cell, column) => cell.padEnd((widths[column] ?? 0) + 3)).join('').trimEnd()}\n`);
  // What the table cannot say: a pod that does not run its file's current content, and why.
  const notes = file.items.flatMap((pod) =>
    pod.status.conditions.filter((condition) => PROBLEM_CONDITIONS.has(condition.type) && condition.status === 'False' && !('reason' in condition && condition.reason === 'Applying')).map((condition) => `pod/${pod.metadata.name}: ${'reason' in condition ? condition.reason : ''}: ${'message' in condition ? condition.message : ''}`));
  if (notes.length > 0) process.stdout.write(`\n${notes.join('\n')}\n`);
  return 0;
}
