// `GET /rollout`: the rollout outcome of every pod on this node and whether the node has settled,
// for a fleet tool that gates the next batch of devices on it. Read back from the mirror pods (the
// `podvisor.io/rollout` and `podvisor.io/rollout-detail` annotations the status owner put
// there) and from the node object (the files with errors no pod runs from, which no pod can
// carry), so the API keeps depending on the store alone and a webhook receiver can compute the
// same report from the pods and the `invalidManifests` it was sent.
import { CONFIG_HASH_ANNOTATION } from '../manifest/identity.js';
import { INVALID_MANIFESTS_ANNOTATION, isSettled, parseInvalidManifests, ROLLOUT_OUTCOMES, type InvalidManifest, type RolloutOutcome, type RolloutOutcomeWord } from '../rollout/rollout-outcome.js';
import { ROLLOUT_ANNOTATION, ROLLOUT_DETAIL_ANNOTATION } from '../status/manifest-problem.js';

export interface RolloutReport {
  kind: 'RolloutReport';
  apiVersion: 'podvisor.io/v1';
  node: string;
  metadata: { resourceVersion: string };
  /** No pod Applying or Held and no file in `invalid`: every change of the files has come to an end, good or bad. */
  settled: boolean;
  pods: RolloutOutcome[];
  /** Files with errors (or refused by policy) that no pod runs from, a bad new file say: each with its first error. */
  invalid: InvalidManifest[];
}

/** What the report reads of a mirror pod. */
interface PodView {
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
}

const OUTCOMES: ReadonlySet<string> = new Set(ROLLOUT_OUTCOMES);

/** One pod's outcome from its mirror pod; undefined for a pod with no outcome (none computed yet). */
export function outcomeOf(pod: PodView): RolloutOutcome | undefined {
  const annotations = pod.metadata.annotations ?? {};
  const word = annotations[ROLLOUT_ANNOTATION];
  if (word === undefined || !OUTCOMES.has(word)) return undefined;
  const detail = parseDetail(annotations[ROLLOUT_DETAIL_ANNOTATION]);
  const runningHash = annotations[CONFIG_HASH_ANNOTATION];
  return {
    namespace: pod.metadata.namespace ?? 'default',
    name: pod.metadata.name,
    source: text(detail['source']),
    ...(typeof detail['wantedHash'] === 'string' ? { wantedHash: detail['wantedHash'] } : {}),
    ...(runningHash !== undefined ? { runningHash } : {}),
    outcome: word as RolloutOutcomeWord,
    reason: text(detail['reason']) || word,
    message: text(detail['message']),
    since: text(detail['since']),
  };
}

/** The detail annotation's fields; nothing when it is missing or not a JSON object (the status owner writes it, but be safe). */
function parseDetail(raw: string | undefined): Record<string, unknown> {
  if (raw === undefined) return {};
  try {
    const value: unknown = JSON.parse(raw);
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

const text = (value: unknown): string => (typeof value === 'string' ? value : '');

/** The report of a node's mirror pods (sorted as the store lists them) and of its node object (the invalid files no pod carries). */
export function rolloutReport(pods: readonly PodView[], node: string, resourceVersion: string, nodeObject?: { metadata: { annotations?: Record<string, string> } }): RolloutReport {
  const outcomes = pods.map(outcomeOf).filter((one): one is RolloutOutcome => one !== undefined);
  const invalid = parseInvalidManifests(nodeObject?.metadata.annotations?.[INVALID_MANIFESTS_ANNOTATION]);
  return { kind: 'RolloutReport', apiVersion: 'podvisor.io/v1', node, metadata: { resourceVersion }, settled: isSettled(outcomes, invalid), pods: outcomes, invalid };
}
