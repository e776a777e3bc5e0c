// Wires the agent together, data flowing one way: the directory source's snapshots become the
// desired state, the reconciler plans against podman's pods and its workers act.
import { mkdir } from 'node:fs/promises';
import type { AgentConfig } from './config/agent-config.js';
import type { Logger } from './log/logger.js';
import { mergeFiles, type DesiredState, type LastGood } from './manifest/desired-state.js';
import { DirectorySource, type SourceSnapshot } from './manifest/directory-source.js';
import { formatFinding } from './manifest/validate.js';
import { Reconciler } from './pods/reconciler.js';
import { ProbeManager } from './prober/probe-manager.js';
import { probeKillMessage } from './prober/probe-messages.js';
import { PodProbeRunner } from './prober/probe-runner.js';
import type { ProbedContainer } from './prober/types.js';
import { PodmanCli } from './runtime/podman-cli.js';
import { ExitWatcher, findExitsDirectory } from './runtime/exit-watcher.js';
import { OomWatcher } from './runtime/oom-watcher.js';
import { PodmanEventStream } from './runtime/podman-events.js';
import { detectHostIP, PodmanRuntime } from './runtime/podman-runtime.js';
import { StatusManager } from './status/status-manager.js';
import type { Observation } from './runtime/types.js';
import { errorMessage } from './errors.js';
import { SupervisionState } from './state/supervision-state.js';
import { podvisorVersion } from './cli/version.js';
import { freshness, HealthChecks } from './health/health.js';
import { MirrorFeed } from './mirror/mirror-feed.js';
import type { ManifestProblem } from './status/manifest-problem.js';
import { MirrorStore } from './mirror/mirror-store.js';
import { hasReaders, loadMetrics, startReaders } from './readers.js';
import { hostFacts } from './mirror/node-object.js';
import { apiTime } from './status/conditions.js';

export interface Agent {
  /** Stops watching, finishes work in flight within `deadlineMs`; pods keep running. */
  stop(deadlineMs: number): Promise<void>;
  /** Cancels work in flight at once. */
  abort(): void;
}

/** Starts the agent: returns once the manifest directory has been scanned once. */
export async function startAgent(config: AgentConfig, logger: Logger): Promise<Agent> {
  await mkdir(config.stateDir, { recursive: true });
  const startedAt = Date.now();
  // Set once the mirror store exists: it is what the pod metrics read.
  let feed: MirrorFeed | undefined;
  const metrics = await loadMetrics(config, () => feed?.mirrorPods() ?? []);
  const cli = new PodmanCli({
    onCall: (args, result) => {
      metrics?.podmanCall(args, result.exitCode, result.durationMs);
      logger.debug('podman', { args: args.slice(0, 3).join(' '), exitCode: result.exitCode, ms: Math.round(result.durationMs) });
    },
  });
  const hostIP = detectHostIP();
  const health = new HealthChecks();
  const probeRunner = new PodProbeRunner({ cli });
  // Set once the status owner exists; the runtime reports failed preStop hooks to it.
  let status: StatusManager | undefined;
  const watchers = new AbortController();
  const oomWatcher = new OomWatcher({ logger, signal: watchers.signal });
  oomWatcher.start();
  const runtime = new PodmanRuntime({
    cli,
    nodeName: config.nodeName,
    stateDir: config.stateDir,
    hostIP,
    httpGet: probeRunner.httpGetInPod,
    kernelOomKill: (id, startedAt, finishedAt) => oomWatcher.killedDuring(id, startedAt, finishedAt),
    onOrphan: (uid) => logger.info('removing the volumes of a pod that no longer exists', { uid }),
    onContainerEvent: (pod, container, reason, message) => status?.event(pod, 'Normal', reason, message, container),
    onCallFailure: (action, error, pod, container) => {
      logger.warn(`${action} failed: ${errorMessage(error)}`, { event: 'PodmanCallFailed', action, ...(pod ? { pod: pod.key } : {}), ...(container ? { container } : {}) });
    },
    onHookFailure: (pod, container, message) => {
      logger.warn(message, { pod: pod.key });
      status?.event(pod, 'Warning', 'FailedPreStopHook', message, { name: container, kind: 'app' });
    },
  });
  const supervision = await SupervisionState.load(config.stateDir, { initialMs: config.backoffInitialSeconds * 1000, maxMs: config.backoffMaxSeconds * 1000 }, logger);
  let lastObservation: { desired: DesiredState; observation: Observation } | undefined;
  const probes = new ProbeManager({
    cli,
    logger,
    runner: probeRunner,
    // The kubelet's prober_probe_total: every run, by probe type and result.
    onResult: (kind, result) => metrics?.probeResults.inc({ probe_type: kind, result }),
    onChange: (update) => {
      const seen = lastObservation;
      const desired = seen?.desired.pods.get(update.podKey);
      const observed = seen?.observation.pods.find((pod) => pod.key === update.podKey);
      const kind = observed?.containers.find((one) => one.id === update.containerId)?.kind ?? 'app';
      if (desired && update.reason) status?.event(desired, 'Warning', update.reason, update.message, { name: update.containerName, kind });
      status?.refresh();
      if (update.action !== 'kill' || !desired) return;
      // A failed liveness (or startup) probe: the pod's worker stops the container, in turn with
      // the pod's other work; its exit is then restarted per policy.
      reconciler.killContainer(update.podKey, {
        containerId: update.containerId,
        containerName: update.containerName,
        gracePeriodSeconds: update.gracePeriodSeconds ?? desired.pod.spec.terminationGracePeriodSeconds ?? 30,
        message: probeKillMessage(update.kind, update.containerName),
      });
    },
  });
  // Mirror pods are made only for their readers (the API, a publisher).
  const store = hasReaders(config) ? new MirrorStore() : undefined;
  status = new StatusManager({ stateDir: config.stateDir, logger, supervision, hostIP, probes, onChange: () => feed?.sync() });
  if (store) {
    feed = new MirrorFeed({
      store,
      status,
      facts: hostFacts({ nodeName: config.nodeName, hostIP, podmanVersion: await podmanVersion(cli, logger), podvisorVersion: podvisorVersion(), apiPort: config.apiAddress?.port ?? 0 }),
      health: () => health.summary(),
    });
  }
  await status.load();
  status.start();
  const reconciler = new Reconciler({
    runtime,
    logger,
    supervision,
    status,
    relistIntervalMs: config.relistIntervalSeconds * 1000,
    restartDelayMs: config.backoffInitialSeconds * 1000,
    onPass: (durationMs) => {
      metrics?.reconcilePasses.inc();
      metrics?.reconcileDuration.observe(durationMs / 1000);
    },
    onObservation: (desired, observation) => {
      lastObservation = { desired, observation };
      probes.sync(probedContainers(desired, observation));
    },
  });
  let lastGood: LastGood = new Map();
  const reportedConflicts = new Set<string>();
  /** Files with errors now: their first error and since when, for the mirror pods they define. */
  const invalidFiles = new Map<string, ManifestProblem>();
  let manifestDirError: string | undefined;

  const onSnapshot = (snapshot: SourceSnapshot) => {
    if (!status) return;
    for (const file of snapshot.changed) {
      for (const finding of file.findings) {
        if (finding.severity === 'error') logger.error(formatFinding(finding), { source: file.path });
        else logger.warn(formatFinding(finding), { source: file.path });
      }
      if (file.hasErrors) logger.error('manifest has errors: its pods keep their last good spec', { source: file.path });
    }
    for (const path of snapshot.removed) logger.info('manifest removed', { source: path });
    manifestDirError = undefined;
    for (const file of snapshot.changed) {
      if (file.hasErrors) metrics?.manifestErrors.inc();
      const first = file.findings.find((finding) => finding.severity === 'error');
      if (!first) invalidFiles.delete(file.path);
      else if (invalidFiles.get(file.path)?.message !== formatFinding(first)) invalidFiles.set(file.path, { message: formatFinding(first), since: apiTime(new Date()) });
    }
    for (const path of snapshot.removed) invalidFiles.delete(path);
    metrics?.manifestFilesInvalid.set(invalidFiles.size);
    const merged = mergeFiles(snapshot.files, lastGood);
    lastGood = merged.lastGood;
    for (const conflict of merged.state.conflicts) {
      const id = `${conflict.key}\0${conflict.loser}`;
      if (reportedConflicts.has(id)) continue;
      reportedConflicts.add(id);
      logger.error(`pod ${conflict.key} is defined by ${conflict.winner} already; ignoring it in ${conflict.loser}`, { pod: conflict.key, source: conflict.loser });
    }
    // podvisor's own event on each pod of a file that turned bad: it runs on its last good spec.
    for (const file of snapshot.changed.filter((one) => one.hasErrors)) {
      const first = file.findings.find((finding) => finding.severity === 'error');
      for (const pod of merged.lastGood.get(file.path)?.values() ?? []) {
        if (first) status.event(pod, 'Warning', 'ManifestInvalid', `${formatFinding(first)}; running the last good spec`);
      }
    }
    logger.debug('desired state', { pods: merged.state.pods.size, files: snapshot.files.length });
    const problems = new Map<string, ManifestProblem>();
    for (const pod of merged.state.pods.values()) {
      const problem = invalidFiles.get(pod.source);
      if (problem) problems.set(pod.key, problem);
    }
    status.setManifestProblems(problems);
    reconciler.setDesired(merged.state);
  };

  const source = new DirectorySource({
    dir: config.manifestDir,
    nodeName: config.nodeName,
    resyncIntervalMs: config.resyncIntervalSeconds * 1000,
    onSnapshot,
    onError: (message) => {
      manifestDirError = message;
      logger.error(message);
    },
  });
  reconciler.start();
  // Noticing change fast: podman's events (reconnecting, never losing any in between) and,
  // faster still, the exit files conmon writes; both only trigger a (coalesced) pass, and the
  // periodic relist stays, since events can be missed.
  let eventConnects = 0;
  const events = new PodmanEventStream({
    cli,
    logger,
    nodeName: config.nodeName,
    signal: watchers.signal,
    onConnect: () => {
      if (eventConnects++ > 0) metrics?.eventStreamReconnects.inc();
    },
    onEvent: (event) => {
      if (event.kind === 'died' || event.kind === 'start' || event.kind === 'remove') reconciler.trigger();
    },
  });
  events.start();
  const exits = await findExitsDirectory(cli, { logger, signal: watchers.signal });
  logger.debug('watching podman exit files', { dir: exits.dir, from: exits.source });
  const exitWatcher = new ExitWatcher({
    dir: exits.dir,
    logger,
    signal: watchers.signal,
    isOurs: (id) => reconciler.knowsContainer(id),
    onExit: (exit) => reconciler.containerExited(exit.containerId, exit.exitCode, exit.time),
  });
  exitWatcher.start();
  await source.start();

  // What /healthz and the node's Ready condition say: the loops that supervise are alive.
  const relistMs = config.relistIntervalSeconds * 1000;
  health.add({
    name: 'reconciler',
    required: true,
    check: freshness({ what: 'successful listing of podman', last: () => reconciler.lastPassAt, error: () => reconciler.lastListError, maxAgeMs: Math.max(3 * relistMs, 60_000), startedAt }),
  });
  health.add({ name: 'podman-events', required: false, check: () => (events.pid === undefined ? { ok: false, message: 'not connected; relisting every ' + config.relistIntervalSeconds + ' s meanwhile' } : { ok: true }) });
  health.add({ name: 'manifests', required: false, check: () => (manifestDirError ? { ok: false, message: manifestDirError } : { ok: true, ...(invalidFiles.size ? { message: `${invalidFiles.size} file(s) with errors` } : {}) }) });
  feed?.sync();
  // The node's heartbeat and readiness move on even when no pod changes.
  const feedTimer = feed ? setInterval(() => feed?.sync(), 10_000) : undefined;
  feedTimer?.unref();

  const readers = store ? await startReaders({ config, store, health, metrics, logger }) : undefined;
  logger.info('podvisor running', { manifestDir: config.manifestDir, node: config.nodeName, stateDir: config.stateDir });

  return {
    async stop(deadlineMs) {
      clearInterval(feedTimer);
      await readers?.stop();
      await source.close();
      watchers.abort();
      exitWatcher.stop();
      await events.stop();
      await oomWatcher.stop();
      await probes.stop();
      await reconciler.stop(deadlineMs);
      await supervision.flush();
      await status?.stop();
    },
    abort: () => reconciler.abort(),
  };
}

/** The running app containers and sidecars of pods that run their desired spec: what is probed. */
function probedContainers(desired: DesiredState, observation: Observation): ProbedContainer[] {
  const out: ProbedContainer[] = [];
  for (const pod of observation.pods) {
    const spec = desired.pods.get(pod.key);
    if (!spec || spec.hash !== pod.hash) continue;
    const specs = [...spec.pod.spec.containers, ...(spec.pod.spec.initContainers ?? []).filter((one) => one.restartPolicy === 'Always')];
    for (const container of pod.containers) {
      const containerSpec = specs.find((one) => one.name === container.name);
      if (!containerSpec || container.state !== 'running' || !container.startedAt) continue;
      if (!containerSpec.livenessProbe && !containerSpec.readinessProbe && !containerSpec.startupProbe) continue;
      out.push({
        containerId: container.id,
        podKey: pod.key,
        containerName: container.name,
        pid: container.pid,
        hostNetwork: spec.pod.spec.hostNetwork ?? false,
        ports: containerSpec.ports ?? [],
        startedAt: container.startedAt,
        livenessProbe: containerSpec.livenessProbe,
        readinessProbe: containerSpec.readinessProbe,
        startupProbe: containerSpec.startupProbe,
      });
    }
  }
  return out;
}

/** podman's version, for the node's container runtime ("unknown" when podman will not say). */
async function podmanVersion(cli: PodmanCli, logger: Logger): Promise<string> {
  try {
    const info = await cli.json<{ Client?: { Version?: string } }>(['version', '--format', 'json'], { timeoutMs: 30_000 });
    return info.Client?.Version ?? 'unknown';
  } catch (error) {
    logger.warn(`cannot read podman's version: ${errorMessage(error)}`);
    return 'unknown';
  }
}
