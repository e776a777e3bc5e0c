// The outcome of the last change of each pod's file, as a fleet tool reads it to decide whether
// this device took an update (issue 12, fleet-ready status): Applying (the new spec is not yet
// proven Ready), Ready (the file's spec is the last one proven Ready), RolledBack (it did not
// come up; the pod runs its last Ready spec), Held (a replace waits for an update lock or window)
// or Invalid (the file has errors; the pod runs its last good spec). A file with errors that no
// pod runs from (a bad new file) has its own Invalid entry, on the node (InvalidManifest).
//
// A pure function of what the rollout guard and the manifest intake know, so the rules are a
// table; the intake hands the result to the status owner, which puts it on each pod.
import { compareText } from '../order.js';
import { apiTime } from '../status/conditions.js';
import type { RolloutRecord } from './rollout-guard.js';

export const ROLLOUT_OUTCOMES = ['Applying', 'Ready', 'RolledBack', 'Held', 'Invalid'] as const;
export type RolloutOutcomeWord = (typeof ROLLOUT_OUTCOMES)[number];

/** One pod's outcome; `wantedHash` is absent when the file has errors (it has no spec). */
export interface RolloutOutcome {
  namespace: string;
  name: string;
  source: string;
  wantedHash?: string;
  runningHash?: string;
  outcome: RolloutOutcomeWord;
  /** A CamelCase reason, as a condition's: Ready, Applying, CrashLoopBackOff, ReplaceHeld, ManifestInvalid... */
  reason: string;
  message: string;
  since: string;
}

/** A pod the files ask for: for a file with errors, its last good spec. */
export interface WantedPod {
  key: string;
  source: string;
  hash: string;
}

export interface OutcomeInput {
  wanted: Iterable<WantedPod>;
  /** The specs handed to the reconciler (the guard's effective pods), by key. */
  running: ReadonlyMap<string, { hash: string }>;
  records: ReadonlyMap<string, RolloutRecord>;
  /** Replaces held now, by key: what holds them (a phrase such as "the update lock /run/..."). */
  held: ReadonlyMap<string, { by: string; wantedHash: string; since: string }>;
  /** Files with errors now: their first error and since when. */
  invalidFiles: ReadonlyMap<string, { message: string; since: string }>;
  /** When `hash` was first asked for `key` (for an Applying with no trial: a new pod). */
  seenSince: (key: string, hash: string) => string;
}

/** Each wanted pod's outcome, sorted by key. */
export function rolloutOutcomes(input: OutcomeInput): RolloutOutcome[] {
  const out: RolloutOutcome[] = [];
  for (const pod of input.wanted) {
    const [namespace = 'default', name = pod.key] = pod.key.split('/', 2);
    const runningHash = input.running.get(pod.key)?.hash;
    const base = { namespace, name, source: pod.source, ...(runningHash !== undefined ? { runningHash } : {}) };
    const record = input.records.get(pod.key);
    const invalid = input.invalidFiles.get(pod.source);
    const held = input.held.get(pod.key);
    // In the order the status shows problems: a file with errors says most about what runs.
    if (invalid) {
      out.push({ ...base, outcome: 'Invalid', reason: 'ManifestInvalid', message: `${invalid.message}; running the last good spec`, since: invalid.since });
    } else if (held) {
      out.push({ ...base, wantedHash: held.wantedHash, outcome: 'Held', reason: 'ReplaceHeld', message: `replace by spec ${held.wantedHash} held by ${held.by}`, since: held.since });
    } else if (record?.failed && record.ready && record.failed.hash === pod.hash) {
      const { failed } = record;
      out.push({ ...base, wantedHash: pod.hash, outcome: 'RolledBack', reason: failed.reason, message: `spec ${failed.hash} ${failed.message}: rolled back to ${record.ready.hash}`, since: failed.at });
    } else if (record?.ready?.hash === pod.hash) {
      out.push({ ...base, wantedHash: pod.hash, outcome: 'Ready', reason: 'Ready', message: `spec ${pod.hash} proven Ready`, since: record.ready.at });
    } else {
      const trial = record?.trial?.hash === pod.hash ? record.trial : undefined;
      const message = trial ? `spec ${pod.hash} replacing ${record?.ready?.hash ?? 'the last spec'}, not yet proven Ready` : `spec ${pod.hash} not yet Ready`;
      out.push({ ...base, wantedHash: pod.hash, outcome: 'Applying', reason: 'Applying', message, since: trial?.since ?? input.seenSince(pod.key, pod.hash) });
    }
  }
  return out.sort((a, b) => compareText(`${a.namespace}/${a.name}`, `${b.namespace}/${b.name}`));
}

/**
 * A file with errors (or refused by the manifest policy) that no pod runs from: a new file, or one
 * whose pods never had a good spec. No pod carries its outcome, so the file does: without it a
 * fleet tool that pushed a bad new manifest would see nothing, and the node settled.
 */
export interface InvalidManifest {
  source: string;
  outcome: 'Invalid';
  reason: 'ManifestInvalid';
  /** The file's first error, `file:line:col: field: message`. */
  message: string;
  since: string;
}

/** The node annotation the invalid files are served in (JSON, a list of InvalidManifest), for `/rollout` and the webhook. */
export const INVALID_MANIFESTS_ANNOTATION = 'podvisor.io/invalid-manifests';

/** The files with errors that define no wanted pod (those pods' own outcome says Invalid), sorted by file. */
export function invalidManifests(invalidFiles: ReadonlyMap<string, { message: string; since: string }>, wanted: Iterable<Pick<WantedPod, 'source'>>): InvalidManifest[] {
  const withPods = new Set([...wanted].map((pod) => pod.source));
  return [...invalidFiles]
    .filter(([source]) => !withPods.has(source))
    .map(([source, problem]): InvalidManifest => ({ source, outcome: 'Invalid', reason: 'ManifestInvalid', message: problem.message, since: problem.since }))
    .sort((a, b) => compareText(a.source, b.source));
}

/** The invalid files from the node annotation; none when it is missing or not a list of them (the status owner writes it, but be safe). */
export function parseInvalidManifests(raw: string | undefined): InvalidManifest[] {
  if (raw === undefined) return [];
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return [];
  }
  if (!Array.isArray(value)) return [];
  return value.flatMap((one: unknown): InvalidManifest[] => {
    const entry = one as Partial<Record<keyof InvalidManifest, unknown>> | null;
    if (typeof entry?.source !== 'string') return [];
    const text = (field: unknown) => (typeof field === 'string' ? field : '');
    return [{ source: entry.source, outcome: 'Invalid', reason: 'ManifestInvalid', message: text(entry.message), since: text(entry.since) }];
  });
}

/**
 * Settled: nothing in flight (no pod Applying or Held), and no new file invalid; what a fleet
 * tool gates its next batch on. A bad new file is not settled: the change it brought has not
 * come to an end as any pod, and a tool that waits for settled must not take it as done.
 */
export function isSettled(outcomes: readonly Pick<RolloutOutcome, 'outcome'>[], invalid: readonly InvalidManifest[] = []): boolean {
  return invalid.length === 0 && outcomes.every((one) => one.outcome !== 'Applying' && one.outcome !== 'Held');
}

/** Remembers when each pod's wanted hash was first seen, so an outcome's `since` does not move. */
export class FirstSeen {
  readonly #seen = new Map<string, { hash: string; since: string }>();
  readonly #now: () => Date;

  constructor(now: () => Date = () => new Date()) {
    this.#now = now;
  }

  since(key: string, hash: string): string {
    const known = this.#seen.get(key);
    if (known?.hash === hash) return known.since;
    const since = apiTime(this.#now());
    this.#seen.set(key, { hash, since });
    return since;
  }

  /** Forgets pods no longer asked for. */
  keep(keys: ReadonlySet<string>): void {
    for (const key of this.#seen.keys()) if (!keys.has(key)) this.#seen.delete(key);
  }
}
