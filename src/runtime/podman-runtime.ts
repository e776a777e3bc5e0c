// PodRuntime on podman: one listing (two podman calls, whatever the number of pods), and the
// few podman processes a pod needs to start: `pod create`, then one `run` per container.
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import type { DesiredPod, PodIdentity } from '../manifest/identity.js';
import type { Container } from '../manifest/pod-schema.js';
import { classifyStartFailure, ContainerStartError, SandboxStartError } from './container-errors.js';
import { needsPodIP, type PodFacts } from './environment.js';
import { hookFailure, runHook, type HttpGetInPod } from './lifecycle-hooks.js';
import { LABEL, podmanPodName } from './labels.js';
import { containerRunArgs, effectiveRunAsUser, podCreateArgs, requiresNonRoot } from './podman-args.js';
import { PodmanCli, PodmanError } from './podman-cli.js';
import type { ContainerState, ListOptions, Observation, ObservedContainer, ObservedPod, PodRuntime } from './types.js';
import { podDirectory, prepareVolumes, removePodDirectory, type HostVolume } from './volumes.js';
import { writeJsonAtomic } from '../state/state-file.js';
import { POD_SPEC_FILE, readSavedSpec } from '../state/pod-specs.js';
import { allContainers, containerNamed, isSidecar } from '../manifest/pod-containers.js';


/** `podman pod ps --format json`, as 4.3 through 5.x print it (fields podvisor reads). */
interface PodPsEntry {
  Id: string;
  Name: string;
  Status?: string;
  InfraId?: string;
  Labels?: Record<string, string> | null;
  Containers?: { Id: string; Names?: string; Status?: string }[] | null;
}

/** `podman ps -a --format json`, as 4.3 through 5.x print it (fields podvisor reads). */
interface PsEntry {
  Id: string;
  Image?: string;
  ImageID?: string;
  State?: string;
  Exited?: boolean;
  ExitCode?: number;
  ExitedAt?: number;
  StartedAt?: number;
  Labels?: Record<string, string> | null;
  Pod?: string;
  Pid?: number;
}

/** `podman run` may pull the image first: allow for a slow link. */
const RUN_TIMEOUT_MS = 15 * 60_000;

const STATES: readonly ContainerState[] = ['created', 'running', 'exited', 'paused'];

/** How long one half of the listing may take. */
const LIST_TIMEOUT_MS = 60_000;

/**
 * A listing's JSON: a list of objects, or podman's `null` for none. Anything else (nothing at
 * all, a cut-short document, an object) is an error of the listing, never "no pods": planning on
 * it would start every pod a second time.
 */
export function parseListingOutput<T extends { Id: string }>(args: readonly string[], stdout: string): T[] {
  const command = `podman ${args.slice(0, 2).join(' ')}`;
  if (stdout.trim() === '') throw new PodmanError(`${command}: printed nothing (a JSON list was expected)`, { args });
  let value: unknown;
  try {
    value = JSON.parse(stdout);
  } catch (error) {
    throw new PodmanError(`${command}: output is not JSON (${stdout.length} bytes: ${JSON.stringify(stdout.slice(0, 60))}...)`, { args, cause: error });
  }
  if (value === null) return [];
  if (!Array.isArray(value) || !value.every((entry) => entry !== null && typeof entry === 'object' && !Array.isArray(entry) && typeof (entry as { Id?: unknown }).Id === 'string')) {
    throw new PodmanError(`${command}: output is not a list of entries with an Id: ${JSON.stringify(stdout.slice(0, 60))}`, { args });
  }
  return value as T[];
}

/** A unix time from podman, or undefined for its "zero time" (negative) and 0. */
function unixTime(seconds: number | undefined): Date | undefined {
  return seconds !== undefined && seconds > 0 ? new Date(seconds * 1000) : undefined;
}

/** podman 4 says "stopped" for some exited containers and 5 "stopping" on the way; fold them. */
function containerState(state: string | undefined): ContainerState {
  const lower = (state ?? '').toLowerCase();
  if (lower === 'stopped' || lower === 'stopping') return 'exited';
  if (lower === 'configured' || lower === 'initialized') return 'created';
  return STATES.includes(lower as ContainerState) ? (lower as ContainerState) : 'unknown';
}

/** Turns the two listings into podvisor's pods, keeping only those of `nodeName`. */
export function parseListing(pods: PodPsEntry[] | null, containers: PsEntry[] | null, nodeName: string): Observation {
  const byPod = new Map<string, ObservedContainer[]>();
  for (const entry of containers ?? []) {
    const labels = entry.Labels ?? {};
    if (!entry.Pod || labels[LABEL.CONTAINER] === undefined) continue;
    const list = byPod.get(entry.Pod) ?? [];
    list.push({
      id: entry.Id,
      name: labels[LABEL.CONTAINER] ?? '',
      kind: labels[LABEL.CONTAINER_KIND] === 'init' ? 'init' : 'app',
      state: containerState(entry.State),
      // podman reports ExitCode 0 for containers that have not exited: that is no exit code.
      exitCode: entry.Exited === true || containerState(entry.State) === 'exited' ? entry.ExitCode : undefined,
      startedAt: unixTime(entry.StartedAt),
      finishedAt: unixTime(entry.ExitedAt),
      image: entry.Image ?? '',
      imageId: entry.ImageID ?? '',
      pid: entry.Pid !== undefined && entry.Pid > 0 ? entry.Pid : undefined,
    });
    byPod.set(entry.Pod, list);
  }
  const observed: ObservedPod[] = [];
  let foreignPods = 0;
  for (const entry of pods ?? []) {
    const labels = entry.Labels ?? {};
    if (labels[LABEL.MANAGED] !== 'true') continue;
    if (labels[LABEL.NODE] !== nodeName) {
      foreignPods++;
      continue;
    }
    const infra = (entry.Containers ?? []).find((container) => container.Id === entry.InfraId);
    const namespace = labels[LABEL.NAMESPACE] ?? 'default';
    const name = labels[LABEL.NAME] ?? entry.Name;
    observed.push({
      id: entry.Id,
      podmanName: entry.Name,
      key: `${namespace}/${name}`,
      name,
      namespace,
      uid: labels[LABEL.UID] ?? '',
      hash: labels[LABEL.HASH] ?? '',
      source: labels[LABEL.SOURCE] ?? '',
      gracePeriodSeconds: Number(labels[LABEL.GRACE] ?? 30) || 0,
      infraRunning: (infra?.Status ?? '').toLowerCase() === 'running',
      infraId: entry.InfraId,
      containers: byPod.get(entry.Id) ?? [],
    });
  }
  return { pods: observed, foreignPods };
}

/** The node's first non-loopback IPv4 address, for status.hostIP. */
export function detectHostIP(): string {
  for (const addresses of Object.values(networkInterfaces())) {
    const found = addresses?.find((address) => address.family === 'IPv4' && !address.internal);
    if (found) return found.address;
  }
  return '127.0.0.1';
}

export interface PodmanRuntimeOptions {
  cli: PodmanCli;
  nodeName: string;
  stateDir: string;
  hostIP?: string;
  /** The bound on each container's log file (--container-log-max-size). */
  containerLogMaxBytes?: number;
  /** Told of each orphaned pod directory before it is removed (for the log). */
  onOrphan?: (uid: string) => void;
  /** HTTP GET in a pod's network namespace, for httpGet hooks (from the prober). */
  httpGet?: HttpGetInPod;
  /** Told of what happened to a container as it was made (Pulling, Pulled, Created). */
  onContainerEvent?: (pod: PodIdentity, container: { name: string; kind: 'init' | 'app' }, reason: string, message: string) => void;
  /** Whether the kernel log says the OOM killer struck a container during a run (see OomWatcher). */
  kernelOomKill?: (containerId: string, startedAt: Date | undefined, finishedAt: Date | undefined) => boolean;
  /** Told of a preStop hook that failed (the container is stopped all the same). */
  onHookFailure?: (pod: ObservedPod, container: string, message: string) => void;
  /**
   * Told of a podman call that failed where the work goes on without it (a stop the pod stop
   * after it covers, an inspect asked again next pass): what was being done, for which pod and
   * container. Nothing podman says is dropped unlogged.
   */
  onCallFailure?: (action: string, error: unknown, pod?: PodIdentity, container?: string) => void;
  /**
   * Awaited before containers are made: resolves once image archives being loaded are in
   * (bounded by its giver), so a pod whose image comes from one is not made before it is there.
   */
  imagesReady?: (pod: PodIdentity, signal?: AbortSignal) => Promise<void>;
}

/** The kubelet's oom_score_adj for node-critical pods (its guaranteedOOMScoreAdj). */
export const NODE_CRITICAL_OOM_SCORE_ADJ = -997;

export class PodmanRuntime implements PodRuntime {
  readonly #cli: PodmanCli;
  readonly #nodeName: string;
  readonly #logMaxBytes: number | undefined;
  readonly #stateDir: string;
  readonly #hostIP: string;
  readonly #onOrphan: ((uid: string) => void) | undefined;
  readonly #httpGet: HttpGetInPod | undefined;
  readonly #onHookFailure: PodmanRuntimeOptions['onHookFailure'];
  readonly #onContainerEvent: PodmanRuntimeOptions['onContainerEvent'];
  readonly #kernelOomKill: PodmanRuntimeOptions['kernelOomKill'];
  readonly #onCallFailure: PodmanRuntimeOptions['onCallFailure'];
  readonly #imagesReady: PodmanRuntimeOptions['imagesReady'];
  /** Whether each exit with code 137 was an OOM kill, by container id and exit time. */
  readonly #oomKills = new Map<string, boolean>();
  /** Pod addresses by infra container id (a container's address does not change while it runs). */
  readonly #podIPs = new Map<string, string>();

  constructor(options: PodmanRuntimeOptions) {
    this.#cli = options.cli;
    this.#nodeName = options.nodeName;
    this.#logMaxBytes = options.containerLogMaxBytes;
    this.#stateDir = options.stateDir;
    this.#hostIP = options.hostIP ?? detectHostIP();
    this.#onOrphan = options.onOrphan;
    this.#httpGet = options.httpGet;
    this.#onHookFailure = options.onHookFailure;
    this.#onContainerEvent = options.onContainerEvent;
    this.#onCallFailure = options.onCallFailure;
    this.#kernelOomKill = options.kernelOomKill;
    this.#imagesReady = options.imagesReady;
  }

  async list(signal?: AbortSignal, options: ListOptions = {}): Promise<Observation> {
    const filter = ['--filter', `label=${LABEL.MANAGED}=true`, '--format', 'json'];
    // When one half fails the pass is over: the other is cancelled rather than left to run to its
    // timeout, and waited for (a podman deaf to SIGTERM is killed 2 s later), so that no listing
    // outlives its pass, nor the agent when it stops.
    const halves = new AbortController();
    const both = signal ? AbortSignal.any([signal, halves.signal]) : halves.signal;
    let firstError: unknown;
    const listing = async <T extends { Id: string }>(args: string[]): Promise<T[]> => {
      try {
        const { stdout } = await this.#cli.run(args, { signal: both, timeoutMs: LIST_TIMEOUT_MS });
        return parseListingOutput<T>(args, stdout);
      } catch (error) {
        if (!halves.signal.aborted) firstError = error;
        halves.abort(error);
        throw error;
      }
    };
    const [podsResult, containersResult] = await Promise.allSettled([
      listing<PodPsEntry>(['pod', 'ps', ...filter]),
      listing<PsEntry>(['ps', '--all', ...filter]),
    ]);
    if (podsResult.status === 'rejected' || containersResult.status === 'rejected') throw firstError;
    const [pods, containers] = [podsResult.value, containersResult.value];
    const observation = parseListing(pods, containers, this.#nodeName);
    await this.#addPodIPs(observation, options.newAddresses ?? true, signal);
    await this.#addOomKills(observation, signal);
    return observation;
  }

  /** Whether an exit by SIGKILL (137) was the OOM killer's: one inspect for the exits not seen before. */
  async #addOomKills(observation: Observation, signal?: AbortSignal): Promise<void> {
    const exitKey = (container: ObservedContainer) => `${container.id}@${container.finishedAt?.getTime() ?? 0}`;
    const killed = observation.pods.flatMap((pod) => pod.containers).filter((container) => container.state === 'exited' && container.exitCode === 137);
    const fresh = killed.filter((container) => !this.#oomKills.has(exitKey(container)));
    if (fresh.length > 0) {
      try {
        const { stdout } = await this.#cli.run(['container', 'inspect', '--format', '{{.Id}} {{.State.OOMKilled}}', ...fresh.map((container) => container.id)], { signal, timeoutMs: 30_000 });
        const answers = new Map(stdout.split('\n').map((line) => line.trim().split(' ') as [string, string]));
        for (const container of fresh) this.#oomKills.set(exitKey(container), answers.get(container.id) === 'true');
      } catch (error) {
        // A container removed meanwhile: asked again next pass if it is still there.
        this.#onCallFailure?.('inspect exited containers for OOM kills', error);
      }
    }
    const live = new Set(killed.map(exitKey));
    for (const key of this.#oomKills.keys()) if (!live.has(key)) this.#oomKills.delete(key);
    for (const container of killed) {
      // The kernel's word is asked on every pass: its log line may arrive after podman's answer.
      if (this.#oomKills.get(exitKey(container)) || this.#kernelOomKill?.(container.id, container.startedAt, container.finishedAt)) container.oomKilled = true;
    }
  }

  /** Pod addresses: one inspect of the infra containers not seen before (none on most passes). */
  async #addPodIPs(observation: Observation, inspectNew: boolean, signal?: AbortSignal): Promise<void> {
    const fresh = observation.pods.filter((pod) => pod.infraRunning && pod.infraId && !this.#podIPs.has(pod.infraId)).map((pod) => pod.infraId ?? '');
    if (fresh.length > 0 && inspectNew) {
      try {
        const { stdout } = await this.#cli.run(['container', 'inspect', '--format', '{{.Id}} {{.NetworkSettings.IPAddress}}', ...fresh], { signal, timeoutMs: 30_000 });
        for (const line of stdout.split('\n')) {
          const [id, ip] = line.trim().split(' ');
          if (id) this.#podIPs.set(id, ip ?? '');
        }
      } catch (error) {
        // An infra container that went away meanwhile: its address is asked for again next pass.
        this.#onCallFailure?.('inspect new pods for their addresses', error);
      }
    }
    const live = new Set(observation.pods.map((pod) => pod.infraId));
    for (const id of this.#podIPs.keys()) if (!live.has(id)) this.#podIPs.delete(id);
    for (const pod of observation.pods) {
      const ip = pod.infraId ? this.#podIPs.get(pod.infraId) : undefined;
      if (ip) pod.podIP = ip;
    }
  }

  async createPod(pod: DesiredPod, signal?: AbortSignal): Promise<string[]> {
    await this.#imagesReady?.(pod, signal);
    await this.#checkRunAsNonRoot(pod, signal);
    const facts: PodFacts = { hostIP: this.#hostIP, podIP: pod.pod.spec.hostNetwork ? this.#hostIP : '' };
    const podmanName = podmanPodName(pod.namespace, pod.name);
    try {
      const volumes = await prepareVolumes(pod, this.#stateDir, facts);
      // The spec is saved (with an fsync, slow on an SD card) while podman creates the pod; both
      // are settled before anything else, so a failure of either cleans up after both.
      const [saved, created] = await Promise.allSettled([
        this.#saveSpec(pod),
        this.#cli.run([...podCreateArgs(pod, this.#nodeName), '--infra-name', `${podmanName}-infra`], { signal }),
      ]);
      // A pod podman cannot make (its name taken by a pod podvisor did not create) is a sandbox that
      // cannot be made: the kubelet's FailedCreatePodSandBox, backed off as a failed start.
      if (created.status === 'rejected') throw signal?.aborted ? created.reason : new SandboxStartError(firstApp(pod), created.reason);
      if (saved.status === 'rejected') throw saved.reason;
      return await this.#startPod(pod, podmanName, volumes, facts, signal);
    } catch (error) {
      // Without a pod, nothing would ever clean up the volumes prepared for it.
      if (!(await this.#podExists(podmanName).catch(() => true))) await removePodDirectory(this.#stateDir, pod.uid);
      throw error;
    }
  }

  async #startPod(pod: DesiredPod, podmanName: string, volumes: Map<string, HostVolume>, facts: PodFacts, signal?: AbortSignal): Promise<string[]> {
    await this.#startSandbox(pod, podmanName, false, facts, firstApp(pod), signal);
    return await this.#runContainers(pod, [], volumes, facts, signal);
  }

  /**
   * Starts the pod's infra container first when the pod needs its address or publishes host
   * ports, so that a sandbox that cannot start (a host port another process holds) fails as the
   * sandbox, before any container of the pod is made. Otherwise `podman run` would start it and
   * leave the new container created, never started, blamed for what is the sandbox's fault.
   */
  async #startSandbox(pod: DesiredPod, podmanName: string, infraRunning: boolean, facts: PodFacts, next: string, signal?: AbortSignal): Promise<void> {
    if (pod.pod.spec.hostNetwork) return;
    const address = needsPodIP(pod);
    if (!address && (infraRunning || !publishesHostPorts(pod))) return;
    try {
      if (!infraRunning) await this.#cli.run(['start', `${podmanName}-infra`], { signal });
      if (address) facts.podIP = await this.#infraAddress(podmanName, signal);
    } catch (error) {
      throw signal?.aborted ? error : new SandboxStartError(next, error);
    }
  }

  async createContainers(observed: ObservedPod, pod: DesiredPod, names: string[], signal?: AbortSignal): Promise<string[]> {
    await this.#imagesReady?.(pod, signal);
    const facts: PodFacts = { hostIP: this.#hostIP, podIP: pod.pod.spec.hostNetwork ? this.#hostIP : '' };
    const volumes = await prepareVolumes(pod, this.#stateDir, facts);
    await this.#startSandbox(pod, observed.podmanName, observed.infraRunning, facts, names[0] ?? firstApp(pod), signal);
    const present = observed.containers.filter((container) => !names.includes(container.name));
    return await this.#runContainers(pod, present, volumes, facts, signal);
  }

  async killPod(observed: ObservedPod, gracePeriodSeconds: number, signal?: AbortSignal, spec?: DesiredPod): Promise<void> {
    await this.stopPod(observed, gracePeriodSeconds, signal, spec);
    try {
      await this.#ignoreMissing(this.#cli.run(['pod', 'rm', '--force', observed.id], { signal, timeoutMs: 60_000 }));
    } catch (error) {
      // podman can report a failure for a pod it did remove (e.g. a cgroup it could not delete).
      if (await this.#podExists(observed.id)) throw error;
    }
    await removePodDirectory(this.#stateDir, observed.uid);
  }

  /**
   * Keeps the spec a pod was made from beside its volumes, so that a pod whose manifest went away
   * while the agent was down is still stopped with its preStop hooks and sidecar order.
   */
  async #saveSpec(pod: DesiredPod): Promise<void> {
    const directory = podDirectory(this.#stateDir, pod.uid);
    await mkdir(directory, { recursive: true });
    await writeJsonAtomic(join(directory, POD_SPEC_FILE), pod);
  }

  /** The spec saved for a pod by the agent that made it (undefined when none is readable). */
  async #savedSpec(uid: string): Promise<DesiredPod | undefined> {
    return await readSavedSpec(this.#stateDir, uid);
  }

  async stopPod(observed: ObservedPod, gracePeriodSeconds: number, signal?: AbortSignal, known?: DesiredPod): Promise<void> {
    const spec = known ?? (await this.#savedSpec(observed.uid));
    const timeoutMs = (gracePeriodSeconds + 60) * 1000;
    const inits = spec?.pod.spec.initContainers ?? [];
    const sidecars = inits.filter(isSidecar).map((container) => container.name);
    const hasPreStop = [...inits, ...(spec?.pod.spec.containers ?? [])].some((container) => container.lifecycle?.preStop);
    if (hasPreStop || sidecars.length > 0) {
      // The kubelet's order: preStop hooks, then the stop signal, app containers together, then
      // sidecars in reverse order; SIGKILL when the grace period is spent (never under 2 s).
      const deadline = Date.now() + gracePeriodSeconds * 1000;
      const running = observed.containers.filter((container) => container.state === 'running');
      await Promise.all(running.filter((container) => !sidecars.includes(container.name)).map((container) => this.#stopContainer(observed, container, spec, deadline, signal)));
      for (const name of [...sidecars].reverse()) {
        const container = running.find((one) => one.name === name);
        if (container) await this.#stopContainer(observed, container, spec, deadline, signal);
      }
    }
    // Whatever is left (the infra container, or everything when no hook or sidecar asks for order).
    await this.#ignoreMissing(this.#cli.run(['pod', 'stop', '--time', String(gracePeriodSeconds), observed.id], { signal, timeoutMs }));
  }

  /** Stops one container as a pod stop would (preStop, signal, SIGKILL after the grace period). */
  async stopContainer(observed: ObservedPod, containerId: string, gracePeriodSeconds: number, spec?: DesiredPod, signal?: AbortSignal): Promise<void> {
    const container = observed.containers.find((one) => one.id === containerId);
    if (container) await this.#stopContainer(observed, container, spec, Date.now() + gracePeriodSeconds * 1000, signal);
  }

  /** preStop (within the grace period), then podman's stop: the stop signal, SIGKILL at the deadline. */
  async #stopContainer(observed: ObservedPod, container: ObservedContainer, spec: DesiredPod | undefined, deadline: number, signal?: AbortSignal): Promise<void> {
    const containerSpec = spec ? containerNamed(spec.pod.spec, container.name) : undefined;
    const preStop = containerSpec?.lifecycle?.preStop;
    if (containerSpec && preStop) {
      try {
        await runHook(this.#cli, this.#httpGet, { containerId: container.id, container: containerSpec, pid: container.pid, hostNetwork: spec?.pod.spec.hostNetwork ?? false }, preStop, Math.max(0, deadline - Date.now()), signal);
      } catch (error) {
        this.#onHookFailure?.(observed, container.name, hookFailure('PreStop', container.name, error));
      }
    }
    const remaining = Math.max(2, Math.ceil((deadline - Date.now()) / 1000));
    try {
      await this.#cli.run(['stop', '--time', String(remaining), container.id], { signal, timeoutMs: (remaining + 60) * 1000 });
    } catch (error) {
      // A pod stop that follows covers what is left; a probe kill is asked for again by the next failure.
      if (!signal?.aborted) this.#onCallFailure?.('stop container', error, observed, container.name);
    }
  }


  async removeOrphanVolumes(keep: ReadonlySet<string>): Promise<void> {
    const uids = await readdir(join(this.#stateDir, 'pods')).catch(() => [] as string[]);
    for (const uid of uids) {
      if (keep.has(uid)) continue;
      this.#onOrphan?.(uid);
      await removePodDirectory(this.#stateDir, uid);
    }
  }

  async startContainer(_observed: ObservedPod, containerId: string, signal?: AbortSignal, spec?: DesiredPod, name?: string): Promise<void> {
    // Told of an exit the moment conmon records it, podvisor can be ahead of podman, which keeps
    // the container "stopping" until its cleanup has run: try again briefly.
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#cli.run(['start', containerId], { signal });
        break;
      } catch (error) {
        const early = error instanceof PodmanError && /state improper|must be in Created or Stopped/i.test(error.stderr);
        if (!early || attempt >= 50) throw error;
        await sleep(100, undefined, { signal });
      }
    }
    const container = spec && name !== undefined ? containerNamed(spec.pod.spec, name) : undefined;
    await this.#protectFromOom(spec, containerId, name, signal);
    if (spec && container) await this.postStart(spec, container, containerId, signal);
  }

  /**
   * The kubelet makes the containers of a system-node-critical pod (etcd, the API server) the OOM
   * killer's last choice. podvisor writes the score from the host once the container runs rather
   * than passing podman's `--oom-score-adj`: where root lacks CAP_SYS_RESOURCE (a container host,
   * a restricted service) that flag keeps the container from starting at all, while a failed
   * write here is only logged and the pod runs.
   */
  async #protectFromOom(pod: DesiredPod | undefined, containerId: string, name: string | undefined, signal?: AbortSignal): Promise<void> {
    if (pod?.pod.spec.priorityClassName !== 'system-node-critical') return;
    try {
      const { stdout } = await this.#cli.run(['inspect', '--type', 'container', '--format', '{{.State.Pid}}', containerId], { signal });
      const pid = Number(stdout.trim());
      if (pid > 0) await writeFile(`/proc/${pid}/oom_score_adj`, String(NODE_CRITICAL_OOM_SCORE_ADJ));
    } catch (error) {
      this.#onCallFailure?.('set the OOM score of a system-node-critical container', error, pod, name);
    }
  }

  /** Runs a container's postStart hook; on failure the container is killed (PostStartHookError). */
  async postStart(pod: DesiredPod, container: Container, containerId: string, signal?: AbortSignal): Promise<void> {
    const hook = container.lifecycle?.postStart;
    if (!hook) return;
    try {
      // The kubelet gives postStart no timeout of its own; the grace period bounds it here.
      const timeoutMs = (pod.pod.spec.terminationGracePeriodSeconds ?? 30) * 1000 + 30_000;
      await runHook(this.#cli, this.#httpGet, { containerId, container, pid: undefined, hostNetwork: pod.pod.spec.hostNetwork ?? false }, hook, timeoutMs, signal);
    } catch (error) {
      const grace = pod.pod.spec.terminationGracePeriodSeconds ?? 30;
      await this.#cli.run(['stop', '--time', String(Math.max(2, grace)), containerId], { signal, timeoutMs: (grace + 60) * 1000 })
        .catch((stopError: unknown) => this.#onCallFailure?.('stop container after its failed postStart hook', stopError, pod, container.name));
      throw new ContainerStartError(container.name, 'PostStartHookError', hookFailure('PostStart', container.name, error), { cause: error });
    }
  }

  /**
   * One step of a pod's start, as the kubelet's SyncPod takes it: the next init container that has
   * not completed is started and the step ends there (its exit is an event that plans the next
   * step; nothing waits for it); once every init container has completed, the sidecars and the
   * app containers not yet present are started. Returns the names of the containers started.
   */
  async #runContainers(pod: DesiredPod, present: ObservedContainer[], volumes: Map<string, HostVolume>, facts: PodFacts, signal?: AbortSignal): Promise<string[]> {
    const spec = pod.pod.spec;
    const started: string[] = [];
    const find = (name: string) => present.find((container) => container.name === name);
    const run = async (container: Container, kind: 'init' | 'app') => {
      const result = await this.#cli.run(containerRunArgs({ pod, container, kind, nodeName: this.#nodeName, volumes, facts, logMaxBytes: this.#logMaxBytes }), { signal, timeoutMs: RUN_TIMEOUT_MS });
      // podman run pulls when it has to and says so on stderr: the kubelet's image events, for free.
      const event = (reason: string, message: string) => this.#onContainerEvent?.(pod, { name: container.name, kind }, reason, message);
      if (/Trying to pull|Getting image source signatures/.test(result.stderr)) {
        event('Pulling', `Pulling image "${container.image}"`);
        event('Pulled', `Successfully pulled image "${container.image}"`);
      } else {
        event('Pulled', `Container image "${container.image}" already present on machine`);
      }
      event('Created', `Created container ${container.name}`);
      return result;
    };
    for (const container of spec.initContainers ?? []) {
      const existing = find(container.name);
      if (existing?.state === 'exited' && existing.exitCode === 0) continue;
      if (existing?.state === 'running' && isSidecar(container)) continue;
      // Still running: its exit plans the next step.
      if (existing?.state === 'running') return started;
      // Detached: the container's output goes to its log, not through podvisor.
      let id = existing?.id;
      try {
        if (id) await this.#cli.run(['start', id], { signal });
        else id = (await run(container, 'init')).stdout.trim();
      } catch (error) {
        throw classifyStartFailure(error, container, id !== undefined);
      }
      started.push(container.name);
      await this.#protectFromOom(pod, id, container.name, signal);
      // A sidecar (restartPolicy: Always) keeps running beside the app containers: the next one starts now.
      if (!isSidecar(container)) return started;
      await this.postStart(pod, container, id, signal);
    }
    for (const container of spec.containers) {
      if (find(container.name)) continue;
      let id: string;
      try {
        id = (await run(container, 'app')).stdout.trim();
      } catch (error) {
        throw classifyStartFailure(error, container, false);
      }
      started.push(container.name);
      await this.#protectFromOom(pod, id, container.name, signal);
      await this.postStart(pod, container, id, signal);
    }
    return started;
  }

  /** The pod's IP on podman's network (its infra container runs). */
  async #infraAddress(podmanName: string, signal?: AbortSignal): Promise<string> {
    const { stdout } = await this.#cli.run(['container', 'inspect', '--format', '{{.NetworkSettings.IPAddress}}', `${podmanName}-infra`], { signal });
    return stdout.trim();
  }

  /** Refuses a container that must not run as root but would (CreateContainerConfigError). */
  async #checkRunAsNonRoot(pod: DesiredPod, signal?: AbortSignal): Promise<void> {
    for (const container of allContainers(pod.pod.spec)) {
      if (!requiresNonRoot(pod, container)) continue;
      let user = effectiveRunAsUser(pod, container)?.toString();
      if (user === undefined) {
        if (container.imagePullPolicy !== 'Never') {
          await this.#cli.run(['image', 'exists', container.image], { signal, okExitCodes: [1] }).then(async (found) => {
            if (found.exitCode !== 0) await this.#cli.run(['pull', '--quiet', container.image], { signal, timeoutMs: 30 * 60_000 });
          });
        }
        const { stdout } = await this.#cli.run(['image', 'inspect', '--format', '{{.Config.User}}', container.image], { signal });
        user = stdout.trim().split(':')[0] ?? '';
      }
      if (user === '' || user === '0' || user === 'root') {
        throw new ContainerStartError(container.name, 'CreateContainerConfigError', 'container has runAsNonRoot and image will run as root');
      }
      if (!/^\d+$/.test(user)) {
        throw new ContainerStartError(container.name, 'CreateContainerConfigError', `container has runAsNonRoot and image has non-numeric user (${user}), cannot verify user is non-root`);
      }
    }
  }

  async #podExists(nameOrId: string): Promise<boolean> {
    const { exitCode } = await this.#cli.run(['pod', 'exists', nameOrId], { okExitCodes: [1] });
    return exitCode === 0;
  }

  async #ignoreMissing(call: Promise<unknown>): Promise<void> {
    try {
      await call;
    } catch (error) {
      if (error instanceof PodmanError && /no such pod|no pod with name or ID/i.test(error.stderr)) return;
      throw error;
    }
  }
}

/** The container a sandbox failure is recorded against: the first app container, whose absence the planner backs off on. */
function firstApp(pod: DesiredPod): string {
  return pod.pod.spec.containers[0]?.name ?? '';
}

/** Whether the pod publishes any host port (its infra container binds them on the host). */
function publishesHostPorts(pod: DesiredPod): boolean {
  return pod.pod.spec.containers.some((container) => (container.ports ?? []).some((port) => port.hostPort !== undefined));
}
