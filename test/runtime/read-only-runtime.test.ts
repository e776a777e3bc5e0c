// The read-only view of podman `podvisor plan` lists through: the commands it lets through are
// exactly the listing's, everything else is refused before any process starts. A fake podman
// (a shell script) records every call it gets, so a refused call that ran anyway would show.
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { isReadOnlyCall, readOnlyRuntime, ReadOnlyPodmanCli } from '../../src/runtime/read-only-runtime.js';

/** A fake podman that appends its arguments to `calls` and prints `output` (a JSON list). */
async function fakePodman(dir: string, output: string): Promise<{ bin: string; calls: () => Promise<string[]> }> {
  const bin = join(dir, 'podman');
  const log = join(dir, 'calls');
  await writeFile(bin, `#!/bin/sh\necho "$*" >> '${log}'\nprintf '%s' '${output}'\n`);
  await chmod(bin, 0o755);
  return { bin, calls: async () => (await readFile(log, 'utf8').catch(() => '')).split('\n').filter(Boolean) };
}

t.test('which calls are read-only', async (t) => {
  const rows: [string[], boolean][] = [
    [['pod', 'ps', '--filter', 'label=io.podvisor.managed=true', '--format', 'json'], true],
    [['ps', '--all', '--format', 'json'], true],
    [['container', 'inspect', '--format', '{{.Id}}', 'abc'], true],
    [['pod', 'rm', '--force', 'abc'], false],
    [['pod', 'create', '--name', 'x'], false],
    [['pod', 'stop', 'abc'], false],
    [['run', '--detach', 'busybox'], false],
    [['start', 'abc'], false],
    [['stop', 'abc'], false],
    [['container', 'rm', 'abc'], false],
    [['pull', 'busybox'], false],
    [['psx'], false],
    [[], false],
  ];
  for (const [args, readOnly] of rows) t.equal(isReadOnlyCall(args), readOnly, args.join(' ') || '(nothing)');
});

t.test('a write is refused without starting podman; a listing runs', async (t) => {
  const dir = t.testdir({});
  const fake = await fakePodman(dir, '[]');
  const cli = new ReadOnlyPodmanCli({ bin: fake.bin });
  for (const args of [['pod', 'rm', '--force', 'x'], ['run', 'busybox'], ['start', 'x'], ['pod', 'stop', 'x']]) {
    await t.rejects(cli.run(args), { code: 'E_PODMAN', message: /^refused: podman .* is not a read-only command/ }, args.join(' '));
  }
  await t.rejects(cli.passThrough(['logs', '-f', 'x']), { message: /refused/ });
  await t.rejects(cli.json(['pod', 'create']), { message: /refused/ }, 'json() goes through the same check');
  t.same(await fake.calls(), [], 'podman was never started for them');
  t.equal((await cli.run(['ps', '--all'])).stdout, '[]');
  t.same(await fake.calls(), ['ps --all'], 'the read-only call ran');
});

t.test('the view lists through the agent\'s own listing, with nothing but list to call', async (t) => {
  const dir = t.testdir({});
  const fake = await fakePodman(dir, '[]');
  const view = readOnlyRuntime({ nodeName: 'node1', stateDir: dir, cli: { bin: fake.bin } });
  t.same(Object.keys(view), ['list'], 'list is all there is');
  t.same(await view.list(), { pods: [], foreignPods: 0 });
  const calls = await fake.calls();
  t.same(calls.map((call) => call.split(' ').slice(0, 2).join(' ')).sort(), ['pod ps', 'ps --all'], 'the two listing calls, nothing else');
  for (const call of calls) t.ok(isReadOnlyCall(call.split(' ')), call);
});
