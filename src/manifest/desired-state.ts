// The pure merge from per-file results to the set of pods this node should run. It keeps the
// last good version of every pod whose file turned bad (podvisor never kills a running pod over
// a typo), and resolves two files asking for the same pod by lexical order of their paths.
import type { DesiredPod } from './identity.js';
import type { FileResult } from './load-file.js';
import { compareText } from '../order.js';

export interface Conflict {
  key: string;
  winner: string;
  loser: string;
}

export interface DesiredState {
  /** Pods to run, by key. */
  pods: Map<string, DesiredPod>;
  /** Files with errors: running pods that came from them are kept even if unknown here. */
  erroredSources: Set<string>;
  conflicts: Conflict[];
}

/** Per-file memory of the last good pods, carried from one merge to the next. */
export type LastGood = Map<string, Map<string, DesiredPod>>;

/** Merges a complete set of file results with the last good pods of each file. */
export function mergeFiles(files: Iterable<FileResult>, lastGood: LastGood): { state: DesiredState; lastGood: LastGood } {
  const nextLastGood: LastGood = new Map();
  const erroredSources = new Set<string>();
  const ordered = [...files].sort((a, b) => compareText(a.path, b.path));
  const pods = new Map<string, DesiredPod>();
  const conflicts: Conflict[] = [];
  for (const file of ordered) {
    const fresh = new Map(file.pods.map((pod) => [pod.key, pod]));
    let kept = fresh;
    if (file.hasErrors) {
      erroredSources.add(file.path);
      // Pods the file still describes validly are updated; the rest stay on their last good spec.
      kept = new Map(lastGood.get(file.path));
      for (const [key, pod] of fresh) kept.set(key, pod);
    }
    nextLastGood.set(file.path, kept);
    for (const [key, pod] of kept) {
      const winner = pods.get(key);
      if (winner) {
        conflicts.push({ key, winner: winner.source, loser: file.path });
        continue;
      }
      pods.set(key, pod);
    }
  }
  return { state: { pods, erroredSources, conflicts }, lastGood: nextLastGood };
}
