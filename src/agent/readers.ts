// The readers of the mirror pods, started only when configured: the read-only API and the
// publisher. Their modules (and prom-client's, with the metrics only the API serves) are loaded
// only then, so an agent with neither carries none of their memory. A bad setting of either is
// logged and shown in /healthz; supervision goes on without them.
import type { AgentConfig } from '../config/agent-config.js';
import { podvisorVersion } from '../version.js';
import { errorMessage } from '../errors.js';
import type { HealthChecks } from '../health/health.js';
import type { Logger } from '../log/logger.js';
import type { AgentMetrics, MeasuredPod } from '../metrics/metrics.js';
import { MirrorFeed } from '../mirror/mirror-feed.js';
import { MirrorStore } from '../mirror/mirror-store.js';
import { hostFacts } from '../mirror/node-object.js';
import type { PodmanCli } from '../runtime/podman-cli.js';
import type { StatusManager } from '../status/status-manager.js';
import type { Listeners } from './listeners.js';

/** Whether anything reads the mirror pods: without a reader, none are made. */
export function hasReaders(config: AgentConfig): boolean {
  return config.apiAddress !== undefined || config.publishWebhook !== undefined || config.publishKubeconfig !== undefined;
}

/** The metrics, when the API that serves them is on. */
export async function loadMetrics(config: AgentConfig, pods: () => readonly MeasuredPod[]): Promise<AgentMetrics | undefined> {
  if (config.apiAddress === undefined) return undefined;
  const { AgentMetrics } = await import('../metrics/metrics.js');
  return new AgentMetrics({ pods });
}

export interface Readers {
  stop(): Promise<void>;
}

/** What the readers are made from: supervision's status owner and what it is told. */
export interface ReaderSources {
  cli: PodmanCli;
  hostIP: string;
  status: StatusManager;
  statusChanges: Listeners<[]>;
  metrics: AgentMetrics | undefined;
  health: HealthChecks;
}

/**
 * The mirror pods and their readers, when any is configured: the mirror store fed from the status
 * owner on every change (and every 10 s for the node's heartbeat), the API and the publishers.
 */
export async function startMirrorReaders(config: AgentConfig, logger: Logger, sources: ReaderSources): Promise<Readers | undefined> {
  if (!hasReaders(config)) return undefined;
  const { cli, hostIP, status, statusChanges, metrics, health } = sources;
  const store = new MirrorStore();
  const feed = new MirrorFeed({
    store,
    status,
    facts: hostFacts({ nodeName: config.nodeName, hostIP, podmanVersion: await podmanVersion(cli, logger), podvisorVersion: podvisorVersion(), apiPort: config.apiAddress?.port ?? 0 }),
    health: () => health.summary(),
    serveEnvValues: config.serveEnvValues,
  });
  // Changes come in bursts (40 pods stopped in one pass: an event each), and a sync recomputes
  // every mirror object: one sync per turn of the loop serves the burst's end state at once
  // instead of the loop spending itself on every step of it.
  let syncQueued: NodeJS.Immediate | undefined;
  const unfollow = statusChanges.add(() => {
    syncQueued ??= setImmediate(() => {
      syncQueued = undefined;
      feed.sync();
    });
  });
  feed.sync();
  // The node's heartbeat and readiness move on even when no pod changes.
  const feedTimer = setInterval(() => feed.sync(), 10_000);
  feedTimer.unref();
  const readers = await startReaders({ config, store, health, metrics, logger });
  return {
    async stop() {
      clearInterval(feedTimer);
      unfollow();
      if (syncQueued) clearImmediate(syncQueued);
      await readers.stop();
    },
  };
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

/** Starts the API and the publisher the configuration asks for. */
export async function startReaders(input: { config: AgentConfig; store: MirrorStore; health: HealthChecks; metrics: AgentMetrics | undefined; logger: Logger }): Promise<Readers> {
  const { config, store, health, metrics, logger } = input;
  const stops: (() => Promise<void>)[] = [];
  const failed = (name: string, what: string, error: unknown) => {
    logger.error(`${what} not started: ${errorMessage(error)}`);
    const remove = health.add({ name, required: false, check: () => ({ ok: false, message: errorMessage(error) }) });
    stops.push(async () => remove());
  };

  if (config.apiAddress && metrics) {
    const { ApiServer } = await import('../api/server.js');
    const api = new ApiServer({
      host: config.apiAddress.host,
      port: config.apiAddress.port,
      store,
      health,
      metrics,
      logger,
      nodeName: config.nodeName,
      podvisorVersion: podvisorVersion(),
      tokenFile: config.apiTokenFile,
      tls: config.apiTlsCert && config.apiTlsKey ? { certFile: config.apiTlsCert, keyFile: config.apiTlsKey } : undefined,
    });
    try {
      const bound = await api.start();
      stops.push(() => api.stop());
      logger.info('read-only API listening', { event: 'ApiListening', address: `${bound.host}:${bound.port}`, tls: Boolean(config.apiTlsCert), token: Boolean(config.apiTokenFile) });
    } catch (error) {
      failed('api', 'read-only API', error);
    }
  }

  if (config.publishWebhook !== undefined || config.publishKubeconfig !== undefined) {
    const [{ createPublisher, publishHealthCheck }, { publishInputFrom }] = await Promise.all([import('../publish/create-publisher.js'), import('../publish/publisher.js')]);
    try {
      const publisher = createPublisher(
        {
          webhookUrl: config.publishWebhook,
          tokenFile: config.publishTokenFile,
          caFile: config.publishCaFile,
          kubeconfig: config.publishKubeconfig,
          intervalSeconds: config.publishIntervalSeconds,
          heartbeat: config.publishHeartbeat,
          fullIntervalSeconds: config.publishFullIntervalSeconds,
        },
        { input: publishInputFrom(store, config.nodeName), logger, metrics },
      );
      if (publisher) {
        const removeCheck = health.add(publishHealthCheck(publisher));
        publisher.start();
        stops.push(async () => {
          removeCheck();
          await publisher.stop();
        });
        logger.info('publishing mirror pods', { event: 'Publishing', mode: publisher.mode, to: config.publishWebhook ?? config.publishKubeconfig });
      }
    } catch (error) {
      failed('publish', 'publishing', error);
    }
  }
  return {
    async stop() {
      await Promise.all(stops.map((stop) => stop()));
    },
  };
}
