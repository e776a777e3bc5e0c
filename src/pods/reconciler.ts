// The loop that makes podman match the files: a pass lists podvisor's pods once, plans, and
// hands each pod's action to its worker. Passes are triggered by new snapshots, by the relist
// timer (podman can change behind podvisor's back), by workers finishing and by due restarts,
// and are coalesced: at most one runs, and at most one more is queued behind it.
// A changed manifest is acted on at once against the last listing (no podman call before the
// first one for the pod), as long as that listing is newer than anything done to the pod since;
// the full pass that follows confirms it.
import { errorMessage } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { DesiredState } from '../manifest/desired-state.js';
import type { DesiredPod } from '../manifest/identity.js';
import type { PodRuntime } from '../runtime/types.js';
import type { Observation, ObservedPod } from '../runtime/types.js';
import { planPods, type ContainerKill, type Plan, type PodAction } from './plan.js';
import { PodWorkers } from './pod-workers.js';
import type { StatusManager } from '../status/status-manager.js';
import { inMemorySupervision, type Supervision } from './supervision.js';

/** How often passes run while a burst of pod work is in flight. */
const BURST_PASS_INTERVAL_MS = 1000;

export interface ReconcilerOptions {
  runtime: PodRuntime;
  logger: Logger;
  relistIntervalMs: number;
  /** How long a pod whose action failed is left alone before it is planned again. */
  restartDelayMs: number;
  /** Back-off and restart counts; in memory (back-off from restartDelayMs) unless given. */
  supervision?: Supervision;
  /** The status owner: told of every listing, and of what workers do. */
  status?: StatusManager;
  /** Told of every listing with the desired state it was planned against (the prober syncs here). */
  onObservation?: (desired: DesiredState, observation: Observation) => void;
  maxConcurrentStarts?: number;
  /** Pod stops at once, and how long one holds its slot at the most (PodWorkers' defaults unless told). */
  maxConcurrentStops?: number;
  stopSlotHoldMs?: number;
  /** Told when a pass has handed out its actions, with how long it took (metrics). */
  onPass?: (durationMs: number) => void;
  now?: () => number;
}

export class Reconciler {
  #options: ReconcilerOptions;
  readonly #workers: PodWorkers;
  readonly #now: () => number;
  readonly #supervision: Supervision;
  /** Pods whose work in flight was cancelled because their manifest changed. */
  readonly #superseded = new Set<string>();
  /** Every spec a pod has been made from, by uid: what a pod that is stopped was running. */
  readonly #known = new Map<string, DesiredPod>();
  /** Pods whose last action failed: left alone until the retry time, so failures cannot spin. */
  readonly #retryAt = new Map<string, number>();
  readonly #keptReported = new Set<string>();
  /** Containers the prober asked to stop, by pod key, until the stop is handed to the pod's worker. */
  readonly #kills = new Map<string, ContainerKill[]>();
  #desired: DesiredState | undefined;
  /** The last listing, and the sequence number of its start. */
  #observation: { pods: ObservedPod[]; startedAt: number } | undefined;
  /** When each pod was last acted on, as a sequence number: a listing started before is stale for it. */
  readonly #touchedAt = new Map<string, number>();
  /**
   * Per pod, the last time it was acted on other than by restarting the one container named in
   * #restartedOnly: a listing older than a restart of that container alone still tells the rest
   * of the pod, so that container's next exit needs no new listing (a crash loop under API load
   * otherwise waited for two listings, up to a second).
   */
  readonly #otherTouchAt = new Map<string, number>();
  readonly #restartedOnly = new Map<string, string>();
  /** Orders listings and actions; a clock could give both the same millisecond. */
  #sequence = 0;
  #running: Promise<void> | undefined;
  #queued = false;
  #stopped = false;
  #relistTimer: NodeJS.Timeout | undefined;
  #wakeTimer: NodeJS.Timeout | undefined;
  #burstTimer: NodeJS.Timeout | undefined;
  #foreignReported = false;
  /** The exit time last logged for each container (by id). */
  #exitsReported = new Map<string, number>();
  /** When this reconciler was made: exits before it are not logged. */
  readonly #startedAt = Date.now() - 1000;
  /** Cancels the listing in flight when the agent stops. */
  readonly #stopController = new AbortController();
  passes = 0;
  /** When the last pass finished its listing and plan (the clock's ms): the loop is alive. */
  lastPassAt: number | undefined;
  /** Why the last listing failed, until one succeeds again. */
  lastListError: string | undefined;
  #firstPassEnded: () => void = () => {};
  /**
   * Settles when the first pass has ended, its plan dispatched or its listing failed: the agent
   * is then supervising (what systemd's readiness waits for), though pods may still be starting.
   */
  readonly firstPass = new Promise<void>((resolve) => {
    this.#firstPassEnded = resolve;
  });

  constructor(options: ReconcilerOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#supervision = options.supervision ?? inMemorySupervision({ initialMs: options.restartDelayMs, maxMs: 300_000 });
    this.#workers = new PodWorkers({
      runtime: options.runtime,
      logger: options.logger,
      supervision: this.#supervision,
      now: this.#now,
      ...(options.status ? { status: options.status } : {}),
      ...(options.maxConcurrentStarts === undefined ? {} : { maxConcurrentStarts: options.maxConcurrentStarts }),
      ...(options.maxConcurrentStops === undefined ? {} : { maxConcurrentStops: options.maxConcurrentStops }),
      ...(options.stopSlotHoldMs === undefined ? {} : { stopSlotHoldMs: options.stopSlotHoldMs }),
      onIdle: (action, error) => {
        const { key } = action;
        this.#touched(action);
        // Work cancelled because its spec was superseded is no failure: plan the new spec at once.
        if (this.#superseded.delete(key)) error = undefined;
        if (error !== undefined) this.#retryAt.set(key, this.#now() + options.restartDelayMs);
        else this.#retryAt.delete(key);
        this.#triggerAfterWork();
      },
    });
  }

  /** Starts the relist timer. Nothing is planned until the first desired state arrives. */
  start(): void {
    this.#relistTimer = setInterval(() => this.trigger(), this.#options.relistIntervalMs);
    this.#relistTimer.unref();
  }

  /** Takes a new desired state (from the manifest source) and plans against it. */
  setDesired(state: DesiredState): void {
    const previous = this.#desired;
    for (const pod of state.pods.values()) this.#known.set(pod.uid, pod);
    this.#cancelSuperseded(state);
    this.#desired = state;
    // When every change could be acted on at once, the workers' own passes confirm it; a pass
    // now would only put two podman listings in front of the first pod create.
    if (previous && this.#actOnChanges(previous, state)) return;
    this.trigger();
  }

  /** Plans the pods whose manifest changed against the last listing and acts on them now; true if that covered every change. */
  #actOnChanges(previous: DesiredState, next: DesiredState): boolean {
    const observation = this.#observation;
    if (!observation || this.#stopped) return false;
    const changed = new Set<string>();
    for (const [key, pod] of next.pods) if (previous.pods.get(key)?.hash !== pod.hash) changed.add(key);
    for (const key of previous.pods.keys()) if (!next.pods.has(key)) changed.add(key);
    const fresh = [...changed].filter((key) => (this.#touchedAt.get(key) ?? -Infinity) < observation.startedAt);
    if (fresh.length === 0) return changed.size === 0;
    const keys = new Set(fresh);
    const plan = this.#plan(new Map([...next.pods].filter(([key]) => keys.has(key))), observation.pods.filter((pod) => keys.has(pod.key)), next.erroredSources);
    let dispatched = 0;
    for (const action of plan.actions) if (this.#dispatch(action)) dispatched++;
    // Covered: every changed pod was fresh, and each got an action now (whose worker will ask for a pass).
    return fresh.length === changed.size && dispatched === plan.actions.length && new Set(plan.actions.map((action) => action.key)).size === keys.size;
  }

  readonly #startTime = (uid: string): number | undefined => {
    const time = this.#supervision.podStartTime(uid);
    return time === undefined ? undefined : Date.parse(time);
  };

  /**
   * A pod still starting an older spec (an init container that runs for hours, a slow pull) would
   * hold its worker until done; as the kubelet does, a changed or removed manifest cancels it.
   */
  #cancelSuperseded(next: DesiredState): void {
    for (const key of this.#workers.busyKeys()) {
      const action = this.#workers.inFlight(key);
      if (!action || action.kind === 'removePod' || action.kind === 'stopPod') continue;
      if (next.pods.get(key)?.hash === action.desired.hash) continue;
      this.#options.logger.info('cancelling work for a superseded spec', { event: 'ActionSuperseded', pod: key, action: action.kind });
      this.#superseded.add(key);
      this.#workers.cancel(key, 'the pod\'s manifest changed');
    }
  }

  /** Plans `desired` against `observed` with this reconciler's back-off, memory of specs and clock. */
  #plan(desired: ReadonlyMap<string, DesiredPod>, observed: readonly ObservedPod[], erroredSources: ReadonlySet<string>, busy?: ReadonlySet<string>): Plan {
    const now = this.#now();
    return planPods({ desired, observed, erroredSources, busy: busy ?? this.#busy(now), now, backoff: this.#supervision.backoff, known: this.#known, startTime: this.#startTime, kills: this.#kills });
  }

  /** Keys not to plan now: their worker is busy, or their last action failed recently. */
  #busy(now: number): Set<string> {
    const busy = new Set(this.#workers.busyKeys());
    for (const [key, at] of this.#retryAt) if (at > now) busy.add(key);
    return busy;
  }

  #dispatch(action: PodAction): boolean {
    if (this.#stopped) return false;
    this.#keptReported.delete(action.key);
    if (!this.#workers.dispatch(action)) return false;
    if (action.kind === 'stopContainer') this.#forgetKill(action.key, action.kill.containerId);
    this.#touched(action);
    return true;
  }

  /** Records that a pod was acted on (`action` begun or ended), and whether only by restarting one container. */
  #touched(action: PodAction): void {
    const { key } = action;
    const sequence = ++this.#sequence;
    this.#touchedAt.set(key, sequence);
    const one = action.kind === 'restartContainers' && action.containers.length === 1 ? action.containers[0]?.id : undefined;
    const before = this.#restartedOnly.get(key);
    // Anything but a restart of the container restarted alone so far starts the count again.
    if (one === undefined || (before !== undefined && before !== one)) this.#otherTouchAt.set(key, sequence);
    if (one === undefined) this.#restartedOnly.delete(key);
    else this.#restartedOnly.set(key, one);
  }

  /** True when `pod` was acted on since `observation` began, other than by restarts of `containerId` alone. */
  #changedSince(key: string, startedAt: number, containerId: string): boolean {
    if ((this.#touchedAt.get(key) ?? -Infinity) < startedAt) return false;
    return (this.#otherTouchAt.get(key) ?? -Infinity) >= startedAt || this.#restartedOnly.get(key) !== containerId;
  }

  /**
   * Asks for a pass once a worker is done. While other workers are still busy (a burst of new
   * pods), a pass would skip them all and only cost podman listings: one a second is enough.
   */
  #triggerAfterWork(): void {
    if (this.#workers.busyKeys().size === 0) {
      clearTimeout(this.#burstTimer);
      this.#burstTimer = undefined;
      this.trigger();
      return;
    }
    this.#burstTimer ??= setTimeout(() => {
      this.#burstTimer = undefined;
      this.trigger();
    }, BURST_PASS_INTERVAL_MS);
  }

  /**
   * A container of ours exited (from conmon's exit file): plan its pod at once against the last
   * listing with that exit applied, so a restart decision does not wait for a podman listing.
   * Falls back to an ordinary pass when the listing cannot be trusted for that pod.
   */
  containerExited(containerId: string, exitCode: number | undefined, at: Date): void {
    const observation = this.#observation;
    const desired = this.#desired;
    const pod = observation?.pods.find((candidate) => candidate.containers.some((container) => container.id === containerId));
    // Only where the exit code cannot change the decision (restartPolicy Always, an app container):
    // for OnFailure and Never, and for an init container (0 starts the next step), the listing's
    // exit code decides.
    const app = pod?.containers.find((container) => container.id === containerId)?.kind === 'app';
    const always = app && pod && desired?.pods.get(pod.key)?.pod.spec.restartPolicy === 'Always';
    const stale = pod !== undefined && observation !== undefined && this.#changedSince(pod.key, observation.startedAt, containerId);
    if (!observation || !desired || !pod || !always || this.#stopped || stale) {
      this.#options.logger.debug('container exit: planned by a pass', { event: 'ExitPlannedByPass', container: containerId, why: !pod ? 'not in the last listing' : !always ? 'its exit code decides' : stale ? 'acted on since the last listing' : 'no listing or desired state yet' });
      this.trigger();
      return;
    }
    const exited: ObservedPod = {
      ...pod,
      containers: pod.containers.map((container) =>
        container.id === containerId ? { ...container, state: 'exited', exitCode, finishedAt: at, pid: undefined } : container),
    };
    const plan = this.#plan(new Map([...desired.pods].filter(([key]) => key === pod.key)), [exited], desired.erroredSources);
    let dispatched = false;
    for (const action of plan.actions) dispatched = this.#dispatch(action) || dispatched;
    // Nothing to do now (back-off, restartPolicy): the pass records the exit and sets the wake-up.
    if (!dispatched) {
      this.#options.logger.debug('container exit: nothing to do at once', { event: 'ExitPlannedByPass', container: containerId, why: plan.actions.length === 0 ? 'no action planned' : 'its worker is busy', pod: pod.key });
      this.trigger();
    }
  }

  /**
   * The prober's word that a container must be stopped (the kubelet's liveness path): it is
   * planned as the pod's next action and carried out by the pod's worker, in turn with the rest.
   */
  killContainer(podKey: string, kill: ContainerKill): void {
    const others = (this.#kills.get(podKey) ?? []).filter((one) => one.containerId !== kill.containerId);
    this.#kills.set(podKey, [...others, kill]);
    this.trigger();
  }

  #forgetKill(podKey: string, containerId: string): void {
    const left = (this.#kills.get(podKey) ?? []).filter((one) => one.containerId !== containerId);
    if (left.length > 0) this.#kills.set(podKey, left);
    else this.#kills.delete(podKey);
  }

  /** True for a container seen in the last listing (the exit watcher reads only those). */
  knowsContainer(id: string): boolean {
    return this.#observation?.pods.some((pod) => pod.containers.some((container) => container.id === id)) ?? false;
  }

  /** A new relist period (a reload). */
  setRelistInterval(ms: number): void {
    this.#options = { ...this.#options, relistIntervalMs: ms };
    if (this.#relistTimer === undefined || this.#stopped) return;
    clearInterval(this.#relistTimer);
    this.#relistTimer = setInterval(() => this.trigger(), ms);
    this.#relistTimer.unref();
  }

  /** Asks for a pass; coalesced with any pass already running or queued. */
  trigger(): void {
    if (this.#stopped || !this.#desired) return;
    if (this.#running) {
      this.#queued = true;
      return;
    }
    this.#running = this.#pass().finally(() => {
      this.#running = undefined;
      this.#firstPassEnded();
      if (this.#queued) {
        this.#queued = false;
        this.trigger();
      }
    });
  }

  /** Stops planning, lets work in flight finish within `deadlineMs`, then cancels the rest. */
  async stop(deadlineMs: number): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#relistTimer);
    clearTimeout(this.#wakeTimer);
    clearTimeout(this.#burstTimer);
    this.#stopController.abort(new Error('podvisor is stopping'));
    await this.#running;
    await this.#workers.drain(deadlineMs);
  }

  /** Cancels all work in flight at once (a second signal). */
  abort(): void {
    this.#workers.abortAll();
  }

  /**
   * Logs each exit seen for the first time (event ContainerExited): an init container's exit is
   * what moves its pod on, and a person reading the log wants to see it. Exits from before the
   * agent started are not news.
   */
  #reportExits(pods: readonly ObservedPod[]): void {
    const seen = new Map<string, number>();
    for (const pod of pods) {
      for (const container of pod.containers) {
        const at = container.finishedAt?.getTime();
        if (container.state !== 'exited' || at === undefined) continue;
        seen.set(container.id, at);
        if (this.#exitsReported.get(container.id) === at || at < this.#startedAt) continue;
        const what = container.kind === 'init' ? 'init container' : 'container';
        this.#options.logger.info(`${what} "${container.name}" exited with code ${container.exitCode ?? 'unknown'}`, {
          event: 'ContainerExited', pod: pod.key, container: container.name, kind: container.kind, exitCode: container.exitCode,
        });
      }
    }
    this.#exitsReported = seen;
  }

  async #pass(): Promise<void> {
    const desired = this.#desired;
    if (!desired) return;
    const { logger } = this.#options;
    this.passes++;
    const passStarted = performance.now();
    let observation;
    const startedAt = ++this.#sequence;
    try {
      observation = await this.#options.runtime.list(this.#stopController.signal, { newAddresses: this.#workers.busyKeys().size === 0 });
    } catch (error) {
      this.lastListError = errorMessage(error);
      if (!this.#stopped) logger.error(`listing pods failed: ${this.lastListError}`, { event: 'ListingFailed' });
      return;
    }
    this.lastListError = undefined;
    this.#observation = { pods: observation.pods, startedAt };
    this.#reportExits(observation.pods);
    // A stop asked for a container that no longer runs has nothing left to do.
    for (const [key, kills] of this.#kills) {
      const pod = observation.pods.find((one) => one.key === key);
      for (const kill of kills) {
        if (!pod?.containers.some((container) => container.id === kill.containerId && container.state === 'running')) this.#forgetKill(key, kill.containerId);
      }
    }
    if (observation.foreignPods > 0 && !this.#foreignReported) {
      logger.warn(`${observation.foreignPods} podvisor pod(s) of another node name are left alone`, { event: 'ForeignPods', count: observation.foreignPods });
      this.#foreignReported = true;
    }
    const now = this.#now();
    // A pod acted on after this listing started is judged by the next listing, not this one.
    const busy = this.#busy(now);
    for (const [key, at] of this.#touchedAt) if (at >= startedAt) busy.add(key);
    // The desired state may have changed while podman was listing: plan against the newest.
    const latest = this.#desired ?? desired;
    const plan = this.#plan(latest.pods, observation.pods, latest.erroredSources, busy);
    for (const pod of plan.kept) {
      if (this.#keptReported.has(pod.key)) continue;
      logger.warn('keeping pod: its manifest has errors', { event: 'PodKept', pod: pod.key, source: pod.source });
      this.#keptReported.add(pod.key);
    }
    // The prober first: a container restarted in place keeps its id, and a status computed before
    // the prober drops the previous run's results shows the new run started and Ready at once.
    this.#options.onObservation?.(latest, observation);
    this.#options.status?.observe(latest, observation);
    // Pods skipped here are planned again by the pass their worker triggers when it finishes.
    for (const action of plan.actions) this.#dispatch(action);
    this.lastPassAt = this.#now();
    this.#options.onPass?.(performance.now() - passStarted);
    // Volume directories of pods that no longer exist (a removal podman half-failed, a crash
    // mid-create): anything neither listed nor desired is garbage, as the kubelet judges it.
    const keep = new Set([...observation.pods.map((pod) => pod.uid), ...[...latest.pods.values()].map((pod) => pod.uid)]);
    this.#supervision.retainPods(keep);
    for (const uid of this.#known.keys()) if (!keep.has(uid)) this.#known.delete(uid);
    await this.#options.runtime.removeOrphanVolumes(keep).catch((error: unknown) => logger.warn(`removing orphaned pod volumes failed: ${errorMessage(error)}`));
    const retries = [...this.#retryAt.values()].filter((at) => at > now);
    const wakeAt = Math.min(plan.wakeAt ?? Infinity, ...retries);
    clearTimeout(this.#wakeTimer);
    if (Number.isFinite(wakeAt) && !this.#stopped) {
      this.#wakeTimer = setTimeout(() => this.trigger(), Math.max(0, wakeAt - this.#now()) + 50);
      this.#wakeTimer.unref();
    }
  }
}
