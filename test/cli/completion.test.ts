// The completion scripts, run by the real shells: bash's completion function is called as bash
// calls it (COMP_WORDS, COMP_CWORD) and what it puts in COMPREPLY is read back; zsh's script is
// syntax-checked with `zsh -n` and its dispatch run with zsh's completion builtins replaced by
// ones that print what they were given. Both are made from the command table the CLI parses
// with, so the flags every command accepts are the flags completed.
import { execa } from 'execa';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { COMMANDS, parseCommandArgs } from '../../src/cli/args.js';
import { bashScript, completedCommands, completionCommand, zshScript } from '../../src/cli/completion.js';
import { SETTINGS } from '../../src/config/agent-config.js';
import { ensureCommand } from '../support/debian-root.js';

/** True when `shell` can be run here. */
async function have(shell: string): Promise<boolean> {
  return (await execa(shell, ['-c', 'true'], { reject: false, stdin: 'ignore' }).catch(() => undefined))?.exitCode === 0;
}

/** What bash's completion of `words` (the last one being completed) puts in COMPREPLY. */
async function bashComplete(script: string, words: string[], cwd?: string): Promise<string[]> {
  const run = `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); _podvisor; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const result = await execa('bash', ['--norc', '--noprofile', '-c', run, 'bash', script, ...words], { stdin: 'ignore', cwd, timeout: 20_000 });
  return result.stdout.split('\n').filter(Boolean);
}

t.test('every flag a command parses is completed, and every completed flag parses', async (t) => {
  const completed = completedCommands();
  t.same(completed.map((command) => command.name), COMMANDS.map((spec) => spec.name));
  for (const command of completed) {
    const spec = COMMANDS.find((one) => one.name === command.name)!;
    const options = spec.settingsFlags ? { ...spec.options, ...Object.fromEntries(SETTINGS.map((setting) => [setting.flag, { type: 'string' as const }])) } : spec.options;
    for (const flag of command.flags) {
      const argv = flag.value === 'none' ? [`--${flag.long}`] : [`--${flag.long}`, 'x'];
      t.doesNotThrow(() => parseCommandArgs(command.name, argv, options, true), `${command.name} --${flag.long}`);
    }
    t.same(command.flags.map((flag) => flag.long).sort(), [...Object.keys(options), 'help'].sort(), `${command.name}: no flag left out`);
  }
  const run = completed.find((command) => command.name === 'run')!;
  for (const setting of SETTINGS) t.ok(run.flags.some((flag) => flag.long === setting.flag), `run completes --${setting.flag}`);
});

t.test('bash: commands, flags, flag values and files', { skip: (await have('bash')) ? false : 'bash is not installed' }, async (t) => {
  const dir = t.testdir({ 'web.yaml': '', 'api.yaml': '', sub: { 'x.yaml': '' } });
  const script = join(dir, 'podvisor.bash');
  await writeFile(script, bashScript());
  const syntax = await execa('bash', ['-n', script], { reject: false });
  t.equal(syntax.exitCode, 0, `bash -n: ${syntax.stderr}`);

  t.same(await bashComplete(script, ['podvisor', '']), [...COMMANDS.map((spec) => spec.name), 'help', '--help', '--version'], 'the commands');
  t.same(await bashComplete(script, ['podvisor', 'd']), ['describe', 'doctor']);
  t.same(await bashComplete(script, ['podvisor', 'co']), ['completion']);
  t.same(await bashComplete(script, ['podvisor', 'status', '--']), ['--state-dir', '--config', '--output', '--help']);
  t.same(await bashComplete(script, ['podvisor', 'status', '-o', '']), ['wide', 'json', 'yaml', 'name'], '-o takes the formats');
  t.same(await bashComplete(script, ['podvisor', 'status', '--output', 'y']), ['yaml']);
  t.same(await bashComplete(script, ['podvisor', 'run', '--log-level', '']), ['error', 'warn', 'info', 'debug']);
  t.same(await bashComplete(script, ['podvisor', 'run', '--publish-']), ['--publish-webhook', '--publish-token-file', '--publish-ca-file', '--publish-kubeconfig', '--publish-interval', '--publish-heartbeat', '--publish-full-interval']);
  t.same(await bashComplete(script, ['podvisor', 'doctor', '-']), ['--config', '--help', '-h']);
  t.same(await bashComplete(script, ['podvisor', 'completion', '']), ['bash', 'zsh']);
  t.same(await bashComplete(script, ['podvisor', 'run', '--node-name', '']), [], 'a value of the user\'s own: nothing offered');
  t.same((await bashComplete(script, ['podvisor', 'validate', ''], dir)).sort(), ['api.yaml', 'podvisor.bash', 'sub', 'web.yaml'], 'validate takes files');
  t.same(await bashComplete(script, ['podvisor', 'doctor', '--config', 'w'], dir), ['web.yaml'], '--config takes a file');
  t.same(await bashComplete(script, ['podvisor', 'status', '--state-dir', ''], dir), ['sub'], '--state-dir takes a directory');
  t.same(await bashComplete(script, ['podvisor', 'frobnicate', '']), [], 'an unknown command: nothing');
});

// zsh is installed from Debian's package when missing, so the check runs on every test machine.
await ensureCommand('zsh', 'zsh');

t.test('zsh: the script parses, and each command hands _arguments its flags', async (t) => {
  const dir = t.testdir({});
  const script = join(dir, '_podvisor');
  await writeFile(script, zshScript());
  const syntax = await execa('zsh', ['-n', script], { reject: false });
  t.equal(syntax.exitCode, 0, `zsh -n: ${syntax.stderr}`);

  // zsh's completion builtins replaced by ones that print what they were given.
  const stubs = [
    '_describe() { print -rl -- ${(P)4} }',
    '_arguments() { print -rl -- "$@" }',
    'compadd() { print -rl -- ${(P)2} }',
    'compdef() { print -r -- "compdef $*" }',
  ].join('\n');
  const zshRun = async (words: string[], extra = '_podvisor') =>
    (await execa('zsh', ['-f', '-c', `${stubs}\nsource "$1"; shift; words=("$@"); CURRENT=$#; ${extra}`, 'zsh', script, ...words], { stdin: 'ignore', timeout: 20_000 })).stdout.split('\n');

  const sourced = await execa('zsh', ['-f', '-c', `${stubs}\nsource "$1"`, 'zsh', script], { stdin: 'ignore' });
  t.equal(sourced.stdout, 'compdef _podvisor podvisor', 'sourced, it registers itself for podvisor');
  const commands = await zshRun(['podvisor', '']);
  for (const spec of COMMANDS) t.ok(commands.includes(`${spec.name}:${spec.summary}`), `offers ${spec.name} with its summary`);
  const status = await zshRun(['podvisor', 'status', '']);
  t.ok(status.includes('(-o --output)-o:output:(wide json yaml name)') && status.includes('(-o --output)--output:output:(wide json yaml name)'), '-o and --output, one excluding the other');
  t.ok(status.includes('--state-dir:directory:_files -/'));
  t.ok(status.includes('-s'), 'single-letter flags may be stacked');
  const describe = await zshRun(['podvisor', 'describe', '']);
  t.ok(describe.includes('1:pod:_podvisor_pods'), 'describe completes a pod');
  const run = await zshRun(['podvisor', 'run', '--']);
  for (const setting of SETTINGS) t.ok(run.some((spec) => spec.startsWith(`--${setting.flag}:`)), `run: --${setting.flag}`);

  // Pod names: `podvisor status -o name` with the --state-dir already typed, without "pod/".
  const pods = await zshRun(['describe', '--state-dir', '/srv/state', ''], 'fake() { print -l "pod/args: $*" pod/web-node1 pod/api-node1 }; _podvisor_program=fake _podvisor_pods');
  t.same(pods.filter((line) => !line.startsWith('compdef ')), ['args: status -o name --state-dir /srv/state', 'web-node1', 'api-node1']);
});

t.test('completion takes one shell it knows', async (t) => {
  for (const argv of [[], ['fish'], ['bash', 'zsh']]) {
    await t.rejects(completionCommand(argv), { code: 'E_USAGE', message: 'podvisor completion: give one shell, bash or zsh (see podvisor completion --help)' }, `completion ${argv.join(' ')}`);
  }
});
