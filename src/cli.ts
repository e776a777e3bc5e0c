#!/usr/bin/env -S GLIBC_TUNABLES=glibc.malloc.mmap_threshold=32768 MALLOC_ARENA_MAX=1 node --max-semi-space-size=1 --optimize-for-size --max-opt=1
// (The agent's memory, measured in bench/RESULTS.md: --max-semi-space-size=1 and
// --optimize-for-size, a small young generation and a heap grown for size, keep the idle RSS near
// its steady state after a burst of work; MALLOC_ARENA_MAX=1, one malloc arena rather than one per
// thread; the mmap threshold fixed at 32 KiB, so the 32-128 KiB blocks of a bring-up are given
// back when freed instead of pinning ~9 MB of malloc's heap; --max-opt=1, V8's interpreter and
// baseline compiler only: the optimizing compilers' code is ~7 MB of resident binary, and on this
// agent's work, short and I/O-bound, they cost more CPU than they save. With 20 pods on the
// package's Node 24: 90 MB before, 73 MB with these.)
// podvisor's command line: dispatches to one command, each imported only when it is used so
// `podvisor version` does not load the agent.
import { commandList, commandSpec, displaySettingsFor, parseCommandArgs, PLAN_OUTPUTS, stateDirFor, STATUS_OUTPUTS } from './cli/args.js';
import { errorMessage, UsageError } from './errors.js';

const HELP = `Usage: podvisor <command> [flags]

podvisor runs Kubernetes Pod manifests from a directory as supervised podman pods.

Commands:
${commandList()}
Run 'podvisor <command> --help' for a command's flags.
`;

const VALIDATE_HELP = `Usage: podvisor validate [--config FILE] [--node-name NAME] PATH...

Prints every error and warning of the given manifest files, or of the manifest files in the
given directories, as file:line:column: field: message. Exits 1 if any file has an error.

With --config FILE (the agent's config file), the files are judged as the agent running with it
judges them: its node name, and its policy section (who may own the files, what pods may ask
for). Without it, only the files' content is checked.
`;

/** What the reading commands say about where their state directory comes from. */
const STATE_DIR_HELP = `--state-dir DIR is the agent's state directory, as for 'podvisor run'; without it, the state-dir
of the config file (--config FILE, or /etc/podvisor/config.yaml when it exists), else
/var/lib/podvisor.`;

const STATUS_HELP = `Usage: podvisor status [--state-dir DIR | --config FILE] [-o wide|json|yaml|name]

Lists the pods as the running agent last wrote them (NAMESPACE, NAME, READY, STATUS, RESTARTS,
AGE); -o wide adds IP and NODE, -o json and -o yaml print a v1 PodList, -o name prints pod/NAME
a line.

${STATE_DIR_HELP}
`;

const PLAN_HELP = `Usage: podvisor plan [--manifest-dir DIR] [--state-dir DIR] [--config FILE] [--node-name NAME] [--locks-dir DIR] [-o json]

Shows what the agent would do now, and why, without changing anything: each pod to create,
replace (with each changed field, old -> new), keep, remove, keep on its last good spec because
its file has errors or was refused by the policy, a replace held by an update lock or the replace
window ("pending"), a rolled-back pod (on its last Ready spec), then every file's errors and
warnings. It reads the manifest directory as the agent does (with the config's policy), lists
podman's pods read-only, and takes the spec each pod was made from and the back-off from the
agent's state directory; it works with no agent running too.

Exit status (as terraform plan -detailed-exitcode): 0 nothing would change, 1 a pod would be
created, replaced or removed, now or once a held replace is released, 2 the plan could not be
made (one line on stderr). Restarts inside a kept pod and a rolled-back pod do not count as a change.

  --manifest-dir DIR   the manifest directory (default: the config file's, else /etc/pods.d)
  --state-dir DIR      the agent's state directory (default: the config file's, else /var/lib/podvisor)
  --config FILE        the agent's config file (default /etc/podvisor/config.yaml when it exists
                       and --state-dir is not given); a flag wins over it
  --node-name NAME     the agent's node name (default: the config file's, else the host name)
  --locks-dir DIR      the agent's update locks (default: the config file's, else /run/podvisor/locks)
  -o, --output json    a JSON document for tools (kind Plan, apiVersion podvisor.io/v1)

Env values show as (redacted) unless the config file has serve-env-values: true.
`;

const DESCRIBE_HELP = `Usage: podvisor describe [--state-dir DIR | --config FILE] [-n NAMESPACE] POD

Shows one pod: its containers' states, conditions, volumes and recent events. POD is the pod's
name (<name>-<node>), its manifest name, or NAMESPACE/NAME.

${STATE_DIR_HELP}
`;

const LOGS_HELP = `Usage: podvisor logs [--state-dir DIR | --config FILE] [-n NAMESPACE] [-c CONTAINER] [-f] [--tail N] [-p] POD

Prints a container's output from its current run, as kubectl logs does: -c names the container
(default: the pod's first), -f follows it, --tail N prints only the last N lines, -p (--previous)
prints the run before the current one. POD as for 'podvisor describe'.

${STATE_DIR_HELP}
`;

const DOCTOR_HELP = `Usage: podvisor doctor [--config FILE]

Checks this host for what the agent needs, one line a check: "ok", "warn" or "fail", what was
found and, for a problem, how to fix it. Run it as root, as the agent runs. --config FILE is the
agent's config file (default /etc/podvisor/config.yaml when it exists). Exits 1 if any check
fails, 0 otherwise (warnings included).
`;

const COMPLETION_HELP = `Usage: podvisor completion bash|zsh

Prints a completion script for the shell: commands, flags, flag values and pod names.
  bash:  source <(podvisor completion bash)      (or save it in /etc/bash_completion.d/podvisor)
  zsh:   podvisor completion zsh > "\${fpath[1]}/_podvisor"   (then start a new shell)
`;

/** Parses a command's flags by its entry in the command table. */
function parse(command: string, argv: string[], allowPositionals: boolean) {
  return parseCommandArgs(command, argv, commandSpec(command).options, allowPositionals);
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'run': {
      const { runCommand } = await import('./cli/run.js');
      return runCommand(rest);
    }
    case 'validate': {
      const { values, positionals } = parse('validate', rest, true);
      if (values.help) {
        process.stdout.write(VALIDATE_HELP);
        return 0;
      }
      if (positionals.length === 0) throw new UsageError('podvisor validate: no PATH given (see podvisor validate --help)');
      const { validateCommand } = await import('./cli/validate.js');
      return validateCommand(positionals, { nodeName: values['node-name'], config: values.config });
    }
    case 'plan': {
      const { values } = parse('plan', rest, false);
      if (values.help) {
        process.stdout.write(PLAN_HELP);
        return 0;
      }
      if (values.output !== undefined && !(PLAN_OUTPUTS as readonly string[]).includes(values.output)) {
        throw new UsageError(`podvisor plan: -o must be ${PLAN_OUTPUTS.join(', ')}; got '${values.output}'`);
      }
      const { planCommand } = await import('./cli/plan.js');
      return planCommand(values);
    }
    case 'status': {
      const { values } = parse('status', rest, false);
      if (values.help) {
        process.stdout.write(STATUS_HELP);
        return 0;
      }
      if (values.output !== undefined && !(STATUS_OUTPUTS as readonly string[]).includes(values.output)) {
        throw new UsageError(`podvisor status: -o must be ${STATUS_OUTPUTS.join(', ')}; got '${values.output}'`);
      }
      const { statusCommand } = await import('./cli/status.js');
      return statusCommand({ ...(await displaySettingsFor(values)), output: values.output });
    }
    case 'describe': {
      const { values, positionals } = parse('describe', rest, true);
      if (values.help) {
        process.stdout.write(DESCRIBE_HELP);
        return 0;
      }
      if (positionals.length !== 1) throw new UsageError('podvisor describe: give exactly one POD (see podvisor describe --help)');
      const { describeCommand } = await import('./cli/describe.js');
      return describeCommand(positionals[0] ?? '', { ...(await displaySettingsFor(values)), namespace: values.namespace });
    }
    case 'logs': {
      const { values, positionals } = parse('logs', rest, true);
      if (values.help) {
        process.stdout.write(LOGS_HELP);
        return 0;
      }
      if (positionals.length !== 1) throw new UsageError('podvisor logs: give exactly one POD (see podvisor logs --help)');
      // parseArgs gives true for the boolean flags; the shared type says string for the rest.
      const set = (flag: string) => (values as Record<string, unknown>)[flag] === true;
      const tail = values.tail === undefined ? undefined : Number(values.tail);
      if (tail !== undefined && !(Number.isInteger(tail) && tail >= 0)) throw new UsageError(`podvisor logs: --tail must be a number of lines, got '${String(values.tail)}'`);
      const { logsCommand } = await import('./cli/logs.js');
      return logsCommand(positionals[0] ?? '', {
        stateDir: await stateDirFor(values),
        namespace: values.namespace,
        container: values.container,
        follow: set('follow'),
        tail,
        previous: set('previous'),
      });
    }
    case 'doctor': {
      const { values } = parse('doctor', rest, false);
      if (values.help) {
        process.stdout.write(DOCTOR_HELP);
        return 0;
      }
      const { doctorCommand } = await import('./cli/doctor.js');
      return doctorCommand({ config: values.config });
    }
    case 'completion': {
      const { values, positionals } = parse('completion', rest, true);
      if (values.help) {
        process.stdout.write(COMPLETION_HELP);
        return 0;
      }
      const { completionCommand } = await import('./cli/completion.js');
      return completionCommand(positionals);
    }
    case '--version':
    case 'version': {
      const { values } = parse('version', rest, false);
      if (values.help) {
        process.stdout.write('Usage: podvisor version\n\nPrints podvisor\'s version.\n');
        return 0;
      }
      const { podvisorVersion } = await import('./version.js');
      process.stdout.write(`podvisor ${podvisorVersion()}\n`);
      return 0;
    }
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(HELP);
      return command === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command '${command}' (see podvisor --help)`);
  }
}

/**
 * A defect anywhere (an exception no code expected, a rejection nobody handled) ends the process
 * at once with its stack and a non-zero status, so that systemd restarts a clean agent: an agent
 * that carries on in an unknown state, or hangs, supervises nothing.
 */
function exitOnDefect(kind: string, error: unknown): void {
  const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
  process.stderr.write(`podvisor: ${kind}, exiting: ${detail.replace(/\n\s*/g, ' | ')}\n`);
  process.exit(70); // EX_SOFTWARE
}
process.on('uncaughtException', (error) => exitOnDefect('uncaught exception', error));
process.on('unhandledRejection', (reason) => exitOnDefect('unhandled rejection', reason));

/** Sets the exit status; a command whose work is over exits even if a handle (a child, a timer) is left. */
function finish(code: number): void {
  process.exitCode = code;
  // Give stderr a moment to drain, but never wait on what the command left behind.
  setTimeout(() => process.exit(code), 1000).unref();
}

main(process.argv.slice(2)).then(
  finish,
  (error: unknown) => {
    const message = errorMessage(error);
    process.stderr.write(`${message.startsWith('podvisor') ? message : `podvisor: ${message}`}\n`);
    finish(error instanceof UsageError ? 2 : 1);
  },
);
