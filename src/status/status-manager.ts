// The one owner of pod status (the kubelet's status manager): it recomputes every pod's status
// after each listing and whenever a worker reports, keeps it in memory, and writes it with the
// recent events to <state-dir>/status.json on a period, so `podvisor status` (and a restarted
// agent) can read it. Everyone else only reads from it.
import { join } from 'node:path';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { DesiredState } from '../manifest/desired-state.js';
import type { DesiredPod, PodIdentity } from '../manifest/identity.js';
import type { PodManifest } from '../manifest/pod-schema.js';
import { backoffKey, backoffSince } from '../pods/backoff.js';
import { deadlineExceeded } from '../pods/plan.js';
import type { Supervision } from '../pods/supervision.js';
import type { InvalidManifest } from '../rollout/rollout-outcome.js';
import type { Observation, ObservedPod } from '../runtime/types.js';
import { readStateFile, StateFileWriter } from '../state/state-file.js';
import { apiTime, podConditions } from './conditions.js';
import { containerStatus, type StartFailure } from './container-status.js';
import { EventRecorder, type PodEvent } from './event-recorder.js';
import { podPhase } from './pod-phase.js';
import { qosClass } from './qos.js';
import type { ContainerStatus, PodCondition, PodStatus } from './types.js';
import { manifestCondition, PROBLEM_CONDITIONS, problemAnnotation, rolloutAnnotations, rolloutCondition, type ManifestCondition, type ManifestProblem, type RolloutMark } from './manifest-problem.js';
import { compareText } from '../order.js';

/** A pod as podvisor serves it: the defaulted manifest with its status. */
export interface StatusPod {
  apiVersion: 'v1';
  kind: 'Pod';
  metadata: Omit<PodManifest['metadata'], 'creationTimestamp'> & { creationTimestamp?: string };
  spec: PodManifest['spec'];
  /** The kubelet's conditions, and podvisor's own when the manifest file has errors. */
  status: Omit<PodStatus, 'conditions'> & { conditions: (PodCondition | ManifestCondition)[] };
}

/** What workers and the prober tell the status owner. */
export interface StatusSink {
  containerFailed(pod: PodIdentity, container: string, failure: StartFailure): void;
  containerStarted(pod: PodIdentity, container: string): void;
  event(pod: PodIdentity, type: PodEvent['type'], reason: string, message: string, container?: { name: string; kind: 'init' | 'app' }): void;
}

/** Probe results the status reads (the prober's view); absent: no prober. */
export interface ProbeStatusView {
  status(containerId: string): { started: boolean; ready: boolean } | undefined;
}

export interface StatusFile {
  apiVersion: 'v1';
  kind: 'PodList';
  metadata: { resourceVersion: string };
  items: StatusPod[];
  events: PodEvent[];
  writtenAt: string;
  /** The agent that wrote it, so a reader can tell live figures from a stopped agent's last ones. */
  agent?: { pid: number; startedAt: string };
}

/** The status file is written at least this often, changed or not: an older one is stale. */
export const STATUS_HEARTBEAT_MS = 30_000;

export interface StatusManagerOptions {
  stateDir: string;
  logger: Logger;
  supervision: Supervision;
  hostIP: string;
  probes?: ProbeStatusView;
  now?: () => number;
  writeIntervalMs?: number;
  /** Told after every change of a pod's status or of the events (the mirror pods follow). */
  onChange?: () => void;
}

export const STATUS_FILE = 'status.json';

export class StatusManager implements StatusSink {
  readonly events: EventRecorder;
  readonly #options: StatusManagerOptions;
  readonly #now: () => number;
  readonly #pods = new Map<string, StatusPod>();
  readonly #failures = new Map<string, StartFailure>();
  /** The last exit of each container, from conmon's exit file: a run may end and restart between two listings. */
  readonly #exits = new Map<string, { exitCode: number | undefined; at: Date }>();
  #problems: ReadonlyMap<string, ManifestProblem> = new Map();
  #rollout: ReadonlyMap<string, RolloutMark> = new Map();
  #invalid: readonly InvalidManifest[] = [];
  #desired: DesiredState | undefined;
  #observed = new Map<string, ObservedPod>();
  #writeTimer: NodeJS.Timeout | undefined;
  #dirty = false;
  #version = 0;
  #writing: Promise<void> = Promise.resolve();
  #writtenAt = 0;
  readonly #writer: StateFileWriter;
  readonly #agentStartedAt = new Date().toISOString();

  constructor(options: StatusManagerOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.events = new EventRecorder({ now: this.#now });
    this.#writer = new StateFileWriter(join(options.stateDir, STATUS_FILE), options.logger);
  }

  /** Starts from what an earlier agent wrote: phases (a terminal one stays), conditions, events. */
  async load(): Promise<void> {
    try {
      const saved = await readStateFile(this.#writer.path, this.#options.logger, (raw) => {
        const file = raw as Partial<StatusFile> | null;
        return file?.kind === 'PodList' && Array.isArray(file.items) ? (file as StatusFile) : 'not a podvisor status file';
      });
      if (!saved) return;
      for (const pod of saved.items) this.#pods.set(`${pod.metadata.namespace ?? 'default'}/${pod.metadata.name}`, pod);
      if (Array.isArray(saved.events)) this.events.restore(saved.events);
    } catch (error) {
      this.#options.logger.warn(`cannot read the saved status: ${errorMessage(error)}`);
    }
  }

  /** Writes the status file every `writeIntervalMs` while it changes, and every STATUS_HEARTBEAT_MS regardless. */
  start(): void {
    this.#writeTimer = setInterval(() => {
      // Nothing is written before this agent has computed a status of its own: the loaded one
      // may count fewer restarts than supervision.json (the last agent stopped mid-update), and
      // written again as new it would make a restart count go back for its readers.
      if (this.#desired === undefined) return;
      if (this.#dirty || this.#now() - this.#writtenAt >= STATUS_HEARTBEAT_MS) void this.flush();
    }, this.#options.writeIntervalMs ?? 2000);
    this.#writeTimer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#writeTimer);
    await this.flush();
  }

  /** Recomputes every pod from the desired state and a fresh listing. */
  observe(desired: DesiredState, observation: Observation): void {
    this.#desired = desired;
    // Of two pods for one key (a replace in flight), the one that runs the desired spec is the pod.
    this.#observed = new Map();
    for (const pod of observation.pods) {
      const known = this.#observed.get(pod.key);
      if (!known || (known.hash !== desired.pods.get(pod.key)?.hash && pod.hash === desired.pods.get(pod.key)?.hash)) this.#observed.set(pod.key, pod);
    }
    // Exits of containers podman no longer lists are of no use.
    if (this.#exits.size > 0) {
      const listed = new Set(observation.pods.flatMap((pod) => pod.containers.map((container) => container.id)));
      for (const id of this.#exits.keys()) if (!listed.has(id)) this.#exits.delete(id);
    }
    this.#recompute();
  }

  /** The manifest errors of pods running their last good spec, by pod key; and the files with errors no pod runs from. */
  setManifestProblems(problems: ReadonlyMap<string, ManifestProblem>, rollout?: ReadonlyMap<string, RolloutMark>, invalid?: readonly InvalidManifest[]): void {
    this.#problems = problems;
    if (rollout) this.#rollout = rollout;
    if (invalid) this.#invalid = invalid;
    this.#recompute();
  }

  /** Recomputes with the latest probe results (the prober reported a change). */
  refresh(): void {
    this.#recompute();
  }

  /** A container's run ended (the exit watcher's word, before any listing shows it). */
  containerExited(containerId: string, exitCode: number | undefined, at: Date): void {
    this.#exits.set(containerId, { exitCode, at });
  }

  containerFailed(pod: PodIdentity, container: string, failure: StartFailure): void {
    this.#failures.set(backoffKey(pod.uid, container), failure);
    this.#recompute();
  }

  containerStarted(pod: PodIdentity, container: string): void {
    if (this.#failures.delete(backoffKey(pod.uid, container))) this.#recompute();
  }

  event(pod: PodIdentity, type: PodEvent['type'], reason: string, message: string, container?: { name: string; kind: 'init' | 'app' }): void {
    this.events.record(pod, type, reason, message, container);
    this.#dirty = true;
    this.#options.onChange?.();
  }

  /** The files with errors that no pod runs from (a bad new file), for the node. */
  invalidManifests(): readonly InvalidManifest[] {
    return this.#invalid;
  }

  /** Every pod served, sorted by namespace and name. */
  pods(): StatusPod[] {
    return [...this.#pods.values()].sort((a, b) => compareText(`${a.metadata.namespace}/${a.metadata.name}`, `${b.metadata.namespace}/${b.metadata.name}`));
  }

  /** Writes the status file now. */
  async flush(): Promise<void> {
    this.#dirty = false;
    this.#writtenAt = this.#now();
    const file: StatusFile = {
      apiVersion: 'v1',
      kind: 'PodList',
      metadata: { resourceVersion: String(this.#version) },
      items: this.pods(),
      events: this.events.list(),
      writtenAt: new Date(this.#now()).toISOString(),
      agent: { pid: process.pid, startedAt: this.#agentStartedAt },
    };
    this.#writing = this.#writing.then(async () => {
      // The restart counts this status shows are on disk first: a crash in between never makes them go back.
      await this.#options.supervision.flush?.();
      // A failed write (a full disk: reported once by the writer) is tried again next interval.
      if (!(await this.#writer.write(file))) this.#dirty = true;
    });
    await this.#writing;
  }

  #recompute(): void {
    const desired = this.#desired;
    if (!desired) return;
    const next = new Map<string, StatusPod>();
    for (const [key, pod] of desired.pods) {
      const computed = this.#podStatus(pod, this.#observed.get(key));
      next.set(key, computed.pod);
      // What the computation found, applied here: it only reads.
      for (const event of computed.events) this.events.record(pod, 'Warning', 'BackOff', event.message, event.container);
      if (computed.firstSeen) this.#options.supervision.setPodStartTime(pod.uid, computed.firstSeen);
    }
    // A pod kept on its last good spec is in `desired` already; a pod no file describes is gone.
    const before = JSON.stringify([...this.#pods.values()].map((pod) => pod.status));
    this.#pods.clear();
    for (const [key, pod] of next) this.#pods.set(key, pod);
    if (JSON.stringify([...next.values()].map((pod) => pod.status)) !== before) {
      this.#version++;
      this.#dirty = true;
    }
    // Readers compare for themselves: a spec or label change keeps the status but changes the pod.
    this.#options.onChange?.();
  }

  /**
   * One pod's status from what is known of it. Reads only: the BackOff events it finds and the
   * start time of a pod seen for the first time are returned for #recompute to record.
   */
  #podStatus(desired: DesiredPod, observed: ObservedPod | undefined): { pod: StatusPod; events: { message: string; container: { name: string; kind: 'init' | 'app' } }[]; firstSeen?: string } {
    const spec = desired.pod.spec;
    const previous = this.#pods.get(desired.key);
    const samePod = previous?.metadata.uid === desired.uid ? previous : undefined;
    const current = observed && observed.hash === desired.hash ? observed : undefined;
    const now = this.#now();
    const { supervision } = this.#options;
    const podLabel = `${desired.name}_${desired.namespace}(${desired.uid})`;

    const startTimeMs = supervision.podStartTime(desired.uid);
    // A pod that already ended (Succeeded, Failed) keeps its phase and reason when its deadline passes.
    const ended = samePod?.status.phase === 'Succeeded' || samePod?.status.phase === 'Failed';
    const overDeadline = samePod?.status.reason === 'DeadlineExceeded' || (!ended && deadlineExceeded(desired, startTimeMs === undefined ? undefined : Date.parse(startTimeMs), now));
    const initSpecs = spec.initContainers ?? [];
    // As the kubelet: in a pod with init containers, a container not created yet waits as PodInitializing.
    const initializing = initSpecs.length > 0;
    const statusOf = (container: typeof spec.containers[number], kind: 'init' | 'app'): ContainerStatus => {
      const observedContainer = current?.containers.find((one) => one.name === container.name);
      const key = backoffKey(desired.uid, container.name);
      const prior = (kind === 'init' ? samePod?.status.initContainerStatuses : samePod?.status.containerStatuses)?.find((status) => status.name === container.name);
      return containerStatus({
        spec: container,
        kind,
        observed: observedContainer,
        restartCount: supervision.restartCount(key),
        // A pod past its deadline restarts nothing: its containers show how they ended.
        restartPolicy: overDeadline ? 'Never' : spec.restartPolicy,
        backoff: supervision.backoff.verdict(key, backoffSince(observedContainer?.finishedAt), now),
        failure: this.#failures.get(key),
        probe: observedContainer ? this.#options.probes?.status(observedContainer.id) : undefined,
        podLabel,
        initializing,
        previous: prior,
        lastExit: observedContainer ? this.#exits.get(observedContainer.id) : undefined,
      });
    };
    const initContainerStatuses = initSpecs.map((container) => statusOf(container, 'init'));
    const containerStatuses = spec.containers.map((container) => statusOf(container, 'app'));
    // The kubelet's BackOff events, once each time a container enters a back-off.
    const events: { message: string; container: { name: string; kind: 'init' | 'app' } }[] = [];
    for (const [kind, statuses, before] of [['init', initContainerStatuses, samePod?.status.initContainerStatuses], ['app', containerStatuses, samePod?.status.containerStatuses]] as const) {
      for (const status of statuses) {
        const reason = status.state.waiting?.reason;
        if (reason !== 'CrashLoopBackOff' && reason !== 'ImagePullBackOff') continue;
        if (before?.find((one) => one.name === status.name)?.state.waiting?.reason === reason) continue;
        const message = reason === 'CrashLoopBackOff' ? `Back-off restarting failed container ${status.name} in pod ${podLabel}` : `Back-off pulling image "${status.image}"`;
        events.push({ message, container: { name: status.name, kind } });
      }
    }
    const phase = overDeadline ? 'Failed' : podPhase(spec, initContainerStatuses, containerStatuses, samePod ? { previous: samePod.status.phase } : {});
    const conditions = podConditions({
      spec,
      phase,
      ...(current ? { initContainerStatuses, containerStatuses } : {}),
      sandboxReady: current?.infraRunning ?? false,
      ...(samePod ? { previous: samePod.status.conditions.filter((condition): condition is PodCondition => !PROBLEM_CONDITIONS.has(condition.type)) } : {}),
      now: new Date(now),
    });
    // The start time: when podvisor first saw the pod's sandbox, kept across agent restarts.
    const firstSeen = current && !supervision.podStartTime(desired.uid) ? apiTime(new Date(now)) : undefined;
    const startTime = supervision.podStartTime(desired.uid) ?? firstSeen;
    const hostIP = this.#options.hostIP;
    const podIP = spec.hostNetwork ? hostIP : current?.podIP;
    const problem = this.#problems.get(desired.key);
    const mark = this.#rollout.get(desired.key);
    const marks = mark ? rolloutAnnotations(mark) : {};
    const metadata = problem || mark ? { ...desired.pod.metadata, annotations: { ...desired.pod.metadata.annotations, ...marks, ...(problem ? { [problemAnnotation(problem)]: problem.message } : {}) } } : desired.pod.metadata;
    // A problem's condition says why the file's spec does not run; without one, the outcome's says whether it is proven.
    const applied = problem ? manifestCondition(problem) : mark ? rolloutCondition(mark) : undefined;
    const pod: StatusPod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { ...metadata, creationTimestamp: startTime },
      spec,
      status: {
        phase,
        conditions: applied ? [...conditions, applied] : conditions,
        ...(overDeadline ? { reason: 'DeadlineExceeded', message: 'Pod was active on the node longer than the specified deadline' } : {}),
        hostIP,
        hostIPs: [{ ip: hostIP }],
        ...(podIP ? { podIP, podIPs: [{ ip: podIP }] } : {}),
        ...(startTime ? { startTime } : {}),
        qosClass: qosClass(spec),
        initContainerStatuses,
        containerStatuses,
      },
    };
    return { pod, events, ...(firstSeen ? { firstSeen } : {}) };
  }
}
