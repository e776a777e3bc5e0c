// The agent, in the order data flows through it: supervision (podman, the status owner, the
// prober, the reconciler and its pod workers) is built first, so that the manifest intake has
// somewhere to hand the desired state; the readers of the mirror pods (API, publishers) come
// last and only read. Shutdown goes the other way: stop reading files, stop the readers, let
// supervision finish its work in flight.
import { mkdir } from 'node:fs/promises';
import type { AgentConfig } from './config/agent-config.js';
import { manifestPolicyOf, POLICY_SETTINGS } from './config/manifest-policy.js';
import { HealthChecks } from './health/health.js';
import type { Logger } from './log/logger.js';
import { manifestIntake } from './agent/manifest-intake.js';
import { startMirrorReaders } from './agent/readers.js';
import { startSupervision } from './agent/supervision.js';

/** The settings of the readers (the API, publishing): a reload that changes any restarts them. */
const READER_SETTINGS: ReadonlySet<keyof AgentConfig> = new Set([
  'apiAddress', 'apiTokenFile', 'apiTlsCert', 'apiTlsKey',
  'publishWebhook', 'publishTokenFile', 'publishCaFile', 'publishKubeconfig', 'publishIntervalSeconds', 'publishHeartbeat', 'publishFullIntervalSeconds', 'serveEnvValues',
]);

/**
 * Settings a running agent takes on a reload without touching a pod. The others wait for a
 * restart: where manifests, state and logs live and the node's name are what its pods are. A
 * changed manifest policy judges every file again: a file it now refuses keeps its running pods
 * on their last good spec, as any invalid file does; one it now allows is acted on.
 */
export const RELOADABLE: ReadonlySet<keyof AgentConfig> = new Set([
  'logLevel', 'logFormat', 'resyncIntervalSeconds', 'rollbackAfterSeconds', 'replaceWindow', 'replaceWindowSeconds', 'relistIntervalSeconds', 'backoffInitialSeconds', 'backoffMaxSeconds', ...READER_SETTINGS, ...POLICY_SETTINGS,
]);

export interface Agent {
  /** Settles when the first reconcile pass has ended: the agent is supervising. */
  readonly firstPass: Promise<void>;
  /** Stops watching, finishes work in flight within `deadlineMs`; pods keep running. */
  stop(deadlineMs: number): Promise<void>;
  /** Cancels work in flight at once. */
  abort(): void;
  /** Applies the RELOADABLE settings of `next` that differ from the running ones (the logger's are the caller's). */
  reconfigure(next: AgentConfig, changed: ReadonlySet<keyof AgentConfig>): Promise<void>;
}

/** Starts the agent: returns once the manifest directory has been read once and handed on. */
export async function startAgent(config: AgentConfig, logger: Logger): Promise<Agent> {
  await mkdir(config.stateDir, { recursive: true });
  const health = new HealthChecks();
  const supervision = await startSupervision(config, logger, health);
  const intake = manifestIntake(config, logger, { ...supervision, health });
  await intake.start();
  let readers = await startMirrorReaders(config, logger, { ...supervision, health });
  logger.info('podvisor running', { event: 'AgentRunning', manifestDir: config.manifestDir, node: config.nodeName, stateDir: config.stateDir });
  return {
    firstPass: supervision.reconciler.firstPass,
    async stop(deadlineMs) {
      await intake.close();
      await readers?.stop();
      await supervision.stop(deadlineMs);
    },
    abort: () => supervision.abort(),
    async reconfigure(next, changed) {
      intake.setResyncInterval(next.resyncIntervalSeconds * 1000);
      intake.setRollbackAfter(next.rollbackAfterSeconds);
      if (changed.has('replaceWindow') || changed.has('replaceWindowSeconds')) await intake.setReplaceWindow(next);
      supervision.reconfigure(next);
      if ([...changed].some((field) => POLICY_SETTINGS.has(field))) await intake.setPolicy(manifestPolicyOf(next));
      if (![...changed].some((field) => READER_SETTINGS.has(field))) return;
      // The readers only read the status: stopping and starting them again loses nothing (the
      // mirror store is rebuilt from the status owner at once).
      await readers?.stop();
      const metrics = next.apiAddress ? await supervision.ensureMetrics() : supervision.metrics;
      readers = await startMirrorReaders(next, logger, { ...supervision, metrics, health });
    },
  };
}
