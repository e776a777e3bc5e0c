// The pod phase by the kubelet's rules (pkg/kubelet/kubelet_pods.go: getPhase, and the terminal
// phase guard in generateAPIPodStatus). Pure: container statuses in, one phase out, so every rule
// is a table row in test/status/pod-phase.test.ts.
//
// Chosen where the kubelet has more than one path:
// - The ContainerRestartRules feature (per-container restartPolicy rules) is not modelled: the Pod
//   schema has no rules, so the pod's restartPolicy decides, as with that gate off.
// - "The pod has initialized" is read from the statuses (a regular container has run or runs), as
//   kubecontainer.HasAnyRegularContainerStarted does: these rules see API statuses, not the
//   runtime's list of the sandbox's containers that the newest kubelet consults.
// - The kubelet's podIsTerminal shortcut is skipped for static pods (its TODO #116484); podvisor's
//   pods are all static, so it has no place here.
// - getPhase never answers Unknown (the node controller sets that when a node stops reporting).
import type { PodSpec } from '../manifest/pod-schema.js';
import type { ContainerStatus, PodPhase } from './types.js';
import { isSidecar } from '../manifest/pod-containers.js';

export interface PodPhaseOptions {
  /** The phase served before this one; a terminal one (Succeeded, Failed) is kept whatever the containers say. */
  previous?: PodPhase;
}

/** True for a phase a pod never leaves. */
export function isTerminalPhase(phase: PodPhase | undefined): phase is 'Succeeded' | 'Failed' {
  return phase === 'Succeeded' || phase === 'Failed';
}

/** The status reported for the container called `name`, if any. */
export function findStatus(statuses: readonly ContainerStatus[] | undefined, name: string): ContainerStatus | undefined {
  return statuses?.find((status) => status.name === name);
}

/** True once a regular (app) container runs or has run: the pod has passed its init containers. */
export function hasAnyRegularContainerStarted(spec: Pick<PodSpec, 'containers'>, containerStatuses: readonly ContainerStatus[] | undefined): boolean {
  return spec.containers.some((container) => {
    const state = findStatus(containerStatuses, container.name)?.state;
    return state?.running !== undefined || state?.terminated !== undefined;
  });
}

/** What the init containers say: how many still block the pod and how many ended in failure. */
interface InitTally {
  pendingRegular: number;
  pendingSidecars: number;
  failed: number;
}

/** What the sidecars and app containers say, counted as the kubelet counts them. */
interface ContainerTally {
  unknown: number;
  running: number;
  waiting: number;
  stopped: number;
  succeeded: number;
}

/** Counts the regular (run-to-completion) init containers. */
function tallyRegularInit(spec: PodSpec, statuses: readonly ContainerStatus[], tally: InitTally): void {
  for (const container of spec.initContainers ?? []) {
    if (isSidecar(container)) continue;
    const status = findStatus(statuses, container.name);
    if (!status) {
      tally.pendingRegular++;
      continue;
    }
    const { running, terminated, waiting } = status.state;
    if (running) {
      tally.pendingRegular++;
    } else if (terminated) {
      if (terminated.exitCode !== 0) tally.failed++;
    } else if (waiting) {
      // Waiting to run again: its last run decides; waiting for its first run still blocks.
      const last = status.lastState.terminated;
      if (!last) tally.pendingRegular++;
      else if (last.exitCode !== 0) tally.failed++;
    } else {
      tally.pendingRegular++; // a state the runtime could not tell
    }
  }
}

/** Counts the sidecars: a running one must have started; an exited one does not count at all. */
function tallySidecars(spec: PodSpec, statuses: readonly ContainerStatus[], init: InitTally, tally: ContainerTally): void {
  for (const container of spec.initContainers ?? []) {
    if (!isSidecar(container)) continue;
    const status = findStatus(statuses, container.name);
    if (!status) {
      tally.unknown++;
      continue;
    }
    const { running, terminated, waiting } = status.state;
    if (running) {
      if (status.started !== true) init.pendingSidecars++;
      tally.running++;
    } else if (terminated) {
      // An exited sidecar is being restarted; it neither completes nor fails the pod.
    } else if (waiting) {
      if (!status.lastState.terminated) {
        init.pendingSidecars++;
        tally.waiting++;
      }
    } else {
      init.pendingSidecars++;
      tally.unknown++;
    }
  }
}

/** Counts the app containers. */
function tallyAppContainers(spec: PodSpec, statuses: readonly ContainerStatus[], tally: ContainerTally): void {
  for (const container of spec.containers) {
    const status = findStatus(statuses, container.name);
    if (!status) {
      tally.unknown++;
      continue;
    }
    const { running, terminated, waiting } = status.state;
    if (running) {
      tally.running++;
    } else if (terminated) {
      tally.stopped++;
      if (terminated.exitCode === 0) tally.succeeded++;
    } else if (waiting) {
      // Waiting after a run counts as stopped (and, as in the kubelet, never as succeeded).
      if (status.lastState.terminated) tally.stopped++;
      else tally.waiting++;
    } else {
      tally.unknown++;
    }
  }
}

/** The phase the kubelet's getPhase computes from this moment's statuses alone. */
function phaseFromStatuses(spec: PodSpec, initStatuses: readonly ContainerStatus[], appStatuses: readonly ContainerStatus[]): PodPhase {
  const restartPolicy = spec.restartPolicy ?? 'Always';
  const init: InitTally = { pendingRegular: 0, pendingSidecars: 0, failed: 0 };
  const tally: ContainerTally = { unknown: 0, running: 0, waiting: 0, stopped: 0, succeeded: 0 };
  tallyRegularInit(spec, initStatuses, init);
  tallySidecars(spec, initStatuses, init, tally);
  tallyAppContainers(spec, appStatuses, tally);

  if (init.failed > 0 && restartPolicy === 'Never') return 'Failed';
  // A sidecar that restarts after the app has run does not send the pod back to Pending.
  const initializing = init.pendingRegular > 0 || (init.pendingSidecars > 0 && !hasAnyRegularContainerStarted(spec, appStatuses));
  if (initializing || tally.waiting > 0) return 'Pending';
  if (tally.running > 0 && tally.unknown === 0) return 'Running';
  if (tally.running === 0 && tally.stopped > 0 && tally.unknown === 0) {
    if (restartPolicy === 'Always') return 'Running';
    if (tally.stopped === tally.succeeded) return 'Succeeded';
    if (restartPolicy === 'Never') return 'Failed';
    return 'Running'; // OnFailure: the failed ones are being restarted.
  }
  return 'Pending';
}

/**
 * The pod's phase from its init and app container statuses, by the kubelet's getPhase; a terminal
 * `previous` phase wins, as the kubelet never lets a pod leave Succeeded or Failed.
 */
export function podPhase(
  spec: PodSpec,
  initContainerStatuses: readonly ContainerStatus[],
  containerStatuses: readonly ContainerStatus[],
  options: PodPhaseOptions = {},
): PodPhase {
  if (isTerminalPhase(options.previous)) return options.previous;
  return phaseFromStatuses(spec, initContainerStatuses, containerStatuses);
}
