// The readers of the mirror pods, started only when configured: the read-only API and the
// publisher. Their modules (and prom-client's, with the metrics only the API serves) are loaded
// only then, so an agent with neither carries none of their memory. A bad setting of either is
// logged and shown in /healthz; supervision goes on without them.
import type { AgentConfig } from './config/agent-config.js';
import { podvisorVersion } from './cli/version.js';
import { errorMessage } from './errors.js';
import type { HealthChecks } from './health/health.js';
import type { Logger } from './log/logger.js';
import type { AgentMetrics } from './metrics/metrics.js';
import type { MirrorPod } from './mirror/mirror-pod.js';
import type { MirrorStore } from './mirror/mirror-store.js';

/** Whether anything reads the mirror pods: without a reader, none are made. */
export function hasReaders(config: AgentConfig): boolean {
  return config.apiAddress !== undefined || config.publishWebhook !== undefined || config.publishKubeconfig !== undefined;
}

/** The metrics, when the API that serves them is on. */
export async function loadMetrics(config: AgentConfig, pods: () => readonly MirrorPod[]): Promise<AgentMetrics | undefined> {
  if (config.apiAddress === undefined) return undefined;
  const { AgentMetrics } = await import('./metrics/metrics.js');
  return new AgentMetrics({ pods });
}

export interface Readers {
  stop(): Promise<void>;
}

/** Starts the API and the publisher the configuration asks for. */
export async function startReaders(input: { config: AgentConfig; store: MirrorStore; health: HealthChecks; metrics: AgentMetrics | undefined; logger: Logger }): Promise<Readers> {
  const { config, store, health, metrics, logger } = input;
  const failed = (name: string, what: string, error: unknown) => {
    logger.error(`${what} not started: ${errorMessage(error)}`);
    health.add({ name, required: false, check: () => ({ ok: false, message: errorMessage(error) }) });
  };
  const stops: (() => Promise<void>)[] = [];

  if (config.apiAddress && metrics) {
    const { ApiServer } = await import('./api/server.js');
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
      logger.info('read-only API listening', { address: `${bound.host}:${bound.port}`, tls: Boolean(config.apiTlsCert), token: Boolean(config.apiTokenFile) });
    } catch (error) {
      failed('api', 'read-only API', error);
    }
  }

  if (config.publishWebhook !== undefined || config.publishKubeconfig !== undefined) {
    const [{ createPublisher, publishHealthCheck }, { publishInputFrom }] = await Promise.all([import('./publish/create-publisher.js'), import('./publish/publisher.js')]);
    try {
      const publisher = createPublisher(
        {
          webhookUrl: config.publishWebhook,
          tokenFile: config.publishTokenFile,
          caFile: config.publishCaFile,
          kubeconfig: config.publishKubeconfig,
          intervalSeconds: config.publishIntervalSeconds,
          heartbeat: config.publishHeartbeat,
        },
        { input: publishInputFrom(store, config.nodeName), logger, metrics },
      );
      if (publisher) {
        health.add(publishHealthCheck(publisher));
        publisher.start();
        stops.push(() => publisher.stop());
        logger.info('publishing mirror pods', { mode: publisher.mode, to: config.publishWebhook ?? config.publishKubeconfig });
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
