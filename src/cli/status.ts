// `podvisor status`: the pods as `kubectl get pods` shows them (NAME, READY, STATUS, RESTARTS,
// AGE), or with `-o json` a v1 PodList, read from the status the agent writes.
import type { StatusPod } from '../status/status-manager.js';
import type { ContainerStatus } from '../status/types.js';
import { humanDuration, readStatusFile } from './read-status.js';

/** The STATUS column, by kubectl's rules for a pod's printed reason. */
export function printedStatus(pod: StatusPod): { status: string; ready: string; restarts: string } {
  const spec = pod.spec;
  const status = pod.status;
  let reason: string = status.reason ?? status.phase;
  let restarts = 0;
  let lastRestart: number | undefined;
  const noteRestart = (container: ContainerStatus) => {
    restarts += container.restartCount;
    const finished = container.lastState.terminated?.finishedAt;
    if (finished) lastRestart = Math.max(lastRestart ?? 0, Date.parse(finished));
  };
  const inits = spec.initContainers ?? [];
  let initializing = false;
  for (const [index, container] of status.initContainerStatuses.entries()) {
    noteRestart(container);
    const sidecar = inits.find((one) => one.name === container.name)?.restartPolicy === 'Always';
    const { terminated, waiting } = container.state;
    if (terminated?.exitCode === 0 && !sidecar) continue;
    if (sidecar && container.started) continue;
    initializing = true;
    if (terminated) reason = terminated.reason ? `Init:${terminated.reason}` : terminated.signal ? `Init:Signal:${terminated.signal}` : `Init:ExitCode:${terminated.exitCode}`;
    else if (waiting?.reason && waiting.reason !== 'PodInitializing') reason = `Init:${waiting.reason}`;
    else reason = `Init:${index}/${inits.length}`;
    break;
  }
  const sidecars = status.initContainerStatuses.filter((container) => inits.find((one) => one.name === container.name)?.restartPolicy === 'Always');
  const counted = [...sidecars, ...status.containerStatuses];
  const readyCount = counted.filter((container) => container.ready).length;
  if (!initializing) {
    let hasRunning = false;
    for (const container of [...status.containerStatuses].reverse()) {
      noteRestart(container);
      const { waiting, terminated, running } = container.state;
      if (waiting?.reason) reason = waiting.reason;
      else if (terminated?.reason) reason = terminated.reason;
      else if (terminated) reason = terminated.signal ? `Signal:${terminated.signal}` : `ExitCode:${terminated.exitCode}`;
      else if (running && container.ready) hasRunning = true;
    }
    if (reason === 'Completed' && hasRunning) {
      const ready = status.conditions.find((condition) => condition.type === 'Ready')?.status === 'True';
      reason = ready ? 'Running' : 'NotReady';
    }
  }
  const ago = lastRestart !== undefined ? ` (${humanDuration(Date.now() - lastRestart)} ago)` : '';
  return { status: reason, ready: `${readyCount}/${counted.length}`, restarts: `${restarts}${restarts > 0 ? ago : ''}` };
}

/** Prints the table or the PodList; returns the exit status. */
export async function statusCommand(options: { stateDir: string; output?: string | undefined }): Promise<number> {
  const file = await readStatusFile(options.stateDir);
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
