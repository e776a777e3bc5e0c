// The pure rules of the kubelet's probe worker (pkg/kubelet/prober/worker.go) and of how its
// results make a container started and ready (prober_manager.go UpdatePodStatus): threshold
// counting, the initial values, which worker may probe when, and the status they add up to.
import type { ProbeKind, ProbeResult, ProbeStatus } from './types.js';

/** A probe's settled result: what its thresholds let through so far. */
export type SettledResult = 'success' | 'failure' | 'unknown';

/** How many runs in a row returned the same result. */
export interface ResultRun {
  last: 'success' | 'failure' | undefined;
  count: number;
}

export const EMPTY_RUN: ResultRun = { last: undefined, count: 0 };

/**
 * The settled result a new container instance starts with: liveness is presumed alive,
 * readiness not ready, startup unknown (not started).
 */
export function initialResult(kind: ProbeKind): SettledResult {
  switch (kind) {
    case 'liveness':
      return 'success';
    case 'readiness':
      return 'failure';
    case 'startup':
      return 'unknown';
  }
}

/**
 * Counts one run's result. Returns the new run and, when the run reaches its threshold
 * (failureThreshold failures or successThreshold successes in a row), the result to settle on.
 * A warning counts as a success; an unknown result is not counted (the kubelet discards it).
 */
export function countResult(
  run: ResultRun,
  result: ProbeResult,
  thresholds: { successThreshold: number; failureThreshold: number },
): { run: ResultRun; settle: 'success' | 'failure' | undefined } {
  if (result === 'unknown') return { run, settle: undefined };
  const counted = result === 'failure' ? 'failure' : 'success';
  const next: ResultRun = run.last === counted ? { last: counted, count: run.count + 1 } : { last: counted, count: 1 };
  const threshold = counted === 'failure' ? thresholds.failureThreshold : thresholds.successThreshold;
  return { run: next, settle: next.count >= threshold ? counted : undefined };
}

/** True when a settled failure of this kind means the container must be killed. */
export function failureKills(kind: ProbeKind): boolean {
  return kind === 'liveness' || kind === 'startup';
}

/**
 * Whether a worker of `kind` probes at this tick: not before initialDelaySeconds (counted in
 * whole seconds from the start, as the kubelet truncates); startup only until the container has
 * started, liveness and readiness only after.
 */
export function mayProbe(kind: ProbeKind, started: boolean, startedAtMs: number, nowMs: number, initialDelaySeconds: number): boolean {
  if (Math.trunc((nowMs - startedAtMs) / 1000) < initialDelaySeconds) return false;
  return kind === 'startup' ? !started : started;
}

/** The container's status from its probes' settled results (undefined: the container has no such probe). */
export function probeStatus(results: { startup?: SettledResult | undefined; readiness?: SettledResult | undefined }): ProbeStatus {
  const started = results.startup === undefined || results.startup === 'success';
  const ready = started && (results.readiness === undefined || results.readiness === 'success');
  return { started, ready };
}
