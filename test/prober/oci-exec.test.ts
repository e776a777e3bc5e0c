// exec probes through the OCI runtime directly (oci-exec.ts), against real containers: that no
// `podman exec` runs; that the command sees what it sees under `podman exec` (user, groups,
// working directory, environment, cgroup, capabilities, limits, umask); exit codes; the 10 KiB
// output cap; that a timeout or a cancel kills what was started, its children included; and the
// fallbacks to `podman exec` (no runtime state for the container, a runtime other than crun/runc,
// a runtime that fails where podman does not), each logged once. runc too, when it is installed.
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import type { Probe } from '../../src/manifest/pod-schema.js';
import { PodmanCli } from '../../src/runtime/podman-cli.js';
import { detectOciRuntime, directExec, type OciRuntime } from '../../src/prober/oci-exec.js';
import { PodProbeRunner, type ProbeTarget } from '../../src/prober/probe-runner.js';
import { toProbeSpec } from '../../src/prober/probe-spec.js';
import type { ProbeOutcome } from '../../src/prober/types.js';
import {
  createPod,
  memoryLogger,
  podmanExec,
  processesMatching,
  requireImage,
  runContainer,
  waitFor,
  writeScript,
  type TestContainer,
  type TestPod,
} from './fixtures/prober-fixtures.js';

/** A runner with its own podman call record and log. */
function recordingRunner(bin?: string): { runner: PodProbeRunner; podmanCalls: string[]; lines: string[] } {
  const podmanCalls: string[] = [];
  const { logger, lines } = memoryLogger();
  const cli = new PodmanCli({ ...(bin ? { bin } : {}), onCall: (args) => podmanCalls.push(args.join(' ')) });
  return { runner: new PodProbeRunner({ cli, logger }), podmanCalls, lines };
}

const targetOf = (container: TestContainer | { id: string; pid: number }): ProbeTarget => ({ containerId: container.id, pid: container.pid, hostNetwork: false, ports: [] });
const exec = (command: string[], timeoutSeconds = 10): Probe => ({ exec: { command }, timeoutSeconds });
const run = (runner: PodProbeRunner, target: ProbeTarget, probe: Probe, signal = new AbortController().signal): Promise<ProbeOutcome> =>
  runner.run(target, toProbeSpec(probe), signal);
const execCalls = (calls: string[]) => calls.filter((call) => call.startsWith('exec '));
const logged = (lines: string[], text: string) => lines.filter((line) => line.includes(text));

/** What a command can see of its place: checked under both ways of exec. */
const LOOK_AROUND = [
  'id -u', 'id -g', 'grep Groups /proc/self/status', 'pwd', 'env | sort', 'cat /proc/self/cgroup', 'grep -E "^(Cap|NoNewPrivs|Seccomp:)" /proc/self/status', 'ulimit -a', 'umask',
  'cat /proc/self/oom_score_adj', 'for ns in net pid mnt uts ipc cgroup; do readlink /proc/self/ns/$ns; done',
].join('; ');

/**
 * The output lines podman 4's exec shows too: without HOSTNAME (podman's exec starts from the spec
 * made before the start, which lacks it) and the supplementary groups (podman resolves a "uid:gid"
 * user without the spec's additionalGids). Those two are checked against the main process instead.
 */
const asPodmanShows = (text: string) => text.split('\n').filter((line) => !line.startsWith('HOSTNAME=') && !line.startsWith('Groups:'));

/** The HOSTNAME in the environment of the container's main process, and its supplementary groups. */
function mainProcess(pid: number): { hostname: string | undefined; groups: string | undefined } {
  return {
    hostname: readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').find((entry) => entry.startsWith('HOSTNAME=')),
    groups: readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((line) => line.startsWith('Groups:')),
  };
}

let pod: TestPod;
let rootApp: TestContainer;
let nobodyApp: TestContainer;
let crun: OciRuntime;

t.before(async () => {
  await requireImage();
  pod = await createPod(t);
  rootApp = await runContainer(pod, 'root', 'exec sleep 3600');
  nobodyApp = await runContainer(pod, 'nobody', 'exec sleep 3600', { user: '65534:65534', workdir: '/etc', env: { FOO: 'bar', SPACED: 'a b' } });
  const found = await detectOciRuntime(new PodmanCli());
  if ('unusable' in found) throw new Error(`these tests need crun or runc callable directly: ${found.unusable}`);
  crun = found;
});

t.test('the runtime is the one podman reports, with its state root, and holds the container', async (t) => {
  const { stdout } = await new PodmanCli().run(['info', '--format', '{{.Host.OCIRuntime.Path}}']);
  t.equal(crun.path, stdout.trim());
  t.ok(existsSync(join(crun.root, rootApp.id)), `${crun.root}/<id> exists`);
});

t.test('exec probes run through the runtime: no podman exec, one podman info', async (t) => {
  const { runner, podmanCalls, lines } = recordingRunner();
  t.strictSame(await run(runner, targetOf(rootApp), exec(['true'])), { result: 'success', output: '' });
  t.strictSame(await run(runner, targetOf(rootApp), exec(['sh', '-c', 'echo out; echo err >&2; exit 3'])), { result: 'failure', output: 'out\nerr' });
  t.strictSame(await run(runner, targetOf(nobodyApp), exec(['test', '-f', '/etc/passwd'])), { result: 'success', output: '' });
  t.strictSame(podmanCalls, ['info --format json'], 'podman was asked only which runtime it uses');
  t.equal(logged(lines, `exec probes call ${crun.name} directly`).length, 1, 'the choice is logged once');
});

for (const which of ['root', 'nobody'] as const) {
  t.test(`the command sees what podman exec shows it (${which} container)`, async (t) => {
    const container = which === 'root' ? rootApp : nobodyApp;
    const { runner } = recordingRunner();
    const direct = await run(runner, targetOf(container), exec(['sh', '-c', LOOK_AROUND]));
    const viaPodman = await podmanExec(container.id, 'sh', '-c', LOOK_AROUND);
    t.equal(direct.result, 'success');
    t.equal(viaPodman.exitCode, 0);
    t.strictSame(asPodmanShows(direct.output), asPodmanShows(viaPodman.stdout), 'the same but for HOSTNAME and groups');
    const main = mainProcess(container.pid);
    t.equal(direct.output.split('\n').find((line) => line.startsWith('HOSTNAME=')), main.hostname, 'HOSTNAME as the main process has it');
    t.equal(direct.output.split('\n').find((line) => line.startsWith('Groups:')), main.groups, 'the groups the main process has');
    if (which === 'nobody') {
      t.match(direct.output, /^65534\n65534\n/, 'the container user and group');
      t.match(direct.output, /\n\/etc\n/, 'the container working directory');
      t.match(direct.output, /\nFOO=bar\n/, 'the container environment');
      t.match(direct.output, /\nSPACED=a b\n/);
    }
    t.match(direct.output, new RegExp(`libpod-${container.id}`), "the container's cgroup");
  });
}

t.test('exit codes pass through; the output is capped at 10 KiB per stream, however much there is', async (t) => {
  const signal = new AbortController().signal;
  const raw = (script: string) => directExec(crun, rootApp.id, ['sh', '-c', script], 10_000, signal);
  t.match(await raw('exit 3'), { kind: 'exited', exitCode: 3 });
  t.match(await raw('exit 0'), { kind: 'exited', exitCode: 0 });
  t.match(await raw('kill -9 $$'), { kind: 'exited', exitCode: 137 }, 'a signal is 128+n');
  const big = await raw('head -c 20000 /dev/zero | tr "\\0" a; head -c 3000000 /dev/zero | tr "\\0" b >&2');
  t.equal(big.kind, 'exited');
  if (big.kind === 'exited') {
    t.equal(big.stdout, 'a'.repeat(10 * 1024));
    t.equal(big.stderr, 'b'.repeat(10 * 1024), '3 MB of stderr read to the end, 10 KiB kept');
  }
  const { runner } = recordingRunner();
  const outcome = await run(runner, targetOf(rootApp), exec(['sh', '-c', 'head -c 20000 /dev/zero | tr "\\0" a; exit 1']));
  t.equal(outcome.result, 'failure');
  t.equal(outcome.output.length, 10 * 1024, 'the probe output is 10 KiB');
});

/** Sleeps with durations no one else uses, to find them among the host's processes. */
function uniqueSleeps(): [string, string] {
  const base = 30_000 + Math.floor(Math.random() * 20_000);
  return [`sleep ${base}`, `sleep ${base + 1}`];
}

/** Passes once no process on the host has any of `commands` in its command line (the shell that ran them included). */
async function assertGone(t: Test, commands: string[]): Promise<void> {
  const regex = new RegExp(commands.join('|'));
  const left = await waitFor('the started processes to be gone', () => (processesMatching(regex).length === 0 ? true : undefined), 5000).catch(() => false);
  t.ok(left, `nothing left running: ${JSON.stringify(processesMatching(regex))}`);
}

t.test('timeout: fails with the kubelet words at the timeout, and kills the command and its children', async (t) => {
  const { runner } = recordingRunner();
  const [first, second] = uniqueSleeps();
  // A child in the background, and a foreground one under a shell that ignores SIGTERM.
  const command = ['sh', '-c', `trap '' TERM; ${first} & ${second}; echo done`];
  const started = Date.now();
  const outcome = await run(runner, targetOf(nobodyApp), exec(command, 1));
  const elapsed = Date.now() - started;
  t.strictSame(outcome, { result: 'failure', output: `command "${command.join(' ')}" timed out` });
  t.ok(elapsed >= 1000 && elapsed < 3000, `ended at the timeout (${elapsed} ms)`);
  await assertGone(t, [first, second]);
  t.equal(processesMatching(new RegExp(`crun .*exec .*${nobodyApp.id}`)).length, 0, 'no runtime process left');
});

t.test('a command that leaves a child running ends when it exits, as under podman exec', async (t) => {
  const { runner } = recordingRunner();
  const [first] = uniqueSleeps();
  t.teardown(() => {
    for (const { pid } of processesMatching(new RegExp(`^${first}$`))) process.kill(pid, 'SIGKILL');
  });
  const started = Date.now();
  // The child keeps the command's stdout and stderr open.
  t.strictSame(await run(runner, targetOf(rootApp), exec(['sh', '-c', `${first} & echo started`], 5)), { result: 'success', output: 'started' });
  t.ok(Date.now() - started < 2000, `not held up by the child (${Date.now() - started} ms)`);
  t.equal(processesMatching(new RegExp(`^${first}$`)).length, 1, 'the child is left alone, as podman exec leaves it');
});

t.test('cancel: the outcome is unknown and what was started is killed', async (t) => {
  const { runner } = recordingRunner();
  const [first, second] = uniqueSleeps();
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 500);
  // SIGTERM ignored (and so by the children too): only the kill can end them.
  const outcome = await run(runner, targetOf(rootApp), exec(['sh', '-c', `trap '' TERM; ${first} & ${second}`]), controller.signal);
  t.strictSame(outcome, { result: 'unknown', output: 'cancelled' });
  await assertGone(t, [first, second]);
});

t.test('a command that cannot be started fails; the runtime stays in use', async (t) => {
  const { runner, podmanCalls, lines } = recordingRunner();
  const missing = await run(runner, targetOf(rootApp), exec(['no-such-command']));
  t.equal(missing.result, 'failure');
  t.match(missing.output, /no-such-command/);
  t.strictSame(await run(runner, targetOf(rootApp), exec(['true'])), { result: 'success', output: '' });
  // podman was asked to run the command the runtime could not start: it could not either.
  t.strictSame(execCalls(podmanCalls), [`exec ${rootApp.id} no-such-command`]);
  t.equal(logged(lines, 'from now on').length, 0, 'the runtime was not given up');
});

t.test('fallback: a container the runtime has no state for goes through podman exec, said once', async (t) => {
  const { runner, podmanCalls, lines } = recordingRunner();
  const name = `${pod.name}-root`; // podman knows it by name; the runtime's state is by id
  const byName = { ...targetOf(rootApp), containerId: name };
  t.strictSame(await run(runner, byName, exec(['sh', '-c', 'echo $HOME'])), { result: 'success', output: '/root' });
  t.strictSame(await run(runner, byName, exec(['false'])), { result: 'failure', output: '' });
  t.strictSame(execCalls(podmanCalls), [`exec ${name} sh -c echo $HOME`, `exec ${name} false`]);
  t.equal(logged(lines, 'exec probe through podman exec').length, 1, 'logged once');
  t.match(logged(lines, 'exec probe through podman exec')[0], /is not a container id/);
  t.equal((await run(runner, targetOf(rootApp), exec(['true']))).result, 'success');
  t.equal(execCalls(podmanCalls).length, 2, 'a container the runtime has goes through it still');
});

/** A podman in front of the real one that answers `podman info` from `info` and counts the rest. */
async function fakePodman(dir: string, info: object): Promise<string> {
  const infoFile = join(dir, 'info.json');
  await writeFile(infoFile, JSON.stringify(info));
  return writeScript(join(dir, 'podman'), `if [ "$1" = info ]; then cat ${JSON.stringify(infoFile)}; exit 0; fi\nexec podman "$@"\n`);
}

t.test('fallback: a runtime other than crun or runc means podman exec, said once', async (t) => {
  const bin = await fakePodman(t.testdir(), { host: { ociRuntime: { name: 'kata', path: '/usr/bin/kata-runtime' }, security: { rootless: false } } });
  const { runner, podmanCalls, lines } = recordingRunner(bin);
  t.strictSame(await run(runner, targetOf(nobodyApp), exec(['sh', '-c', 'echo $FOO'])), { result: 'success', output: 'bar' });
  t.strictSame(await run(runner, targetOf(nobodyApp), exec(['true'])), { result: 'success', output: '' });
  t.equal(execCalls(podmanCalls).length, 2);
  t.strictSame(logged(lines, 'exec probes go through podman exec').length, 1);
  t.match(logged(lines, 'exec probes go through podman exec')[0], /podman's OCI runtime is kata, not crun or runc/);
});

t.test('fallback: a runtime that fails where podman exec works is given up, said once', async (t) => {
  const dir = t.testdir();
  const calls = join(dir, 'runtime-calls');
  // A crun that knows its version and root but fails every exec, logging why as crun does.
  const broken = await writeScript(join(dir, 'crun'), `echo "$*" >> ${JSON.stringify(calls)}
if [ "$1" = --version ]; then echo 'crun version 0.0'; echo 'rundir: ${crun.root}'; exit 0; fi
for arg in "$@"; do case "$arg" in --log=*) echo '{"msg":"setns: Operation not permitted","level":"error"}' >> "\${arg#--log=}";; esac; done
exit 1
`);
  const bin = await fakePodman(dir, { host: { ociRuntime: { name: 'crun', path: broken }, security: { rootless: false } } });
  const { runner, podmanCalls, lines } = recordingRunner(bin);
  t.strictSame(await run(runner, targetOf(rootApp), exec(['sh', '-c', 'echo via podman'])), { result: 'success', output: 'via podman' });
  t.strictSame(await run(runner, targetOf(rootApp), exec(['true'])), { result: 'success', output: '' });
  const runtimeCalls = readFileSync(calls, 'utf8').trim().split('\n');
  t.equal(runtimeCalls.length, 2, '--version, then one exec');
  t.match(runtimeCalls[1], /exec --process /);
  t.equal(execCalls(podmanCalls).length, 2, 'both runs went through podman exec');
  t.equal(logged(lines, 'from now on').length, 1);
  t.match(logged(lines, 'from now on')[0], /setns: Operation not permitted/);
});

const RUNC = ['/usr/sbin/runc', '/usr/bin/runc'].find((path) => existsSync(path));

t.test('runc: the same, through runc exec', { skip: RUNC ? false : 'runc is not installed' }, async (t) => {
  const runcApp = await runContainer(pod, 'runc', 'exec sleep 3600', { user: '65534:65534', workdir: '/etc', env: { FOO: 'runc' }, runtime: RUNC ?? 'runc' });
  const bin = await fakePodman(t.testdir(), { host: { ociRuntime: { name: 'runc', path: RUNC }, security: { rootless: false } } });
  const { runner, podmanCalls, lines } = recordingRunner(bin);
  const direct = await run(runner, targetOf(runcApp), exec(['sh', '-c', LOOK_AROUND]));
  const viaPodman = await podmanExec(runcApp.id, 'sh', '-c', LOOK_AROUND);
  t.equal(direct.result, 'success');
  t.strictSame(asPodmanShows(direct.output), asPodmanShows(viaPodman.stdout), 'the same as podman exec but for HOSTNAME and groups');
  t.equal(direct.output.split('\n').find((line) => line.startsWith('Groups:')), mainProcess(runcApp.pid).groups);
  t.match(direct.output, /^65534\n65534\n/);
  t.match(direct.output, /\nFOO=runc\n/);
  const [first, second] = uniqueSleeps();
  const command = ['sh', '-c', `trap '' TERM; ${first} & ${second}`];
  t.strictSame(await run(runner, targetOf(runcApp), exec(command, 1)), { result: 'failure', output: `command "${command.join(' ')}" timed out` });
  await assertGone(t, [first, second]);
  t.strictSame(execCalls(podmanCalls), [], 'no podman exec');
  t.equal(logged(lines, 'exec probes call runc directly').length, 1);
});
