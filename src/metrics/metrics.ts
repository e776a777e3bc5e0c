// podvisor's Prometheus metrics (prom-client), in a registry of its own so that two agents in one
// process (tests) never share counters. Parts of the agent report through the small functions
// here; the pod gauges are read from the mirror pods when scraped, so they are never stale.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** podman subcommands that take a second word worth keeping (`pod ps`, `volume rm`). */
const GROUPS = new Set(['pod', 'container', 'volume', 'image', 'network', 'system', 'events']);

/** The command label of a podman call: its subcommand, without ids or names. */
export function podmanCommand(args: readonly string[]): string {
  const [first, second] = args;
  if (first === undefined) return 'none';
  return GROUPS.has(first) && second !== undefined && !second.startsWith('-') ? `${first} ${second}` : first;
}

/**
 * The agent process's own CPU, memory and start time, read when scraped. Not prom-client's
 * default metrics: their event-loop lag monitor and GC observer cost an idle agent ~0.4-1 % of a
 * core (measured), several times what the agent itself spends.
 */
function processMetrics(registers: Registry[]): void {
  const startTime = Math.round(Date.now() / 1000 - process.uptime());
  new Counter({
    name: 'podvisor_process_cpu_seconds_total',
    help: 'CPU time the agent process has used (user and system), in seconds.',
    registers,
    collect() {
      const usage = process.cpuUsage();
      this.reset();
      this.inc((usage.user + usage.system) / 1e6);
    },
  });
  new Gauge({
    name: 'podvisor_process_resident_memory_bytes',
    help: 'Resident memory of the agent process, in bytes.',
    registers,
    collect() {
      this.set(process.memoryUsage.rss());
    },
  });
  new Gauge({
    name: 'podvisor_nodejs_heap_used_bytes',
    help: 'V8 heap in use by the agent, in bytes.',
    registers,
    collect() {
      this.set(process.memoryUsage().heapUsed);
    },
  });
  new Gauge({
    name: 'podvisor_process_start_time_seconds',
    help: 'When the agent process started, in seconds since the Unix epoch.',
    registers,
    collect() {
      this.set(startTime);
    },
  });
}

/** What the pod gauges read of a pod (a status pod or a mirror pod). */
export interface MeasuredPod {
  metadata: { name: string; namespace?: string | undefined };
  status: { phase: string; initContainerStatuses: readonly { name: string; restartCount: number }[]; containerStatuses: readonly { name: string; restartCount: number }[] };
}

export interface AgentMetricsOptions {
  /** Reads the pods at scrape time. */
  pods: () => readonly MeasuredPod[];
  /** Adds the process's CPU, memory, heap and start time; on by default. */
  processMetrics?: boolean;
}

export class AgentMetrics {
  readonly registry = new Registry();
  readonly reconcilePasses: Counter;
  readonly reconcileDuration: Histogram;
  readonly podmanCalls: Counter<'command' | 'result'>;
  readonly podmanDuration: Histogram<'command'>;
  readonly manifestErrors: Counter;
  readonly manifestFilesInvalid: Gauge;
  readonly probeResults: Counter<'probe_type' | 'result'>;
  readonly eventStreamReconnects: Counter;
  readonly publishAttempts: Counter<'mode' | 'result'>;
  readonly publishPending: Gauge<'mode'>;
  readonly loopStalls: Counter;
  readonly imageArchiveLoads: Counter<'result'>;

  constructor(options: AgentMetricsOptions) {
    const registers = [this.registry];
    if (options.processMetrics !== false) processMetrics(registers);
    new Gauge({
      name: 'podvisor_pods',
      help: 'Pods podvisor supervises, by phase.',
      labelNames: ['phase'],
      registers,
      collect() {
        const counts = new Map<string, number>(['Pending', 'Running', 'Succeeded', 'Failed', 'Unknown'].map((phase) => [phase, 0]));
        for (const pod of options.pods()) counts.set(pod.status.phase, (counts.get(pod.status.phase) ?? 0) + 1);
        this.reset();
        for (const [phase, count] of counts) this.set({ phase }, count);
      },
    });
    new Gauge({
      name: 'podvisor_container_restarts',
      help: 'How many times each container has been restarted (the status restartCount).',
      labelNames: ['namespace', 'pod', 'container'],
      registers,
      collect() {
        this.reset();
        for (const pod of options.pods()) {
          for (const status of [...pod.status.initContainerStatuses, ...pod.status.containerStatuses]) {
            this.set({ namespace: pod.metadata.namespace ?? 'default', pod: pod.metadata.name, container: status.name }, status.restartCount);
          }
        }
      },
    });
    this.reconcilePasses = new Counter({ name: 'podvisor_reconcile_passes_total', help: 'Reconcile passes (a listing of podman, a plan and its actions).', registers });
    this.reconcileDuration = new Histogram({
      name: 'podvisor_reconcile_duration_seconds',
      help: 'How long a reconcile pass took, from its listing to its actions being handed out.',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.podmanCalls = new Counter({ name: 'podvisor_podman_calls_total', help: 'podman calls, by command and result.', labelNames: ['command', 'result'], registers });
    this.podmanDuration = new Histogram({
      name: 'podvisor_podman_call_duration_seconds',
      help: 'How long podman calls took, by command.',
      labelNames: ['command'],
      buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.manifestErrors = new Counter({ name: 'podvisor_manifest_errors_total', help: 'Manifest files read with errors (each read counts).', registers });
    this.manifestFilesInvalid = new Gauge({ name: 'podvisor_manifest_files_invalid', help: 'Manifest files that have errors now.', registers });
    this.probeResults = new Counter({ name: 'podvisor_probe_results_total', help: 'Probe runs, by probe type and result.', labelNames: ['probe_type', 'result'], registers });
    this.eventStreamReconnects = new Counter({ name: 'podvisor_event_stream_reconnects_total', help: 'Times the podman events stream was started again after it ended.', registers });
    this.publishAttempts = new Counter({ name: 'podvisor_publish_requests_total', help: 'Requests to the publish endpoint, by mode and result.', labelNames: ['mode', 'result'], registers });
    this.loopStalls = new Counter({ name: 'podvisor_event_loop_stalls_total', help: 'Times the agent\'s event loop was held for a second or more.', registers });
    this.imageArchiveLoads = new Counter({ name: 'podvisor_image_archive_loads_total', help: 'Image archives loaded into podman from the images directory, by result (loaded, failed).', labelNames: ['result'], registers });
    // Both results shown from the start, so that increase() over a failure has a zero before it.
    for (const result of ['loaded', 'failed']) this.imageArchiveLoads.inc({ result }, 0);
    this.publishPending = new Gauge({ name: 'podvisor_publish_pending', help: 'Pod states waiting to be delivered, by mode.', labelNames: ['mode'], registers });
  }

  /** Counts one podman call (from PodmanCli's onCall). */
  podmanCall(args: readonly string[], exitCode: number | undefined, durationMs: number): void {
    const command = podmanCommand(args);
    this.podmanCalls.inc({ command, result: exitCode === 0 ? 'success' : exitCode === undefined ? 'killed' : 'error' });
    this.podmanDuration.observe({ command }, durationMs / 1000);
  }

  /** The text exposition format. */
  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
