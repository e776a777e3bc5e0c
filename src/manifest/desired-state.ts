// The pure merge from per-file results to the set of pods this node should run. It keeps the
// last good version of every pod whose file turned bad (podvisor never kills a running pod over
// a typo), and resolves two files asking for the same pod, or two pods asking for the same host
// port, by lexical order of their paths (then document order within a file).
import { HostPortTable, podHostPorts, type HostPortSite } from './host-ports.js';
import type { DesiredPod } from './identity.js';
import type { FileResult } from './load-file.js';
import type { Finding } from './validate.js';
import { compareText } from '../order.js';

export interface Conflict {
  /** The losing pod (for a name conflict, the name both ask for). */
  key: string;
  /** The file of the pod that runs. */
  winner: string;
  /** The file of the pod that does not. */
  loser: string;
  /** Absent for two pods of one name; `hostPort` for two pods asking for one host port. */
  reason?: 'hostPort';
  /** For a host port: the loser's finding, naming the winner's pod, file and line. */
  finding?: Finding;
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
  const ports = new HostPortTable<{ pod: DesiredPod; file: string; site: HostPortSite | undefined }>();
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
      const claims = podHostPorts(pod.pod).map(({ claim }) => claim);
      const clash = claims.find((claim) => ports.holder(claim) !== undefined);
      const holder = clash && ports.holder(clash);
      if (clash && holder) {
        const site = siteOf(file, key, clash.key);
        const message = `host port ${clash.port}/${clash.protocol} is already asked for by pod ${holder.pod.key} (${holder.file}:${holder.site?.line ?? 1}:${holder.site?.column ?? 1}); this pod is not run`;
        conflicts.push({ key, winner: holder.file, loser: file.path, reason: 'hostPort', finding: { file: file.path, line: site?.line ?? 1, column: site?.column ?? 1, field: site?.field ?? '', severity: 'error', message } });
        continue;
      }
      for (const claim of claims) ports.take([claim], { pod, file: file.path, site: siteOf(file, key, claim.key) });
      pods.set(key, pod);
    }
  }
  return { state: { pods, erroredSources, conflicts }, lastGood: nextLastGood };
}

/** Where the file (as last read) asks for a host port for a pod; unknown for a pod kept from an older read. */
function siteOf(file: FileResult, podKey: string, claim: string): HostPortSite | undefined {
  return file.hostPorts?.find((site) => site.podKey === podKey && site.claim === claim);
}
