// From the publish flags to a publisher, or none: nothing is sent unless --publish-webhook or
// --publish-kubeconfig is given. The agent adds the result's health as an informational check.
import { readFileSync } from 'node:fs';
import { errorMessage, PodvisorError, UsageError } from '../errors.js';
import type { HealthCheck } from '../health/health.js';
import { KubernetesPublisher } from './kubernetes.js';
import { loadKubeconfig } from './kubeconfig.js';
import type { Publisher, PublisherOptions } from './publisher.js';
import { WebhookPublisher } from './webhook.js';

export interface PublishSettings {
  /** --publish-webhook URL */
  webhookUrl?: string;
  /** --publish-token-file PATH (webhook mode) */
  tokenFile?: string;
  /** --publish-ca-file PATH (webhook mode): PEM certificates to verify an https receiver with. */
  caFile?: string;
  /** --publish-kubeconfig PATH */
  kubeconfig?: string;
  /** The kubeconfig context to use instead of its current-context. */
  kubeContext?: string;
  /** Webhook: at most one POST for changes per this many seconds (default 10). */
  intervalSeconds?: number;
  /** Webhook: the heartbeat's node-cron expression (default every minute); null: none. */
  heartbeat?: string | null;
  /** Webhook: a full PodList at least this often when the receiver takes deltas (default 3600); 0: never deltas. */
  fullIntervalSeconds?: number;
  /** Kubernetes: how often the node's pods are listed again (default 60 s). */
  resyncSeconds?: number;
}

/**
 * The publisher the settings ask for, not started; undefined when they ask for none. Throws a
 * UsageError for flags that do not go together and PodvisorError('E_CONFIG') for a bad URL,
 * heartbeat or kubeconfig: at start-up, never later.
 */
export function createPublisher(settings: PublishSettings, options: PublisherOptions): Publisher | undefined {
  const { webhookUrl, kubeconfig } = settings;
  if (webhookUrl !== undefined && kubeconfig !== undefined) throw new UsageError('--publish-webhook and --publish-kubeconfig cannot be used together');
  if (webhookUrl === undefined && settings.tokenFile !== undefined) throw new UsageError('--publish-token-file goes with --publish-webhook');
  if (webhookUrl === undefined && settings.caFile !== undefined) throw new UsageError('--publish-ca-file goes with --publish-webhook');
  if (webhookUrl !== undefined) {
    return new WebhookPublisher({
      ...options,
      url: webhookUrl,
      ...(settings.caFile !== undefined ? { ca: readCaFile(settings.caFile) } : {}),
      ...(settings.tokenFile !== undefined ? { tokenFile: settings.tokenFile } : {}),
      ...(settings.intervalSeconds !== undefined ? { intervalSeconds: settings.intervalSeconds } : {}),
      ...(settings.heartbeat !== undefined ? { heartbeat: settings.heartbeat } : {}),
      ...(settings.fullIntervalSeconds !== undefined ? { fullIntervalSeconds: settings.fullIntervalSeconds } : {}),
    });
  }
  if (kubeconfig !== undefined) {
    return new KubernetesPublisher({
      ...options,
      connection: loadKubeconfig(kubeconfig, settings.kubeContext !== undefined ? { context: settings.kubeContext } : {}),
      ...(settings.resyncSeconds !== undefined ? { resyncSeconds: settings.resyncSeconds } : {}),
    });
  }
  return undefined;
}

/** The CA file's certificates; read once, at start-up, like the kubeconfig's. */
function readCaFile(path: string): Buffer {
  let content: Buffer;
  try {
    content = readFileSync(path);
  } catch (error) {
    throw new PodvisorError('E_CONFIG', `--publish-ca-file: cannot read ${path}: ${errorMessage(error)}`, { cause: error });
  }
  if (!content.toString('latin1').includes('-----BEGIN CERTIFICATE-----')) throw new PodvisorError('E_CONFIG', `--publish-ca-file: ${path} holds no PEM certificate`);
  return content;
}

/** The publisher's health as a /healthz check that never makes the agent unhealthy. */
export function publishHealthCheck(publisher: Publisher): HealthCheck {
  return { name: `publish-${publisher.mode}`, required: false, check: () => publisher.health() };
}
