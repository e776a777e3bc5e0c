// `podvisor plan`'s report: what the agent would do to each pod now and why, made from the
// planner's own Plan (planPods, the function the agent acts on), so the two cannot disagree.
// Pure: the command gathers the inputs (files, podman's listing, the agent's state) and prints.
//
// Each pod gets one verdict: create, replace (with the changed fields), keep, remove,
// keep-invalid (its file has errors: it stays on its last good spec), pending-replace (its file
// asks for a new spec, but an update lock or a closed replace window holds the replace), or
// rolled-back (its file's spec failed on trial: it runs its last Ready spec until the file
// changes). The exit status follows `terraform plan -detailed-exitcode`: 1 when the agent would
// change a pod's spec, now (create, replace, remove) or on its own once a hold ends (a pending
// replace: the files and podman differ, and no further edit is needed to close the gap), 0 when
// not: keep-invalid and rolled-back pods run what the agent chose over their file, and nothing
// but a new edit changes that. Supervision inside a kept pod (restarting an exited container,
// starting one that is missing, the next init container) is listed as the pod's steps but changes
// no spec, and it comes and goes with the crash-loop back-off: it does not make the exit status 1.
import { basename, dirname, resolve } from 'node:path';
import type { Conflict, DesiredState } from '../manifest/desired-state.js';
import type { DesiredPod } from '../manifest/identity.js';
import type { FileResult } from '../manifest/load-file.js';
import { formatFinding, type Finding } from '../manifest/validate.js';
import { escapeText } from '../log/escape.js';
import type { FailedSpec, HeldReplace } from '../rollout/rollout-guard.js';
import type { ObservedPod } from '../runtime/types.js';
import type { Plan } from './plan.js';
import { formatChange, specChanges, type FieldChange } from './spec-diff.js';
import { compareText } from '../order.js';

/** The kind and version of the JSON document `podvisor plan -o json` prints. */
export const PLAN_API_VERSION = 'podvisor.io/v1';
export const PLAN_KIND = 'Plan';

export type PodVerdict = 'create' | 'replace' | 'keep' | 'remove' | 'keep-invalid' | 'pending-replace' | 'rolled-back';

/** A pod rolled back by the rollout guard: the spec its file asks for failed on trial. */
export interface RolledBackPod {
  /** The spec the file asks for, which failed, and why (`CrashLoopBackOff`, `Failed`, `NotReady`). */
  failedHash: string;
  reason: FailedSpec['reason'];
  message: string;
  /** When it failed (RFC 3339). */
  at: string;
  /** The last spec that was Ready: the one the agent runs instead. */
  readyHash: string;
}

/** What would happen to one pod, and why. */
export interface PodPlan {
  verdict: PodVerdict;
  /** The pod's key, `namespace/name`. */
  pod: string;
  /** The manifest file that asks for the pod (or, for remove, the one it was made from). */
  source: string;
  reason: string;
  /** The config hash the pod runs (absent for create) and the one asked for (absent for remove). */
  hash: { running?: string; wanted?: string };
  /** For replace and pending-replace: each changed field; absent when the spec the pod runs was not saved. */
  changes?: FieldChange[];
  /** For pending-replace: what holds the replace (an update lock's path, the replace window), and the hash it would bring. */
  held?: { by: string; wantedHash: string };
  /** For rolled-back (and a replace or create that carries a rollback out): the failed spec and the one run instead. */
  rolledBack?: RolledBackPod;
  /** Supervision the agent would carry out in a kept pod now (no change of spec). */
  steps?: string[];
}

/** One manifest file as read now. */
export interface FilePlan {
  path: string;
  /** False when the file has errors (its pods keep their last good spec). */
  valid: boolean;
  /** Keys of the pods it asks for, valid ones. */
  pods: string[];
  /** Every error and warning, with file, line, column and field. */
  findings: Finding[];
}

/** Whether an agent runs on the state directory, from its status file. */
export interface AgentView {
  running: boolean;
  pid?: number;
  /** When the agent last wrote its status. */
  statusWrittenAt?: string;
  /** One line for an operator: running, or why the figures may not be live. */
  message: string;
}

export interface PlanReport {
  apiVersion: typeof PLAN_API_VERSION;
  kind: typeof PLAN_KIND;
  /** When the plan was made (RFC 3339). */
  generatedAt: string;
  nodeName: string;
  manifestDir: string;
  stateDir: string;
  agent: AgentView;
  /** True when a pod would be created, replaced or removed, or has a replace pending (exit status 1). */
  changes: boolean;
  summary: Record<'create' | 'replace' | 'pendingReplace' | 'remove' | 'keep' | 'keepInvalid' | 'rolledBack', number>;
  /** Every pod, sorted by key. */
  pods: PodPlan[];
  /** Every manifest file, sorted by path. */
  files: FilePlan[];
  /** What is wrong beyond one file's content: an unreadable file, a dangling symlink, a pod name two files ask for. */
  problems: string[];
}

export interface PlanReportInput {
  plan: Plan;
  desired: DesiredState;
  observed: readonly ObservedPod[];
  files: readonly FileResult[];
  /** The spec each observed pod was made from, by uid, as the agent saved it. */
  saved: ReadonlyMap<string, DesiredPod>;
  problems: readonly string[];
  /** What the rollout guard put in place of the files' pods (absent: nothing). */
  rollout?: RolloutView;
  showEnvValues: boolean;
  agent: AgentView;
  nodeName: string;
  manifestDir: string;
  stateDir: string;
  now: Date;
}

/** The rollout guard's side of the plan: the files' own pods, the replaces it holds, the pods it rolled back. */
export interface RolloutView {
  /** The pods the files ask for, before the guard put a running or last Ready spec in their place. */
  asked: ReadonlyMap<string, DesiredPod>;
  held: ReadonlyMap<string, HeldReplace>;
  rolledBack: ReadonlyMap<string, RolledBackPod>;
}

const DUPLICATE = 'duplicate pod for the same manifest';

/** A rollback's reason as the agent says it. */
function rollbackWords(rolled: RolledBackPod): string {
  return `rolled back: spec ${rolled.failedHash} ${rolled.message}; runs ${rolled.readyHash}, the last spec that was Ready, until the file changes`;
}

/** The first error of a file, as a finding line, for the reason of a pod it keeps. */
function firstError(files: ReadonlyMap<string, FileResult>, path: string): string {
  const finding = files.get(path)?.findings.find((one) => one.severity === 'error');
  return finding ? formatFinding(finding) : `${path} cannot be read`;
}

/** Builds the report from the planner's plan and what it was planned from. */
export function buildPlanReport(input: PlanReportInput): PlanReport {
  const { plan, desired } = input;
  const held = input.rollout?.held ?? new Map<string, HeldReplace>();
  const rolledBack = input.rollout?.rolledBack ?? new Map<string, RolledBackPod>();
  const rolledOf = (key: string) => {
    const rolled = rolledBack.get(key);
    return rolled ? { rolledBack: rolled } : {};
  };
  const files = new Map(input.files.map((file) => [file.path, file]));
  const pods: PodPlan[] = [];
  const decided = new Set<string>();
  const steps = new Map<string, string[]>();
  const fromLastGood = (pod: DesiredPod) => desired.erroredSources.has(pod.source) && !files.get(pod.source)?.pods.some((fresh) => fresh.key === pod.key && fresh.hash === pod.hash);

  for (const action of plan.actions) {
    switch (action.kind) {
      case 'createPod': {
        decided.add(action.key);
        const lastGood = fromLastGood(action.desired);
        const rolled = rolledBack.get(action.key);
        pods.push({
          verdict: 'create', pod: action.key, source: action.desired.source, hash: { wanted: action.desired.hash },
          reason: lastGood ? `podman has no pod for it: made again on its last good spec (${firstError(files, action.desired.source)})`
            : rolled ? `podman has no pod for it: made on its last Ready spec (${rollbackWords(rolled)})`
            : 'podman has no pod for it',
          ...rolledOf(action.key),
        });
        break;
      }
      case 'replacePod': {
        decided.add(action.key);
        const running = action.running ?? input.saved.get(action.observed.uid);
        const known = running !== undefined && running.hash === action.observed.hash;
        // Back to the last Ready spec: the failed one still runs (the agent stopped before it went back).
        const rolled = rolledBack.get(action.key);
        pods.push({
          verdict: 'replace', pod: action.key, source: action.desired.source, hash: { running: action.observed.hash, wanted: action.desired.hash },
          reason: `${rolled ? `back to the last Ready spec, config hash ${action.observed.hash} to ${action.desired.hash} (spec ${rolled.failedHash} ${rolled.message})` : `config hash changed from ${action.observed.hash} to ${action.desired.hash}`}${known ? '' : ' (the spec it runs was not saved: no field diff)'}`,
          ...(known ? { changes: specChanges(running.pod, action.desired.pod, { showEnvValues: input.showEnvValues }) } : {}),
          ...rolledOf(action.key),
        });
        break;
      }
      case 'removePod': {
        const source = action.observed.source;
        if (action.reason !== DUPLICATE) decided.add(action.key);
        const inDir = dirname(source) === resolve(input.manifestDir);
        const why = action.reason === DUPLICATE ? 'a second pod for the same manifest'
          : files.has(source) ? 'its file no longer asks for it'
          : inDir ? 'its file is gone: no manifest asks for it'
          // Made from a file elsewhere (a plan of another directory): judged by this directory's files.
          : 'made from a file outside this manifest directory, and no manifest here asks for it';
        pods.push({ verdict: 'remove', pod: action.key, source, hash: { running: action.observed.hash }, reason: why });
        break;
      }
      default:
        // Work inside a pod that runs the wanted spec: the pod is kept.
        steps.set(action.key, [...(steps.get(action.key) ?? []), action.reason]);
    }
  }
  for (const kept of plan.kept) {
    decided.add(kept.key);
    pods.push({ verdict: 'keep-invalid', pod: kept.key, source: kept.source, hash: { running: kept.hash }, reason: `its file has errors: kept on its last good spec (${firstError(files, kept.source)})` });
  }
  for (const [key, pod] of desired.pods) {
    if (decided.has(key)) continue;
    const running = input.observed.find((one) => one.key === key && one.hash === pod.hash);
    const podSteps = steps.get(key);
    if (!running) {
      // Not listed and not planned: its sandbox failed and it waits for the back-off to end.
      pods.push({ verdict: 'create', pod: key, source: pod.source, hash: { wanted: pod.hash }, reason: 'podman has no pod for it: made once the back-off after a failed attempt ends' });
      continue;
    }
    const hold = held.get(key);
    if (hold) {
      // The guard put the running spec in the file's place: the diff is to what the file asks for.
      const asked = input.rollout?.asked.get(key);
      const spec = input.saved.get(running.uid) ?? pod;
      pods.push({
        verdict: 'pending-replace', pod: key, source: pod.source, hash: { running: running.hash, wanted: hold.wantedHash },
        reason: `Pending replace: spec ${hold.wantedHash} held by ${hold.by}; runs ${running.hash} until then`,
        ...(asked && asked.hash === hold.wantedHash ? { changes: specChanges(spec.pod, asked.pod, { showEnvValues: input.showEnvValues }) } : {}),
        held: { by: hold.by, wantedHash: hold.wantedHash },
        ...(podSteps ? { steps: podSteps } : {}),
      });
      continue;
    }
    const rolled = rolledBack.get(key);
    if (rolled) {
      pods.push({
        verdict: 'rolled-back', pod: key, source: pod.source, hash: { running: running.hash, wanted: rolled.failedHash },
        reason: rollbackWords(rolled), rolledBack: rolled,
        ...(podSteps ? { steps: podSteps } : {}),
      });
      continue;
    }
    const lastGood = fromLastGood(pod);
    pods.push({
      verdict: lastGood ? 'keep-invalid' : 'keep', pod: key, source: pod.source, hash: { running: running.hash, wanted: pod.hash },
      reason: lastGood ? `its file has errors: kept on its last good spec (${firstError(files, pod.source)})` : 'runs the spec its file asks for',
      ...(podSteps ? { steps: podSteps } : {}),
    });
  }
  pods.sort((a, b) => compareText(a.pod, b.pod) || compareText(a.verdict, b.verdict));

  const conflictFindings = new Map<string, Finding[]>();
  const problems = [...input.problems];
  for (const conflict of desired.conflicts) {
    if (conflict.finding) conflictFindings.set(conflict.loser, [...(conflictFindings.get(conflict.loser) ?? []), conflict.finding]);
    else problems.push(conflictLine(conflict));
  }
  const filePlans = [...input.files].sort((a, b) => compareText(a.path, b.path)).map((file) => {
    const extra = conflictFindings.get(file.path) ?? [];
    return { path: file.path, valid: !file.hasErrors && extra.length === 0, pods: file.pods.map((pod) => pod.key), findings: [...file.findings, ...extra] };
  });
  const count = (verdict: PodVerdict) => pods.filter((pod) => pod.verdict === verdict).length;
  const summary = {
    create: count('create'), replace: count('replace'), pendingReplace: count('pending-replace'), remove: count('remove'),
    keep: count('keep'), keepInvalid: count('keep-invalid'), rolledBack: count('rolled-back'),
  };
  return {
    apiVersion: PLAN_API_VERSION,
    kind: PLAN_KIND,
    generatedAt: input.now.toISOString(),
    nodeName: input.nodeName,
    manifestDir: input.manifestDir,
    stateDir: input.stateDir,
    agent: input.agent,
    changes: summary.create + summary.replace + summary.pendingReplace + summary.remove > 0,
    summary,
    pods,
    files: filePlans,
    problems,
  };
}

/** The agent's words for a pod two files ask for. */
function conflictLine(conflict: Conflict): string {
  return `pod ${conflict.key} is defined by ${conflict.winner} already; ignoring it in ${conflict.loser}`;
}

/** The exit status: 1 when something would change (now, or once a hold ends), 0 when not (2, an error, is the command's). */
export function planExitCode(report: PlanReport): 0 | 1 {
  return report.changes ? 1 : 0;
}

const MARKS: Record<PodVerdict, string> = { create: '+', replace: '~', remove: '-', keep: '=', 'keep-invalid': '!', 'pending-replace': '~', 'rolled-back': '<' };
const WORDS: Record<PodVerdict, string> = { create: 'create', replace: 'replace', remove: 'remove', keep: 'keep', 'keep-invalid': 'keep', 'pending-replace': 'pending', 'rolled-back': 'rolled-back' };
/** Changed fields shown per pod in text; -o json has them all. */
const MAX_CHANGES_SHOWN = 20;

/** A manifest path as the text shows it: bare when it is in the manifest directory. */
function shortPath(path: string, manifestDir: string): string {
  return dirname(path) === resolve(manifestDir) ? basename(path) : path;
}

/** The report as text for an operator: one line a pod, its changes under it, then the findings. */
export function formatPlanText(report: PlanReport): string {
  const lines = [`node ${report.nodeName}, manifests ${report.manifestDir}, state ${report.stateDir}`, `agent: ${report.agent.message}`, ''];
  const width = Math.max(0, ...report.pods.map((pod) => pod.pod.length));
  const wordWidth = Math.max(7, ...report.pods.map((pod) => WORDS[pod.verdict].length));
  for (const pod of report.pods) {
    const file = shortPath(pod.source, report.manifestDir);
    lines.push(`${MARKS[pod.verdict]} ${WORDS[pod.verdict].padEnd(wordWidth)} ${escapeText(pod.pod).padEnd(width)}  ${escapeText(file)}: ${escapeText(pod.reason)}`);
    const changes = pod.changes ?? [];
    for (const one of changes.slice(0, MAX_CHANGES_SHOWN)) lines.push(`      ${formatChange(one)}`);
    if (changes.length > MAX_CHANGES_SHOWN) lines.push(`      ... and ${changes.length - MAX_CHANGES_SHOWN} more (-o json lists them all)`);
    for (const step of pod.steps ?? []) lines.push(`      then: ${escapeText(step)}`);
  }
  if (report.pods.length === 0) lines.push('no pods: none asked for, none running');
  const findings = report.files.flatMap((file) => file.findings);
  if (findings.length > 0 || report.problems.length > 0) {
    lines.push('', 'Findings:');
    for (const finding of findings) lines.push(`  ${formatFinding(finding)}`);
    for (const problem of report.problems) lines.push(`  ${escapeText(problem)}`);
  }
  const s = report.summary;
  const kept = s.keep + s.keepInvalid + s.rolledBack;
  const keptWhy = [
    ...(s.keepInvalid > 0 ? [`${s.keepInvalid} on the last good spec: file has errors`] : []),
    ...(s.rolledBack > 0 ? [`${s.rolledBack} rolled back to the last Ready spec`] : []),
  ];
  const pending = s.pendingReplace > 0 ? ` (and ${s.pendingReplace} pending: held until released)` : '';
  lines.push('', `Plan: ${s.create} to create, ${s.replace} to replace${pending}, ${s.remove} to remove; ${kept} to keep${keptWhy.length > 0 ? ` (${keptWhy.join('; ')})` : ''}.`);
  const invalidFiles = report.files.filter((file) => !file.valid).length;
  if (!report.changes) {
    const waiting = [
      ...(s.rolledBack > 0 ? ['a rolled-back pod waits for its file to change'] : []),
      ...(invalidFiles > 0 ? [`${invalidFiles === 1 ? '1 file has errors and changes' : `${invalidFiles} files have errors and change`} nothing until fixed`] : []),
    ];
    lines.push(waiting.length > 0 ? `No changes: podman runs what the agent chose; ${waiting.join('; ')}.` : 'No changes: podman runs what the files ask for.');
  }
  else if (s.create + s.replace + s.remove === 0) lines.push('Nothing to do now: the pending replace(s) go ahead once what holds them is released (exit 1: the files ask for a change podman does not run yet).');
  return `${lines.join('\n')}\n`;
}
