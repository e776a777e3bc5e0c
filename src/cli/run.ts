// `podvisor run`: the agent in the foreground until SIGTERM or SIGINT. On the first signal it
// stops watching, finishes the work in flight and exits 0, leaving pods running as the kubelet
// does; a second signal exits at once. SIGHUP reloads the config file.
import { isDeepStrictEqual } from 'node:util';
import { RELOADABLE, startAgent, type Agent } from '../agent.js';
import { SETTINGS, type AgentConfig } from '../config/agent-config.js';
import { resolveAgentConfig } from '../config/resolve-config.js';
import { errorMessage } from '../errors.js';
import { createLogger, reconfigureLogger, type LogFormat, type Logger, type LogLevel } from '../log/logger.js';
import { SystemdNotifier } from '../service/systemd-notify.js';
import { parseCommandArgs } from './args.js';

export const RUN_HELP = `Usage: podvisor run [flags]

Runs the agent in the foreground: the Pod manifests in the manifest directory become podman pods.

Flags:
  --config FILE               YAML file with any of the settings below (keys as the flags' names;
                              api-* under "api:", publish-* under "publish:", policy-* under
                              "policy:"); flags win over it
  --manifest-dir DIR          directory of Pod manifests (default /etc/pods.d)
  --node-name NAME            node name; pods are named <name>-<node> (default: host name, lower-cased)
  --state-dir DIR             where podvisor keeps pod volumes and state (default /var/lib/podvisor)
  --images-dir DIR            image archives (*.tar, *.tar.gz, *.tar.zst) loaded into podman once
                              each, before pods start (default <state-dir>/images)
  --resync-interval SECONDS   full rescan of the manifest directory (default 20)
  --relist-interval SECONDS   full listing of podman's pods (default 10)
  --backoff-initial SECONDS   first crash-loop back-off delay; it doubles per restart (default 10)
  --backoff-max SECONDS       longest crash-loop back-off delay (default 300)
  --rollback-after SECONDS    an edited pod not Ready (for 10 s) within this, or crash-looping,
                              goes back to its last Ready spec (default 120; 0: off; per pod the
                              annotation podvisor.io/rollback-after-seconds)
  --locks-dir DIR             update locks: a file NAMESPACE_NAME (or all) here holds the replace
                              of that running pod (or every one) (default /run/podvisor/locks)
  --replace-window CRON       when an edit may replace a running pod, e.g. "0 2 * * *" (local
                              time); outside it a replace is held (default: always)
  --replace-window-duration DURATION
                              how long each window stays open: 90m, 1h30m, 3600 (default 1h)
  --log-level LEVEL           error, warn, info or debug (default info)
  --container-log-max-size SIZE
                              bound on each container's log file (default 10Mi)
  --log-format text|json|journal
                              default: journal when stderr is systemd's journal
                              (JOURNAL_STREAM), text on a terminal, json otherwise

Read-only API (off unless --api-address is given):
  --api-address HOST:PORT     serve /pods, /healthz, /metrics and a read-only Kubernetes API
                              (kubectl --server http://HOST:PORT); the kubelet's port is 10255
  --api-token-file FILE       require "Authorization: Bearer <token>" (not for /healthz)
  --api-tls-cert FILE         serve HTTPS with this certificate (PEM) ...
  --api-tls-key FILE          ... and this key

Publishing mirror pods (nothing is sent unless one of these is set):
  --publish-webhook URL       POST the node's PodList here on every change and on the heartbeat
  --publish-token-file FILE   bearer token for the webhook
  --publish-ca-file FILE      CA certificates (PEM) to verify the webhook's server with
  --publish-interval SECONDS  at most one webhook POST per interval for changes (default 10)
  --publish-heartbeat CRON    when to POST even without a change (default "* * * * *": each minute)
  --publish-full-interval SECONDS
                              a full PodList at least this often when the receiver takes deltas,
                              else only changes (default 3600; 0: always the full PodList)
  --publish-kubeconfig FILE   create and update mirror pods in the API server this kubeconfig names

  --serve-env-values true|false
                              show containers' env values in the API, the publishers and
                              status/describe (default false: each reads "(redacted)")

Manifest policy ("policy:" in the config file; a LIST is comma-separated as a flag):
  --policy-check-ownership true|false
                              refuse manifests, their directory and link targets not owned by
                              root or writable by group or others (default true)
  --policy-check-symlinks true|false
                              follow symbolic links only into --policy-symlink-roots, whether or
                              not ownership is checked (default true; false: links lead anywhere)
  --policy-symlink-roots LIST directories a symbolic link may lead into (default: the manifest
                              directory; empty: no link is followed)
  --policy-privileged true|false      allow privileged containers (default true)
  --policy-host-network true|false    allow hostNetwork (default true)
  --policy-host-pid true|false        allow hostPID (default true)
  --policy-host-ipc true|false        allow hostIPC (default true)
  --policy-host-path-prefixes LIST    hostPath volumes only under these (default: anywhere)
  --policy-capabilities LIST  capabilities a container may add (default: any)
  --policy-registries LIST    registries images may come from, e.g. localhost,quay.io/myorg
                              (default: any; short names are then refused)
  --policy-require-digest true|false  images must be pinned by digest (default false)
  -h, --help                  this help
`;

type RunValues = Record<string, string | boolean | undefined>;

/** The configuration from the flags and the config file they name (read anew on each call). */
async function resolveConfig(values: RunValues): Promise<AgentConfig> {
  return await resolveAgentConfig(values, typeof values.config === 'string' ? values.config : undefined);
}

/**
 * SIGHUP (systemctl reload): the config file is read again. A valid one applies what can change
 * in a running agent and names what waits for a restart (pods keep running across one); an
 * invalid one is refused with its file:line:col, and the running configuration stays.
 */
async function reloadConfig(values: RunValues, running: AgentConfig, agent: Agent, logger: Logger): Promise<AgentConfig> {
  let next;
  try {
    next = await resolveConfig(values);
  } catch (error) {
    logger.error(`configuration not reloaded: ${errorMessage(error)}; the running configuration stays`, { event: 'ConfigReloadFailed' });
    return running;
  }
  const changed = SETTINGS.filter((setting) => !isDeepStrictEqual(running[setting.field], next[setting.field]));
  const applied = changed.filter((setting) => RELOADABLE.has(setting.field));
  const pending = changed.filter((setting) => !RELOADABLE.has(setting.field));
  reconfigureLogger(logger, { level: next.logLevel as LogLevel, format: next.logFormat as LogFormat | undefined });
  // What runs now: the reloaded settings, and the others as the agent started with them.
  const applying = { ...running, ...Object.fromEntries(applied.map((setting) => [setting.field, next[setting.field]])) } as AgentConfig;
  try {
    await agent.reconfigure(applying, new Set(applied.map((setting) => setting.field)));
  } catch (error) {
    // A reader that cannot start on its new settings says so itself (log, /healthz); this is
    // for anything else, and supervision goes on either way.
    logger.error(`applying the reloaded configuration failed: ${errorMessage(error)}`, { event: 'ConfigReloadFailed' });
  }
  logger.info('configuration reloaded', { event: 'ConfigReloaded', applied: applied.map((setting) => setting.flag), pending: pending.map((setting) => setting.flag) });
  if (pending.length > 0) {
    logger.warn(`changed settings take effect when the agent restarts (its pods keep running): ${pending.map((setting) => setting.flag).join(', ')}`, { event: 'ConfigPendingRestart' });
  }
  return applying;
}

/** Parses flags (and the config file), runs the agent until a signal, and returns the exit status. */
export async function runCommand(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('run', argv, {
    config: { type: 'string' },
    ...Object.fromEntries(SETTINGS.map((setting) => [setting.flag, { type: 'string' as const }])),
  }, false);
  if (values.help) {
    process.stdout.write(RUN_HELP);
    return 0;
  }
  const config = await resolveConfig(values);
  // Rootless podman is another podman (its own storage, network and pod namespace), and hostPath
  // volumes, probes inside pod namespaces and the kernel's OOM log need root: a plain refusal
  // beats a page of permission errors from each of them.
  if (process.getuid?.() !== 0) throw new Error(`podvisor run must run as root (it drives rootful podman); running as uid ${process.getuid?.()}: use sudo, or the systemd service`);
  const logger = createLogger({ level: config.logLevel as LogLevel, format: config.logFormat as LogFormat | undefined });

  let agent;
  try {
    agent = await startAgent(config, logger);
  } catch (error) {
    logger.error(`cannot start: ${errorMessage(error)}`, { event: 'StartFailed' });
    return 1;
  }
  const started = agent;
  // Under systemd (Type=notify): ready once the first pass has ended, the watchdog fed from
  // this event loop, and stopping announced before the exit.
  const notifier = new SystemdNotifier({ env: process.env, logger });
  notifier.startWatchdog();
  void started.firstPass.then(() => notifier.ready(`supervising the pods of ${config.manifestDir}`));
  return await new Promise<number>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        logger.warn(`${signal} again: exiting now`);
        started.abort();
        resolve(1);
        return;
      }
      stopping = true;
      logger.info(`${signal}: stopping; pods keep running`, { event: 'AgentStopping', signal });
      void notifier.stopping();
      // Finish within systemd's default stop timeout (90 s).
      started.stop(60_000).then(() => {
        logger.info('stopped', { event: 'AgentStopped' });
        resolve(0);
      }, (error: unknown) => {
        logger.error(`stopping failed: ${errorMessage(error)}`);
        resolve(1);
      });
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    // Reloads run one at a time, each against what the one before left running.
    let running = config;
    let reloading = Promise.resolve();
    process.on('SIGHUP', () => {
      if (stopping) return;
      logger.info('SIGHUP: reloading the configuration', { event: 'ConfigReloading' });
      reloading = reloading.then(async () => {
        running = await reloadConfig(values, running, started, logger);
      });
    });
  });
}
