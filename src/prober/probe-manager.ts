// The prober's front: the supervisor syncs the running containers, the manager keeps one
// ContainerProber per container instance (new ids get workers, gone ones lose them, a restarted
// container is probed afresh) and answers started/ready. Results reach the supervisor through
// `onChange`; a 'kill' there is for the supervisor to carry out, as the kubelet's pod sync does for
// a liveness failure. The probes' results are the manager's alone: everyone else reads status().
import type { Logger } from '../log/logger.js';
import type { PodmanCli } from '../runtime/podman-cli.js';
import { ContainerProber, instanceKey } from './container-prober.js';
import { PodProbeRunner, type ProbeRunner } from './probe-runner.js';
import type { ProbedContainer, ProbeKind, ProbeOutcome, ProbeStatus, ProbeUpdate } from './types.js';

export interface ProbeManagerOptions {
  cli: PodmanCli;
  logger: Logger;
  /**
   * Called for each run that changed a probe's settled result or that earns an event (a failure,
   * an error or a warning); see ProbeUpdate. Called synchronously from the prober: it may call
   * sync() (to drop a container it kills, say).
   */
  onChange(update: ProbeUpdate): void;
  /** Told of every run's result, changed or not (the metrics count them). */
  onResult?: (kind: ProbeKind, result: ProbeOutcome['result']) => void;
  /** The clock, in ms since the epoch (tests pass a fake). */
  now?: () => number;
  /** Runs the handlers (default: exec through `cli`, network probes in the pod's netns). */
  runner?: ProbeRunner;
}

const UNKNOWN: ProbeStatus = { started: false, ready: false };

export class ProbeManager {
  readonly #options: ProbeManagerOptions;
  readonly #runner: ProbeRunner;
  readonly #now: () => number;
  readonly #startedAtMs: number;
  readonly #probers = new Map<string, ContainerProber>();
  /** Probers being stopped, for stop() to wait on. */
  readonly #stopping = new Set<Promise<void>>();
  #stopped = false;

  constructor(options: ProbeManagerOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#runner = options.runner ?? new PodProbeRunner({ cli: options.cli, logger: options.logger });
    // A runner made elsewhere without a logger says through the manager's which way exec probes go.
    this.#runner.attachLogger?.(options.logger);
    this.#startedAtMs = this.#now();
  }

  /**
   * Makes the probed set equal `containers`: the running app (and sidecar) containers. A container
   * left out (gone, exited, killed) loses its workers and its results; one seen again with a new
   * startedAt (restarted), new probes or new ports is probed from scratch.
   */
  sync(containers: readonly ProbedContainer[]): void {
    if (this.#stopped) return;
    const wanted = new Map(containers.map((container) => [container.containerId, container]));
    for (const [id, prober] of this.#probers) {
      if (!wanted.has(id)) this.#retire(id, prober);
    }
    for (const container of wanted.values()) {
      const existing = this.#probers.get(container.containerId);
      if (existing !== undefined && existing.key === instanceKey(container)) {
        existing.refresh(container);
        continue;
      }
      if (existing !== undefined) this.#retire(container.containerId, existing);
      const prober = new ContainerProber(container, {
        runner: this.#runner,
        logger: this.#options.logger,
        now: this.#now,
        emit: (update) => this.#options.onChange(update),
        ...(this.#options.onResult ? { onResult: this.#options.onResult } : {}),
        managerStartedAtMs: this.#startedAtMs,
      });
      this.#probers.set(container.containerId, prober);
      prober.start();
    }
  }

  /** Started and ready of a probed container; an unknown one is neither. */
  status(containerId: string): ProbeStatus {
    return this.#probers.get(containerId)?.status() ?? UNKNOWN;
  }

  /** Stops every worker; resolves once no probe is in flight. sync() does nothing afterwards. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const [id, prober] of this.#probers) this.#retire(id, prober);
    await Promise.all([...this.#stopping]);
  }

  /** Stops a prober and forgets it. */
  #retire(id: string, prober: ContainerProber): void {
    this.#probers.delete(id);
    const stopping = prober.stop().finally(() => this.#stopping.delete(stopping));
    this.#stopping.add(stopping);
  }
}
