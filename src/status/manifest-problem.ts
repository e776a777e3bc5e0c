// A pod whose manifest file has errors right now runs its last good spec; a pod whose edited spec
// did not come up runs the last spec that was Ready (a rollback); a pod whose replace an update
// lock holds runs its current spec until the lock goes. Each is part of its status,
// as the status owner serves it everywhere (status.json, `podvisor status` and `describe`, the
// API, mirror pods): the reason as an annotation, and a condition.

/** The first error of the pod's manifest file, while it has errors. */
export const MANIFEST_ERROR_ANNOTATION = 'podvisor.io/manifest-error';
/** The pod condition that says the manifest it runs from is (not) the file's current content. */
export const MANIFEST_VALID_CONDITION = 'podvisor.io/ManifestValid';

/** Why the spec of a rolled-back pod is not its file's: the failed spec and what it did. */
export const ROLLED_BACK_ANNOTATION = 'podvisor.io/rolled-back';
/** What holds a pod's replace (an update lock), while it is held. */
export const REPLACE_HELD_ANNOTATION = 'podvisor.io/replace-held';
/** The pod condition that says its file's current spec is (not) the one running, because it was rolled back. */
export const MANIFEST_APPLIED_CONDITION = 'podvisor.io/ManifestApplied';

/**
 * A reason a pod does not run its file's current content: the file's first error (`invalid`,
 * the default), or a rollback of a spec that did not come up; and since when.
 */
export interface ManifestProblem {
  message: string;
  since: string;
  kind?: 'invalid' | 'rolledBack' | 'replaceHeld';
}

export interface ManifestCondition {
  type: typeof MANIFEST_VALID_CONDITION | typeof MANIFEST_APPLIED_CONDITION;
  /** True only with reason Ready: the file's spec runs and was proven Ready. */
  status: 'False' | 'True';
  reason: 'ManifestInvalid' | 'RolledBack' | 'ReplaceHeld' | 'Ready' | 'Applying';
  message: string;
  lastTransitionTime: string;
  lastProbeTime: null;
}

/** The condition types a problem puts on a pod (kept out of the conditions computed from the pod). */
export const PROBLEM_CONDITIONS: ReadonlySet<string> = new Set([MANIFEST_VALID_CONDITION, MANIFEST_APPLIED_CONDITION]);

/** The annotation a problem puts on a pod. */
export function problemAnnotation(problem: ManifestProblem): string {
  return problem.kind === 'rolledBack' ? ROLLED_BACK_ANNOTATION : problem.kind === 'replaceHeld' ? REPLACE_HELD_ANNOTATION : MANIFEST_ERROR_ANNOTATION;
}

/** The condition a pod with a manifest problem carries. */
export function manifestCondition(problem: ManifestProblem): ManifestCondition {
  if (problem.kind === 'rolledBack' || problem.kind === 'replaceHeld') {
    return { type: MANIFEST_APPLIED_CONDITION, status: 'False', reason: problem.kind === 'rolledBack' ? 'RolledBack' : 'ReplaceHeld', message: problem.message, lastTransitionTime: problem.since, lastProbeTime: null };
  }
  return {
    type: MANIFEST_VALID_CONDITION,
    status: 'False',
    reason: 'ManifestInvalid',
    message: `${problem.message}; running the last good spec`,
    lastTransitionTime: problem.since,
    lastProbeTime: null,
  };
}

/** The outcome of the last change of the pod's file (issue 12): Applying, Ready, RolledBack, Held or Invalid. */
export const ROLLOUT_ANNOTATION = 'podvisor.io/rollout';
/**
 * The outcome's details as JSON (source, wantedHash, reason, message, since): the outcome's own
 * reason (CrashLoopBackOff, NotReady...) where the condition says RolledBack, and the file's hash,
 * which differs from the running one while Held or RolledBack. What `GET /rollout` reads back.
 */
export const ROLLOUT_DETAIL_ANNOTATION = 'podvisor.io/rollout-detail';

/** What the status owner puts on a pod of a rollout outcome (src/rollout/rollout-outcome.ts). */
export interface RolloutMark {
  outcome: string;
  source: string;
  wantedHash?: string;
  reason: string;
  message: string;
  since: string;
}

/** The annotations of a rollout outcome. */
export function rolloutAnnotations(mark: RolloutMark): Record<string, string> {
  const { outcome, ...detail } = mark;
  return { [ROLLOUT_ANNOTATION]: outcome, [ROLLOUT_DETAIL_ANNOTATION]: JSON.stringify(detail) };
}

/**
 * The ManifestApplied condition of a pod with no manifest problem: True (Ready) once the file's
 * spec was proven Ready, False (Applying) until then; as Kubernetes conditions go, True is the
 * settled state a reader waits for.
 */
export function rolloutCondition(mark: RolloutMark): ManifestCondition | undefined {
  if (mark.outcome !== 'Ready' && mark.outcome !== 'Applying') return undefined;
  const ready = mark.outcome === 'Ready';
  return { type: MANIFEST_APPLIED_CONDITION, status: ready ? 'True' : 'False', reason: ready ? 'Ready' : 'Applying', message: mark.message, lastTransitionTime: mark.since, lastProbeTime: null };
}
