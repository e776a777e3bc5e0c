// The manual page, packaging/podvisor.1: rendered by man(1) and groff with every warning on (and
// linted by mandoc) without a word of complaint, and naming every command
// `podvisor --help` lists and every flag each command's --help lists, so that a command or flag
// added to the CLI fails here until the manual has it.
import { execa } from 'execa';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ensureCommand } from '../support/debian-root.js';
import { REPO, podvisorCli } from './harness.js';

const PAGE = join(REPO, 'packaging', 'podvisor.1');
/** The page's source with roff's escapes for a hyphen and for fonts taken out: the words a reader sees. */
const words = readFileSync(PAGE, 'utf8').replace(/\\-/g, '-').replace(/\\f[BIRP]/g, '');

// The tools are installed from Debian's packages when missing, so every check runs on every test machine.
await ensureCommand('man', 'man-db');
await ensureCommand('groff', 'groff-base');
await ensureCommand('mandoc', 'mandoc');

t.test('man renders it, and groff finds nothing to warn about', async (t) => {
  const man = await execa('man', ['--warnings', '-l', PAGE], { reject: false, env: { MANWIDTH: '100', MAN_KEEP_FORMATTING: '' }, stdin: 'ignore' });
  t.equal(man.exitCode, 0);
  t.equal(man.stderr, '', 'man --warnings: no warning');
  t.match(man.stdout, /^PODVISOR\(1\)/);
  for (const section of ['NAME', 'SYNOPSIS', 'DESCRIPTION', 'COMMANDS', 'RUN FLAGS', 'FILES', 'ENVIRONMENT', 'SIGNALS', 'EXIT STATUS', 'EXAMPLES']) {
    t.match(man.stdout, new RegExp(`^${section}$`, 'm'), `a ${section} section`);
  }
  const groff = await execa('groff', ['-man', '-Tutf8', '-ww', '-z', PAGE], { reject: false });
  t.equal(groff.exitCode, 0);
  t.equal(groff.stderr, '', 'groff -ww: no warning');
});

t.test('mandoc -Tlint finds nothing, style included', async (t) => {
  const lint = await execa('mandoc', ['-Tlint', '-W', 'style', PAGE], { reject: false });
  t.equal(`${lint.stdout}${lint.stderr}`, '');
  t.equal(lint.exitCode, 0);
});

t.test('every command and every flag the CLI lists is in the page', async (t) => {
  const help = await podvisorCli('--help');
  const commands = [...help.stdout.matchAll(/^ {2}([a-z]+)\b/gm)].map((match) => match[1]!);
  t.ok(commands.length >= 8, `podvisor --help lists the commands (${commands.join(', ')})`);
  t.ok(commands.includes('doctor') && commands.includes('completion'), 'doctor and completion among them');
  for (const command of commands) {
    t.match(words, new RegExp(`^\\.B podvisor ${command}$`, 'm'), `the synopsis has podvisor ${command}`);
    const flags = await podvisorCli(command, '--help');
    t.equal(flags.code, 0, `podvisor ${command} --help`);
    for (const flag of new Set(flags.stdout.match(/(?<![\w-])--?[a-z][a-z-]*/g) ?? [])) {
      t.ok(words.includes(flag), `${command} ${flag} is in the page`);
    }
  }
  for (const file of ['/etc/pods.d', '/etc/podvisor/config.yaml', '/var/lib/podvisor', '/etc/default/podvisor']) t.ok(words.includes(file), `FILES: ${file}`);
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) t.ok(words.includes(signal), `SIGNALS: ${signal}`);
});
