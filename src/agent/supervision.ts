// Supervision, the agent's core: podman (every call through one PodmanCli), the status owner, the
// prober, the runtime, the reconciler and its pod workers, and the watchers that notice change
// (podman's events, conmon's exit files, the kernel's OOM kills). Built in the order each needs
// the others; the desired state comes in through `reconciler.setDesired` (manifest intake).
import { join } from 'node:path';
import type { AgentConfig } from '../config/agent-config.js';
import { errorMessage } from '../errors.js';
import { freshness, type HealthChecks } from '../health/health.js';
import { watchLoopStalls } from '../health/loop-stall.js';
import type { Logger } from '../log/logger.js';
import type { DesiredState } from '../manifest/desired-state.js';
import type { AgentMetrics } from '../metrics/metrics.js';
import { Reconciler } from '../pods/reconciler.js';
import { ProbeManager } from '../prober/probe-manager.js';
import { probeKillMessage } from '../prober/probe-messages.js';
import type { ListedPod } from '../rollout/rollout-guard.js';
import { PodProbeRunner } from '../prober/probe-runner.js';
import type { ProbedContainer, ProbeKind, ProbeUpdate } from '../prober/types.js';
import { ExitWatcher, findExitsDirectory } from '../runtime/exit-watcher.js';
import { IMAGES_WAIT_BOUND_MS, ImageArchives, type ArchiveResult } from '../runtime/image-archives.js';
import { OomWatcher } from '../runtime/oom-watcher.js';
import { PodmanCli } from '../runtime/podman-cli.js';
import { PodmanEventStream } from '../runtime/podman-events.js';
import { detectHostIP, PodmanRuntime } from '../runtime/podman-runtime.js';
import type { Observation } from '../runtime/types.js';
import { checkPodSpecs, readSavedSpec } from '../state/pod-specs.js';
import { SupervisionState } from '../state/supervision-state.js';
import { StatusManager } from '../status/status-manager.js';
import { Listeners } from './listeners.js';
import { loadMetrics } from './readers.js';
import { isSidecar } from '../manifest/pod-containers.js';

export interface Supervision {
  cli: PodmanCli;
  hostIP: string;
  status: StatusManager;
  reconciler: Reconciler;
  /** The metrics, when the API that serves them is on. */
  metrics: AgentMetrics | undefined;
  /** The metrics, loaded now if the agent started without them (an API turned on by a reload). */
  ensureMetrics(): Promise<AgentMetrics>;
  /** Takes new intervals and back-off bounds (a reload); running pods are not touched. */
  reconfigure(next: AgentConfig): void;
  /** Told after every change of pod status (the mirror pods follow). */
  statusChanges: Listeners<[]>;
  /** What podman runs now: each pod's hash label and the spec kept beside it; undefined when podman cannot be listed. */
  listRunning(): Promise<ListedPod[] | undefined>;
  /** Stops the watchers and the prober, lets the workers finish within `deadlineMs`, saves state. */
  stop(deadlineMs: number): Promise<void>;
  /** Cancels the workers' work in flight at once (a second signal). */
  abort(): void;
}

/** Builds and starts supervision; nothing is planned until the first desired state arrives. */
export async function startSupervision(config: AgentConfig, logger: Logger, health: HealthChecks): Promise<Supervision> {
  const startedAt = Date.now();
  const podmanCalls = new Listeners<[args: readonly string[], result: { exitCode: number | undefined; durationMs: number }]>();
  podmanCalls.add((args, result) => logger.debug('podman', { event: 'PodmanCall', args: args.slice(0, 3).join(' '), exitCode: result.exitCode, ms: Math.round(result.durationMs) }));
  const cli = new PodmanCli({ onCall: podmanCalls.emit });
  const hostIP = detectHostIP();

  // The prober reports to the status owner and the pod workers, which are built after it.
  const probeResults = new Listeners<[kind: ProbeKind, result: string]>();
  const probeUpdates = new Listeners<[update: ProbeUpdate]>();
  const probeRunner = new PodProbeRunner({ cli });
  const probes = new ProbeManager({ cli, logger, runner: probeRunner, onResult: probeResults.emit, onChange: probeUpdates.emit });

  await checkPodSpecs(config.stateDir, logger);
  const supervision = await SupervisionState.load(config.stateDir, { initialMs: config.backoffInitialSeconds * 1000, maxMs: config.backoffMaxSeconds * 1000 }, logger);
  const statusChanges = new Listeners<[]>();
  const status = new StatusManager({ stateDir: config.stateDir, logger, supervision, hostIP, probes, onChange: statusChanges.emit });
  await status.load();
  status.start();

  const archiveResults = new Listeners<[result: ArchiveResult]>();
  let metrics: AgentMetrics | undefined;
  const wireMetrics = (loaded: AgentMetrics) => {
    metrics = loaded;
    podmanCalls.add((args, result) => loaded.podmanCall(args, result.exitCode, result.durationMs));
    // The kubelet's prober_probe_total: every run, by probe type and result.
    probeResults.add((kind, result) => loaded.probeResults.inc({ probe_type: kind, result }));
    archiveResults.add((result) => loaded.imageArchiveLoads.inc({ result }));
    return loaded;
  };
  const startMetrics = await loadMetrics(config, () => status.pods());
  if (startMetrics) wireMetrics(startMetrics);

  // Image archives in the images directory are loaded into podman (once each) while supervision
  // starts; pod creation waits for loads in flight (bounded), the first reconcile pass does not:
  // restarts and status of pods that run already need no image.
  const imagesLoaded = new Listeners<[]>();
  const images = new ImageArchives({
    dir: config.imagesDir ?? join(config.stateDir, 'images'),
    stateDir: config.stateDir,
    cli,
    logger,
    rescanIntervalMs: config.resyncIntervalSeconds * 1000,
    onResult: archiveResults.emit,
    onLoaded: () => imagesLoaded.emit(),
  });
  await images.start();

  const watchers = new AbortController();
  const oomWatcher = new OomWatcher({ logger, signal: watchers.signal });
  oomWatcher.start();
  const runtime = new PodmanRuntime({
    cli,
    nodeName: config.nodeName,
    stateDir: config.stateDir,
    containerLogMaxBytes: config.containerLogMaxBytes,
    hostIP,
    httpGet: probeRunner.httpGetInPod,
    kernelOomKill: (id, from, to) => oomWatcher.killedDuring(id, from, to),
    onOrphan: (uid) => logger.info('removing the volumes of a pod that no longer exists', { uid }),
    onContainerEvent: (pod, container, reason, message) => status.event(pod, 'Normal', reason, message, container),
    onCallFailure: (action, error, pod, container) => {
      logger.warn(`${action} failed: ${errorMessage(error)}`, { event: 'PodmanCallFailed', action, ...(pod ? { pod: pod.key } : {}), ...(container ? { container } : {}) });
    },
    imagesReady: async (pod, signal) => {
      if (!images.busy) return;
      const started = Date.now();
      if (await images.settled({ boundMs: IMAGES_WAIT_BOUND_MS, signal })) {
        logger.debug(`waited ${Date.now() - started} ms for image archives being loaded`, { event: 'ImageArchivesWaited', pod: pod.key, ms: Date.now() - started });
      } else {
        logger.warn(`image archives are still being loaded after ${IMAGES_WAIT_BOUND_MS / 1000} s: creating the pod without waiting longer`, { event: 'ImageArchivesWaitExpired', pod: pod.key });
      }
    },
    onHookFailure: (pod, container, message) => {
      logger.warn(message, { pod: pod.key });
      status.event(pod, 'Warning', 'FailedPreStopHook', message, { name: container, kind: 'app' });
    },
  });

  let lastObservation: { desired: DesiredState; observation: Observation } | undefined;
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
  probeUpdates.add((update) => {
    const desired = lastObservation?.desired.pods.get(update.podKey);
    const observed = lastObservation?.observation.pods.find((pod) => pod.key === update.podKey);
    const kind = observed?.containers.find((one) => one.id === update.containerId)?.kind ?? 'app';
    if (desired && update.reason) status.event(desired, 'Warning', update.reason, update.message, { name: update.containerName, kind });
    status.refresh();
    if (update.action !== 'kill' || !desired) return;
    // A failed liveness (or startup) probe: the pod's worker stops the container, in turn with
    // the pod's other work; its exit is then restarted per policy.
    reconciler.killContainer(update.podKey, {
      containerId: update.containerId,
      containerName: update.containerName,
      gracePeriodSeconds: update.gracePeriodSeconds ?? desired.pod.spec.terminationGracePeriodSeconds ?? 30,
      message: probeKillMessage(update.kind, update.containerName),
    });
  });
  reconciler.start();
  // Pods that could not be made for want of an image are tried again (their back-off still applies).
  imagesLoaded.add(() => reconciler.trigger());

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
    // A container's exit or removal is news; its start is not (podvisor started it, or the relist
    // sees one started behind its back), and during a burst of starts each pass it triggered
    // would cost two podman processes competing with the starts.
    onEvent: (event) => {
      if (event.kind === 'died' || event.kind === 'remove') reconciler.trigger();
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
    onExit: (exit) => {
      // The status first: a restart decided on this exit may come before any listing shows it.
      status.containerExited(exit.containerId, exit.exitCode, exit.time);
      reconciler.containerExited(exit.containerId, exit.exitCode, exit.time);
    },
  });
  exitWatcher.start();

  // What /healthz and the node's Ready condition say: the loops that supervise are alive. As the
  // kubelet's PLEG (unhealthy after 3 minutes without a relist): a busy podman takes its time (a
  // listing of 200 pods starting at once took 42 s here) and is slow, not dead; 60 s flapped.
  const relistMs = config.relistIntervalSeconds * 1000;
  health.add({
    name: 'reconciler',
    required: true,
    check: freshness({ what: 'successful listing of podman', last: () => reconciler.lastPassAt, error: () => reconciler.lastListError, maxAgeMs: Math.max(3 * relistMs, 180_000), startedAt }),
  });
  // A held event loop delays every decision; it is logged, with its length, for the operator.
  const loopStalls = watchLoopStalls({
    onStall: (stall) => {
      metrics?.loopStalls.inc();
      logger.warn(`the agent's event loop was held for ${stall.heldMs} ms`, { event: 'EventLoopStalled', ms: stall.heldMs });
    },
  });
  health.add({ name: 'podman-events', required: false, check: () => (events.pid === undefined ? { ok: false, message: `not connected; relisting every ${config.relistIntervalSeconds} s meanwhile` } : { ok: true }) });

  return {
    cli,
    hostIP,
    status,
    reconciler,
    get metrics() {
      return metrics;
    },
    async ensureMetrics() {
      if (metrics) return metrics;
      const { AgentMetrics } = await import('../metrics/metrics.js');
      return metrics ?? wireMetrics(new AgentMetrics({ pods: () => status.pods() }));
    },
    reconfigure(next) {
      reconciler.setRelistInterval(next.relistIntervalSeconds * 1000);
      supervision.backoff.setOptions({ initialMs: next.backoffInitialSeconds * 1000, maxMs: next.backoffMaxSeconds * 1000 });
    },
    statusChanges,
    async listRunning() {
      try {
        const { pods } = await runtime.list(watchers.signal, { newAddresses: false });
        return await Promise.all(pods.map(async (pod) => ({ key: pod.key, hash: pod.hash, spec: await readSavedSpec(config.stateDir, pod.uid) })));
      } catch (error) {
        logger.warn(`cannot list podman's pods: ${errorMessage(error)}; taking each pod's last Ready spec as what runs`, { event: 'RunningUnknown' });
        return undefined;
      }
    },
    async stop(deadlineMs) {
      watchers.abort();
      await images.stop();
      loopStalls.stop();
      exitWatcher.stop();
      await events.stop();
      await oomWatcher.stop();
      await probes.stop();
      await reconciler.stop(deadlineMs);
      await supervision.flush();
      await status.stop();
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
    const specs = [...spec.pod.spec.containers, ...(spec.pod.spec.initContainers ?? []).filter(isSidecar)];
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
