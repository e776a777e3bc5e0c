// `podvisor plan` in-process: real manifest and state directories (t.testdir), podman's listing
// from a fake runtime (the read-only view itself is tested in test/runtime/, and the whole
// command against a real agent and podman in test/e2e/plan.test.ts). Exit statuses, the text,
// the JSON, the agent's state, one line and status 2 for every bad input, and a state directory
// left exactly as it was.
import { chmod, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { makePlan, planCommand, type PlanDependencies } from '../../src/cli/plan.js';
import type { DesiredPod } from '../../src/manifest/identity.js';
import { loadManifestFile } from '../../src/manifest/load-file.js';
import type { PlanReport } from '../../src/pods/plan-report.js';
import type { Observation, ObservedPod } from '../../src/runtime/types.js';
import { stderrOf, stdoutOf } from '../support/recording.js';

const NODE = 'node1';
const NOW = new Date('2026-12-04T04:00:00Z');

const podYaml = (name: string, image: string, env: Record<string, string> = {}) => [
  'apiVersion: v1', 'kind: Pod', 'metadata:', `  name: ${name}`, 'spec:', '  containers:', '    - name: app', `      image: ${image}`,
  ...(Object.keys(env).length ? ['      env:', ...Object.entries(env).map(([key, value]) => `        - { name: ${key}, value: "${value}" }`)] : []), '',
].join('\n');

/** The desired pod a manifest text makes at `path` (written there first), as the agent reads it. */
async function podOf(path: string, text: string): Promise<DesiredPod> {
  await writeFile(path, text);
  const [pod] = (await loadManifestFile(path, { nodeName: NODE })).pods;
  if (!pod) throw new Error(`no pod in ${path}`);
  return pod;
}

function observed(pod: DesiredPod): ObservedPod {
  return {
    id: `pod-${pod.name}`, podmanName: `default_${pod.name}`, key: pod.key, name: pod.name, namespace: pod.namespace, uid: pod.uid, hash: pod.hash, source: pod.source,
    gracePeriodSeconds: 30, infraRunning: true,
    containers: [{ id: `ctr-${pod.name}`, name: 'app', kind: 'app', state: 'running', exitCode: undefined, startedAt: NOW, finishedAt: undefined, image: 'x', imageId: '', pid: 1 }],
  };
}

/** Saves a pod's spec as the agent's runtime does (`<state>/pods/<uid>/pod.json`). */
async function saveSpec(stateDir: string, pod: DesiredPod): Promise<void> {
  await mkdir(join(stateDir, 'pods', pod.uid), { recursive: true });
  await writeFile(join(stateDir, 'pods', pod.uid, 'pod.json'), JSON.stringify(pod));
}

async function writeStatus(stateDir: string, pid: number, items: unknown[] = []): Promise<void> {
  await writeFile(join(stateDir, 'status.json'), JSON.stringify({ apiVersion: 'v1', kind: 'PodList', metadata: { resourceVersion: '1' }, items, events: [], writtenAt: new Date(NOW.getTime() - 3000).toISOString(), agent: { pid, startedAt: NOW.toISOString() } }));
}

interface World {
  manifestDir: string;
  stateDir: string;
  listing: Observation;
  deps: PlanDependencies;
  values: Record<string, string | undefined>;
}

function world(t: Test): World {
  const root = t.testdir({ manifests: {}, state: {} });
  const listing: Observation = { pods: [], foreignPods: 0 };
  const manifestDir = join(root, 'manifests');
  const stateDir = join(root, 'state');
  return {
    manifestDir, stateDir, listing,
    deps: { runtime: () => ({ list: async () => listing }), alive: (pid) => pid === 4242, defaultConfigFile: join(root, 'absent.yaml'), now: () => NOW },
    values: { 'manifest-dir': manifestDir, 'state-dir': stateDir, 'node-name': NODE },
  };
}

/** Runs the command: its exit status, stdout and stderr. */
async function run(values: Record<string, string | undefined>, deps: PlanDependencies): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  const err = await stderrOf(async () => {
    const out = await stdoutOf(() => planCommand(values, deps));
    stdout = out.text;
    return out.code;
  });
  return { code: err.code, stdout, stderr: err.text };
}

/** Every file under `dir` with its content, to show a run changed nothing. */
async function tree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) {
      const path = join(entry.parentPath, entry.name);
      out[path] = await readFile(path, 'utf8');
    }
  }
  return out;
}

t.test('nothing to do: exit 0, the pod kept, the agent running', async (t) => {
  const w = world(t);
  const web = await podOf(join(w.manifestDir, 'web.yaml'), podYaml('web', 'busybox:1'));
  await saveSpec(w.stateDir, web);
  await writeStatus(w.stateDir, 4242);
  w.listing.pods.push(observed(web));
  const result = await run(w.values, w.deps);
  t.equal(result.code, 0, result.stderr);
  t.equal(result.stderr, '');
  t.match(result.stdout, /^agent: running \(pid 4242\), status written 3s ago$/m);
  t.match(result.stdout, /^= keep +default\/web-node1 +web\.yaml: runs the spec its file asks for$/m);
  t.match(result.stdout, /No changes/);
});

t.test('create, replace with its diff, remove, keep on the last good spec: exit 1, and a state directory left as it was', async (t) => {
  const w = world(t);
  const before = await podOf(join(w.manifestDir, 'web.yaml'), podYaml('web', 'busybox:1', { GREETING: 'hello' }));
  const after = await podOf(join(w.manifestDir, 'web.yaml'), podYaml('web', 'busybox:2', { GREETING: 'bye' }));
  await podOf(join(w.manifestDir, 'new.yaml'), podYaml('new', 'busybox:1'));
  const cache = await podOf(join(w.manifestDir, 'cache.yaml'), podYaml('cache', 'busybox:1'));
  await writeFile(join(w.manifestDir, 'cache.yaml'), podYaml('cache', ''));
  const old = await podOf(join(w.manifestDir, 'old.yaml'), podYaml('old', 'busybox:1'));
  await rm(join(w.manifestDir, 'old.yaml'));
  for (const pod of [before, cache, old]) await saveSpec(w.stateDir, pod);
  w.listing.pods.push(observed(before), observed(cache), observed(old));
  // What the agent would tidy at its start (a stale temporary, a corrupt file): plan leaves them.
  await writeFile(join(w.stateDir, 'supervision.json'), '{"version": 1, "restartCounts": {');
  await writeFile(join(w.stateDir, '.status.json.tmp-123'), 'partial');
  const stateBefore = await tree(w.stateDir);

  const result = await run(w.values, w.deps);
  t.equal(result.code, 1, result.stderr);
  const text = result.stdout;
  t.match(text, /^agent: not running: no status\.json in .*state \(no agent has run with this state directory\); this is what an agent started now would do$/m, 'no status file: no agent, said so');
  t.match(text, /^! keep +default\/cache-node1 +cache\.yaml: its file has errors: kept on its last good spec \(.*cache\.yaml:8:7: spec\.containers\[0\]\.image: /m);
  t.match(text, /^\+ create +default\/new-node1 +new\.yaml: podman has no pod for it$/m);
  t.match(text, /^- remove +default\/old-node1 +old\.yaml: its file is gone: no manifest asks for it$/m);
  t.match(text, /^~ replace +default\/web-node1 +web\.yaml: config hash changed from [0-9a-f]{16} to [0-9a-f]{16}$/m);
  t.match(text, /^ {6}spec\.containers\[app\]\.env\[GREETING\]\.value: \(redacted\) -> \(redacted\)\n {6}spec\.containers\[app\]\.image: busybox:1 -> busybox:2$/m);
  t.match(text, /^Findings:\n {2}.*cache\.yaml:8:7: spec\.containers\[0\]\.image: /m);
  t.match(text, /^Plan: 1 to create, 1 to replace, 1 to remove; 1 to keep \(1 on the last good spec: file has errors\)\.$/m);
  t.same(await tree(w.stateDir), stateBefore, 'the state directory is as it was');

  const json = await run({ ...w.values, output: 'json' }, w.deps);
  t.equal(json.code, 1);
  const report = JSON.parse(json.stdout) as PlanReport;
  t.equal(report.kind, 'Plan');
  t.equal(report.changes, true);
  t.same(report.pods.map((pod) => [pod.verdict, pod.pod]), [['keep-invalid', 'default/cache-node1'], ['create', 'default/new-node1'], ['remove', 'default/old-node1'], ['replace', 'default/web-node1']]);
  t.same(report.pods[3]?.changes?.map((one) => one.path), ['spec.containers[app].env[GREETING].value', 'spec.containers[app].image']);
  t.same(report.files.map((file) => [file.path.replace(`${w.manifestDir}/`, ''), file.valid]), [['cache.yaml', false], ['new.yaml', true], ['web.yaml', true]]);
  t.same(report.agent, { running: false, message: report.agent.message });
});

t.test('the agent as its status file says: running, gone, or for another node', async (t) => {
  const w = world(t);
  await writeStatus(w.stateDir, 4242);
  t.match((await makePlan(w.values, w.deps)).agent, { running: true, pid: 4242, message: /^running \(pid 4242\)/ });
  await writeStatus(w.stateDir, 99, [{ spec: { nodeName: 'other' } }]);
  const gone = await makePlan(w.values, w.deps);
  t.match(gone.agent, { running: false, pid: 99, message: /^not running \(pid 99 is gone, status last written 3s ago\); this is what an agent started now would do$/ });
  // Alive, but the status not written for minutes: it may be stuck.
  await writeFile(join(w.stateDir, 'status.json'), JSON.stringify({ apiVersion: 'v1', kind: 'PodList', metadata: { resourceVersion: '1' }, items: [], events: [], writtenAt: new Date(NOW.getTime() - 300_000).toISOString(), agent: { pid: 4242, startedAt: NOW.toISOString() } }));
  t.match((await makePlan(w.values, w.deps)).agent, { running: true, message: /^running \(pid 4242\), but the status was last written 5m ago: the agent may be stuck or stopped$/ });
  t.same(gone.problems, [`the agent's pods are for node other, this plan is for node ${NODE} (--node-name)`]);
});

t.test('settings from the config file, flags winning; env values shown when it says so', async (t) => {
  const w = world(t);
  const before = await podOf(join(w.manifestDir, 'web.yaml'), podYaml('web', 'busybox:1', { GREETING: 'hello' }));
  await podOf(join(w.manifestDir, 'web.yaml'), podYaml('web', 'busybox:1', { GREETING: 'bye' }));
  await saveSpec(w.stateDir, before);
  w.listing.pods.push(observed(before));
  const config = join(w.stateDir, '..', 'config.yaml');
  await writeFile(config, `manifest-dir: ${w.manifestDir}\nstate-dir: ${w.stateDir}\nnode-name: ${NODE}\nserve-env-values: true\n`);
  const report = await makePlan({ config }, w.deps);
  t.equal(report.manifestDir, w.manifestDir);
  t.same(report.pods[0]?.changes, [{ path: 'spec.containers[app].env[GREETING].value', from: 'hello', to: 'bye' }]);
  const flagged = await makePlan({ config, 'node-name': 'other' }, w.deps);
  t.equal(flagged.nodeName, 'other', 'a flag wins over the file');
});

t.test('the manifest policy, as the agent applies it: a refused file is invalid, its pod not created, a running one kept', async (t) => {
  const w = world(t);
  const web = await podOf(join(w.manifestDir, 'web.yaml'), podYaml('web', 'busybox:1'));
  await saveSpec(w.stateDir, web);
  w.listing.pods.push(observed(web));
  // Group-writable: refused by the ownership rule (policy.check-ownership, on by default).
  await chmod(join(w.manifestDir, 'web.yaml'), 0o664);
  // hostNetwork, which this config's policy forbids.
  await writeFile(join(w.manifestDir, 'net.yaml'), podYaml('net', 'busybox:1').replace('spec:\n', 'spec:\n  hostNetwork: true\n'));
  const config = join(w.stateDir, '..', 'config.yaml');
  await writeFile(config, 'policy:\n  host-network: false\n');

  const report = await makePlan({ ...w.values, config }, w.deps);
  t.same(report.pods.map((pod) => [pod.verdict, pod.pod]), [['keep-invalid', `default/web-${NODE}`]], 'net not created; web kept on its last good spec');
  t.equal(report.changes, false);
  const byName = (name: string) => report.files.find((file) => file.path === join(w.manifestDir, name));
  t.equal(byName('net.yaml')?.valid, false);
  t.match(byName('net.yaml')?.findings, [{ file: join(w.manifestDir, 'net.yaml'), line: 6, field: 'spec.hostNetwork', severity: 'error', message: /refused by policy: .*\(policy\.host-network: false\)/ }]);
  t.equal(byName('web.yaml')?.valid, false);
  t.match(byName('web.yaml')?.findings, [{ file: join(w.manifestDir, 'web.yaml'), line: 1, severity: 'error', message: /^refused: .*web\.yaml is writable by group \(mode 0?664\): chmod go-w / }]);
  const result = await run({ ...w.values, config }, w.deps);
  t.equal(result.code, 0, result.stderr);
  t.match(result.stdout, /^! keep +default\/web-node1 +web\.yaml: its file has errors: kept on its last good spec \(.*web\.yaml:1:1: refused: /m);
  t.match(result.stdout, /^ {2}.*net\.yaml:6:\d+: spec\.hostNetwork: refused by policy/m);
  t.notMatch(result.stdout, /^\+ create/m);
  // The same directory under the default (open) device policy: net is a pod to create.
  t.same((await makePlan(w.values, w.deps)).pods.map((pod) => [pod.verdict, pod.pod]), [['create', `default/net-${NODE}`], ['keep-invalid', `default/web-${NODE}`]]);
});

t.test('the rollout guard from the state directory: a replace held by an update lock, a rolled-back pod', async (t) => {
  const w = world(t);
  const locks = join(w.stateDir, '..', 'locks');
  await mkdir(locks);
  const heldBefore = await podOf(join(w.manifestDir, 'held.yaml'), podYaml('held', 'busybox:1'));
  const heldAfter = await podOf(join(w.manifestDir, 'held.yaml'), podYaml('held', 'busybox:2'));
  const good = await podOf(join(w.manifestDir, 'web.yaml'), podYaml('web', 'busybox:1'));
  const bad = await podOf(join(w.manifestDir, 'web.yaml'), podYaml('web', 'busybox:2'));
  for (const pod of [heldBefore, good]) {
    await saveSpec(w.stateDir, pod);
    w.listing.pods.push(observed(pod));
  }
  await writeFile(join(locks, 'default_held'), '');
  const failed = { hash: bad.hash, reason: 'CrashLoopBackOff', message: 'container app is in CrashLoopBackOff 8 s after the replace', at: '2026-12-04T03:50:00Z' };
  await writeFile(join(w.stateDir, 'rollout.json'), JSON.stringify({ version: 1, pods: { [good.key]: { ready: { hash: good.hash, pod: good, at: '2026-12-04T03:00:00Z' }, failed } } }));
  const values = { ...w.values, 'locks-dir': locks };

  const report = await makePlan(values, w.deps);
  t.same(report.pods.map((pod) => [pod.verdict, pod.pod]), [['pending-replace', `default/held-${NODE}`], ['rolled-back', `default/web-${NODE}`]]);
  t.same(report.pods[0]?.held, { by: `the update lock ${join(locks, 'default_held')}`, wantedHash: heldAfter.hash });
  t.same(report.pods[0]?.changes?.map((one) => one.path), ['spec.containers[app].image']);
  t.same(report.pods[1]?.rolledBack, { failedHash: bad.hash, reason: 'CrashLoopBackOff', message: failed.message, at: failed.at, readyHash: good.hash });
  t.same(report.problems, [], 'said in the pods\' verdicts, not again as problems');
  const result = await run(values, w.deps);
  t.equal(result.code, 1, 'a held replace is a change to come');
  t.match(result.stdout, new RegExp(`^~ pending +default/held-node1 +held\\.yaml: Pending replace: spec ${heldAfter.hash} held by the update lock .*default_held; runs ${heldBefore.hash} until then$`, 'm'));
  t.match(result.stdout, new RegExp(`^< rolled-back default/web-node1 +web\\.yaml: rolled back: spec ${bad.hash} container app is in CrashLoopBackOff 8 s after the replace; runs ${good.hash}, the last spec that was Ready, until the file changes$`, 'm'));
  // The lock gone: the replace goes ahead now; the rolled-back pod alone is no change.
  await rm(join(locks, 'default_held'));
  t.same((await makePlan(values, w.deps)).pods.map((pod) => pod.verdict), ['replace', 'rolled-back']);
  await writeFile(join(w.manifestDir, 'held.yaml'), podYaml('held', 'busybox:1'));
  t.equal((await run(values, w.deps)).code, 0, 'only a rolled-back pod: nothing the agent would do');
});

t.test('every bad input: one line naming it, exit 2', async (t) => {
  const w = world(t);
  const cases: [string, Record<string, string | undefined>, PlanDependencies, RegExp][] = [
    ['a missing manifest directory', { ...w.values, 'manifest-dir': join(w.manifestDir, 'nope') }, w.deps, /^podvisor plan: manifest directory .*nope: no such directory \(--manifest-dir\)\n$/],
    ['a file as the manifest directory', { ...w.values, 'manifest-dir': join(w.stateDir, 'status.json') }, w.deps, /^podvisor plan: manifest directory .*status\.json: not a directory \(--manifest-dir\)\n$/],
    ['a missing state directory', { ...w.values, 'state-dir': join(w.stateDir, 'nope') }, w.deps, /^podvisor plan: state directory .*nope: no such directory \(--state-dir\)\n$/],
    ['a bad config file', { ...w.values, config: join(w.stateDir, '..', 'bad.yaml') }, w.deps, /^podvisor plan: .*bad\.yaml:1:1: relist-interval: --relist-interval must be at least 1\n$/],
    ['a missing config file', { ...w.values, config: join(w.manifestDir, 'absent.yaml') }, w.deps, /^podvisor plan: --config .*absent\.yaml: ENOENT/],
    ['podman failing', w.values, { ...w.deps, runtime: () => ({ list: async () => { throw new Error('podman not found: install podman'); } }) }, /^podvisor plan: cannot list podman's pods: podman not found: install podman\n$/],
  ];
  await writeFile(join(w.stateDir, 'status.json'), '{}');
  await writeFile(join(w.stateDir, '..', 'bad.yaml'), 'relist-interval: 0\n');
  for (const [name, values, deps, message] of cases) {
    const result = await run(values, deps);
    t.equal(result.code, 2, name);
    t.match(result.stderr, message, name);
    t.equal(result.stderr.trim().split('\n').length, 1, `${name}: one line`);
    t.equal(result.stdout, '', `${name}: nothing on stdout`);
  }
});

t.test('completion knows plan\'s flags and -o\'s one value, from the command table', async (t) => {
  const { completedCommands } = await import('../../src/cli/completion.js');
  const plan = completedCommands().find((command) => command.name === 'plan');
  t.same(plan?.flags.map((flag) => flag.long).sort(), ['config', 'help', 'locks-dir', 'manifest-dir', 'node-name', 'output', 'state-dir']);
  t.same(plan?.flags.find((flag) => flag.long === 'output')?.value, ['json']);
  t.equal(plan?.flags.find((flag) => flag.long === 'manifest-dir')?.value, 'dir');
});
