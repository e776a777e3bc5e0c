// How kubectl prints pods: the READY, STATUS and RESTARTS columns by kubectl's (and the API
// server's table printer's) rules, and ages as apimachinery's HumanDuration. Shared by
// `podvisor status` and the API's Table responses, so both print a pod the same way.
import type { StatusPod } from './status-manager.js';
import type { ContainerStatus, PodStatus } from './types.js';
import { isSidecar } from '../manifest/pod-containers.js';

/** What printing reads of a pod (a mirror pod, with conditions of its own, prints the same). */
export interface PrintablePod {
  spec: StatusPod['spec'];
  status: Omit<PodStatus, 'conditions'> & { conditions: readonly { type: string; status: string }[] };
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

/** The STATUS, READY and RESTARTS columns, by kubectl's rules for printing a pod. */
export function printedStatus(pod: PrintablePod): { status: string; ready: string; restarts: string } {
  const status = pod.status;
  const inits = pod.spec.initContainers ?? [];
  const sidecarNamed = (name: string) => inits.some((one) => one.name === name && isSidecar(one));
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
    const sidecar = sidecarNamed(container.name);
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
  const total = pod.spec.containers.length + inits.filter(isSidecar).length;
  const ago = restarts > 0 && lastRestart !== undefined ? ` (${humanDuration(Date.now() - lastRestart)} ago)` : '';
  return { status: reason, ready: `${readyCount}/${total}`, restarts: `${restarts}${ago}` };
}
