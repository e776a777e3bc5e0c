#!/usr/bin/env -S node --max-semi-space-size=1
// (--max-semi-space-size=1: a small young generation keeps the idle agent's RSS near its
// steady state instead of peaking after a burst of work; see bench/RESULTS.md.)
// podvisor's command line: dispatches to one command, each imported only when it is used so
// `podvisor version` does not load the agent.
import { errorMessage, UsageError } from './errors.js';

const HELP = `Usage: podvisor <command> [flags]

podvisor runs Kubernetes Pod manifests from a directory as supervised podman pods.

Commands:
  run                 run the agent in the foreground
  validate PATH...    check manifest files (or directories of them); exit 1 on any error
  version             print podvisor's version

Run 'podvisor <command> --help' for a command's flags.
`;

const VALIDATE_HELP = `Usage: podvisor validate [--node-name NAME] PATH...

Prints every error and warning of the given manifest files, or of the manifest files in the
given directories, as file:line:column: field: message. Exits 1 if any file has an error.
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'run': {
      const { runCommand } = await import('./cli/run.js');
      return runCommand(rest);
    }
    case 'validate': {
      const { parseCommandArgs } = await import('./cli/args.js');
      const { values, positionals } = parseCommandArgs('validate', rest, { 'node-name': { type: 'string' } }, true);
      if (values.help) {
        process.stdout.write(VALIDATE_HELP);
        return 0;
      }
      if (positionals.length === 0) throw new UsageError('podvisor validate: no PATH given (see podvisor validate --help)');
      const { validateCommand } = await import('./cli/validate.js');
      return validateCommand(positionals, { nodeName: values['node-name'] });
    }
    case 'version': {
      const { parseCommandArgs } = await import('./cli/args.js');
      const { values } = parseCommandArgs('version', rest, {}, false);
      if (values.help) {
        process.stdout.write('Usage: podvisor version\n\nPrints podvisor\'s version.\n');
        return 0;
      }
      const { podvisorVersion } = await import('./cli/version.js');
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

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (error: unknown) => {
    const message = errorMessage(error);
    process.stderr.write(`${message.startsWith('podvisor') ? message : `podvisor: ${message}`}\n`);
    process.exitCode = error instanceof UsageError ? 2 : 1;
  },
);
