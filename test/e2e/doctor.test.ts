// `podvisor doctor` on this host, with real podman, as an operator runs it: every check one line
// in the documented form; the host's own facts (podman's version, the cgroup layout, the hard
// open-files limit) read back the same as other tools read them; a bad config file named by
// file:line:col; warnings for a writable manifest directory and a missing image; a failure when
// run as another user than root, when podman is missing, and, within its deadline, when podman
// hangs.
import { execa } from 'execa';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { CLI, IMAGE, podYaml, sleeper } from './harness.js';

const CHECKS = ['root', 'config', 'podman', 'cgroups', 'ulimits', 'hybrid cgroups', 'systemd', 'manifest dir', 'manifests', 'state dir', 'infra image', 'images', 'disk (state)', 'disk (podman)'];

interface Report {
  code: number;
  stdout: string;
  stderr: string;
  /** Each check's line, by its name. */
  lines: Map<string, { level: string; text: string }>;
}

/** Runs the built `podvisor doctor` with `args`, optionally as another user (a command prefix). */
async function doctor(args: string[], options: { env?: Record<string, string>; as?: string[] } = {}): Promise<Report> {
  const command = [...(options.as ?? []), process.execPath, CLI, 'doctor', ...args];
  const result = await execa(command[0]!, command.slice(1), { reject: false, stdin: 'ignore', timeout: 120_000, env: options.env, cwd: tmpdir() });
  const lines = new Map<string, { level: string; text: string }>();
  for (const line of result.stdout.split('\n')) {
    const match = /^(ok|warn|fail) {2,4}([a-z ()]+): (.+)$/.exec(line);
    if (match) lines.set(match[2]!, { level: match[1]!, text: match[3]! });
  }
  return { code: result.exitCode ?? -1, stdout: result.stdout, stderr: result.stderr, lines };
}

/** A device laid out in a temporary directory: a manifest directory, a state dir and a config naming both. */
async function device(t: Test, manifests: Record<string, string>, mode = 0o755, extraConfig = ''): Promise<{ dir: string; config: string; pods: string; state: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'podvisor-e2e-doctor-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const pods = join(dir, 'pods.d');
  const state = join(dir, 'state');
  await execa('mkdir', ['-p', pods, state]);
  await chmod(dir, 0o755);
  await chmod(pods, mode);
  for (const [name, text] of Object.entries(manifests)) await writeFile(join(pods, name), text);
  const config = join(dir, 'config.yaml');
  await writeFile(config, `manifest-dir: ${pods}\nstate-dir: ${state}\nnode-name: doctor-e2e\n${extraConfig}`);
  return { dir, config, pods, state };
}

const isRoot = process.getuid?.() === 0;

t.test('on this host, set up for the tests: every check passes, one line each', async (t) => {
  const { config, pods, state } = await device(t, { 'web.yaml': podYaml({ name: 'web', containers: sleeper('app') }) });
  const started = Date.now();
  const report = await doctor(['--config', config]);
  t.ok(Date.now() - started < 60_000, 'done in bounded time');
  t.same([...report.lines.keys()], CHECKS, 'every check, in order, each on one line');
  t.equal(report.stdout.split('\n').filter(Boolean).length, CHECKS.length, 'and nothing else on stdout');
  t.match(report.stderr, new RegExp(`^${CHECKS.length} checks: \\d+ failed, \\d+ warning\\(s\\)$`));
  if (!isRoot) {
    t.comment('not root: the checks of root\'s podman are not asserted');
    return;
  }
  t.equal(report.code, 0, report.stdout);
  for (const check of ['root', 'config', 'podman', 'cgroups', 'ulimits', 'hybrid cgroups', 'manifest dir', 'manifests', 'state dir', 'infra image', 'images']) {
    t.equal(report.lines.get(check)?.level, 'ok', `${check}: ${report.lines.get(check)?.text ?? ''}`);
  }
  t.equal(report.lines.get('config')?.text, `${config} is valid`);
  t.equal(report.lines.get('manifest dir')?.text, `${pods}, owned by root, mode 0755`);
  t.equal(report.lines.get('manifests')?.text, `1 file(s) in ${pods}, 1 valid pod(s)`);
  t.equal(report.lines.get('state dir')?.text, `${state} is writable`);
  t.equal(report.lines.get('images')?.text, `all 1 present: ${IMAGE}`);
  t.match(report.lines.get('disk (state)')?.text, /^[\d.]+ [KMGT]?i?B free of [\d.]+ [KMGT]?i?B on \//);

  // The host's facts, read another way.
  const version = (await execa('podman', ['--version'])).stdout.replace(/^podman version /, '');
  t.match(report.lines.get('podman')?.text, new RegExp(`, version ${version.replace(/[.]/g, '\\.')}$`), 'the version podman itself gives');
  const fsType = (await execa('stat', ['-f', '-c', '%T', '/sys/fs/cgroup'])).stdout.trim();
  t.match(report.lines.get('cgroups')?.text, fsType === 'cgroup2fs' ? /^v2/ : /^v1/, `cgroups as stat -f sees /sys/fs/cgroup (${fsType})`);
  const hardNofile = (await execa('bash', ['-c', 'ulimit -Hn'])).stdout.trim();
  t.match(report.lines.get('ulimits')?.text, new RegExp(`^hard limits: ${hardNofile} open files`), 'the hard limit bash sees');
  const systemd = await execa('test', ['-d', '/run/systemd/system'], { reject: false });
  t.match(report.lines.get('systemd')?.text, systemd.exitCode === 0 ? /^running; podvisor\.service/ : /^not running here/);
});

t.test('a bad config file fails with its file:line:col, and the other checks still run', async (t) => {
  const { dir } = await device(t, {});
  const bad = join(dir, 'bad.yaml');
  await writeFile(bad, 'state-dir: /tmp\napi:\n  adress: 127.0.0.1:10255\n');
  const report = await doctor(['--config', bad]);
  t.equal(report.code, 1);
  t.equal(report.stdout.split('\n')[1], `fail  config: ${bad}:3:3: api.adress: unknown setting (did you mean address?); fix ${bad}; the checks below use the defaults`);
  t.same([...report.lines.keys()], CHECKS);

  const missing = await doctor(['--config', join(dir, 'absent.yaml')]);
  t.equal(missing.code, 1);
  t.match(missing.lines.get('config')?.text, /^--config .*absent\.yaml: ENOENT/);
});

t.test('a writable manifest directory, a file with errors and an image podman lacks are warnings', { skip: isRoot ? false : 'the tests run as root' }, async (t) => {
  const { config, pods } = await device(t, {
    'web.yaml': podYaml({ name: 'web', containers: sleeper('app').replace(IMAGE, 'registry.invalid/nothing:1') }),
    'broken.yaml': 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: broken\n',
  }, 0o777, 'policy:\n  check-ownership: false\n');
  // With the ownership check off, as here, a writable directory is a warning; by default it fails (below).
  const report = await doctor(['--config', config]);
  t.equal(report.code, 0, 'warnings alone exit 0');
  t.equal(report.stdout.split('\n').find((line) => line.includes('manifest dir:')), `warn  manifest dir: ${pods} is world-writable (mode 0777): whoever can write there runs pods as root; chmod go-w ${pods}`);
  t.equal(report.lines.get('manifests')?.text, `2 file(s) in ${pods}, 1 valid pod(s); with errors: broken.yaml; podvisor validate ${pods} names each error`);
  t.equal(report.lines.get('images')?.level, 'warn');
  t.match(report.lines.get('images')?.text, /^not in podman's storage: registry\.invalid\/nothing:1; their pods start only if a registry is reachable; podman load/);
});

t.test('by default the agent refuses every manifest of a writable directory: doctor fails and names the refusals', { skip: isRoot ? false : 'the tests run as root' }, async (t) => {
  const { config, pods } = await device(t, { 'web.yaml': podYaml({ name: 'web', containers: sleeper('app') }) }, 0o775);
  const report = await doctor(['--config', config]);
  t.equal(report.code, 1);
  t.equal(report.stdout.split('\n').find((line) => line.includes('manifest dir:')), `fail  manifest dir: ${pods} is group-writable (mode 0775): the agent refuses every manifest in it (policy.check-ownership); chmod go-w ${pods}`);
  t.equal(report.lines.get('manifests')?.text, `1 file(s) in ${pods}, 0 valid pod(s); with errors: web.yaml; podvisor validate ${pods} names each error`);
});

t.test('a manifest directory that is not there fails', async (t) => {
  const { config, pods } = await device(t, {});
  await rm(pods, { recursive: true });
  const report = await doctor(['--config', config]);
  t.equal(report.code, 1);
  t.equal(report.lines.get('manifest dir')?.level, 'fail');
  t.equal(report.lines.get('manifest dir')?.text, `${pods} does not exist: the agent runs no pods; mkdir -m 0755 ${pods}`);
});

t.test('podman missing, or hanging: a failure, within the check\'s deadline', async (t) => {
  const { dir, config } = await device(t, {});
  const missing = await doctor(['--config', config], { env: { PODVISOR_PODMAN: join(dir, 'no-podman') } });
  t.equal(missing.code, 1);
  t.equal(missing.lines.get('podman')?.level, 'fail');
  t.match(missing.lines.get('podman')?.text, /no-podman not found; install podman \(apt-get install podman\)/);
  if (isRoot) t.equal(missing.lines.get('images')?.text, 'not checked: podman did not answer');

  const hanging = join(dir, 'hanging-podman');
  await writeFile(hanging, '#!/bin/sh\nexec sleep 600\n', { mode: 0o755 });
  const started = Date.now();
  const hung = await doctor(['--config', config], { env: { PODVISOR_PODMAN: hanging } });
  const took = Date.now() - started;
  t.equal(hung.code, 1);
  t.match(hung.lines.get('podman')?.text, /--version failed: podman --version: timed out$/);
  t.ok(took < 30_000, `a hung podman costs its check's deadline, not more (${took} ms)`);
  t.same([...hung.lines.keys()], CHECKS, 'and every other check still reports');
});

const setpriv = (await execa('setpriv', ['--version'], { reject: false }).catch(() => undefined))?.exitCode === 0;
const asNobody = !isRoot ? 'needs root to switch to another user' : !setpriv ? 'setpriv (util-linux) is not installed' : false;

t.test('run as another user than root: a failure that says so', { skip: asNobody }, async (t) => {
  const { config } = await device(t, {});
  // `env -i`: the test runner puts its hooks in every child's NODE_OPTIONS, and they write where only root may.
  const report = await doctor(['--config', config], { as: ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', 'env', '-i', `PATH=${process.env.PATH ?? '/usr/bin:/bin'}`, 'HOME=/nonexistent'] });
  t.equal(report.code, 1, report.stderr);
  t.match(report.stdout.split('\n')[0], /^fail  root: running as uid 65534 \(\w+\), not root: the agent needs root .*; run sudo podvisor doctor$/);
  t.equal(report.lines.get('config')?.level, 'ok', 'the rest still runs');
  for (const check of ['infra image', 'images', 'disk (podman)']) {
    t.match(report.lines.get(check)?.text, /^not checked: it needs root/, `${check}: podman's storage is root's`);
  }
});
