// Manifest intake: the directory source's snapshots become the desired state. Findings are
// logged, files with errors keep their pods on the last good spec (and say so, on the pods'
// status and as ManifestInvalid events), conflicts between files (one pod name, or one host port
// asked for twice) are reported once, and the merged desired state goes through the rollout
// guard (an edited pod that does not come up goes back to its last Ready spec) to the reconciler.
import type { AgentConfig } from '../config/agent-config.js';
import { manifestPolicyOf, ownershipChecked, type ManifestPolicy } from '../config/manifest-policy.js';
import type { HealthChecks } from '../health/health.js';
import type { Logger } from '../log/logger.js';
import { mergeFiles, type LastGood } from '../manifest/desired-state.js';
import { DirectorySource, type SourceSnapshot } from '../manifest/directory-source.js';
import { formatFinding } from '../manifest/validate.js';
import type { AgentMetrics } from '../metrics/metrics.js';
import type { Reconciler } from '../pods/reconciler.js';
import { RolloutGuard, type ListedPod } from '../rollout/rollout-guard.js';
import { holdingOf, ReplaceWindow, windowOpensAt } from '../rollout/replace-window.js';
import { FirstSeen, invalidManifests, rolloutOutcomes } from '../rollout/rollout-outcome.js';
import { UpdateLocks } from '../rollout/update-locks.js';
import { apiTime } from '../status/conditions.js';
import type { ManifestProblem, RolloutMark } from '../status/manifest-problem.js';
import type { StatusManager } from '../status/status-manager.js';
import type { Listeners } from './listeners.js';

export interface ManifestIntake {
  /** Resolves once the directory has been read in full and its desired state handed on. */
  start(): Promise<void>;
  close(): Promise<void>;
  /** A new period for the full re-read of the directory (a reload). */
  setResyncInterval(ms: number): void;
  /** A new default rollback window (a reload). */
  setRollbackAfter(seconds: number): void;
  /** A new replace window, or none (a reload): held replaces are judged again at once. */
  setReplaceWindow(config: Pick<AgentConfig, 'replaceWindow' | 'replaceWindowSeconds'>): Promise<void>;
  /** A new manifest policy (a reload): every file is judged again at once. */
  setPolicy(policy: ManifestPolicy): Promise<void>;
}

export interface ManifestIntakeParts {
  status: StatusManager;
  reconciler: Reconciler;
  metrics: AgentMetrics | undefined;
  health: HealthChecks;
  /** Told after every change of pod status (the rollout guard proves or rolls back edits on it). */
  statusChanges: Listeners<[]>;
  /** What podman runs now (undefined: not known): the rollout guard's start, so a lock holds only replaces not yet made. */
  listRunning: () => Promise<ListedPod[] | undefined>;
}

/** Builds the intake on the configured manifest directory. */
export function manifestIntake(config: AgentConfig, logger: Logger, parts: ManifestIntakeParts): ManifestIntake {
  const { status, reconciler, metrics, health, statusChanges, listRunning } = parts;
  let lastGood: LastGood = new Map();
  const reportedConflicts = new Set<string>();
  /** Files with errors now: their first error and since when, for the pods they define. */
  const invalidFiles = new Map<string, ManifestProblem>();
  let directoryError: string | undefined;

  const logFindings = (snapshot: SourceSnapshot) => {
    for (const file of snapshot.changed) {
      for (const finding of file.findings) {
        if (finding.severity === 'error') logger.error(formatFinding(finding), { source: file.path });
        else logger.warn(formatFinding(finding), { source: file.path });
      }
      if (file.hasErrors) logger.error('manifest has errors: its pods keep their last good spec', { event: 'ManifestInvalid', source: file.path });
    }
    for (const path of snapshot.removed) logger.info('manifest removed', { event: 'ManifestRemoved', source: path });
  };

  /** Keeps each file's first error (and since when), for the pods it defines. */
  const trackInvalidFiles = (snapshot: SourceSnapshot) => {
    for (const file of snapshot.changed) {
      if (file.hasErrors) metrics?.manifestErrors.inc();
      const first = file.findings.find((finding) => finding.severity === 'error');
      if (!first) invalidFiles.delete(file.path);
      else if (invalidFiles.get(file.path)?.message !== formatFinding(first)) invalidFiles.set(file.path, { message: formatFinding(first), since: apiTime(new Date()) });
    }
    for (const path of snapshot.removed) invalidFiles.delete(path);
    metrics?.manifestFilesInvalid.set(invalidFiles.size);
  };

  /** The pods that do not run their file's current content, and why, for their status. */
  let desiredPods: Iterable<{ key: string; source: string; hash: string }> = [];
  const publishProblems = (marks = rolloutMarks(), marksText = JSON.stringify([...marks])) => {
    const problems = new Map<string, ManifestProblem>();
    for (const [key, rolledBack] of guard.rolledBack()) {
      problems.set(key, {
        kind: 'rolledBack',
        since: rolledBack.failed.at,
        message: `spec ${rolledBack.failed.hash} ${rolledBack.failed.message}: rolled back to ${rolledBack.runningHash}, the last spec that was Ready; not tried again until the file changes`,
      });
    }
    for (const [key, held] of guard.heldReplaces()) {
      problems.set(key, { kind: 'replaceHeld', since: heldSince(key, held.wantedHash), message: `Pending replace: spec ${held.wantedHash} held by ${held.by}; running ${held.runningHash} until it goes` });
    }
    // A file with errors says more about what runs than an older rollback does.
    for (const pod of desiredPods) {
      const problem = invalidFiles.get(pod.source);
      if (problem) problems.set(pod.key, problem);
    }
    lastMarks = marksText;
    status.setManifestProblems(problems, marks, invalidManifests(invalidFiles, desiredPods));
  };

  /** Each pod's rollout outcome, for its mirror pod (and so the webhook, `/pods` and `/rollout`). */
  const firstSeen = new FirstSeen();
  let lastMarks = '';
  const rolloutMarks = (): Map<string, RolloutMark> => {
    const wanted = [...desiredPods];
    firstSeen.keep(new Set(wanted.map((pod) => pod.key)));
    // What holds a replace, as the outcome says it.
    const held = new Map([...guard.heldReplaces()].map(([key, one]) => [key, { by: one.by, wantedHash: one.wantedHash, since: heldSince(key, one.wantedHash) }]));
    const outcomes = rolloutOutcomes({ wanted, running: guard.running(), records: guard.records(), held, invalidFiles, seenSince: (key, hash) => firstSeen.since(key, hash) });
    return new Map(outcomes.map(({ namespace, name, runningHash: _running, ...mark }) => [`${namespace}/${name}`, mark]));
  };
  /** After the guard looked at the statuses: a proven trial turns Applying into Ready. */
  const outcomesObserved = () => {
    // Only on a change: setting the status is itself a status change the guard looks at.
    const marks = rolloutMarks();
    const marksText = JSON.stringify([...marks]);
    if (marksText !== lastMarks) publishProblems(marks, marksText);
  };

  /** When each held replace was first held (for its condition's transition time). */
  const heldAt = new Map<string, { hash: string; since: string }>();
  const heldSince = (key: string, hash: string) => {
    const known = heldAt.get(key);
    if (known?.hash === hash) return known.since;
    const since = apiTime(new Date());
    heldAt.set(key, { hash, since });
    return since;
  };
  const locks = new UpdateLocks({ dir: config.locksDir, logger, onChange: () => guard.holdsChanged() });
  let window: ReplaceWindow | undefined;
  const guard = new RolloutGuard({
    holding: (pod) => holdingOf(locks.holding(pod), window, new Date()),
    holdEnds: () => windowOpensAt(window, new Date()),
    stateDir: config.stateDir,
    logger,
    defaultSeconds: config.rollbackAfterSeconds,
    statuses: () => status.pods(),
    onObserved: () => outcomesObserved(),
    onRollback: (pod, failed, to) => status.event(pod, 'Warning', 'RolledBack', `Spec ${failed.hash} ${failed.message}; rolled back to ${to}, the last spec that was Ready`),
    onChange: (state) => {
      reconciler.setDesired(state);
      publishProblems();
    },
  });
  // One look at the status per turn of the loop: a burst of changes is one decision.
  let observeQueued: NodeJS.Immediate | undefined;
  const unfollow = statusChanges.add(() => {
    observeQueued ??= setImmediate(() => {
      observeQueued = undefined;
      guard.observe(status.pods());
    });
  });

  const onSnapshot = (snapshot: SourceSnapshot) => {
    logFindings(snapshot);
    directoryError = undefined;
    trackInvalidFiles(snapshot);
    const merged = mergeFiles(snapshot.files, lastGood);
    lastGood = merged.lastGood;
    for (const conflict of merged.state.conflicts) {
      const id = `${conflict.key}\0${conflict.loser}`;
      if (reportedConflicts.has(id)) continue;
      reportedConflicts.add(id);
      if (conflict.finding) logger.error(formatFinding(conflict.finding), { event: 'PodConflict', pod: conflict.key, source: conflict.loser });
      else logger.error(`pod ${conflict.key} is defined by ${conflict.winner} already; ignoring it in ${conflict.loser}`, { event: 'PodConflict', pod: conflict.key, source: conflict.loser });
    }
    // podvisor's own event on each pod of a file that turned bad: it runs on its last good spec.
    for (const file of snapshot.changed.filter((one) => one.hasErrors)) {
      const first = file.findings.find((finding) => finding.severity === 'error');
      for (const pod of merged.lastGood.get(file.path)?.values() ?? []) {
        if (first) status.event(pod, 'Warning', 'ManifestInvalid', `${formatFinding(first)}; running the last good spec`);
      }
    }
    logger.debug('desired state', { event: 'DesiredState', pods: merged.state.pods.size, files: snapshot.files.length });
    desiredPods = [...merged.state.pods.values()];
    // The reconciler first: a changed pod's first podman call should not wait for a status recompute.
    reconciler.setDesired(guard.apply(merged.state));
    publishProblems();
  };

  const setWindow = async (next: Pick<AgentConfig, 'replaceWindow' | 'replaceWindowSeconds'>) => {
    window = next.replaceWindow === undefined ? undefined : await ReplaceWindow.create(next.replaceWindow, next.replaceWindowSeconds);
    if (window) logger.info(`replaces of running pods wait for the replace window ${window.describe()} (local time)${window.isOpen(new Date()) ? ': open now' : ''}`, { event: 'ReplaceWindow', window: window.expression, seconds: window.seconds });
  };

  const policy = manifestPolicyOf(config);
  /** Says so when manifests' owners go unchecked: a device set up that way should know what it gave away. */
  const warnUnchecked = (next: ManifestPolicy) => {
    if (!ownershipChecked(next)) logger.warn('manifest ownership is not checked (policy.check-ownership: false): any user who can write a manifest runs pods as root', { event: 'OwnershipUnchecked' });
  };
  warnUnchecked(policy);
  const source = new DirectorySource({
    dir: config.manifestDir,
    nodeName: config.nodeName,
    ownership: policy.ownership,
    devicePolicy: policy.devicePolicy,
    resyncIntervalMs: config.resyncIntervalSeconds * 1000,
    onSnapshot,
    onError: (message) => {
      directoryError = message;
      logger.error(message);
    },
    // An end of a problem is news, not a fault: it must not mark the manifests unhealthy.
    onRecovered: (message) => {
      directoryError = undefined;
      logger.info(message, { event: 'ManifestSourceRecovered' });
    },
  });
  health.add({
    name: 'manifests',
    required: false,
    check: () => (directoryError ? { ok: false, message: directoryError } : { ok: true, ...(invalidFiles.size ? { message: `${invalidFiles.size} file(s) with errors` } : {}) }),
  });
  return {
    async start() {
      await setWindow(config);
      await guard.load(await listRunning());
      await locks.start();
      await source.start();
    },
    async close() {
      await source.close();
      await locks.stop();
      unfollow();
      if (observeQueued) clearImmediate(observeQueued);
      guard.stop();
      await guard.flush();
    },
    setResyncInterval: (ms: number) => source.setResyncInterval(ms),
    setRollbackAfter: (seconds: number) => guard.setDefaultSeconds(seconds),
    setReplaceWindow: async (next: AgentConfig) => {
      await setWindow(next);
      guard.holdsChanged();
    },
    setPolicy: (next: ManifestPolicy) => {
      warnUnchecked(next);
      return source.setPolicy(next);
    },
  };
}
