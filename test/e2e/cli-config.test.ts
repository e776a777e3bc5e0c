// The reading commands (status, describe, logs) take the agent's state directory from its config
// file, as an operator with a state-dir in /etc/podvisor/config.yaml expects: --config FILE, with
// --state-dir winning over it, and a bad file named by file:line:col. With a real agent and real
// podman; and the shell completion of pod names, which asks `podvisor status -o name` with the
// --config already typed.
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { CLI, IMAGE, podvisorCli, podYaml, putManifest, setup, waitForStatus } from './harness.js';

t.test('status, describe and logs with --config find the agent\'s state directory in it', async (t) => {
  const world = await setup(t, 'cli-config');
  const podName = `web-${world.node}`;
  const config = join(world.root, 'config.yaml');
  await writeFile(config, `# as on a device: the state directory is not the default\nstate-dir: ${world.stateDir}\nmanifest-dir: ${world.manifestDir}\n`);
  await putManifest(world.manifestDir, 'web.yaml', podYaml({ name: 'web', grace: 1, containers: `    - name: app
      image: ${IMAGE}
      command: ["sh", "-c", "echo hello-from-web; trap 'exit 0' TERM; sleep 3600 & wait"]
` }));
  await world.startAgent(['--config', config]);
  await waitForStatus(world.stateDir, podName, 'web running', (pod) => pod.status.containerStatuses?.[0]?.state.running);

  const status = await podvisorCli('status', '--config', config);
  t.equal(status.code, 0, status.stderr);
  t.match(status.stdout, new RegExp(`^default\\s+${podName}\\s+1/1\\s+Running\\s`, 'm'));
  t.same(await podvisorCli('status', '--config', config, '-o', 'name'), { code: 0, stdout: `pod/${podName}`, stderr: '' }, '-o name, as kubectl');

  const describe = await podvisorCli('describe', '--config', config, 'web');
  t.equal(describe.code, 0, describe.stderr);
  t.match(describe.stdout, new RegExp(`^Name:\\s+${podName}$`, 'm'));

  const logs = await podvisorCli('logs', '--config', config, 'web');
  t.equal(logs.code, 0, logs.stderr);
  t.equal(logs.stdout, 'hello-from-web');

  // --state-dir wins over the file.
  const elsewhere = join(world.root, 'elsewhere');
  const flag = await podvisorCli('status', '--config', config, '--state-dir', elsewhere);
  t.equal(flag.code, 1);
  t.equal(flag.stderr, `podvisor: no status at ${join(elsewhere, 'status.json')}: is the agent running with --state-dir ${elsewhere}?`);

  // A bad file: one line with its place, exit status 2 as for any bad config.
  const bad = join(world.root, 'bad.yaml');
  await writeFile(bad, `state-dir: ${world.stateDir}\nstate_dir: /x\n`);
  for (const command of [['status'], ['describe', 'web'], ['logs', 'web']]) {
    const result = await podvisorCli(...command, '--config', bad);
    t.same(result, { code: 2, stdout: '', stderr: `podvisor: ${bad}:2:1: state_dir: unknown setting (did you mean state-dir?)` }, `${command[0]!} --config with a bad file`);
  }

  // The completion of pod names asks the same commands, with the --config already typed.
  const bin = join(world.root, 'bin');
  await execa('mkdir', ['-p', bin]);
  await writeFile(join(bin, 'podvisor'), `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`, { mode: 0o755 });
  const script = join(world.root, 'podvisor.bash');
  await writeFile(script, (await podvisorCli('completion', 'bash')).stdout);
  const complete = async (...words: string[]) => (await execa('bash', ['--norc', '--noprofile', '-c', `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); _podvisor; printf '%s\\n' "\${COMPREPLY[@]}"`, 'bash', script, ...words], {
    env: { PATH: `${bin}:${process.env.PATH ?? ''}` },
    stdin: 'ignore',
  })).stdout;
  t.equal(await complete('podvisor', 'describe', '--config', config, ''), podName, 'describe completes the pod');
  t.equal(await complete('podvisor', 'logs', '--config', config, '-c', 'app', 'we'), podName, 'so does logs, after other flags');
  t.equal(await complete('podvisor', 'logs', '--state-dir', world.stateDir, 'x'), '', 'nothing that does not match');
  t.equal(await complete('podvisor', 'describe', '--state-dir', elsewhere, ''), '', 'nothing where there is no status, and no error shown');
});

t.test('without flags, the default config file when it is there, else /var/lib/podvisor', {
  skip: existsSync('/etc/podvisor/config.yaml') || existsSync('/var/lib/podvisor/status.json') ? 'this machine has a podvisor installed' : false,
}, async (t) => {
  const result = await podvisorCli('status');
  t.same(result, { code: 1, stdout: '', stderr: 'podvisor: no status at /var/lib/podvisor/status.json: is the agent running with --state-dir /var/lib/podvisor?' });
});
