// The prober's seam with the rest of the agent: what the supervisor tells it about running
// containers, and what it reports back. Plain data only, as the kubelet's prober results are.
import type { ContainerPort, Probe } from '../manifest/pod-schema.js';

export type ProbeKind = 'liveness' | 'readiness' | 'startup';

/**
 * One probe run's outcome, as the kubelet's probe package has them: a warning is a success that
 * earns an event (an HTTP redirect not followed); unknown means the probe could not be run at all
 * (a named port that does not exist, no process to enter), and the kubelet throws such a run away.
 */
export type ProbeResult = 'success' | 'warning' | 'failure' | 'unknown';

/** What one run of a handler found; `output` is what the kubelet puts after "probe failed: ". */
export interface ProbeOutcome {
  result: ProbeResult;
  output: string;
  /** The final HTTP status, for an httpGet that got a response (lifecycle hooks use it). */
  statusCode?: number;
}

/** A running container the prober is to watch (one instance: a restart is a new `startedAt`). */
export interface ProbedContainer {
  containerId: string;
  /** The pod's key (namespace/name), for updates and logs. */
  podKey: string;
  /** The container's name in the manifest. */
  containerName: string;
  /** The container's main process on the host; its network namespace is the pod's. */
  pid: number | undefined;
  /** True when the pod uses the host's network: probes connect in-process to 127.0.0.1. */
  hostNetwork: boolean;
  /** The container's ports, for probes that name a port. */
  ports: ContainerPort[];
  /** When this instance of the container started (initialDelaySeconds counts from here). */
  startedAt: Date;
  livenessProbe?: Probe | undefined;
  readinessProbe?: Probe | undefined;
  startupProbe?: Probe | undefined;
}

/** What the probes say of a container: started (startup probe passed) and ready. */
export interface ProbeStatus {
  started: boolean;
  ready: boolean;
}

/** The kubelet's event reasons for probe runs (both of type Warning). */
export type ProbeEventReason = 'Unhealthy' | 'ProbeWarning';

/**
 * A probe run the supervisor may act on: one whose settled result changed, or one that earns an
 * event (a failure, an error or a warning). Quiet successes that change nothing are not reported.
 */
export interface ProbeUpdate {
  containerId: string;
  podKey: string;
  containerName: string;
  kind: ProbeKind;
  /** This run's outcome (a warning is reported as success with reason 'ProbeWarning'). */
  result: 'success' | 'failure' | 'unknown';
  /**
   * The kubelet's wording for this run's event, e.g. 'Liveness probe failed: HTTP probe failed
   * with statuscode: 500', 'Readiness probe errored: ...', 'Readiness probe warning: ...';
   * '' for a success.
   */
  message: string;
  /** The event the kubelet records for this run ('Unhealthy' or 'ProbeWarning'), if any. */
  reason: ProbeEventReason | undefined;
  /** True when this run changed the probe's settled result (thresholds reached). */
  changed: boolean;
  /** The container's status after this run. */
  status: ProbeStatus;
  /**
   * 'kill' when a liveness or startup probe reached its failure threshold: the container is to be
   * killed and restarted per restartPolicy. The prober then holds this container's probes until a
   * new instance (a new `startedAt`) is synced.
   */
  action?: 'kill';
  /** The probe's own terminationGracePeriodSeconds, which overrides the pod's for this kill. */
  gracePeriodSeconds?: number;
}
