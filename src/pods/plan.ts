// Planning, separate from acting (the kubelet's computePodActions): from what the files ask for
// and what podman has, a plain list of what to do for each pod. Pure, so every rule is tested
// without a runtime.
import type { DesiredPod } from '../manifest/identity.js';
import type { ObservedContainer, ObservedPod } from '../runtime/types.js';
import { backoffKey, backoffSince, type BackoffVerdict } from './backoff.js';
import { isSidecar } from '../manifest/pod-containers.js';

/** What the planner asks of the crash-loop back-off (see backoff.ts). */
export interface BackoffView {
  verdict(key: string, finishedAt: number | undefined, now: number): BackoffVerdict;
}

/** A container the prober wants stopped (a failed liveness or startup probe), by the kubelet's rule. */
export interface ContainerKill {
  containerId: string;
  containerName: string;
  gracePeriodSeconds: number;
  /** Why, as the Killing event says it. */
  message: string;
}

/** One thing to do to one pod, named by what it does; a pod's worker carries it out. */
export type PodAction =
  /** Make a pod that podman does not have, and take the first step of its start. */
  | { kind: 'createPod'; key: string; desired: DesiredPod; reason: string }
  /** Stop and remove the pod of an older spec, then make the new one. */
  | { kind: 'replacePod'; key: string; observed: ObservedPod; desired: DesiredPod; running?: DesiredPod | undefined; reason: string }
  /** Stop and remove a pod no manifest asks for (or a duplicate). */
  | { kind: 'removePod'; key: string; observed: ObservedPod; running?: DesiredPod | undefined; reason: string }
  /** Stop a pod's containers for good, keeping the pod (activeDeadlineSeconds). */
  | { kind: 'stopPod'; key: string; observed: ObservedPod; desired: DesiredPod; reason: string }
  /** The next step of a pod's start: the next init container, or the missing app containers. */
  | { kind: 'createContainers'; key: string; observed: ObservedPod; desired: DesiredPod; names: string[]; reason: string }
  /** Start exited containers again, per restartPolicy and back-off. */
  | { kind: 'restartContainers'; key: string; observed: ObservedPod; desired: DesiredPod; containers: ObservedContainer[]; reason: string }
  /** Stop one container the prober failed; its exit is then restarted per policy. */
  | { kind: 'stopContainer'; key: string; observed: ObservedPod; desired: DesiredPod; kill: ContainerKill; reason: string };

export interface PlanInput {
  desired: ReadonlyMap<string, DesiredPod>;
  observed: readonly ObservedPod[];
  /** Files with errors: their running pods are kept even when no valid manifest names them. */
  erroredSources: ReadonlySet<string>;
  /** Keys whose worker is busy: not planned this pass (their state is changing). */
  busy: ReadonlySet<string>;
  now: number;
  /** The crash-loop back-off: how long an exited container waits before it is started again. */
  backoff: BackoffView;
  /** The spec each pod podvisor has run was made from, by uid (for preStop hooks and stop order). */
  known?: ReadonlyMap<string, DesiredPod>;
  /** When each pod started (ms), by uid, for activeDeadlineSeconds. */
  startTime?: (uid: string) => number | undefined;
  /** Containers the prober asked to stop, by pod key: done before anything else in the pod. */
  kills?: ReadonlyMap<string, readonly ContainerKill[]>;
}

/** True when the pod has been active longer than its activeDeadlineSeconds. */
export function deadlineExceeded(desired: DesiredPod, startTime: number | undefined, now: number): boolean {
  const deadline = desired.pod.spec.activeDeadlineSeconds;
  return deadline !== undefined && startTime !== undefined && now - startTime >= deadline * 1000;
}

export interface Plan {
  actions: PodAction[];
  /** Pods kept although no valid manifest asks for them, because their file has errors. */
  kept: ObservedPod[];
  /** The earliest time a pending restart becomes due, to plan again then. */
  wakeAt: number | undefined;
}

/** Whether a container that exited with `exitCode` is started again under `policy`. */
export function shouldRestart(policy: string | undefined, exitCode: number | undefined): boolean {
  if (policy === 'Never') return false;
  if (policy === 'OnFailure') return exitCode !== 0;
  return true;
}

/** Computes the actions that bring podman's pods to the desired set. */
export function planPods(input: PlanInput): Plan {
  const actions: PodAction[] = [];
  const kept: ObservedPod[] = [];
  let wakeAt: number | undefined;
  const byKey = new Map<string, ObservedPod[]>();
  for (const pod of input.observed) byKey.set(pod.key, [...(byKey.get(pod.key) ?? []), pod]);

  for (const [key, pods] of byKey) {
    if (input.busy.has(key)) continue;
    const desired = input.desired.get(key);
    // Never two pods for one key: keep the one that matches the desired hash, kill the rest.
    const keep = pods.find((pod) => pod.hash === desired?.hash) ?? pods[0];
    for (const pod of pods) {
      if (pod !== keep) actions.push({ kind: 'removePod', key, observed: pod, running: input.known?.get(pod.uid), reason: 'duplicate pod for the same manifest' });
    }
    if (!keep) continue;
    if (!desired) {
      if (input.erroredSources.has(keep.source)) kept.push(keep);
      else actions.push({ kind: 'removePod', key, observed: keep, running: input.known?.get(keep.uid), reason: 'no manifest asks for it' });
      continue;
    }
    if (keep.hash !== desired.hash) {
      actions.push({ kind: 'replacePod', key, observed: keep, desired, running: input.known?.get(keep.uid), reason: `config hash changed from ${keep.hash} to ${desired.hash}` });
      continue;
    }
    const step = planRunningPod(keep, desired, input);
    const started = input.startTime?.(desired.uid);
    const deadline = desired.pod.spec.activeDeadlineSeconds;
    if (deadline !== undefined && started !== undefined && started + deadline * 1000 > input.now) {
      wakeAt = Math.min(wakeAt ?? Infinity, started + deadline * 1000);
    }
    if (step.action) actions.push(step.action);
    if (step.wakeAt !== undefined) wakeAt = Math.min(wakeAt ?? Infinity, step.wakeAt);
  }

  for (const [key, desired] of input.desired) {
    if (byKey.has(key) || input.busy.has(key)) continue;
    // A pod whose sandbox could not be made (its name taken, a host port held) backs off as a
    // container that could not be created does: the runtime records that failure against the
    // first app container.
    const first = desired.pod.spec.containers[0]?.name;
    const wait = first === undefined ? undefined : input.backoff.verdict(backoffKey(desired.uid, first), undefined, input.now);
    if (wait?.waiting) {
      wakeAt = Math.min(wakeAt ?? Infinity, wait.until);
      continue;
    }
    actions.push({ kind: 'createPod', key, desired, reason: 'new manifest' });
  }
  return { actions, kept, wakeAt };
}

/** What a pod that runs the desired spec needs: missing containers made, exited ones restarted. */
function planRunningPod(observed: ObservedPod, desired: DesiredPod, input: PlanInput): { action?: PodAction; wakeAt?: number } {
  const key = desired.key;
  const policy = desired.pod.spec.restartPolicy;
  const found = (name: string) => observed.containers.find((container) => container.name === name);
  const inits = desired.pod.spec.initContainers ?? [];
  const failedInit = inits
    .filter((container) => !isSidecar(container))
    .map((container) => found(container.name))
    .find((container) => container?.state === 'exited' && container.exitCode !== 0);
  const missing = desired.pod.spec.containers.map((container) => container.name).filter((name) => !found(name));

  // activeDeadlineSeconds: the pod is stopped for good (it stays, Failed, until its manifest changes).
  if (deadlineExceeded(desired, input.startTime?.(desired.uid), input.now)) {
    const running = observed.containers.some((container) => container.state === 'running');
    return running ? { action: { kind: 'stopPod', key, observed, desired, reason: `active longer than activeDeadlineSeconds (${desired.pod.spec.activeDeadlineSeconds}s)` } } : {};
  }
  if (!observed.infraRunning && observed.containers.some((container) => container.state === 'running')) {
    return {}; // podman is between states; look again next pass
  }
  // A failed liveness or startup probe: the container is stopped; its exit is restarted per policy.
  const kill = input.kills?.get(key)?.find((one) => observed.containers.some((container) => container.id === one.containerId && container.state === 'running'));
  if (kill) return { action: { kind: 'stopContainer', key, observed, desired, kill, reason: kill.message } };
  // An infra container that is not running is started again by podman with the next container
  // started in the pod: the pod (and its volumes) are kept, as the kubelet keeps a sandbox.
  const verdict = (container: ObservedContainer) => input.backoff.verdict(backoffKey(desired.uid, container.name), backoffSince(container.finishedAt), input.now);

  if (missing.length > 0) {
    // An init container still running: its exit plans the next step (nothing waits for it).
    const initRunning = inits.some((container) => !isSidecar(container) && found(container.name)?.state === 'running');
    if (initRunning) return {};
    // An init container that failed is retried per restartPolicy, with the crash-loop back-off.
    if (failedInit) {
      if (policy === 'Never') return {};
      const wait = verdict(failedInit);
      if (wait.waiting) return { wakeAt: wait.until };
    }
    // A container that failed to be created (an image pull, a bad config) backs off too.
    const waits = missing.map((name) => input.backoff.verdict(backoffKey(desired.uid, name), undefined, input.now)).filter((wait) => wait.waiting);
    if (!failedInit && waits.length > 0) return { wakeAt: Math.min(...waits.map((wait) => wait.until)) };
    return { action: { kind: 'createContainers', key, observed, desired, names: missing, reason: failedInit ? `init container ${failedInit.name} failed; retrying` : `containers missing: ${missing.join(', ')}` } };
  }

  // Sidecars (init containers with restartPolicy Always) are restarted whatever the pod's policy.
  const sidecars = new Set(inits.filter(isSidecar).map((container) => container.name));
  const restartable = observed.containers.filter((container) => {
    const sidecar = container.kind === 'init' && sidecars.has(container.name);
    if (container.kind !== 'app' && !sidecar) return false;
    return container.state === 'created' || (container.state === 'exited' && shouldRestart(sidecar ? 'Always' : policy, container.exitCode));
  });
  const verdicts = new Map(restartable.map((container) => [container, verdict(container)]));
  const ready = restartable.filter((container) => !verdicts.get(container)?.waiting);
  const waiting = restartable.filter((container) => !ready.includes(container));
  const wakeAt = waiting.length > 0 ? Math.min(...waiting.map((container) => verdicts.get(container)?.until ?? input.now)) : undefined;
  if (ready.length === 0) return wakeAt === undefined ? {} : { wakeAt };
  const names = ready.map((container) => `${container.name} (exit code ${container.exitCode ?? 'none'})`).join(', ');
  const onlySidecars = ready.every((container) => container.kind === 'init');
  return {
    action: { kind: 'restartContainers', key, observed, desired, containers: ready, reason: `${onlySidecars ? 'sidecar restartPolicy Always' : `restartPolicy ${policy ?? 'Always'}`}: restarting ${names}` },
    ...(wakeAt === undefined ? {} : { wakeAt }),
  };
}
