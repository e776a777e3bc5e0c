// `podvisor plan`: what the agent would do now, and why, with nothing changed. It reads the
// manifest directory as the agent does (the same directory source and merge), lists podman's pods
// as the agent does (its runtime's listing, through a view that can only read), takes what the
// agent keeps in its state directory (the spec each pod was made from, the back-off), and asks the
// planner the agent acts on (planPods). Exit status as `terraform plan -detailed-exitcode`:
// 0 nothing would change, 1 something would (now, or once an update lock or the replace window
// lets a held replace go), 2 the plan could not be made.
import { existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { configFileFor, type ParsedCommandArgs } from './args.js';
import { agentAlive, readStatusFile, staleness } from './read-status.js';
import type { AgentConfig } from '../config/agent-config.js';
import { manifestPolicyOf } from '../config/manifest-policy.js';
import { resolveAgentConfig } from '../config/resolve-config.js';
import { errorMessage, PodvisorError } from '../errors.js';
import { mergeFiles, type LastGood } from '../manifest/desired-state.js';
import { DirectorySource, type SourceSnapshot } from '../manifest/directory-source.js';
import type { DesiredPod } from '../manifest/identity.js';
import { Backoff } from '../pods/backoff.js';
import { planPods } from '../pods/plan.js';
import { buildPlanReport, formatPlanText, planExitCode, type AgentView, type PlanReport, type RolledBackPod } from '../pods/plan-report.js';
import { effectivePods, ROLLOUT_FILE, runningSpecs, type Hold, type RolloutRecord } from '../rollout/rollout-guard.js';
import { holdingOf, ReplaceWindow } from '../rollout/replace-window.js';
import { lockNames } from '../rollout/update-locks.js';
import { readOnlyRuntime, type RuntimeReader } from '../runtime/read-only-runtime.js';
import type { ObservedPod } from '../runtime/types.js';
import { readSavedSpec } from '../state/pod-specs.js';
import { readJson } from '../state/state-file.js';
import { readSupervisionFile } from '../state/supervision-state.js';
import { humanDuration } from '../status/printers.js';
import { STATUS_FILE } from '../status/status-manager.js';

export interface PlanDependencies {
  /** podman's pods (default: the agent's listing through a read-only client). */
  runtime?: (nodeName: string, stateDir: string) => RuntimeReader;
  /** Whether a process id is a live agent (default: /proc). */
  alive?: (pid: number) => boolean;
  /** The config file read when --config is not given (default /etc/podvisor/config.yaml when it exists). */
  defaultConfigFile?: string;
  now?: () => Date;
}

/** Makes the plan and prints it; returns the exit status (0, 1, or 2 on any error). */
export async function planCommand(values: ParsedCommandArgs['values'], deps: PlanDependencies = {}): Promise<number> {
  try {
    const report = await makePlan(values, deps);
    process.stdout.write(values.output === 'json' ? `${JSON.stringify(report, null, 2)}\n` : formatPlanText(report));
    return planExitCode(report);
  } catch (error) {
    // 1 means "changes" here, so every failure is 2, in one line.
    const message = errorMessage(error);
    process.stderr.write(`${message.startsWith('podvisor') ? message : `podvisor plan: ${message}`}\n`);
    return 2;
  }
}

/** A directory the plan must read: there, a directory, and listable; else one line naming it. */
async function checkDirectory(what: string, flag: string, path: string): Promise<void> {
  try {
    if (!(await stat(path)).isDirectory()) throw new Error('not a directory');
    await readdir(path);
  } catch (error) {
    const why = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such directory' : errorMessage(error).replace(/, \w+ '.*'$/, '');
    throw new PodvisorError('E_USAGE', `podvisor plan: ${what} ${path}: ${why} (${flag})`, { cause: error });
  }
}

/**
 * The manifest files as the agent's directory source reads them: one full scan, no watching, with
 * the policy the agent takes from the same config (who may own a file, where links may lead, what
 * a pod may ask for), so a file the agent refuses is refused here, with the same findings.
 */
async function readManifests(dir: string, config: AgentConfig): Promise<{ snapshot: SourceSnapshot; unreadable: string[]; problems: string[] }> {
  const problems: string[] = [];
  let snapshot: SourceSnapshot | undefined;
  const { ownership, devicePolicy } = manifestPolicyOf(config);
  const source = new DirectorySource({ dir, nodeName: config.nodeName, ownership, devicePolicy, resyncIntervalMs: 0, onSnapshot: (one) => (snapshot ??= one), onError: (message) => problems.push(message) });
  try {
    await source.rescan();
    const unreadable = source.unreadableFiles();
    if (!snapshot) throw new PodvisorError('E_CONFIG', `podvisor plan: ${problems[0] ?? `cannot read manifest directory ${dir}`}`);
    return { snapshot, unreadable, problems };
  } finally {
    await source.close();
  }
}

/** Whether an agent runs on `stateDir`, from the status file it writes. */
async function agentView(stateDir: string, nodeName: string, alive: (pid: number) => boolean, now: number): Promise<{ view: AgentView; problems: string[] }> {
  let file;
  try {
    file = await readStatusFile(stateDir);
  } catch (error) {
    const missing = !existsSync(join(stateDir, STATUS_FILE));
    const why = missing ? `no ${STATUS_FILE} in ${stateDir} (no agent has run with this state directory)` : errorMessage(error);
    return { view: { running: false, message: `not running: ${why}; this is what an agent started now would do` }, problems: [] };
  }
  const problems: string[] = [];
  const nodes = new Set(file.items.map((pod) => String(pod.spec.nodeName ?? '')).filter(Boolean));
  if (nodes.size > 0 && !nodes.has(nodeName)) problems.push(`the agent's pods are for node ${[...nodes].join(', ')}, this plan is for node ${nodeName} (--node-name)`);
  const pid = file.agent?.pid;
  const running = pid !== undefined && alive(pid);
  const written = Date.parse(file.writtenAt);
  const ago = Number.isNaN(written) ? 'at an unknown time' : `${humanDuration(now - written)} ago`;
  // A live agent whose status is old may be stuck: said, as status and describe say it.
  const stale = running ? staleness(file, now, alive) : undefined;
  const message = running
    ? `running (pid ${pid}), ${stale ? `but ${stale}` : `status written ${ago}`}`
    : `not running (${pid === undefined ? 'its status names no process' : `pid ${pid} is gone`}, status last written ${ago}); this is what an agent started now would do`;
  const view: AgentView = { running, ...(pid === undefined ? {} : { pid }), statusWrittenAt: file.writtenAt, message };
  return { view, problems };
}

/** What the agent's rollout guard knows (read only: a corrupt file is ignored, not set aside), and the locks held now. */
async function rolloutView(stateDir: string, locksDir: string, window: ReplaceWindow | undefined, now: Date, observed: readonly ObservedPod[], saved: ReadonlyMap<string, DesiredPod>): Promise<{ records: Map<string, RolloutRecord>; hold: Hold }> {
  const raw = (await readJson(join(stateDir, ROLLOUT_FILE)).catch(() => undefined)) as { pods?: Record<string, RolloutRecord> } | undefined;
  const records = new Map(Object.entries(raw && typeof raw.pods === 'object' && raw.pods !== null ? raw.pods : {}));
  const locks = new Set(await readdir(locksDir).catch(() => [] as string[]));
  // What runs, by the agent's own rule at start: the spec kept beside each pod, else its last Ready one.
  const { running } = runningSpecs(observed.map((pod) => ({ key: pod.key, hash: pod.hash, spec: saved.get(pod.uid) })), records);
  const lockOf = (pod: DesiredPod) => lockNames(pod).map((name) => (locks.has(name) ? join(locksDir, name) : undefined)).find((path) => path !== undefined);
  return { records, hold: { running, holding: (pod) => holdingOf(lockOf(pod), window, now) } };
}

/** Everything the plan is made from, gathered without changing anything, and the report. */
export async function makePlan(values: ParsedCommandArgs['values'], deps: PlanDependencies = {}): Promise<PlanReport> {
  const now = deps.now?.() ?? new Date();
  const flags = { 'manifest-dir': values['manifest-dir'], 'state-dir': values['state-dir'], 'node-name': values['node-name'], 'locks-dir': values['locks-dir'] };
  const config = await resolveAgentConfig(flags, configFileFor(values, deps.defaultConfigFile));
  const manifestDir = resolve(config.manifestDir);
  const stateDir = resolve(config.stateDir);
  await checkDirectory('manifest directory', '--manifest-dir', manifestDir);
  await checkDirectory('state directory', '--state-dir', stateDir);

  const { snapshot, unreadable, problems } = await readManifests(manifestDir, config);
  const agent = await agentView(stateDir, config.nodeName, deps.alive ?? agentAlive, now.getTime());
  const runtime = (deps.runtime ?? ((nodeName, dir) => readOnlyRuntime({ nodeName, stateDir: dir })))(config.nodeName, stateDir);
  let observed: ObservedPod[];
  try {
    const observation = await runtime.list(AbortSignal.timeout(120_000));
    observed = observation.pods;
    if (observation.foreignPods > 0) problems.push(`${observation.foreignPods} podvisor pod(s) of another node name are left alone`);
  } catch (error) {
    throw new PodvisorError('E_PODMAN', `podvisor plan: cannot list podman's pods: ${errorMessage(error)}`, { cause: error });
  }

  // The spec each pod was made from, as the agent saved it: a replace's old side, and the last
  // good spec of a pod whose file has errors now (the agent holds it in memory; this is its copy).
  const saved = new Map<string, DesiredPod>();
  for (const pod of observed) {
    const spec = await readSavedSpec(stateDir, pod.uid);
    if (spec && spec.hash === pod.hash) saved.set(pod.uid, spec);
  }
  const errored = new Set([...snapshot.files.filter((file) => file.hasErrors).map((file) => file.path), ...unreadable]);
  const lastGood: LastGood = new Map();
  for (const pod of observed) {
    const spec = saved.get(pod.uid);
    if (!spec || !errored.has(pod.source)) continue;
    lastGood.set(pod.source, new Map([...(lastGood.get(pod.source) ?? []), [pod.key, spec]]));
  }
  const { state } = mergeFiles(snapshot.files, lastGood);
  // A file that cannot be read keeps its pods, as the agent keeps them.
  for (const path of unreadable) state.erroredSources.add(path);

  // The rollout guard as the agent runs it: a rolled-back pod stays on its last Ready spec, and an
  // update lock or a closed replace window holds a replace; each is the pod's own verdict.
  const window = config.replaceWindow === undefined ? undefined : await ReplaceWindow.create(config.replaceWindow, config.replaceWindowSeconds);
  const rollout = await rolloutView(stateDir, config.locksDir, window, now, observed, saved);
  const asked = state.pods;
  const guarded = effectivePods(asked, rollout.records, config.rollbackAfterSeconds, now, rollout.hold);
  state.pods = guarded.pods;
  const rolledBack = new Map<string, RolledBackPod>();
  for (const [key, record] of guarded.records) {
    if (record.failed && record.ready) rolledBack.set(key, { failedHash: record.failed.hash, reason: record.failed.reason, message: record.failed.message, at: record.failed.at, readyHash: record.ready.hash });
  }

  const supervision = await readSupervisionFile(stateDir);
  const backoff = new Backoff({ initialMs: config.backoffInitialSeconds * 1000, maxMs: config.backoffMaxSeconds * 1000 }, supervision?.backoff ?? []);
  const startTimes = new Map(Object.entries(supervision?.podStartTimes ?? {}));
  const plan = planPods({
    desired: state.pods,
    observed,
    erroredSources: state.erroredSources,
    busy: new Set(),
    now: now.getTime(),
    backoff,
    known: saved,
    startTime: (uid) => {
      const time = startTimes.get(uid);
      return time === undefined ? undefined : Date.parse(time);
    },
  });
  return buildPlanReport({
    plan,
    desired: state,
    observed,
    files: snapshot.files,
    saved,
    problems: [...agent.problems, ...problems],
    rollout: { asked, held: guarded.held, rolledBack },
    showEnvValues: config.serveEnvValues,
    agent: agent.view,
    nodeName: config.nodeName,
    manifestDir,
    stateDir,
    now,
  });
}
