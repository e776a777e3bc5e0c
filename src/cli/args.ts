// Command-line parsing on node:util's parseArgs, strict: an unknown flag or a missing value is
// a UsageError (one line, exit status 2).
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { errorMessage, UsageError } from '../errors.js';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

export interface ParsedCommandArgs {
  /** String flags by name (every flag but --help takes a value). */
  values: { [flag: string]: string | undefined } & { help?: boolean };
  positionals: string[];
}

/** Parses `argv` for one command; every option in `options` is a string flag. */
export function parseCommandArgs(command: string, argv: string[], options: OptionSpec, allowPositionals: boolean): ParsedCommandArgs {
  try {
    const parsed = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals, strict: true });
    return { values: parsed.values as ParsedCommandArgs['values'], positionals: parsed.positionals };
  } catch (error) {
    // parseArgs' messages are long and mention its API; keep the part a user needs.
    const message = errorMessage(error).split('. ')[0]?.replace(/^Unknown option '(.*)'$/, "unknown flag '$1'") ?? 'bad arguments';
    throw new UsageError(`podvisor ${command}: ${message} (see podvisor ${command} --help)`, { cause: error });
  }
}
