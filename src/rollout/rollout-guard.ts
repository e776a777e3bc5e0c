// Rollback of an edit that does not come up, and replaces held by update locks (issue 12). Sits between the merged desired state
// and the reconciler: when a pod that was Ready is replaced because its file changed, the new
// spec is on trial; if it crash-loops, fails, or is not proven Ready within the pod's window, the
// pod goes back to the last spec that was Ready, and the failed spec is not tried again until
// the file changes again. What it remembers (the last Ready spec, a trial and its start, a failed
// spec) is in <state-dir>/rollout.json, so an agent restart neither forgets a rollback nor gives a
// trial a fresh window.
//
// Pure decisions (`decide`, `effectivePods`) are kept apart from the timer and the file, so the
// rules can be read and tested as a table.
import { join } from 'node:path';
import type { Logger } from '../log/logger.js';
import { ROLLBACK_AFTER_ANNOTATION, rollbackAfterSeconds } from '../manifest/field-policy.js';
import { CONFIG_HASH_ANNOTATION, type DesiredPod } from '../manifest/identity.js';
import type { DesiredState } from '../manifest/desired-state.js';
import { readStateFile, StateFileWriter } from '../state/state-file.js';
import type { PodStatus } from '../status/types.js';

/** Per pod: the window, in seconds, a replaced spec has to be proven Ready; 0 turns rollback off (checked with the manifest). */
export { ROLLBACK_AFTER_ANNOTATION };
/** How long a new spec must stay Ready to be proven: a container that dies within seconds shows first as Ready. */
export const PROVEN_AFTER_MS = 10_000;
export const ROLLOUT_FILE = 'rollout.json';

export interface FailedSpec {
  hash: string;
  /** `CrashLoopBackOff`, `Failed` or `NotReady` (the window ran out). */
  reason: 'CrashLoopBackOff' | 'Failed' | 'NotReady';
  message: string;
  at: string;
}

/** What is remembered of one pod. */
export interface RolloutRecord {
  /** The last spec the pod was proven Ready on. */
  ready?: { hash: string; pod: DesiredPod; at: string };
  /**
   * A replace of a Ready pod being tried: its hash, since when it was asked for, since when podman
   * has been at it (the window counts from then), and since when it has been Ready.
   */
  trial?: { hash: string; since: string; startedAt?: string; readySince?: string };
  /** A spec that did not come up: not tried again until the file asks for another. */
  failed?: FailedSpec;
}

/** What a status reader needs of a pod: its hash, phase, Ready and its containers' waiting reasons. */
export type ObservedStatus = { metadata: { name: string; namespace?: string | undefined; annotations?: Record<string, string> | undefined }; status: Pick<PodStatus, 'phase' | 'initContainerStatuses' | 'containerStatuses' | 'startTime'> & { conditions: readonly { type: string; status: string }[] } };

/** What holds replaces: the specs running now, and what holds a pod's replace (in words: an update lock's path, a replace window). */
export interface Hold {
  running: ReadonlyMap<string, DesiredPod>;
  holding: (pod: DesiredPod) => string | undefined;
}

/** A replace held by an update lock or outside a replace window: the pod keeps running its spec. */
export interface HeldReplace {
  /** What holds it: `the update lock /run/podvisor/locks/all`, `the replace window "0 2 * * *" for 1h (...)`. */
  by: string;
  wantedHash: string;
  runningHash: string;
}

/** The window of a pod's spec in ms: its annotation, else (absent or invalid, a warning on the file) the default; 0 is off. */
export function windowMs(pod: DesiredPod, defaultSeconds: number): number {
  const seconds = rollbackAfterSeconds(pod.pod.metadata.annotations?.[ROLLBACK_AFTER_ANNOTATION]) ?? defaultSeconds;
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 0;
}

/** Why a pod on trial has failed, if it has: a container in CrashLoopBackOff, or the pod Failed. */
function failure(status: ObservedStatus['status']): { reason: FailedSpec['reason']; detail: string } | undefined {
  if (status.phase === 'Failed') return { reason: 'Failed', detail: 'the pod failed' };
  const looping = [...status.initContainerStatuses, ...status.containerStatuses].find((container) => container.state.waiting?.reason === 'CrashLoopBackOff');
  return looping ? { reason: 'CrashLoopBackOff', detail: `container ${looping.name} is in CrashLoopBackOff` } : undefined;
}

/**
 * Whether podman has been at the new spec: its sandbox was seen (a start time), or a container
 * says why it could not be made. A replace still queued for a start slot (200 pods edited at once
 * wait minutes for 3 slots) has not begun, and its window must not run out before it does.
 */
function begun(status: ObservedStatus['status']): boolean {
  if (status.startTime !== undefined) return true;
  return [...status.initContainerStatuses, ...status.containerStatuses].some((container) => {
    const waiting = container.state.waiting;
    if (waiting === undefined) return true; // running or terminated
    return (waiting.reason !== 'ContainerCreating' && waiting.reason !== 'PodInitializing') || waiting.message !== undefined;
  });
}

const isReady = (status: ObservedStatus['status']) => status.conditions.some((condition) => condition.type === 'Ready' && condition.status === 'True');

/**
 * The pods to run: the files' pods, except that a pod whose current spec failed on trial runs its
 * last Ready spec. Also returns the records as they stand after this desired state: a spec that
 * changed away from the failed one clears the failure; a replace of a proven pod starts a trial.
 */
export function effectivePods(desired: ReadonlyMap<string, DesiredPod>, records: ReadonlyMap<string, RolloutRecord>, defaultSeconds: number, now: Date, hold?: Hold): { pods: Map<string, DesiredPod>; records: Map<string, RolloutRecord>; held: Map<string, HeldReplace> } {
  const pods = new Map<string, DesiredPod>();
  const next = new Map<string, RolloutRecord>();
  const held = new Map<string, HeldReplace>();
  for (const [key, pod] of desired) {
    let record: RolloutRecord = { ...records.get(key) };
    if (record.failed && record.failed.hash !== pod.hash) record = { ...record, failed: undefined };
    // A rolled-back pod runs its last Ready spec: going back is never held, and is no pending replace.
    if (record.failed && record.ready) {
      pods.set(key, record.ready.pod);
      next.set(key, { ...record, trial: undefined });
      continue;
    }
    // A replace held by an update lock or a closed window: the running spec stays, and nothing about it changes.
    const running = hold?.running.get(key);
    const by = running && running.hash !== pod.hash ? hold?.holding(pod) : undefined;
    if (running && by) {
      pods.set(key, running);
      held.set(key, { by, wantedHash: pod.hash, runningHash: running.hash });
      const kept = records.get(key);
      if (kept) next.set(key, kept);
      continue;
    }
    pods.set(key, pod);
    if (!record.ready || record.ready.hash === pod.hash || windowMs(pod, defaultSeconds) === 0) record = { ...record, trial: undefined };
    else if (record.trial?.hash !== pod.hash) record = { ...record, trial: { hash: pod.hash, since: now.toISOString() } };
    next.set(key, record);
  }
  // A pod no file asks for any more is forgotten: a new file of that name starts afresh.
  return { pods, records: next, held };
}

/** One decision on a pod's status: the record after it, and a rollback when one is due. */
export function decide(record: RolloutRecord, spec: DesiredPod | undefined, observed: ObservedStatus, defaultSeconds: number, now: Date): { record: RolloutRecord; rollback?: FailedSpec } {
  const hash = observed.metadata.annotations?.[CONFIG_HASH_ANNOTATION];
  if (!spec || hash === undefined || spec.hash !== hash) return { record };
  const ready = isReady(observed.status);
  const asked = record.trial?.hash === hash ? record.trial : undefined;
  if (!asked) {
    // Not on trial (a new pod, or its proven spec): Ready makes this spec the one to go back to.
    return ready && record.ready?.hash !== hash ? { record: { ...record, ready: { hash, pod: spec, at: now.toISOString() } } } : { record };
  }
  const failed = failure(observed.status);
  // The window counts from when podman began on the new spec, not from the edit: a queued replace has not begun.
  const startedAt = asked.startedAt ?? (failed || ready || begun(observed.status) ? now.toISOString() : undefined);
  if (startedAt === undefined) return { record };
  const trial = { ...asked, startedAt };
  const window = windowMs(spec, defaultSeconds);
  const elapsed = now.getTime() - Date.parse(startedAt);
  if (failed) return rollback(record, hash, failed.reason, `${failed.detail} ${Math.round(elapsed / 1000)} s after the replace began`, now);
  if (ready) {
    const readySince = trial.readySince ?? now.toISOString();
    if (now.getTime() - Date.parse(readySince) >= Math.min(PROVEN_AFTER_MS, window)) {
      return { record: { ready: { hash, pod: spec, at: now.toISOString() } } };
    }
    return { record: { ...record, trial: { ...trial, readySince } } };
  }
  if (elapsed >= window) return rollback(record, hash, 'NotReady', `not Ready within ${window / 1000} s of the replace`, now);
  const { readySince: _lost, ...notReady } = trial;
  return { record: { ...record, trial: notReady } };
}

function rollback(record: RolloutRecord, hash: string, reason: FailedSpec['reason'], message: string, now: Date): { record: RolloutRecord; rollback: FailedSpec } {
  const failed: FailedSpec = { hash, reason, message, at: now.toISOString() };
  return { record: { ...record, trial: undefined, failed }, rollback: failed };
}

/** When the next decision is due without any status change: a window's end or a proving time. */
export function nextDeadline(records: ReadonlyMap<string, RolloutRecord>, specs: ReadonlyMap<string, DesiredPod>, defaultSeconds: number): number | undefined {
  let next: number | undefined;
  for (const [key, record] of records) {
    const spec = specs.get(key);
    if (!record.trial || !spec || spec.hash !== record.trial.hash) continue;
    const window = windowMs(spec, defaultSeconds);
    // A trial not begun has no deadline: the status change that begins it is what decides next.
    if (!record.trial.readySince && !record.trial.startedAt) continue;
    const due = record.trial.readySince ? Date.parse(record.trial.readySince) + Math.min(PROVEN_AFTER_MS, window) : Date.parse(record.trial.startedAt ?? record.trial.since) + window;
    next = next === undefined ? due : Math.min(next, due);
  }
  return next;
}

export interface RolloutGuardOptions {
  stateDir: string;
  logger: Logger;
  /** The default window in seconds (the rollback-after setting); 0 turns rollback off. */
  defaultSeconds: number;
  /** The effective desired state changed on the guard's own decision (a rollback): hand it on. */
  onChange: (state: DesiredState) => void;
  /** A rollback, for the events of `pod`, the pod rolled back to (`RolledBack`). */
  onRollback: (pod: DesiredPod, failed: FailedSpec, to: string) => void;
  /** Every pod's status now: read when a window runs out with no status change. */
  statuses: () => readonly ObservedStatus[];
  /** What holds a pod's replace now, in words (an update lock, a closed window), if anything. */
  holding?: (pod: DesiredPod) => string | undefined;
  /** When the replaces held now should be judged again without any other change (a window opening), ms since the epoch. */
  holdEnds?: () => number | undefined;
  /** After each look at the statuses (a trial proven, say): the rollout outcomes may have changed. */
  onObserved?: () => void;
  now?: () => Date;
}

/** A rollback as the status shows it: on the pod whose spec failed. */
export interface RolledBack {
  failed: FailedSpec;
  /** The hash of the spec it runs instead. */
  runningHash: string;
}

/** A pod podman's listing shows: its key, the hash label of the spec it runs, and that spec where a copy is kept. */
export interface ListedPod {
  key: string;
  hash: string;
  /** The spec the pod was made from, as the runtime keeps it beside the pod (`<state-dir>/pods/<uid>/pod.json`). */
  spec?: DesiredPod | undefined;
}

/**
 * What runs at start, as podman's listing says (each pod's hash label), not what the last agent
 * proved Ready: an agent killed mid-trial left the new spec running, and a pod never yet Ready
 * has no record at all. Each listed hash's spec is the copy kept beside the pod, else the last
 * Ready spec; a pod whose spec is nowhere (the copy lost) is in `unknown`, and nothing holds its replace.
 */
export function runningSpecs(listed: Iterable<ListedPod>, records: ReadonlyMap<string, RolloutRecord>): { running: Map<string, DesiredPod>; unknown: ListedPod[] } {
  const running = new Map<string, DesiredPod>();
  const unknown: ListedPod[] = [];
  for (const pod of listed) {
    const ready = records.get(pod.key)?.ready;
    const spec = pod.spec?.hash === pod.hash ? pod.spec : ready?.hash === pod.hash ? ready.pod : undefined;
    if (spec) running.set(pod.key, spec);
    else unknown.push(pod);
  }
  return { running, unknown };
}

export class RolloutGuard {
  readonly #options: RolloutGuardOptions;
  readonly #writer: StateFileWriter;
  readonly #now: () => Date;
  #records = new Map<string, RolloutRecord>();
  #desired: DesiredState | undefined;
  /** The pods last handed on, by key: the specs the decisions are about. */
  #effective = new Map<string, DesiredPod>();
  #held = new Map<string, HeldReplace>();
  #timer: NodeJS.Timeout | undefined;
  #holdTimer: NodeJS.Timeout | undefined;
  #saved = '';
  #writing: Promise<unknown> = Promise.resolve();
  #stopped = false;

  constructor(options: RolloutGuardOptions) {
    this.#options = options;
    this.#writer = new StateFileWriter(join(options.stateDir, ROLLOUT_FILE), options.logger);
    this.#now = options.now ?? (() => new Date());
  }

  /**
   * Reads what the last agent remembered; a corrupt file is set aside (nothing is rolled back then).
   * `listed` is podman's listing now: what runs, so that a lock held at start holds a replace
   * asked for while the agent was down, and never one already made. Without it (the listing failed)
   * the last proven spec is taken as what most likely runs.
   */
  async load(listed?: readonly ListedPod[]): Promise<void> {
    const loaded = await readStateFile(this.#writer.path, this.#options.logger, (raw) => {
      if (typeof raw !== 'object' || raw === null || typeof (raw as { pods?: unknown }).pods !== 'object') return 'not a rollout state';
      return new Map(Object.entries((raw as { pods: Record<string, RolloutRecord> }).pods));
    });
    if (loaded) this.#records = loaded;
    if (listed) {
      const { running, unknown } = runningSpecs(listed, this.#records);
      this.#effective = running;
      for (const pod of unknown) this.#options.logger.warn(`pod ${pod.key} runs spec ${pod.hash}, of which no copy is kept: an update lock or replace window cannot hold its replace`, { event: 'RunningSpecUnknown', pod: pod.key, hash: pod.hash });
    } else {
      for (const [key, record] of this.#records) if (record.ready) this.#effective.set(key, record.ready.pod);
    }
    this.#saved = JSON.stringify(Object.fromEntries(this.#records));
  }

  /** The desired state the reconciler should run, given the files' desired state. */
  apply(state: DesiredState): DesiredState {
    this.#desired = state;
    const holding = this.#options.holding;
    const hold = holding ? { running: this.#effective, holding } : undefined;
    const { pods, records, held } = effectivePods(state.pods, this.#records, this.#options.defaultSeconds, this.#now(), hold);
    for (const [key, one] of held) {
      if (this.#held.get(key)?.wantedHash !== one.wantedHash) this.#options.logger.info(`pod ${key}: replace by spec ${one.wantedHash} held by ${one.by}; running ${one.runningHash}`, { event: 'ReplaceHeld', pod: key, heldBy: one.by, hash: one.wantedHash });
    }
    for (const [key, one] of this.#held) {
      if (!held.has(key)) this.#options.logger.info(`pod ${key}: replace by spec ${one.wantedHash} no longer held`, { event: 'ReplaceReleased', pod: key });
    }
    this.#held = held;
    this.#records = records;
    this.#effective = pods;
    this.#scheduleHoldEnd();
    this.#schedule();
    this.#save();
    return { ...state, pods };
  }

  /** Takes the status of every pod: proves trials, or rolls back the ones that failed. */
  observe(statuses: readonly ObservedStatus[]): void {
    if (this.#stopped) return;
    const now = this.#now();
    let rolledBack = false;
    for (const observed of statuses) {
      const key = `${observed.metadata.namespace ?? 'default'}/${observed.metadata.name}`;
      const record = this.#records.get(key);
      const spec = this.#effective.get(key);
      if (!record || !spec) continue;
      const decision = decide(record, spec, observed, this.#options.defaultSeconds, now);
      this.#records.set(key, decision.record);
      if (decision.rollback && decision.record.ready) {
        rolledBack = true;
        const to = decision.record.ready.hash;
        this.#options.logger.warn(`pod ${key}: spec ${decision.rollback.hash} ${decision.rollback.message}; rolling back to ${to}, the last spec that was Ready (not tried again until its file changes)`, { event: 'RolledBack', pod: key, failedHash: decision.rollback.hash, reason: decision.rollback.reason, hash: to });
        // On the pod that runs from now on: its events are the ones `describe` shows.
        this.#options.onRollback(decision.record.ready.pod, decision.rollback, to);
      }
    }
    this.#save();
    this.#schedule();
    if (rolledBack && this.#desired) this.#options.onChange(this.apply(this.#desired));
    this.#options.onObserved?.();
  }

  /** The pods running a spec other than their file's because it failed: for the status. */
  rolledBack(): Map<string, RolledBack> {
    const out = new Map<string, RolledBack>();
    for (const [key, record] of this.#records) {
      if (record.failed && record.ready) out.set(key, { failed: record.failed, runningHash: record.ready.hash });
    }
    return out;
  }

  /** What is remembered of each pod, read-only: for the rollout outcomes. */
  records(): ReadonlyMap<string, Readonly<RolloutRecord>> {
    return this.#records;
  }

  /** The specs last handed to the reconciler, by pod key. */
  running(): ReadonlyMap<string, DesiredPod> {
    return this.#effective;
  }

  /** The replaces update locks hold now, by pod key. */
  heldReplaces(): ReadonlyMap<string, HeldReplace> {
    return this.#held;
  }

  /** The locks changed or a window opened: hands on the desired state again (a released replace goes ahead). */
  holdsChanged(): void {
    if (this.#desired && !this.#stopped) this.#options.onChange(this.apply(this.#desired));
  }

  /** Sets the default window (a reload). */
  setDefaultSeconds(seconds: number): void {
    this.#options.defaultSeconds = seconds;
    this.#schedule();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#holdTimer);
  }

  /** While a replace is held by something that ends by itself (a window), judges again when it does. */
  #scheduleHoldEnd(): void {
    clearTimeout(this.#holdTimer);
    this.#holdTimer = undefined;
    const due = this.#held.size && !this.#stopped ? this.#options.holdEnds?.() : undefined;
    if (due === undefined) return;
    // At most an hour at a time: a clock that jumps (NTP on a device that booted in 1970) is caught up with.
    this.#holdTimer = setTimeout(() => this.holdsChanged(), Math.min(Math.max(0, due - this.#now().getTime()) + 50, 3600_000));
    this.#holdTimer.unref();
  }

  /** The status changes when a pod changes; a window that runs out changes nothing, so it has a timer. */
  #schedule(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const due = nextDeadline(this.#records, this.#effective, this.#options.defaultSeconds);
    if (due === undefined || this.#stopped) return;
    this.#timer = setTimeout(() => this.observe(this.#options.statuses()), Math.max(0, due - this.#now().getTime()) + 50);
    this.#timer.unref();
  }

  #save(): void {
    const text = JSON.stringify(Object.fromEntries(this.#records));
    if (text === this.#saved) return;
    this.#saved = text;
    const value = { pods: Object.fromEntries(this.#records) };
    // In order: an older state must never land after a newer one. The writer reports failures.
    this.#writing = this.#writing.then(() => this.#writer.write(value));
  }

  /** Settles when every state written so far is on disk (or failed, reported). */
  async flush(): Promise<void> {
    await this.#writing;
  }
}
