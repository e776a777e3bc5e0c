// The package's service under a real systemd: a fresh Debian 12 root (debootstrap) booted with
// systemd as PID 1 in a privileged podman container, podman installed inside it, and the .deb
// installed there by apt-get. What an operator sees is checked with systemd's own tools:
// Type=notify readiness, the status line, the journal's priorities, reload, the watchdog, an
// upgrade that leaves the pod running, stop, remove and purge.
import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { bootSystemd, debianRoot, prepareNestedPodman, type SystemdHandle } from '../support/debian-root.js';
import { podYaml } from '../e2e/harness.js';
import { builtPackages } from '../support/packages.js';

t.setTimeout(30 * 60_000);

const packages = await builtPackages();
const root = await debianRoot({ arch: 'amd64', withSystemd: true, t });
await copyFile(packages.deb.amd64, join(root, 'var/tmp/podvisor.deb'));
const system = await bootSystemd(root, { t });
const { image } = await prepareNestedPodman(system);

/** A shell script run in the booted root; its output, failing the test when it fails (unless `allowFailure`). */
async function sh(script: string, options: { timeoutMs?: number; allowFailure?: boolean } = {}): Promise<{ stdout: string; stderr: string; exitCode: number }> {
  const result = await system.exec(['sh', '-c', script], { timeoutMs: options.timeoutMs ?? 120_000, env: { DEBIAN_FRONTEND: 'noninteractive' } });
  if (result.exitCode !== 0 && !options.allowFailure) throw new Error(`${script}: exit ${result.exitCode}: ${result.stderr}${result.stdout}`);
  return result;
}

async function property(name: string): Promise<string> {
  return (await sh(`systemctl show -P ${name} podvisor.service`)).stdout.trim();
}

async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(500);
  }
}

/** The pod's app container: its id while it runs. */
async function runningContainer(handle: SystemdHandle): Promise<string | undefined> {
  const result = await handle.exec(['podman', 'ps', '--filter', 'label=io.podvisor.container=app', '--format', '{{.ID}}'], { timeoutMs: 30_000 });
  return result.stdout.trim() || undefined;
}

t.test('install: enabled, started, and ready once the first pass has ended', async (t) => {
  const manifest = podYaml({
    name: 'app',
    containers: [
      '    - name: app',
      `      image: ${image}`,
      '      imagePullPolicy: Never',
      `      command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]`,
    ].join('\n'),
  });
  await sh(`mkdir -p /etc/pods.d && cat >/etc/pods.d/app.yaml <<'YAML'\n${manifest}YAML`);
  const install = await sh('apt-get install -y -qq /var/tmp/podvisor.deb', { timeoutMs: 10 * 60_000 });
  t.equal(install.exitCode, 0, 'apt-get install');
  t.equal((await sh('systemctl is-enabled podvisor')).stdout.trim(), 'enabled');
  t.equal((await sh('systemctl is-active podvisor')).stdout.trim(), 'active', 'active: READY=1 arrived (a Type=notify unit is "activating" until then)');
  t.equal(await property('Type'), 'notify');
  t.equal(await property('StatusText'), 'supervising the pods of /etc/pods.d', 'the status line systemctl status shows');
  t.equal(await property('WatchdogUSec'), '30s');
  const id = await until('the pod to run', () => runningContainer(system), 120_000);
  t.ok(id, `the manifest's pod runs (${id})`);
  // The status file follows podman within its write interval (2 s): wait for it, not for podman.
  const status = await until('podvisor status to show the pod Running', async () => {
    const shown = (await sh('podvisor status')).stdout;
    return /app-\S+\s+1\/1\s+Running/.test(shown) ? shown : undefined;
  });
  t.match(status, /app-\S+\s+1\/1\s+Running/, 'podvisor status reads the service\'s state');
});

t.test('the journal: priorities per line, so -p warning shows exactly warnings and errors', async (t) => {
  await sh("printf 'apiVersion: v1\\nkind: Pod\\nmetadata:\\n  name: broken\\nspec:\\n  containers: nope\\n' >/etc/pods.d/broken.yaml");
  await until('the invalid file to be logged', async () => ((await sh('journalctl -u podvisor -p err -o cat')).stdout.includes('broken.yaml') ? true : undefined));
  const all = (await sh('journalctl -u podvisor -o json --output-fields=PRIORITY,MESSAGE,SYSLOG_IDENTIFIER')).stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as { PRIORITY: string; MESSAGE: string; SYSLOG_IDENTIFIER?: string });
  const agent = all.filter((entry) => entry.SYSLOG_IDENTIFIER === 'podvisor');
  t.ok(agent.some((entry) => entry.PRIORITY === '6' && entry.MESSAGE.startsWith('podvisor running')), 'info at priority 6');
  const error = agent.find((entry) => entry.MESSAGE.includes('broken.yaml'));
  t.equal(error?.PRIORITY, '3', `the invalid file at priority 3 (error): ${error?.MESSAGE}`);
  t.notOk(agent.some((entry) => /^\d{4}-\d\d-\d\dT/.test(entry.MESSAGE) || entry.MESSAGE.startsWith('{')), 'no timestamp or JSON of its own in any line');
  const warnings = (await sh('journalctl -u podvisor -p warning -o cat')).stdout;
  t.notMatch(warnings, /podvisor running/, '-p warning leaves info out');
  t.match(warnings, /broken\.yaml/, 'and keeps the error');
  await sh('rm /etc/pods.d/broken.yaml');
});

t.test('reload: the config file read again, the agent and its pod untouched', async (t) => {
  const pid = await property('MainPID');
  const id = await runningContainer(system);
  await sh("printf 'log-level: debug\\n' >>/etc/podvisor/config.yaml && systemctl reload podvisor");
  await until('the reload to be logged', async () => ((await sh('journalctl -u podvisor -o cat')).stdout.includes('configuration reloaded') ? true : undefined));
  t.equal(await property('MainPID'), pid, 'the same agent process');
  t.equal(await runningContainer(system), id, 'the same container');
  await until('a debug line', async () => ((await sh('journalctl -u podvisor -p debug -o cat')).stdout.match(/^podman /m) ? true : undefined), 30_000);
  t.pass('debug lines follow: the new level applies');
});

t.test('the watchdog: an agent whose event loop stops is restarted, and adopts its pod', async (t) => {
  await sh("mkdir -p /etc/systemd/system/podvisor.service.d && printf '[Service]\\nWatchdogSec=5\\nTimeoutAbortSec=10\\n' >/etc/systemd/system/podvisor.service.d/watchdog.conf && systemctl daemon-reload && systemctl restart podvisor");
  const id = await until('the pod to run', () => runningContainer(system));
  const pid = await property('MainPID');
  const restarts = Number(await property('NRestarts'));
  await sh(`kill -STOP ${pid}`);
  const next = await until('systemd to restart the agent', async () => {
    const now = await property('MainPID');
    return now !== pid && now !== '0' && (await property('ActiveState')) === 'active' ? now : undefined;
  }, 60_000);
  t.not(next, pid, 'a new agent process');
  t.equal(Number(await property('NRestarts')), restarts + 1, 'counted as a restart');
  t.match((await sh('journalctl -u podvisor -o cat')).stdout, /[Ww]atchdog timeout/, 'systemd says why');
  await sleep(3000);
  t.equal(await runningContainer(system), id, 'the pod\'s container is adopted, not restarted');
  await sh('rm -r /etc/systemd/system/podvisor.service.d && systemctl daemon-reload && systemctl restart podvisor');
});

t.test('upgrade: the agent restarts, the pod keeps running', async (t) => {
  const id = await until('the pod to run', () => runningContainer(system));
  const pid = await property('MainPID');
  await sh('apt-get install -y -qq --reinstall /var/tmp/podvisor.deb', { timeoutMs: 5 * 60_000 });
  t.not(await property('MainPID'), pid, 'the agent was restarted');
  t.equal((await sh('systemctl is-active podvisor')).stdout.trim(), 'active');
  t.match((await sh('grep -c "^log-level: debug" /etc/podvisor/config.yaml')).stdout.trim(), '1', 'the operator\'s config edit survives');
  await sleep(3000);
  t.equal(await runningContainer(system), id, 'the same container');
});

t.test('stop: pods keep running, no helper process is left', async (t) => {
  const id = await runningContainer(system);
  await sh('systemctl stop podvisor');
  t.equal((await sh('systemctl is-active podvisor', { allowFailure: true })).stdout.trim(), 'inactive');
  t.equal(await runningContainer(system), id, 'the container runs on');
  const left = (await sh("ps -eo args | grep -E '^(podman events|dmesg|/usr/lib/podvisor/node)' || true")).stdout.trim();
  t.equal(left, '', 'no event stream, kernel-log follower or agent left');
  await sh('systemctl start podvisor');
  t.equal((await sh('systemctl is-active podvisor')).stdout.trim(), 'active');
});

t.test('remove, then purge', async (t) => {
  const id = await runningContainer(system);
  const remove = await sh('apt-get remove -y -qq podvisor', { timeoutMs: 5 * 60_000 });
  t.match(remove.stdout, /the pods it ran keep running/);
  t.equal((await sh('systemctl is-active podvisor', { allowFailure: true })).stdout.trim(), 'inactive', 'the agent is stopped');
  t.equal(await runningContainer(system), id, 'its pod keeps running');
  await sh('apt-get purge -y -qq podvisor', { timeoutMs: 5 * 60_000 });
  const left = await sh('ls -d /var/lib/podvisor /etc/podvisor /etc/systemd/system/multi-user.target.wants/podvisor.service 2>/dev/null; true');
  t.equal(left.stdout.trim(), '', 'no state, config or enable link');
  t.match((await sh('systemctl list-unit-files podvisor.service', { allowFailure: true })).stdout, /0 unit files listed/, 'systemd no longer knows the unit');
});
