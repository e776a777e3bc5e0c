// `podvisor logs` against real podman: a container restarted in place keeps one log file for all
// its runs, and podvisor shows only the current run, or with --previous the run before, as kubectl
// does; -c, --tail, the default container and the errors in kubectl's words.
import t from 'tap';
import { containerOf, IMAGE, podvisorCli, podYaml, putManifest, setup, waitForStatus } from './harness.js';

/** The run numbers of `run N line M` lines, and whether each run shows both of its lines in order. */
function runsIn(text: string): { runs: number[]; whole: boolean } {
  const lines = text.split('\n').filter(Boolean);
  const runs = [...new Set(lines.map((line) => Number(/^run (\d+) line [12]$/.exec(line)?.[1] ?? NaN)))];
  return { runs, whole: runs.every((run) => lines.filter((line) => line.startsWith(`run ${run} `)).join('|') === `run ${run} line 1|run ${run} line 2`) };
}

t.test('podvisor logs: the current run, the previous one, one container or another', async (t) => {
  const world = await setup(t, 'logs-cli');
  const podName = `talker-${world.node}`;
  await putManifest(world.manifestDir, 'talker.yaml', podYaml({ name: 'talker', grace: 1, extraSpec: '  volumes:\n    - name: data\n      emptyDir: {}', containers: `    - name: counter
      image: ${IMAGE}
      command: ["sh", "-c", "n=$(cat /data/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /data/n; echo \\"run $n line 1\\"; echo \\"run $n line 2\\"; sleep 10; exit 1"]
      volumeMounts: [{ name: data, mountPath: /data }]
    - name: side
      image: ${IMAGE}
      command: ["sh", "-c", "echo side-hello; sleep 3600"]
` }));
  await world.startAgent();
  const state = ['--state-dir', world.stateDir];
  // --previous reads the previous run's start from the status's lastState.
  const running = () => waitForStatus(world.stateDir, podName, 'counter running after a restart', (item) => {
    const counter = containerOf(item, 'counter');
    return counter?.state.running && counter.restartCount >= 1 ? counter : undefined;
  }, { timeoutMs: 60_000 });

  // The current run and the one before it, read while the current one runs (retried if it ends in between).
  let checked = false;
  for (let attempt = 0; attempt < 5 && !checked; attempt++) {
    await running();
    const current = await podvisorCli('logs', podName, '-c', 'counter', ...state);
    const previous = await podvisorCli('logs', podName, '-c', 'counter', '--previous', ...state);
    const now = runsIn(current.stdout);
    const before = runsIn(previous.stdout);
    if (now.runs.length !== 1 || before.runs.length !== 1 || before.runs[0] !== (now.runs[0] ?? 0) - 1) {
      t.comment(`attempt ${attempt}: current ${JSON.stringify(current)}, previous ${JSON.stringify(previous)}`);
      continue;
    }
    t.equal(current.code, 0);
    t.ok(now.whole, `logs shows run ${now.runs[0]} whole, and no other run (${JSON.stringify(current.stdout)})`);
    t.equal(previous.code, 0);
    t.ok(before.whole, `--previous shows run ${before.runs[0]} whole, and no other (${JSON.stringify(previous.stdout)})`);
    checked = true;
  }
  t.ok(checked, 'the current run and the one before were read apart');

  await running();
  const tail = await podvisorCli('logs', podName, '-c', 'counter', '--tail', '1', ...state);
  t.match(tail.stdout, /^(run \d+ line 2\n?)?$/, '--tail 1: the last line only (none if a new run has printed nothing yet)');

  const side = await podvisorCli('logs', podName, '-c', 'side', ...state);
  t.same({ code: side.code, stdout: side.stdout }, { code: 0, stdout: 'side-hello' }, '-c picks the container');
  const defaulted = await podvisorCli('logs', `default/${podName}`, ...state);
  t.equal(defaulted.code, 0);
  t.equal(defaulted.stderr, 'Defaulted container "counter" out of: counter, side', 'the first container, said as kubectl says it');
  // One run at most: the container may be between runs, or just started and not yet printing.
  t.ok(runsIn(defaulted.stdout).runs.length <= 1 && runsIn(defaulted.stdout).whole, `its current run only (${JSON.stringify(defaulted.stdout)})`);

  const nope = await podvisorCli('logs', podName, '-c', 'nope', ...state);
  t.same({ code: nope.code, stderr: nope.stderr }, { code: 1, stderr: `podvisor logs: container nope is not valid for pod ${podName}` });
  const missing = await podvisorCli('logs', 'nosuchpod', ...state);
  t.same({ code: missing.code, stderr: missing.stderr }, { code: 1, stderr: 'podvisor logs: pods "nosuchpod" not found' });
  const badTail = await podvisorCli('logs', podName, '--tail', 'many', ...state);
  t.equal(badTail.code, 2, 'a bad --tail is a usage error');
});
