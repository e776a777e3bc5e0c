// The probes of one container instance: up to three workers (startup, liveness, readiness) and the
// settled results they share. The startup probe holds the other two back until it succeeds; a
// settled liveness or startup failure asks for a kill and puts that worker on hold; readiness
// decides `ready`. One AbortController ends all three.
import type { Logger } from '../log/logger.js';
import type { Probe } from '../manifest/pod-schema.js';
import { probeEvent } from './probe-messages.js';
import { failureKills, initialResult, probeStatus, type SettledResult } from './probe-results.js';
import type { ProbeRunner, ProbeTarget } from './probe-runner.js';
import { toProbeSpec, type ProbeSpec } from './probe-spec.js';
import { ProbeWorker } from './probe-worker.js';
import type { ProbedContainer, ProbeKind, ProbeOutcome, ProbeStatus, ProbeUpdate } from './types.js';

export interface ContainerProberOptions {
  runner: ProbeRunner;
  logger: Logger;
  now: () => number;
  emit: (update: ProbeUpdate) => void;
  /** Told of every run's result. */
  onResult?: (kind: ProbeKind, result: ProbeOutcome['result']) => void;
  /** When the manager started: probes of containers already running then are spread out. */
  managerStartedAtMs: number;
}

const KINDS: readonly ProbeKind[] = ['startup', 'liveness', 'readiness'];

/** The parts of a container that, when changed, make it a new instance to probe afresh. */
export function instanceKey(container: ProbedContainer): string {
  return JSON.stringify([
    container.startedAt.getTime(),
    container.hostNetwork,
    container.ports,
    container.livenessProbe ?? null,
    container.readinessProbe ?? null,
    container.startupProbe ?? null,
  ]);
}

export class ContainerProber {
  readonly key: string;
  #container: ProbedContainer;
  readonly #options: ContainerProberOptions;
  readonly #abort = new AbortController();
  readonly #workers = new Map<ProbeKind, ProbeWorker>();
  readonly #specs = new Map<ProbeKind, ProbeSpec>();
  /** Settled results, for the kinds this container has a probe of. */
  readonly #results = new Map<ProbeKind, SettledResult>();

  constructor(container: ProbedContainer, options: ContainerProberOptions) {
    this.key = instanceKey(container);
    this.#container = container;
    this.#options = options;
    for (const kind of KINDS) {
      const probe = probeOf(container, kind);
      if (probe === undefined) continue;
      this.#specs.set(kind, toProbeSpec(probe));
      this.#results.set(kind, initialResult(kind));
    }
  }

  /** Takes fresher facts about the same instance (its pid). */
  refresh(container: ProbedContainer): void {
    this.#container = container;
  }

  /** Started and ready, from the settled results. */
  status(): ProbeStatus {
    return probeStatus({ startup: this.#results.get('startup'), readiness: this.#results.get('readiness') });
  }

  /** Starts the workers. */
  start(): void {
    const startedAtMs = this.#container.startedAt.getTime();
    for (const [kind, spec] of this.#specs) {
      const worker = new ProbeWorker({
        kind,
        spec,
        runner: this.#options.runner,
        now: this.#options.now,
        logger: this.#options.logger,
        signal: this.#abort.signal,
        startedAtMs,
        target: () => this.#target(),
        isStarted: () => this.status().started,
        onRun: (runKind, outcome, settle) => this.#onRun(runKind, outcome, settle),
      });
      this.#workers.set(kind, worker);
      worker.start(this.#firstDelayMs(spec, startedAtMs));
    }
  }

  /** Stops the workers; resolves once no run is in flight. */
  async stop(): Promise<void> {
    this.#abort.abort();
    await Promise.all([...this.#workers.values()].map((worker) => worker.idle()));
  }

  /**
   * When the first run is due: when initialDelaySeconds have passed since the start. A container
   * that was already running when the agent started gets a random part of one period instead, so
   * that an agent restart does not probe every container at once (the kubelet's jitter).
   */
  #firstDelayMs(spec: ProbeSpec, startedAtMs: number): number {
    const now = this.#options.now();
    const periodMs = spec.periodSeconds * 1000;
    const { managerStartedAtMs } = this.#options;
    if (startedAtMs < managerStartedAtMs && now - managerStartedAtMs < periodMs) return Math.floor(Math.random() * periodMs);
    // A few ms past the delay: the gate compares whole seconds since the start.
    return Math.max(0, startedAtMs + spec.initialDelaySeconds * 1000 - now + 5);
  }

  /** What the runner needs of the container, with its current pid. */
  #target(): ProbeTarget {
    const { containerId, pid, hostNetwork, ports } = this.#container;
    return { containerId, pid, hostNetwork, ports };
  }

  /** Applies one counted run: settles results, reports, and says whether the worker holds. */
  #onRun(kind: ProbeKind, outcome: ProbeOutcome, settle: 'success' | 'failure' | undefined): 'hold' | undefined {
    const { logger } = this.#options;
    this.#options.onResult?.(kind, outcome.result);
    const { containerId, podKey, containerName } = this.#container;
    const wasStarted = this.status().started;
    let changed = false;
    if (settle !== undefined && this.#results.get(kind) !== settle) {
      this.#results.set(kind, settle);
      changed = true;
    }
    const kill = settle === 'failure' && failureKills(kind);
    const { reason, message } = probeEvent(kind, outcome);
    const status = this.status();
    if (changed) {
      logger.info(`${kind} probe ${settle === 'success' ? 'succeeded' : 'failed'}${kill ? ': the container is to be killed' : ''}`, {
        pod: podKey,
        container: containerName,
        ...(message ? { message } : {}),
      });
    }
    if (reason !== undefined || changed) {
      const spec = this.#specs.get(kind);
      const update: ProbeUpdate = {
        containerId,
        podKey,
        containerName,
        kind,
        result: outcome.result === 'warning' ? 'success' : outcome.result,
        message,
        reason,
        changed,
        status,
      };
      if (kill) {
        update.action = 'kill';
        if (spec?.terminationGracePeriodSeconds !== undefined) update.gracePeriodSeconds = spec.terminationGracePeriodSeconds;
      }
      try {
        this.#options.emit(update);
      } catch (error) {
        logger.error(`probe update handler failed: ${error instanceof Error ? error.message : String(error)}`, { pod: podKey, container: containerName });
      }
    }
    // Once started, readiness is probed at once rather than a period later (as the kubelet triggers it).
    if (!wasStarted && status.started) this.#workers.get('readiness')?.trigger();
    return kill ? 'hold' : undefined;
  }
}

/** The container's probe of `kind`, if it has one. */
function probeOf(container: ProbedContainer, kind: ProbeKind): Probe | undefined {
  switch (kind) {
    case 'liveness':
      return container.livenessProbe;
    case 'readiness':
      return container.readinessProbe;
    case 'startup':
      return container.startupProbe;
  }
}
