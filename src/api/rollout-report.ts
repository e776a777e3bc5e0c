// `GET /rollout`: the rollout outcome of every pod on this node and whether the node has settled,
// for a fleet tool that gates the next batch of devices on it. Read back from the mirror pods (the
// `podvisor.io/rollout` annotations and the ManifestApplied / ManifestValid conditions the status
// owner put there), so the API keeps depending on the store alone and a webhook receiver can
// compute the same report from the pods it was sent.
import { CONFIG_HASH_ANNOTATION, CONFIG_SOURCE_ANNOTATION } from '../manifest/identity.js';
import { isSettled, ROLLOUT_OUTCOMES, type RolloutOutcome, type RolloutOutcomeWord } from '../rollout/rollout-outcome.js';
import { MANIFEST_APPLIED_CONDITION, MANIFEST_VALID_CONDITION, ROLLOUT_ANNOTATION, ROLLOUT_WANTED_HASH_ANNOTATION } from '../status/manifest-problem.js';

export interface RolloutReport {
  kind: 'RolloutReport';
  apiVersion: 'podvisor.io/v1';
  node: string;
  metadata: { resourceVersion: string };
  /** No pod Applying or Held: every change of the files has come to an end, good or bad. */
  settled: boolean;
  pods: RolloutOutcome[];
}

/** What the report reads of a mirror pod. */
interface PodView {
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
  status?: { conditions?: readonly { type: string; status?: string; reason?: string; message?: string; lastTransitionTime?: string | null }[] };
}

const OUTCOMES: ReadonlySet<string> = new Set(ROLLOUT_OUTCOMES);

/** One pod's outcome from its mirror pod; undefined for a pod with no outcome (none computed yet). */
export function outcomeOf(pod: PodView): RolloutOutcome | undefined {
  const annotations = pod.metadata.annotations ?? {};
  const word = annotations[ROLLOUT_ANNOTATION];
  if (word === undefined || !OUTCOMES.has(word)) return undefined;
  const outcome = word as RolloutOutcomeWord;
  // An invalid file's reason is on ManifestValid; every other outcome's on ManifestApplied.
  const type = outcome === 'Invalid' ? MANIFEST_VALID_CONDITION : MANIFEST_APPLIED_CONDITION;
  const condition = pod.status?.conditions?.find((one) => one.type === type);
  const wantedHash = annotations[ROLLOUT_WANTED_HASH_ANNOTATION];
  const runningHash = annotations[CONFIG_HASH_ANNOTATION];
  return {
    namespace: pod.metadata.namespace ?? 'default',
    name: pod.metadata.name,
    source: annotations[CONFIG_SOURCE_ANNOTATION] ?? '',
    ...(wantedHash !== undefined ? { wantedHash } : {}),
    ...(runningHash !== undefined ? { runningHash } : {}),
    outcome,
    reason: condition?.reason ?? outcome,
    message: condition?.message ?? '',
    since: condition?.lastTransitionTime ?? '',
  };
}

/** The report of a node's mirror pods (sorted as the store lists them). */
export function rolloutReport(pods: readonly PodView[], node: string, resourceVersion: string): RolloutReport {
  const outcomes = pods.map(outcomeOf).filter((one): one is RolloutOutcome => one !== undefined);
  return { kind: 'RolloutReport', apiVersion: 'podvisor.io/v1', node, metadata: { resourceVersion }, settled: isSettled(outcomes), pods: outcomes };
}
