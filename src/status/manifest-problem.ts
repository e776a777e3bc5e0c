// A pod whose manifest file has errors right now runs its last good spec. That is part of its
// status, as the status owner serves it everywhere (status.json, `podvisor status` and
// `describe`, the API, mirror pods): the file's first error as an annotation, and a condition.

/** The first error of the pod's manifest file, while it has errors. */
export const MANIFEST_ERROR_ANNOTATION = 'podvisor.io/manifest-error';
/** The pod condition that says the manifest it runs from is (not) the file's current content. */
export const MANIFEST_VALID_CONDITION = 'podvisor.io/ManifestValid';

/** A manifest error that applies to a pod: the file's first error and since when it has had it. */
export interface ManifestProblem {
  message: string;
  since: string;
}

export interface ManifestCondition {
  type: typeof MANIFEST_VALID_CONDITION;
  status: 'False';
  reason: 'ManifestInvalid';
  message: string;
  lastTransitionTime: string;
  lastProbeTime: null;
}

/** The condition a pod with a manifest problem carries. */
export function manifestCondition(problem: ManifestProblem): ManifestCondition {
  return {
    type: MANIFEST_VALID_CONDITION,
    status: 'False',
    reason: 'ManifestInvalid',
    message: `${problem.message}; running the last good spec`,
    lastTransitionTime: problem.since,
    lastProbeTime: null,
  };
}
