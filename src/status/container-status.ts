// One container's status in the kubelet's words, from what podman shows of it and what
// supervision knows (restart count, back-off, the last failure to start it, probe results).
// Pure, so each state a container can be in is a table row in the tests.
import type { Container } from '../manifest/pod-schema.js';
import { formatGoDuration, type BackoffVerdict } from '../pods/backoff.js';
import { shouldRestart } from '../pods/plan.js';
import type { ObservedContainer } from '../runtime/types.js';
import type { ContainerState, ContainerStateTerminated, ContainerStatus } from './types.js';
import { isSidecar } from '../manifest/pod-containers.js';

/** The last failure to create or start a container, until it starts. */
export interface StartFailure {
  reason: string;
  message: string;
}

export interface ContainerStatusInput {
  spec: Container;
  kind: 'init' | 'app';
  observed: ObservedContainer | undefined;
  restartCount: number;
  /** The pod's restartPolicy (a sidecar restarts whatever it says). */
  restartPolicy: 'Always' | 'OnFailure' | 'Never' | undefined;
  /** The back-off of this container: asked only when it has exited or failed. */
  backoff: BackoffVerdict;
  failure: StartFailure | undefined;
  /** Probe results while it runs; absent: the prober has not reported. */
  probe: { started: boolean; ready: boolean } | undefined;
  /** For messages: `<name>_<namespace>(<uid>)`, as the kubelet formats a pod. */
  podLabel: string;
  /** True when the pod has init containers: a container not created yet waits as PodInitializing. */
  initializing: boolean;
  /** The status served before, for lastState. */
  previous: ContainerStatus | undefined;
  /** The container's last exit as the exit watcher saw it: a run that ended between two listings. */
  lastExit?: { exitCode: number | undefined; at: Date } | undefined;
}

const iso = (date: Date | undefined) => (date ? new Date(Math.floor(date.getTime() / 1000) * 1000).toISOString().replace('.000Z', 'Z') : undefined);

/** How a run ended, as the kubelet words it: the code, the signal, the reason. */
function ending(exitCode: number, oomKilled = false): Pick<ContainerStateTerminated, 'exitCode' | 'signal' | 'reason'> {
  return {
    exitCode,
    // podman reports a death by signal as 128 + the signal, as a shell does.
    ...(exitCode > 128 && exitCode < 160 ? { signal: exitCode - 128 } : {}),
    reason: oomKilled ? 'OOMKilled' : exitCode === 0 ? 'Completed' : 'Error',
  };
}

/** The `terminated` state of an exited container. */
function terminated(observed: ObservedContainer): ContainerStateTerminated {
  return {
    ...ending(observed.exitCode ?? 0, observed.oomKilled),
    ...(iso(observed.startedAt) ? { startedAt: iso(observed.startedAt) } : {}),
    ...(iso(observed.finishedAt) ? { finishedAt: iso(observed.finishedAt) } : {}),
    containerID: `podman://${observed.id}`,
  };
}

/**
 * The run that ended and was restarted between two listings (a restart without back-off): the
 * status served it running and now serves a later run, with no exit in between. Its end comes
 * from the exit watcher, its start from the status served for it.
 */
function unseenRun(input: ContainerStatusInput): ContainerStateTerminated | undefined {
  const { observed, lastExit, previous } = input;
  const servedStart = previous?.state.running?.startedAt;
  if (observed?.state !== 'running' || !lastExit || !observed.startedAt || !servedStart) return undefined;
  const ended = lastExit.at.getTime();
  // podman lists a start in whole seconds while the exit file's time has ms: a restart within the
  // second of the exit (the first restart is at once) lists a start before the exit it follows.
  const endedSecond = Math.floor(ended / 1000) * 1000;
  if (endedSecond > observed.startedAt.getTime() || ended < Date.parse(servedStart) || iso(observed.startedAt) === servedStart) return undefined;
  return {
    ...ending(lastExit.exitCode ?? 0),
    startedAt: servedStart,
    ...(iso(lastExit.at) ? { finishedAt: iso(lastExit.at) } : {}),
    containerID: `podman://${observed.id}`,
  };
}

/** Computes a container's status. */
export function containerStatus(input: ContainerStatusInput): ContainerStatus {
  const { spec, observed, kind } = input;
  const sidecar = kind === 'init' && isSidecar(spec);
  const base = {
    name: spec.name,
    restartCount: input.restartCount,
    image: spec.image,
    imageID: observed?.imageId ? `sha256:${observed.imageId}` : '',
    ...(observed ? { containerID: `podman://${observed.id}` } : {}),
  };
  const previousTerminated = unseenRun(input) ?? input.previous?.lastState.terminated;
  const lastState: ContainerState = previousTerminated && input.restartCount > 0 ? { terminated: previousTerminated } : {};

  if (observed?.state === 'running' || observed?.state === 'paused') {
    const hasStartup = spec.startupProbe !== undefined;
    const hasReadiness = spec.readinessProbe !== undefined;
    const started = hasStartup ? input.probe?.started ?? false : true;
    // A regular init container is ready only once it has completed.
    const ready = kind === 'init' && !sidecar ? false : started && (hasReadiness ? input.probe?.ready ?? false : true);
    return { ...base, state: { running: { ...(iso(observed.startedAt) ? { startedAt: iso(observed.startedAt) } : {}) } }, lastState, ready, started };
  }

  if (observed?.state === 'exited') {
    const end = terminated(observed);
    const restarts = sidecar || (kind === 'app' ? shouldRestart(input.restartPolicy, observed.exitCode) : observed.exitCode !== 0 && input.restartPolicy !== 'Never');
    if (!restarts) {
      return { ...base, state: { terminated: end }, lastState, ready: kind === 'init' && !sidecar && end.exitCode === 0, started: false };
    }
    // Exited and to be started again: waiting, in back-off or about to restart; the exit is the last state.
    const waiting = input.backoff.waiting
      ? { reason: 'CrashLoopBackOff', message: `back-off ${formatGoDuration(input.backoff.delayMs)} restarting failed container=${spec.name} pod=${input.podLabel}` }
      : { reason: 'ContainerCreating' };
    return { ...base, state: { waiting }, lastState: { terminated: end }, ready: false, started: false };
  }

  // Not created yet, or created and never started.
  let waiting: { reason: string; message?: string };
  if (input.failure) {
    const pullBackOff = input.failure.reason === 'ErrImagePull' && input.backoff.waiting;
    if (pullBackOff) waiting = { reason: 'ImagePullBackOff', message: `Back-off pulling image "${spec.image}"` };
    // A sandbox that could not be made: the kubelet shows its containers ContainerCreating (the
    // cause is in its FailedCreatePodSandBox event); the message keeps the cause in sight here too.
    else if (input.failure.reason === 'CreatePodSandboxError') waiting = { reason: 'ContainerCreating', message: input.failure.message };
    else waiting = { reason: input.failure.reason, message: input.failure.message };
  } else {
    waiting = { reason: input.initializing ? 'PodInitializing' : 'ContainerCreating' };
  }
  return { ...base, state: { waiting }, lastState, ready: false, started: false };
}
