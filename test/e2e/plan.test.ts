// `podvisor plan` against a running agent and real podman: nothing to do (exit 0); a directory
// with an edited file (image and env), a new file, a removed one and a group-writable one (exit 1:
// replace with the field diff, create, remove; the group-writable file refused, as the agent's
// ownership rule refuses it); an invalid edit of a running pod's file (kept on its last good
// spec, with the finding); -o json. Each time podman and the agent are checked to be untouched,
// and every podman command plan ran is recorded (through PODVISOR_PODMAN) and must be a listing.
// Then the changes are made for real: the agent carries out what the plan said, after which the
// plan is empty; with the agent stopped, plan says so.
//
// The edits the plan is asked about are staged in a second directory (--manifest-dir): in the
// directory the agent watches, it would act on them within a second. Valid files plan the same
// wherever they are (pods are matched by name and hash); the invalid edit is made in the watched
// directory itself, since a kept pod is matched by its file's path.
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { execa } from 'execa';
import { ACTION_EVENTS, CLI, containersOf, exec, IMAGE, podman, podsOf, podYaml, putManifest, setup, sleeper, statusItems, waitFor, type CliResult } from './harness.js';
import type { PlanReport } from '../../src/pods/plan-report.js';

/** The podman commands that only read, as their first words: what plan's listing may run. */
const LISTING = [/^pod ps( |$)/, /^ps( |$)/, /^container inspect( |$)/];

/** A wrapper podman that records each call's arguments in `log`, then runs the real podman. */
async function recordingPodman(dir: string): Promise<{ bin: string; log: string }> {
  const bin = join(dir, 'podman-recorder');
  const log = join(dir, 'podman-calls.log');
  await writeFile(bin, `#!/bin/sh\nprintf '%s\\n' "$*" >> '${log}'\nexec podman "$@"\n`);
  await chmod(bin, 0o755);
  return { bin, log };
}

/** podman's state of a node's pods and containers: ids and states, to compare before and after. */
async function podmanState(node: string): Promise<string[]> {
  const pods = (await podsOf(node)).map((pod) => `pod ${pod.Id} ${pod.Status}`);
  const containers = (await containersOf(node)).map((container) => `ctr ${container.Id} ${container.State} ${container.StartedAt}`);
  return [...pods, ...containers].sort();
}

t.test('plan tells what the agent would do, changes nothing, and the agent then does it', async (t) => {
  const world = await setup(t, 'plan');
  const { node, manifestDir, stateDir, root } = world;
  const recorder = await recordingPodman(root);
  const plan = async (...args: string[]): Promise<CliResult> => {
    const result = await execa(process.execPath, [CLI, 'plan', ...args], { reject: false, stdin: 'ignore', timeout: 120_000, env: { PODVISOR_PODMAN: recorder.bin } });
    return { code: result.exitCode ?? -1, stdout: result.stdout, stderr: result.stderr };
  };
  /** Every podman command the plans so far ran must be a listing. */
  const onlyListings = async (what: string) => {
    const calls = (await readFile(recorder.log, 'utf8').catch(() => '')).split('\n').filter(Boolean);
    t.ok(calls.length >= 2, `${what}: plan listed podman (${calls.length} calls)`);
    const writes = calls.filter((call) => !LISTING.some((pattern) => pattern.test(call)));
    t.same(writes, [], `${what}: no podman command but listings`);
  };

  // A second tag of the test image, so the edited file can change its image to one that exists.
  const tag = `localhost/podvisor-plan-${node}:2`;
  await podman('tag', IMAGE, tag);
  t.teardown(async () => {
    await podman('untag', IMAGE, tag).catch(() => undefined);
  });
  const app = (image: string, greeting: string, extra: { restartPolicy?: string } = {}) =>
    podYaml({ name: 'app', ...extra, containers: sleeper('main', { GREETING: greeting }).replace(`image: ${IMAGE}`, `image: ${image}`) });
  const newPod = podYaml({ name: 'new', containers: sleeper('main') });
  await putManifest(manifestDir, 'app.yaml', app(IMAGE, 'hello'));
  await putManifest(manifestDir, 'old.yaml', podYaml({ name: 'old', containers: sleeper('main') }));

  const agent = await world.startAgent();
  const appKey = `default/app-${node}`;
  const oldKey = `default/old-${node}`;
  const newKey = `default/new-${node}`;
  await agent.waitForLog({ event: 'PodStarted' }, { pod: appKey, timeoutMs: 60_000 });
  await agent.waitForLog({ event: 'PodStarted' }, { pod: oldKey, timeoutMs: 60_000 });
  await waitFor('the status file with both pods', async () => (await statusItems(stateDir)).length === 2, { timeoutMs: 30_000 });
  const pid = agent.child.pid ?? 0;
  const flags = (dir: string) => ['--manifest-dir', dir, '--state-dir', stateDir, '--node-name', node];

  await t.test('nothing to do: exit 0, every pod kept', async (t) => {
    const result = await plan(...flags(manifestDir));
    t.equal(result.code, 0, result.stderr);
    t.equal(result.stderr, '');
    t.match(result.stdout, new RegExp(`^agent: running \\(pid ${pid}\\), status written `, 'm'));
    t.match(result.stdout, new RegExp(`^= keep +default/app-${node} +app\\.yaml: runs the spec its file asks for$`, 'm'));
    t.match(result.stdout, new RegExp(`^= keep +default/old-${node} +old\\.yaml: `, 'm'));
    t.match(result.stdout, /^Plan: 0 to create, 0 to replace, 0 to remove; 2 to keep\.$/m);
    t.match(result.stdout, /^No changes/m);
    await onlyListings('nothing to do');
  });

  const staged = join(root, 'staged');
  await mkdir(staged);
  await putManifest(staged, 'app.yaml', app(tag, 'bye'));
  await putManifest(staged, 'new.yaml', newPod);
  // Group-writable: the agent's ownership rule (policy.check-ownership, on by default) refuses it.
  await putManifest(staged, 'refused.yaml', podYaml({ name: 'refused', containers: sleeper('main') }));
  await chmod(join(staged, 'refused.yaml'), 0o664);

  await t.test('an edited file, a new one, one gone, one refused: exit 1, replace with its diff, create, remove; nothing done', async (t) => {
    const podmanBefore = await podmanState(node);
    const actionsBefore = agent.find({ event: ACTION_EVENTS }).length;
    const result = await plan(...flags(staged));
    t.equal(result.code, 1, result.stderr);
    const text = result.stdout;
    t.match(text, new RegExp(`^~ replace default/app-${node} +app\\.yaml: config hash changed from [0-9a-f]{16} to [0-9a-f]{16}$`, 'm'));
    t.match(text, new RegExp(`^ {6}spec\\.containers\\[main\\]\\.env\\[GREETING\\]\\.value: \\(redacted\\) -> \\(redacted\\)$`, 'm'));
    t.match(text, new RegExp(`^ {6}spec\\.containers\\[main\\]\\.image: ${IMAGE.replace(/[.]/g, '\\.')} -> ${tag.replace(/[.]/g, '\\.')}$`, 'm'));
    t.match(text, new RegExp(`^\\+ create +default/new-${node} +new\\.yaml: podman has no pod for it$`, 'm'));
    t.match(text, new RegExp(`^- remove +default/old-${node} +${join(manifestDir, 'old\\.yaml')}: made from a file outside this manifest directory, and no manifest here asks for it$`, 'm'));
    t.match(text, /^Plan: 1 to create, 1 to replace, 1 to remove; 0 to keep\.$/m);
    t.notMatch(text, /^\+ create +default\/refused-/m, 'the refused file\'s pod is not planned');
    t.match(text, new RegExp(`^ {2}${join(staged, 'refused\\.yaml')}:1:1: refused: .* is writable by group \\(mode 0?664\\)`, 'm'), 'its refusal among the findings');

    const json = await plan(...flags(staged), '-o', 'json');
    t.equal(json.code, 1);
    const report = JSON.parse(json.stdout) as PlanReport;
    t.equal(report.kind, 'Plan');
    t.equal(report.apiVersion, 'podvisor.io/v1');
    t.equal(report.changes, true);
    t.same(report.summary, { create: 1, replace: 1, pendingReplace: 0, remove: 1, keep: 0, keepInvalid: 0, rolledBack: 0 });
    t.match(report.agent, { running: true, pid });
    t.same(report.pods.map((pod) => [pod.verdict, pod.pod]), [['replace', appKey], ['create', newKey], ['remove', oldKey]]);
    t.same(report.pods[0]?.changes, [
      { path: 'spec.containers[main].env[GREETING].value', from: '(redacted)', to: '(redacted)' },
      { path: 'spec.containers[main].image', from: IMAGE, to: tag },
    ]);
    t.same(report.files.map((file) => [file.path, file.valid]), [[join(staged, 'app.yaml'), true], [join(staged, 'new.yaml'), true], [join(staged, 'refused.yaml'), false]]);

    // Some agent passes later: nothing was done to podman or by the agent.
    await agent.waitForRelists(2);
    t.same(await podmanState(node), podmanBefore, 'podman\'s pods and containers as they were');
    t.equal(agent.find({ event: ACTION_EVENTS }).length, actionsBefore, 'the agent took no action');
    await onlyListings('changes');
  });

  await t.test('an invalid edit of a running pod\'s file: kept on its last good spec, with the finding, exit 0', async (t) => {
    await putManifest(manifestDir, 'app.yaml', app(IMAGE, 'hello', { restartPolicy: 'Sometimes' }));
    await agent.waitForLog({ event: 'ManifestInvalid', source: join(manifestDir, 'app.yaml') }, { timeoutMs: 30_000 });
    const result = await plan(...flags(manifestDir));
    t.equal(result.code, 0, result.stderr);
    const finding = new RegExp(`${join(manifestDir, 'app\\.yaml')}:\\d+:\\d+: spec\\.restartPolicy: `);
    const line = result.stdout.split('\n').find((one) => one.includes(`default/app-${node}`));
    t.match(line, new RegExp(`^! keep +default/app-${node} +app\\.yaml: its file has errors: kept on its last good spec \\(`));
    t.match(line, finding, 'the reason names the file, line, column and field');
    t.match(result.stdout, /^Findings:$/m);
    t.ok(result.stdout.split('\n').some((one) => one.startsWith('  ') && finding.test(one)), 'the finding under Findings');
    t.match(result.stdout, /^Plan: 0 to create, 0 to replace, 0 to remove; 2 to keep \(1 on the last good spec: file has errors\)\.$/m);

    const report = JSON.parse((await plan(...flags(manifestDir), '-o', 'json')).stdout) as PlanReport;
    t.same(report.pods.map((pod) => [pod.verdict, pod.pod]), [['keep-invalid', appKey], ['keep', oldKey]]);
    const file = report.files.find((one) => one.path === join(manifestDir, 'app.yaml'));
    t.equal(file?.valid, false);
    t.ok(file?.findings.some((one) => one.severity === 'error' && one.field === 'spec.restartPolicy' && one.line > 0), 'the finding, with its field and line');
    await onlyListings('invalid edit');
  });

  await t.test('the changes made for real: the agent does what the plan said, then the plan is empty', async (t) => {
    await putManifest(manifestDir, 'app.yaml', app(tag, 'bye'));
    await putManifest(manifestDir, 'new.yaml', newPod);
    await rm(join(manifestDir, 'old.yaml'));
    const settled = await waitFor('an empty plan', async () => {
      const result = await plan(...flags(manifestDir));
      return result.code === 0 ? result : undefined;
    }, { timeoutMs: 120_000, intervalMs: 1000 });
    t.match(settled.stdout, /^Plan: 0 to create, 0 to replace, 0 to remove; 2 to keep\.$/m);
    t.equal(agent.find({ event: 'PodReplacing' }, appKey).length, 1, 'app replaced, as planned');
    t.ok(agent.find({ event: 'PodCreating' }, newKey).length >= 1, 'new created, as planned');
    t.ok(agent.find({ event: 'PodStopping' }, oldKey).length >= 1, 'old removed, as planned');
    t.same((await podsOf(node)).map((pod) => pod.Labels?.['io.podvisor.name']).sort(), [`app-${node}`, `new-${node}`]);
    await waitFor('the new app container', async () => (await exec(`default_app-${node}_main`, 'sh', '-c', 'echo $GREETING').catch(() => '')) === 'bye', { timeoutMs: 60_000 });
  });

  await t.test('no agent running: it says so, and plans all the same', async (t) => {
    await agent.stop('SIGTERM');
    const result = await plan(...flags(manifestDir));
    t.equal(result.code, 0, result.stderr);
    t.match(result.stdout, new RegExp(`^agent: not running \\(pid ${pid} is gone, status last written .* ago\\); this is what an agent started now would do$`, 'm'));
    t.match(result.stdout, /^Plan: 0 to create, 0 to replace, 0 to remove; 2 to keep\.$/m);
  });
});

t.test('bad input: one line naming it, exit 2, nothing on stdout', async (t) => {
  const root = t.testdir({ manifests: {}, state: {} });
  const cases: [string[], RegExp][] = [
    [['--manifest-dir', join(root, 'nope'), '--state-dir', join(root, 'state')], /^podvisor plan: manifest directory .*nope: no such directory \(--manifest-dir\)$/],
    [['--manifest-dir', join(root, 'manifests'), '--state-dir', join(root, 'nope')], /^podvisor plan: state directory .*nope: no such directory \(--state-dir\)$/],
    [['-o', 'yaml'], /^podvisor plan: -o must be json; got 'yaml'$/],
    [['--bogus'], /^podvisor plan: unknown flag '--bogus'/],
    [['extra'], /^podvisor plan: Unexpected argument 'extra'/],
  ];
  const help = await execa(process.execPath, [CLI, 'plan', '--help'], { reject: false, stdin: 'ignore' });
  t.equal(help.exitCode, 0);
  t.match(help.stdout, /^Usage: podvisor plan \[--manifest-dir DIR\] \[--state-dir DIR\] \[--config FILE\] \[--node-name NAME\] \[--locks-dir DIR\] \[-o json\]\n/);
  for (const [args, message] of cases) {
    const result = await execa(process.execPath, [CLI, 'plan', ...args], { reject: false, stdin: 'ignore', timeout: 30_000 });
    t.equal(result.exitCode, 2, args.join(' '));
    t.match(result.stderr, message, args.join(' '));
    t.equal(result.stderr.split('\n').length, 1, `${args.join(' ')}: one line`);
    t.equal(result.stdout, '', `${args.join(' ')}: nothing on stdout`);
  }
});
