// What the reconciler and its workers need of supervision state: the back-off to plan with,
// and where to record restarts and failed attempts. SupervisionState (src/state/) keeps it on
// disk; inMemorySupervision serves embedders and tests that need no persistence.
import { Backoff, type BackoffOptions } from './backoff.js';
import type { BackoffView } from './plan.js';

export interface Supervision {
  readonly backoff: BackoffView;
  restartCount(key: string): number;
  /** A container (key from backoffKey) that exited at `finishedAt` is being started again. */
  recordRestart(key: string, finishedAt: number): void;
  /** An attempt to start a container failed at `at`: the next attempt backs off. */
  recordFailure(key: string, at: number): void;
  /** When a pod was first seen running (RFC 3339), kept across agent restarts. */
  podStartTime(uid: string): string | undefined;
  setPodStartTime(uid: string, time: string): void;
  /** Forgets everything about pods whose uid is not in `uids`. */
  retainPods(uids: ReadonlySet<string>): void;
  /**
   * Saves what has been recorded (a no-op when kept in memory only). The status owner calls it
   * before it writes a status that shows these counts, so a crash between the two writes can
   * never leave a restart count on disk lower than one already shown.
   */
  flush?(): Promise<void>;
}

/** Supervision state kept in memory only. */
export function inMemorySupervision(options: BackoffOptions): Supervision {
  const backoff = new Backoff(options);
  const counts = new Map<string, number>();
  const startTimes = new Map<string, string>();
  return {
    backoff,
    restartCount: (key) => counts.get(key) ?? 0,
    recordRestart(key, finishedAt) {
      counts.set(key, (counts.get(key) ?? 0) + 1);
      backoff.next(key, finishedAt);
    },
    recordFailure: (key, at) => backoff.next(key, at),
    podStartTime: (uid) => startTimes.get(uid),
    setPodStartTime: (uid, time) => {
      if (!startTimes.has(uid)) startTimes.set(uid, time);
    },
    retainPods(uids) {
      const known = (key: string) => uids.has(key.slice(0, key.indexOf('/')));
      backoff.retain(known);
      for (const key of counts.keys()) if (!known(key)) counts.delete(key);
      for (const uid of startTimes.keys()) if (!uids.has(uid)) startTimes.delete(uid);
    },
  };
}
