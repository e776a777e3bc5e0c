// `podvisor run`: the agent in the foreground until SIGTERM or SIGINT. On the first signal it
// stops watching, finishes the work in flight and exits 0, leaving pods running as the kubelet
// does; a second signal exits at once.
import { startAgent } from '../agent.js';
import { parseAgentConfig } from '../config/agent-config.js';
import { errorMessage } from '../errors.js';
import { createLogger, type LogFormat, type LogLevel } from '../log/logger.js';
import { defaultNodeName } from '../manifest/identity.js';
import { parseCommandArgs } from './args.js';

export const RUN_HELP = `Usage: podvisor run [flags]

Runs the agent in the foreground: the Pod manifests in the manifest directory become podman pods.

Flags:
  --manifest-dir DIR          directory of Pod manifests (default /etc/pods.d)
  --node-name NAME            node name; pods are named <name>-<node> (default: host name, lower-cased)
  --state-dir DIR             where podvisor keeps pod volumes and state (default /var/lib/podvisor)
  --resync-interval SECONDS   full rescan of the manifest directory (default 20)
  --relist-interval SECONDS   full listing of podman's pods (default 10)
  --backoff-initial SECONDS   first crash-loop back-off delay; it doubles per restart (default 10)
  --backoff-max SECONDS       longest crash-loop back-off delay (default 300)
  --log-level LEVEL           error, warn, info or debug (default info)
  --log-format text|json      default: text on a terminal, json otherwise
  -h, --help                  this help
`;

/** Parses flags, runs the agent until a signal, and returns the exit status. */
export async function runCommand(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('run', argv, {
    'manifest-dir': { type: 'string' },
    'node-name': { type: 'string' },
    'state-dir': { type: 'string' },
    'resync-interval': { type: 'string' },
    'relist-interval': { type: 'string' },
    'backoff-initial': { type: 'string' },
    'backoff-max': { type: 'string' },
    'log-level': { type: 'string' },
    'log-format': { type: 'string' },
  }, false);
  if (values.help) {
    process.stdout.write(RUN_HELP);
    return 0;
  }
  const config = parseAgentConfig({
    manifestDir: values['manifest-dir'] ?? '/etc/pods.d',
    nodeName: values['node-name'] ?? defaultNodeName(),
    stateDir: values['state-dir'] ?? '/var/lib/podvisor',
    resyncIntervalSeconds: values['resync-interval'] ?? 20,
    relistIntervalSeconds: values['relist-interval'] ?? 10,
    backoffInitialSeconds: values['backoff-initial'] ?? 10,
    backoffMaxSeconds: values['backoff-max'] ?? 300,
    logLevel: values['log-level'] ?? 'info',
    logFormat: values['log-format'],
  });
  const logger = createLogger({ level: config.logLevel as LogLevel, format: config.logFormat as LogFormat | undefined });

  let agent;
  try {
    agent = await startAgent(config, logger);
  } catch (error) {
    logger.error(`cannot start: ${errorMessage(error)}`);
    return 1;
  }
  const started = agent;
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
      logger.info(`${signal}: stopping; pods keep running`);
      // Finish within systemd's default stop timeout (90 s).
      started.stop(60_000).then(() => {
        logger.info('stopped');
        resolve(0);
      }, (error: unknown) => {
        logger.error(`stopping failed: ${errorMessage(error)}`);
        resolve(1);
      });
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
