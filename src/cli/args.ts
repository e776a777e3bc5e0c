// Command-line parsing on node:util's parseArgs, strict: an unknown flag or a missing value is
// a UsageError (one line, exit status 2). Also the one table of commands and their flags that
// the dispatcher parses with, `podvisor --help` lists, and the completion scripts and the man
// page's test are made from, so that none of them can drift from what the CLI accepts; and the
// config file a reading command (status, describe, logs, doctor) takes its settings from.
import { existsSync } from 'node:fs';
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

/** The ways `podvisor status` can print, as kubectl's -o (name: `pod/NAME` a line, for scripts and completion). */
export const STATUS_OUTPUTS = ['wide', 'json', 'yaml', 'name'] as const;

/** The ways `podvisor plan` prints besides its text: a JSON document for tools. */
export const PLAN_OUTPUTS = ['json'] as const;

/** The shells `podvisor completion` writes a script for. */
export const COMPLETION_SHELLS = ['bash', 'zsh'] as const;

/** What a command's operands (its arguments after the flags) are, for completion. */
export type Operands = 'none' | 'pod' | 'path' | readonly string[];

/** One command as the dispatcher parses it and `podvisor --help` lists it. */
export interface CommandSpec {
  name: string;
  /** What follows the name in `podvisor --help` (e.g. `POD`). */
  usage: string;
  summary: string;
  /**
   * Its flags besides -h/--help. `run` lists only --config here: its other flags are the agent's
   * settings (SETTINGS in src/config/agent-config.ts), which run.ts adds when it parses.
   */
  options: OptionSpec;
  /** True for `run`, whose flags are --config plus one per setting. */
  settingsFlags?: boolean;
  operands: Operands;
}

const stateDirFlags = { 'state-dir': { type: 'string' }, config: { type: 'string' } } as const satisfies OptionSpec;

/** Every command, in the order `podvisor --help` lists them. */
export const COMMANDS: readonly CommandSpec[] = [
  { name: 'run', usage: '', summary: 'run the agent in the foreground', options: { config: { type: 'string' } }, settingsFlags: true, operands: 'none' },
  { name: 'validate', usage: 'PATH...', summary: 'check manifest files (or directories of them); exit 1 on any error', options: { 'node-name': { type: 'string' }, config: { type: 'string' } }, operands: 'path' },
  {
    name: 'plan',
    usage: '',
    summary: 'show what the agent would do now and why, changing nothing',
    options: { 'manifest-dir': { type: 'string' }, ...stateDirFlags, 'node-name': { type: 'string' }, 'locks-dir': { type: 'string' }, output: { type: 'string', short: 'o' } },
    operands: 'none',
  },
  { name: 'status', usage: '', summary: 'list the pods and their status, as the running agent reports them', options: { ...stateDirFlags, output: { type: 'string', short: 'o' } }, operands: 'none' },
  { name: 'describe', usage: 'POD', summary: "show one pod's containers, conditions and events", options: { ...stateDirFlags, namespace: { type: 'string', short: 'n' } }, operands: 'pod' },
  {
    name: 'logs',
    usage: 'POD',
    summary: "print a container's output",
    options: {
      ...stateDirFlags,
      namespace: { type: 'string', short: 'n' },
      container: { type: 'string', short: 'c' },
      follow: { type: 'boolean', short: 'f' },
      tail: { type: 'string' },
      previous: { type: 'boolean', short: 'p' },
    },
    operands: 'pod',
  },
  { name: 'doctor', usage: '', summary: 'check this host for what the agent needs; exit 1 on any failure', options: { config: { type: 'string' } }, operands: 'none' },
  { name: 'completion', usage: 'bash|zsh', summary: 'print a shell completion script', options: {}, operands: COMPLETION_SHELLS },
  { name: 'version', usage: '', summary: "print podvisor's version (also: podvisor --version)", options: {}, operands: 'none' },
];

/** The command named `name`; every name the dispatcher handles is in COMMANDS. */
export function commandSpec(name: string): CommandSpec {
  const spec = COMMANDS.find((one) => one.name === name);
  if (!spec) throw new Error(`no command ${name} in COMMANDS`);
  return spec;
}

/** The lines of `podvisor --help` that list the commands. */
export function commandList(): string {
  const heads = COMMANDS.map((spec) => `${spec.name}${spec.usage ? ` ${spec.usage}` : ''}`);
  const width = Math.max(...heads.map((head) => head.length)) + 2;
  return COMMANDS.map((spec, index) => `  ${heads[index]!.padEnd(width)}${spec.summary}\n`).join('');
}

/** The config file the packaged service runs with, read by default when it is there. */
export const DEFAULT_CONFIG_FILE = '/etc/podvisor/config.yaml';

/** The state directory when neither a flag nor a config file names one. */
export const DEFAULT_STATE_DIR = '/var/lib/podvisor';

/**
 * The config file a reading command takes its settings from: --config, else the default file
 * when it exists and --state-dir was not given either (a flag means the operator chose).
 */
export function configFileFor(values: ParsedCommandArgs['values'], defaultFile = DEFAULT_CONFIG_FILE): string | undefined {
  if (values.config !== undefined) return values.config;
  if (values['state-dir'] !== undefined) return undefined;
  return existsSync(defaultFile) ? defaultFile : undefined;
}

/**
 * The agent's configuration from a config file alone, with the defaults `run` uses for what it
 * leaves out; a bad file is a UsageError naming its file:line:col, as `run` reports it. The
 * config modules are loaded only here, so a command that reads no file does not load them.
 */
export async function readAgentConfigFile(file: string) {
  const { resolveAgentConfig } = await import('../config/resolve-config.js');
  return await resolveAgentConfig({}, file);
}

/** What status and describe take from the configuration: the state directory (as stateDirFor), and whether env values are shown. */
export async function displaySettingsFor(values: ParsedCommandArgs['values'], defaultFile = DEFAULT_CONFIG_FILE): Promise<{ stateDir: string; serveEnvValues: boolean }> {
  const file = configFileFor(values, defaultFile);
  const config = file === undefined ? undefined : await readAgentConfigFile(file);
  return { stateDir: values['state-dir'] ?? config?.stateDir ?? DEFAULT_STATE_DIR, serveEnvValues: config?.serveEnvValues ?? false };
}

/** The state directory a reading command uses: --state-dir, else the config file's, else the default. */
export async function stateDirFor(values: ParsedCommandArgs['values'], defaultFile = DEFAULT_CONFIG_FILE): Promise<string> {
  if (values['state-dir'] !== undefined) return values['state-dir'];
  const file = configFileFor(values, defaultFile);
  if (file === undefined) return DEFAULT_STATE_DIR;
  return (await readAgentConfigFile(file)).stateDir;
}
