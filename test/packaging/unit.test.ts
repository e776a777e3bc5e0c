// The systemd unit the installer and the package put in place, checked by systemd's own
// `systemd-analyze verify` (it needs no running systemd), with its command pointed at this
// build's bundle, and read for the settings the README promises an operator.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const UNIT = fileURLToPath(new URL('../../packaging/podvisor.service', import.meta.url));
const BUNDLE = fileURLToPath(new URL('../../dist/podvisor.mjs', import.meta.url));

/** The unit's `Key=value` lines (comments and sections left out). */
function directives(text: string): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const match = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (match) found.set(match[1]!, [...(found.get(match[1]!) ?? []), match[2]!]);
  }
  return found;
}

t.test('systemd-analyze verify accepts the unit', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'podvisor-unit-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const unit = join(dir, 'podvisor.service');
  await writeFile(unit, (await readFile(UNIT, 'utf8')).replaceAll('/usr/bin/podvisor', BUNDLE));
  const result = await new Promise<{ code: number | null; output: string }>((resolve) => {
    execFile('systemd-analyze', ['verify', unit], (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}` });
    });
  });
  t.equal(result.code, 0, 'systemd-analyze verify exits 0');
  // It exits 0 for an unknown key or a value out of range, and says so: its silence is the check.
  t.equal(result.output.trim(), '', 'and has nothing to say about it');
});

t.test('the unit keeps the pods, reloads, and is the last thing the kernel kills', async (t) => {
  const unit = directives(await readFile(UNIT, 'utf8'));
  t.same(unit.get('KillMode'), ['process'], 'stopping the agent stops no container');
  t.same(unit.get('ExecReload'), ["/bin/sh -c 'kill -HUP $$MAINPID'"], 'systemctl reload sends SIGHUP (with the shell\'s kill: no procps needed)');
  t.same(unit.get('OOMScoreAdjust'), ['-999']);
  t.same(unit.get('EnvironmentFile'), ['-/etc/default/podvisor'], 'an optional environment file');
  t.same(unit.get('Restart'), ['always']);
  t.same(unit.get('Type'), ['notify'], 'ready once the first reconcile pass has ended');
  t.same(unit.get('NotifyAccess'), ['main'], 'only the agent is listened to (systemd-notify names its pid)');
  t.ok(Number(unit.get('WatchdogSec')?.[0]) > 0, 'a watchdog');
  t.notOk(unit.get('ExecStart')?.[0]?.includes('--log-format'), 'logs go to the journal in its own format');
});
