// The pod conditions the kubelet owns, by its rules (pkg/kubelet/status/generate.go, the
// PodScheduled condition of generateAPIPodStatus, and the status manager's
// updateLastTransitionTime). Pure: spec, phase and container statuses in, conditions out.
//
// Readiness gates are not evaluated: podvisor ignores spec.readinessGates (field-policy.ts), as no
// controller sets custom conditions on a static pod; Ready follows ContainersReady alone.
import type { PodSpec } from '../manifest/pod-schema.js';
import { findStatus, hasAnyRegularContainerStarted } from './pod-phase.js';
import { isSidecar } from '../manifest/pod-containers.js';
import type { ConditionStatus, ContainerStatus, PodCondition, PodConditionType, PodPhase } from './types.js';

/** The reasons the kubelet writes on its conditions. */
export const ConditionReason = {
  /** No container status has been reported at all. */
  UnknownContainerStatuses: 'UnknownContainerStatuses',
  /** The pod has Succeeded. */
  PodCompleted: 'PodCompleted',
  /** The pod has Failed. */
  PodFailed: 'PodFailed',
  ContainersNotReady: 'ContainersNotReady',
  ContainersNotInitialized: 'ContainersNotInitialized',
} as const;

export interface PodConditionsInput {
  spec: PodSpec;
  /** The phase being served with these conditions (see pod-phase.ts). */
  phase: PodPhase;
  /**
   * The statuses being served. Leave both out while the runtime has reported nothing for the pod
   * (the kubelet's nil list): the conditions then say UnknownContainerStatuses.
   */
  initContainerStatuses?: readonly ContainerStatus[];
  containerStatuses?: readonly ContainerStatus[];
  /** The pod's sandbox exists with its network set up (podman: the infra container runs). */
  sandboxReady: boolean;
  /** The conditions served before; a condition whose status is unchanged keeps its lastTransitionTime. */
  previous?: readonly PodCondition[];
  now: Date;
}

/** A condition before it is stamped with its transition time. */
interface Verdict {
  type: PodConditionType;
  status: ConditionStatus;
  reason?: string;
  message?: string;
}

/** A time as the API writes it: RFC 3339, UTC, whole seconds. */
export function apiTime(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** A list of names as Go prints a []string with %s: "[a b]". */
function goList(names: readonly string[]): string {
  return `[${names.join(' ')}]`;
}

function verdict(type: PodConditionType, status: ConditionStatus, reason?: string, message?: string): Verdict {
  return { type, status, ...(reason !== undefined ? { reason } : {}), ...(message !== undefined ? { message } : {}) };
}

/** The "containers with unknown status: [..], containers with <what> status: [..]" message, or undefined. */
function namesMessage(unknown: readonly string[], what: string, failing: readonly string[]): string | undefined {
  const parts: string[] = [];
  if (unknown.length > 0) parts.push(`containers with unknown status: ${goList(unknown)}`);
  if (failing.length > 0) parts.push(`containers with ${what} status: ${goList(failing)}`);
  return parts.length > 0 ? parts.join(', ') : undefined;
}

/** PodReadyToStartContainers, by GeneratePodReadyToStartContainersCondition. */
function readyToStartContainers(sandboxReady: boolean): Verdict {
  return verdict('PodReadyToStartContainers', sandboxReady ? 'True' : 'False');
}

/** Initialized, by GeneratePodInitializedCondition: regular init containers ready, sidecars started. */
function initialized(input: PodConditionsInput, reported: boolean): Verdict {
  const { spec, phase } = input;
  const initContainers = spec.initContainers ?? [];
  if (!reported && initContainers.length > 0) return verdict('Initialized', 'False', ConditionReason.UnknownContainerStatuses);
  const unknown: string[] = [];
  const incomplete: string[] = [];
  for (const container of initContainers) {
    const status = findStatus(input.initContainerStatuses, container.name);
    if (!status) unknown.push(container.name);
    else if (!(isSidecar(container) ? status.started === true : status.ready)) incomplete.push(container.name);
  }
  if (phase === 'Succeeded' && unknown.length === 0) return verdict('Initialized', 'True', ConditionReason.PodCompleted);
  // Once an app container has run the pod was initialized, even while a sidecar restarts.
  if (hasAnyRegularContainerStarted(spec, input.containerStatuses)) return verdict('Initialized', 'True');
  const message = namesMessage(unknown, 'incomplete', incomplete);
  if (message !== undefined) return verdict('Initialized', 'False', ConditionReason.ContainersNotInitialized, message);
  return verdict('Initialized', 'True');
}

/** ContainersReady, by GenerateContainersReadyCondition: every sidecar and app container ready. */
function containersReady(input: PodConditionsInput, reported: boolean): Verdict {
  const { spec, phase } = input;
  if (!reported) return verdict('ContainersReady', 'False', ConditionReason.UnknownContainerStatuses);
  const unknown: string[] = [];
  const unready: string[] = [];
  const check = (name: string, statuses: readonly ContainerStatus[] | undefined): void => {
    const status = findStatus(statuses, name);
    if (!status) unknown.push(name);
    else if (!status.ready) unready.push(name);
  };
  for (const container of spec.initContainers ?? []) {
    if (isSidecar(container)) check(container.name, input.initContainerStatuses);
  }
  for (const container of spec.containers) check(container.name, input.containerStatuses);
  if (phase === 'Succeeded' && unknown.length === 0) return verdict('ContainersReady', 'False', ConditionReason.PodCompleted);
  // A failed pod's containers may still be stopping: not ready, whatever they say.
  if (phase === 'Failed') return verdict('ContainersReady', 'False', ConditionReason.PodFailed);
  const message = namesMessage(unknown, 'unready', unready);
  if (message !== undefined) return verdict('ContainersReady', 'False', ConditionReason.ContainersNotReady, message);
  return verdict('ContainersReady', 'True');
}

/** Ready, by GeneratePodReadyCondition: ContainersReady's verdict, word for word, under another type. */
function ready(containers: Verdict): Verdict {
  if (containers.status === 'True') return verdict('Ready', 'True');
  return verdict('Ready', containers.status, containers.reason, containers.message);
}

/** Stamps a verdict: the previous transition time when the status is unchanged, else now. */
function stamp(item: Verdict, previous: readonly PodCondition[], now: string): PodCondition {
  const before = previous.find((condition) => condition.type === item.type);
  const lastTransitionTime = before && before.status === item.status ? before.lastTransitionTime : now;
  return { ...item, lastProbeTime: null, lastTransitionTime };
}

/**
 * The kubelet-owned conditions, in the order the kubelet writes them: PodReadyToStartContainers,
 * Initialized, Ready, ContainersReady, PodScheduled (always True: a static pod is bound to its node).
 */
export function podConditions(input: PodConditionsInput): PodCondition[] {
  const reported = input.initContainerStatuses !== undefined || input.containerStatuses !== undefined;
  const containers = containersReady(input, reported);
  const verdicts = [
    readyToStartContainers(input.sandboxReady),
    initialized(input, reported),
    ready(containers),
    containers,
    verdict('PodScheduled', 'True'),
  ];
  const now = apiTime(input.now);
  return verdicts.map((item) => stamp(item, input.previous ?? [], now));
}
