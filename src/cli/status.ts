// `podvisor status`: the pods as `kubectl get pods` shows them (NAME, READY, STATUS, RESTARTS,
// AGE), or with `-o json` a v1 PodList, read from the status the agent writes.
import type { StatusPod } from '../status/status-manager.js';
import type { ContainerStatus } from '../status/types.js';
import { humanDuration, readStatusFile } from './read-status.js';

/** The STATUS, READY and RESTARTS columns, by kubectl's rules for printing a pod. */
export function printedStatus(pod: StatusPod): { status: string; ready: string; restarts: string } {
  const status = pod.status;
  const inits = pod.spec.initContainers ?? [];
  const isSidecar = (name: string) => inits.find((one) => one.name === name)?.restartPolicy === 'Always';
  let reason: string = status.reason ?? status.phase;
  let restarts = 0;
  let lastRestart: number | undefined;
  let sidecarRestarts = 0;
  let lastSidecarRestart: number | undefined;
  let readyCount = 0;
  const finishedAt = (container: ContainerStatus) => {
    const finished = container.lastState.terminated?.finishedAt;
    return finished ? Date.parse(finished) : undefined;
  };
  const later = (a: number | undefined, b: number | undefined) => (a === undefined ? b : b === undefined ? a : Math.max(a, b));

  let initializing = false;
  for (const [index, container] of status.initContainerStatuses.entries()) {
    restarts += container.restartCount;
    lastRestart = later(lastRestart, finishedAt(container));
    const sidecar = isSidecar(container.name);
    if (sidecar) {
      sidecarRestarts += container.restartCount;
      lastSidecarRestart = later(lastSidecarRestart, finishedAt(container));
    }
    const { terminated, waiting } = container.state;
    if (terminated?.exitCode === 0) continue;
    if (sidecar && container.started) {
      if (container.ready) readyCount++;
      continue;
    }
    initializing = true;
    if (terminated) reason = terminated.reason ? `Init:${terminated.reason}` : terminated.signal ? `Init:Signal:${terminated.signal}` : `Init:ExitCode:${terminated.exitCode}`;
    else if (waiting?.reason && waiting.reason !== 'PodInitializing') reason = `Init:${waiting.reason}`;
    else reason = `Init:${index}/${inits.length}`;
    break;
  }
  const initialized = status.conditions.some((condition) => condition.type === 'Initialized' && condition.status === 'True');
  if (!initializing || initialized) {
    // Once initialized, regular init containers' restarts no longer count: only sidecars' and the app's.
    restarts = sidecarRestarts;
    lastRestart = lastSidecarRestart;
    let hasRunning = false;
    for (const container of [...status.containerStatuses].reverse()) {
      restarts += container.restartCount;
      lastRestart = later(lastRestart, finishedAt(container));
      const { waiting, terminated, running } = container.state;
      if (waiting?.reason) reason = waiting.reason;
      else if (terminated?.reason) reason = terminated.reason;
      else if (terminated) reason = terminated.signal ? `Signal:${terminated.signal}` : `ExitCode:${terminated.exitCode}`;
      else if (running && container.ready) {
        hasRunning = true;
        readyCount++;
      }
    }
    if (reason === 'Completed' && hasRunning) {
      const ready = status.conditions.some((condition) => condition.type === 'Ready' && condition.status === 'True');
      reason = ready ? 'Running' : 'NotReady';
    }
  }
  const total = pod.spec.containers.length + inits.filter((one) => one.restartPolicy === 'Always').length;
  const ago = restarts > 0 && lastRestart !== undefined ? ` (${humanDuration(Date.now() - lastRestart)} ago)` : '';
  return { status: reason, ready: `${readyCount}/${total}`, restarts: `${restarts}${ago}` };
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
