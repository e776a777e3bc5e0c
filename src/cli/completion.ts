// `podvisor completion bash|zsh`: a completion script for the shell, made from the table of
// commands and flags the dispatcher parses with (COMMANDS in args.ts, and the agent's SETTINGS
// for `run`), so a flag added to a command is completed without anyone editing a script. Flag
// values complete where they are known (files, directories, -o's formats, the log levels), and
// pod names come from `podvisor status -o name`, with the --state-dir or --config already typed.
import { SETTINGS } from '../config/agent-config.js';
import { UsageError } from '../errors.js';
import { LOG_FORMATS, LOG_LEVELS } from '../log/logger.js';
import { COMMANDS, COMPLETION_SHELLS, PLAN_OUTPUTS, STATUS_OUTPUTS, type Operands } from './args.js';

/** What a flag's value completes to. */
export type ValueKind = 'none' | 'any' | 'file' | 'dir' | readonly string[];

export interface CompletedFlag {
  long: string;
  short?: string | undefined;
  value: ValueKind;
}

export interface CompletedCommand {
  name: string;
  summary: string;
  flags: CompletedFlag[];
  operands: Operands;
}

const YES_NO = ['true', 'false'] as const;

/** What a string flag's value is, by its name: paths by their suffix, known words by flag. */
function valueKind(command: string, flag: string): ValueKind {
  if (command === 'status' && flag === 'output') return STATUS_OUTPUTS;
  if (command === 'plan' && flag === 'output') return PLAN_OUTPUTS;
  if (flag === 'log-level') return LOG_LEVELS;
  if (flag === 'log-format') return LOG_FORMATS;
  // A yes-or-no setting: those whose default is a boolean.
  if (SETTINGS.some((setting) => setting.flag === flag && 'fallback' in setting && typeof setting.fallback === 'boolean')) return YES_NO;
  if (flag.endsWith('-dir')) return 'dir';
  if (flag === 'config' || /(-file|-cert|-key|kubeconfig)$/.test(flag)) return 'file';
  return 'any';
}

/** Every command with its flags, as the CLI parses them. */
export function completedCommands(): CompletedCommand[] {
  return COMMANDS.map((spec) => {
    const options: Record<string, { type: 'string' | 'boolean'; short?: string | undefined }> = { ...spec.options };
    if (spec.settingsFlags) for (const setting of SETTINGS) options[setting.flag] = { type: 'string' };
    const flags = Object.entries(options).map(([long, option]) => ({ long, short: option.short, value: option.type === 'boolean' ? 'none' as const : valueKind(spec.name, long) }));
    flags.push({ long: 'help', short: 'h', value: 'none' });
    return { name: spec.name, summary: spec.summary, flags, operands: spec.operands };
  });
}

/** The flag's spellings: --long, and -s when it has one. */
const spellings = (flag: CompletedFlag) => [`--${flag.long}`, ...(flag.short ? [`-${flag.short}`] : [])];

/** The bash script: plain bash (no bash-completion package needed). */
export function bashScript(commands: CompletedCommand[] = completedCommands()): string {
  const names = [...commands.map((command) => command.name), 'help'];
  const flagCases = commands.map((command) => `    ${command.name}) flags="${command.flags.flatMap(spellings).join(' ')}" ;;`);
  // `command flag` pairs whose value completes one way, grouped by that way.
  const valueCases: string[] = [];
  const pairs = (match: (kind: ValueKind) => boolean) => commands.flatMap((command) => command.flags.filter((flag) => match(flag.value)).flatMap((flag) => spellings(flag).map((spelling) => `"${command.name} ${spelling}"`)));
  const files = pairs((kind) => kind === 'file');
  const dirs = pairs((kind) => kind === 'dir');
  const free = pairs((kind) => kind === 'any');
  if (files.length > 0) valueCases.push(`    ${files.join('|')}) _podvisor_files -f ; return 0 ;;`);
  if (dirs.length > 0) valueCases.push(`    ${dirs.join('|')}) _podvisor_files -d ; return 0 ;;`);
  for (const command of commands) {
    for (const flag of command.flags) {
      if (typeof flag.value === 'string') continue;
      valueCases.push(`    ${spellings(flag).map((spelling) => `"${command.name} ${spelling}"`).join('|')}) _podvisor_words "${flag.value.join(' ')}" ; return 0 ;;`);
    }
  }
  if (free.length > 0) valueCases.push(`    ${free.join('|')}) return 0 ;;`);
  const operandCases = commands.filter((command) => command.operands !== 'none').map((command) => {
    const operands = command.operands;
    if (operands === 'pod') return `    ${command.name}) _podvisor_words "$(_podvisor_pods)" ;;`;
    if (operands === 'path') return `    ${command.name}) _podvisor_files -f ;;`;
    return `    ${command.name}) _podvisor_words "${typeof operands === 'string' ? '' : operands.join(' ')}" ;;`;
  });
  return `# bash completion for podvisor, made by \`podvisor completion bash\` from the commands and
# flags podvisor itself parses. Load it with: source <(podvisor completion bash)
# or save it as /etc/bash_completion.d/podvisor.

# COMPREPLY: the words of $1 that start with the word being completed.
_podvisor_words() {
  mapfile -t COMPREPLY < <(compgen -W "$1" -- "\${COMP_WORDS[COMP_CWORD]}")
}

# COMPREPLY: files (-f) or directories (-d) that start with the word being completed.
_podvisor_files() {
  compopt -o filenames 2>/dev/null
  mapfile -t COMPREPLY < <(compgen "$1" -- "\${COMP_WORDS[COMP_CWORD]}")
}

# The pods the agent reports, from the same state directory as the command being typed.
_podvisor_pods() {
  local i args=() line
  for (( i = 2; i < COMP_CWORD; i++ )); do
    case "\${COMP_WORDS[i]}" in
      --state-dir|--config) args+=("\${COMP_WORDS[i]}" "\${COMP_WORDS[i+1]}") ;;
    esac
  done
  "\${COMP_WORDS[0]}" status -o name "\${args[@]}" 2>/dev/null </dev/null | while IFS= read -r line; do
    printf '%s\\n' "\${line#pod/}"
  done
}

_podvisor() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="" flags=""
  COMPREPLY=()
  if (( COMP_CWORD <= 1 )); then
    _podvisor_words "${names.join(' ')} --help --version"
    return 0
  fi
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  local command="\${COMP_WORDS[1]}"
  case "$command" in
${flagCases.join('\n')}
    *) return 0 ;;
  esac
  case "$command $prev" in
${valueCases.join('\n')}
  esac
  if [[ "$cur" == -* ]]; then
    _podvisor_words "$flags"
    return 0
  fi
  case "$command" in
${operandCases.join('\n')}
  esac
  return 0
}

complete -F _podvisor podvisor
`;
}

/** A word in single quotes for zsh. */
function zq(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/** One _arguments spec for a flag (both spellings exclude each other). */
function zshFlagSpec(flag: CompletedFlag): string {
  const action = flag.value === 'none' ? '' : flag.value === 'file' ? ':file:_files' : flag.value === 'dir' ? ':directory:_files -/' : flag.value === 'any' ? `:${flag.long}: ` : `:${flag.long}:(${flag.value.join(' ')})`;
  if (!flag.short) return zq(`--${flag.long}${action}`);
  return `${zq(`(-${flag.short} --${flag.long})`)}{-${flag.short},--${flag.long}}${zq(action)}`;
}

/** The zsh script: an autoloadable `_podvisor` for $fpath, which also works when sourced after compinit. */
export function zshScript(commands: CompletedCommand[] = completedCommands()): string {
  const list = commands.map((command) => `    ${zq(`${command.name}:${command.summary}`)}`);
  list.push(`    ${zq('help:print the commands')}`);
  const cases = commands.map((command) => {
    const specs = command.flags.map(zshFlagSpec);
    const operands = command.operands;
    if (operands === 'pod') specs.push(zq('1:pod:_podvisor_pods'));
    else if (operands === 'path') specs.push(zq('*:manifest file or directory:_files'));
    else if (operands !== 'none') specs.push(zq(`1:${command.name}:(${operands.join(' ')})`));
    return `    ${command.name})\n      _arguments -s \\\n        ${specs.join(' \\\n        ')}\n      ;;`;
  });
  return `#compdef podvisor
# zsh completion for podvisor, made by \`podvisor completion zsh\` from the commands and flags
# podvisor itself parses. Save it as _podvisor in a directory of $fpath (then start a new shell),
# or after compinit: source <(podvisor completion zsh)

# The pods the agent reports, from the same state directory as the command being typed.
_podvisor_pods() {
  local -a pods args
  local i
  for (( i = 2; i < CURRENT; i++ )); do
    case $words[i] in
      --state-dir|--config) args+=($words[i] $words[i+1]) ;;
    esac
  done
  pods=(\${\${(f)"$($_podvisor_program status -o name $args 2>/dev/null </dev/null)"}#pod/})
  compadd -a pods
}

_podvisor() {
  local _podvisor_program=$words[1]
  local -a commands
  commands=(
${list.join('\n')}
  )
  if (( CURRENT == 2 )); then
    _describe -t commands 'podvisor command' commands
    return
  fi
  shift words
  (( CURRENT-- ))
  case $words[1] in
${cases.join('\n')}
  esac
}

if [[ $funcstack[1] == _podvisor ]]; then
  # Autoloaded from $fpath: this file's body is the completion function.
  _podvisor "$@"
else
  # Sourced: register the function for the command.
  compdef _podvisor podvisor
fi
`;
}

/** Prints the script for the shell named; a usage error for any other. */
export async function completionCommand(positionals: string[]): Promise<number> {
  const [shell, ...extra] = positionals;
  if (shell === undefined || extra.length > 0 || !(COMPLETION_SHELLS as readonly string[]).includes(shell)) {
    throw new UsageError(`podvisor completion: give one shell, ${COMPLETION_SHELLS.join(' or ')} (see podvisor completion --help)`);
  }
  process.stdout.write(shell === 'bash' ? bashScript() : zshScript());
  return 0;
}
