// The plan report: each pod's verdict made from the planner's own Plan (planPods), the reasons,
// the exit status by `terraform plan -detailed-exitcode`'s rule, the text and the JSON shape.
// Pure: files, podman's pods and the saved specs are written here as the command would gather them.
import t from 'tap';
import { mergeFiles, type LastGood } from '../../src/manifest/desired-state.js';
import { toDesiredPod, type DesiredPod } from '../../src/manifest/identity.js';
import type { FileResult } from '../../src/manifest/load-file.js';
import type { PodManifest, PodSpec } from '../../src/manifest/pod-schema.js';
import type { Finding } from '../../src/manifest/validate.js';
import { Backoff, backoffKey } from '../../src/pods/backoff.js';
import { planPods } from '../../src/pods/plan.js';
import { effectivePods, type RolloutRecord } from '../../src/rollout/rollout-guard.js';
import { buildPlanReport, formatPlanText, planExitCode, PLAN_API_VERSION, PLAN_KIND, type PlanReport } from '../../src/pods/plan-report.js';
import type { ObservedContainer, ObservedPod } from '../../src/runtime/types.js';

const NODE = 'node1';
const DIR = '/etc/pods.d';
const NOW = new Date('2026-12-04T04:00:00Z');
const IMAGE = 'localhost/busybox:1';

function desired(name: string, spec: Partial<PodSpec> = {}, file = `${DIR}/${name}.yaml`): DesiredPod {
  const manifest: PodManifest = { apiVersion: 'v1', kind: 'Pod', metadata: { name }, spec: { containers: [{ name: 'app', image: IMAGE }], ...spec } };
  return toDesiredPod(manifest, file, NODE, NOW);
}

function running(name: string, fields: Partial<ObservedContainer> = {}): ObservedContainer {
  return { id: `ctr-${name}`, name, kind: 'app', state: 'running', exitCode: undefined, startedAt: new Date(NOW.getTime() - 60_000), finishedAt: undefined, image: IMAGE, imageId: '', pid: 1, ...fields };
}

/** The pod podman runs for `pod`, made from that spec. */
function observed(pod: DesiredPod, containers = [running('app')], id = `pod-${pod.name}`): ObservedPod {
  return { id, podmanName: `default_${pod.name}`, key: pod.key, name: pod.name, namespace: pod.namespace, uid: pod.uid, hash: pod.hash, source: pod.source, gracePeriodSeconds: 30, infraRunning: true, containers };
}

function file(path: string, pods: DesiredPod[], findings: Finding[] = []): FileResult {
  return { path, mtimeMs: 0, size: 1, pods, findings, hasErrors: findings.some((one) => one.severity === 'error') };
}

const imageError = (path: string): Finding => ({ file: path, line: 7, column: 14, field: 'spec.containers[0].image', severity: 'error', message: 'Required' });

/**
 * What the command does: merge (with the last good specs), the rollout guard (what it remembers,
 * what holds a running pod's replace), plan, report.
 */
function report(options: { files: FileResult[]; observed: ObservedPod[]; saved?: DesiredPod[]; lastGood?: LastGood; backoff?: Backoff; showEnvValues?: boolean; records?: Map<string, RolloutRecord>; heldBy?: string }): PlanReport {
  const { state } = mergeFiles(options.files, options.lastGood ?? new Map());
  const saved = new Map((options.saved ?? []).map((pod) => [pod.uid, pod]));
  const running = new Map(options.observed.flatMap((pod) => {
    const spec = saved.get(pod.uid);
    return spec ? [[pod.key, spec] as const] : [];
  }));
  const asked = state.pods;
  const guarded = effectivePods(asked, options.records ?? new Map(), 300, NOW, { running, holding: () => options.heldBy });
  state.pods = guarded.pods;
  const rolledBack = new Map([...guarded.records].flatMap(([key, record]) => (record.failed && record.ready ? [[key, { failedHash: record.failed.hash, reason: record.failed.reason, message: record.failed.message, at: record.failed.at, readyHash: record.ready.hash }] as const] : [])));
  const plan = planPods({ desired: state.pods, observed: options.observed, erroredSources: state.erroredSources, busy: new Set(), now: NOW.getTime(), backoff: options.backoff ?? new Backoff({ initialMs: 10_000, maxMs: 300_000 }), known: saved });
  return buildPlanReport({
    plan, desired: state, observed: options.observed, files: options.files, saved, problems: [], showEnvValues: options.showEnvValues ?? false,
    rollout: { asked, held: guarded.held, rolledBack },
    agent: { running: true, pid: 42, message: 'running (pid 42)' }, nodeName: NODE, manifestDir: DIR, stateDir: '/var/lib/podvisor', now: NOW,
  });
}

const verdicts = (plan: PlanReport) => plan.pods.map((pod) => `${pod.verdict} ${pod.pod}`);

t.test('nothing to do: every pod kept, exit 0', async (t) => {
  const web = desired('web');
  const plan = report({ files: [file(web.source, [web])], observed: [observed(web)], saved: [web] });
  t.same(verdicts(plan), [`keep default/web-${NODE}`]);
  t.equal(plan.changes, false);
  t.equal(planExitCode(plan), 0);
  t.same(plan.summary, { create: 0, replace: 0, pendingReplace: 0, remove: 0, keep: 1, keepInvalid: 0, rolledBack: 0 });
  t.match(formatPlanText(plan), /^= keep +default\/web-node1 +web\.yaml: runs the spec its file asks for$/m);
  t.match(formatPlanText(plan), /No changes/);
});

t.test('an edited file: replace, with each changed field, exit 1', async (t) => {
  const before = desired('web', { containers: [{ name: 'app', image: IMAGE, env: [{ name: 'GREETING', value: 'hello' }] }] });
  const after = desired('web', { containers: [{ name: 'app', image: 'localhost/busybox:2', env: [{ name: 'GREETING', value: 'bye' }] }] });
  const plan = report({ files: [file(after.source, [after])], observed: [observed(before)], saved: [before] });
  t.same(verdicts(plan), [`replace default/web-${NODE}`]);
  const [pod] = plan.pods;
  t.same(pod?.hash, { running: before.hash, wanted: after.hash });
  t.equal(pod?.reason, `config hash changed from ${before.hash} to ${after.hash}`);
  t.same(pod?.changes, [
    { path: 'spec.containers[app].env[GREETING].value', from: '(redacted)', to: '(redacted)' },
    { path: 'spec.containers[app].image', from: IMAGE, to: 'localhost/busybox:2' },
  ]);
  t.equal(planExitCode(plan), 1);
  const text = formatPlanText(plan);
  t.match(text, /^~ replace default\/web-node1 +web\.yaml: config hash changed/m);
  t.match(text, /^ {6}spec\.containers\[app\]\.image: localhost\/busybox:1 -> localhost\/busybox:2$/m);
  t.match(text, /^Plan: 0 to create, 1 to replace, 0 to remove; 0 to keep\.$/m);
  t.notMatch(text, /No changes/);
  // serve-env-values: the values themselves.
  const shown = report({ files: [file(after.source, [after])], observed: [observed(before)], saved: [before], showEnvValues: true });
  t.match(formatPlanText(shown), /env\[GREETING\]\.value: hello -> bye/);
  // Without the spec the pod was made from, the hash change alone, said so.
  const unsaved = report({ files: [file(after.source, [after])], observed: [observed(before)] });
  t.equal(unsaved.pods[0]?.changes, undefined);
  t.match(unsaved.pods[0]?.reason, /the spec it runs was not saved: no field diff/);
});

t.test('a new file: create; a removed file: remove; a file that no longer asks: remove', async (t) => {
  const web = desired('web');
  const old = desired('old');
  const gone = desired('gone');
  const plan = report({ files: [file(web.source, [web]), file(old.source, [])], observed: [observed(old), observed(gone)] });
  t.same(verdicts(plan), [`remove default/gone-${NODE}`, `remove default/old-${NODE}`, `create default/web-${NODE}`]);
  t.equal(plan.pods[0]?.reason, 'its file is gone: no manifest asks for it');
  t.equal(plan.pods[1]?.reason, 'its file no longer asks for it');
  t.equal(plan.pods[2]?.reason, 'podman has no pod for it');
  t.same(plan.summary, { create: 1, replace: 0, pendingReplace: 0, remove: 2, keep: 0, keepInvalid: 0, rolledBack: 0 });
  t.equal(planExitCode(plan), 1);
  const text = formatPlanText(plan);
  t.match(text, /^\+ create +default\/web-node1 +web\.yaml: podman has no pod for it$/m);
  t.match(text, /^- remove +default\/gone-node1 +gone\.yaml: its file is gone: no manifest asks for it$/m);
  // Planned against another directory (a staged copy): the pod's file is elsewhere, not gone.
  const elsewhere = desired('elsewhere', {}, '/srv/other/elsewhere.yaml');
  const staged = report({ files: [], observed: [observed(elsewhere)] });
  t.equal(staged.pods[0]?.reason, 'made from a file outside this manifest directory, and no manifest here asks for it');
  t.match(formatPlanText(staged), /^- remove +default\/elsewhere-node1 +\/srv\/other\/elsewhere\.yaml: made from a file outside/m, 'its file named in full');
});

t.test('an invalid edit of a running pod\'s file: kept on its last good spec, with the finding, exit 0', async (t) => {
  const web = desired('web');
  const broken = file(web.source, [], [imageError(web.source)]);
  // The agent that saw the good version keeps it as the file's last good pod.
  const withLastGood = report({ files: [broken], observed: [observed(web)], saved: [web], lastGood: new Map([[web.source, new Map([[web.key, web]])]]) });
  // An agent started after the file went bad keeps the pod podman runs for it.
  const withoutLastGood = report({ files: [broken], observed: [observed(web)] });
  for (const [name, plan] of [['with the last good spec', withLastGood], ['without it', withoutLastGood]] as const) {
    t.same(verdicts(plan), [`keep-invalid default/web-${NODE}`], name);
    t.equal(plan.pods[0]?.reason, `its file has errors: kept on its last good spec (${web.source}:7:14: spec.containers[0].image: Required)`, name);
    t.equal(planExitCode(plan), 0, `${name}: nothing changes`);
    t.same(plan.summary, { create: 0, replace: 0, pendingReplace: 0, remove: 0, keep: 0, keepInvalid: 1, rolledBack: 0 }, name);
    t.same(plan.files, [{ path: web.source, valid: false, pods: [], findings: [imageError(web.source)] }], `${name}: the file's findings`);
    const text = formatPlanText(plan);
    t.match(text, /^! keep +default\/web-node1 +web\.yaml: its file has errors: kept on its last good spec/m, name);
    t.match(text, /^Findings:\n {2}\/etc\/pods\.d\/web\.yaml:7:14: spec\.containers\[0\]\.image: Required$/m, name);
    t.match(text, /1 to keep \(1 on the last good spec: file has errors\)/, name);
    t.match(text, /^No changes: podman runs what the agent chose; 1 file has errors and changes nothing until fixed\.$/m, `${name}: not "what the files ask for"`);
  }
  // The same file when the pod is not running: nothing to keep, nothing to make.
  t.same(verdicts(report({ files: [broken], observed: [] })), []);
});

t.test('restarts inside a kept pod are steps, not changes', async (t) => {
  const web = desired('web');
  const crashed = running('app', { state: 'exited', exitCode: 1, finishedAt: new Date(NOW.getTime() - 60_000) });
  const plan = report({ files: [file(web.source, [web])], observed: [observed(web, [crashed])] });
  t.same(verdicts(plan), [`keep default/web-${NODE}`]);
  t.same(plan.pods[0]?.steps, ['restartPolicy Always: restarting app (exit code 1)']);
  t.equal(planExitCode(plan), 0);
  t.match(formatPlanText(plan), /^ {6}then: restartPolicy Always: restarting app \(exit code 1\)$/m);
});

t.test('a pod podman could not make, backing off, is still to be created', async (t) => {
  const web = desired('web');
  const backoff = new Backoff({ initialMs: 10_000, maxMs: 300_000 }, [[backoffKey(web.uid, 'app'), { delayMs: 10_000, lastUpdate: NOW.getTime() - 1000 }]]);
  const plan = report({ files: [file(web.source, [web])], observed: [], backoff });
  t.same(verdicts(plan), [`create default/web-${NODE}`]);
  t.match(plan.pods[0]?.reason, /back-off/);
  t.equal(planExitCode(plan), 1);
});

t.test('two pods for one manifest: the extra one removed, the right one kept', async (t) => {
  const web = desired('web');
  const stale = { ...observed(desired('web', { hostNetwork: true }), [running('app')], 'pod-extra'), key: web.key };
  const plan = report({ files: [file(web.source, [web])], observed: [observed(web), stale] });
  t.same(verdicts(plan), [`keep default/web-${NODE}`, `remove default/web-${NODE}`]);
  t.equal(plan.pods[1]?.reason, 'a second pod for the same manifest');
});

t.test('conflicts: a host port asked for twice is the loser file\'s finding; a name twice a problem', async (t) => {
  const port = { containers: [{ name: 'app', image: IMAGE, ports: [{ containerPort: 80, hostPort: 8080 }] }] };
  const a = desired('a', port);
  const b = desired('b', port);
  const twice = desired('a', {}, `${DIR}/z-copy.yaml`);
  const plan = report({ files: [file(a.source, [a]), file(b.source, [b]), file(twice.source, [twice])], observed: [] });
  t.same(verdicts(plan), [`create default/a-${NODE}`]);
  const loser = plan.files.find((one) => one.path === b.source);
  t.equal(loser?.valid, false);
  t.match(loser?.findings[0]?.message, /host port 8080\/TCP is already asked for by pod default\/a-node1/);
  t.same(plan.problems, [`pod default/a-${NODE} is defined by ${a.source} already; ignoring it in ${twice.source}`]);
  t.match(formatPlanText(plan), /^Findings:$/m);
});

t.test('a replace held by an update lock: pending-replace, naming the lock, with the diff; exit 1', async (t) => {
  const before = desired('web');
  const after = desired('web', { containers: [{ name: 'app', image: 'localhost/busybox:2' }] });
  const lock = '/run/podvisor/locks/default_web';
  const plan = report({ files: [file(after.source, [after])], observed: [observed(before)], saved: [before], heldBy: `the update lock ${lock}` });
  t.same(verdicts(plan), [`pending-replace default/web-${NODE}`]);
  const [pod] = plan.pods;
  t.same(pod?.held, { by: `the update lock ${lock}`, wantedHash: after.hash }, 'what holds it, for a tool');
  t.same(pod?.hash, { running: before.hash, wanted: after.hash });
  t.equal(pod?.reason, `Pending replace: spec ${after.hash} held by the update lock ${lock}; runs ${before.hash} until then`);
  t.same(pod?.changes, [{ path: 'spec.containers[app].image', from: IMAGE, to: 'localhost/busybox:2' }], 'the change it will make');
  t.same(plan.summary, { create: 0, replace: 0, pendingReplace: 1, remove: 0, keep: 0, keepInvalid: 0, rolledBack: 0 });
  // The files ask for a change podman does not run yet, and the agent makes it once the lock goes.
  t.equal(plan.changes, true);
  t.equal(planExitCode(plan), 1);
  const text = formatPlanText(plan);
  t.match(text, new RegExp(`^~ pending default/web-node1 +web\\.yaml: Pending replace: spec ${after.hash} held by the update lock ${lock}; runs ${before.hash} until then$`, 'm'));
  t.match(text, /^ {6}spec\.containers\[app\]\.image: localhost\/busybox:1 -> localhost\/busybox:2$/m);
  t.match(text, /^Plan: 0 to create, 0 to replace \(and 1 pending: held until released\), 0 to remove; 0 to keep\.$/m);
  t.match(text, /^Nothing to do now: the pending replace\(s\) go ahead once what holds them is released/m);
  t.notMatch(text, /No changes/);
  // Without a hold the same edit is a replace now.
  t.same(verdicts(report({ files: [file(after.source, [after])], observed: [observed(before)], saved: [before] })), [`replace default/web-${NODE}`]);
});

t.test('a rolled-back pod: rolled-back, naming the failed spec and why, running its last Ready spec; exit 0', async (t) => {
  const good = desired('web');
  const bad = desired('web', { containers: [{ name: 'app', image: 'localhost/busybox:2' }] });
  const failed = { hash: bad.hash, reason: 'CrashLoopBackOff' as const, message: 'container app is in CrashLoopBackOff 8 s after the replace', at: '2026-12-04T03:50:00Z' };
  const records = new Map<string, RolloutRecord>([[good.key, { ready: { hash: good.hash, pod: good, at: '2026-12-04T03:00:00Z' }, failed }]]);
  const plan = report({ files: [file(bad.source, [bad])], observed: [observed(good)], saved: [good], records });
  t.same(verdicts(plan), [`rolled-back default/web-${NODE}`]);
  const [pod] = plan.pods;
  const rolledBack = { failedHash: bad.hash, reason: 'CrashLoopBackOff', message: failed.message, at: failed.at, readyHash: good.hash };
  t.same(pod?.rolledBack, rolledBack, 'the failed spec and why, for a tool');
  t.same(pod?.hash, { running: good.hash, wanted: bad.hash });
  const words = `rolled back: spec ${bad.hash} container app is in CrashLoopBackOff 8 s after the replace; runs ${good.hash}, the last spec that was Ready, until the file changes`;
  t.equal(pod?.reason, words);
  t.same(plan.summary, { create: 0, replace: 0, pendingReplace: 0, remove: 0, keep: 0, keepInvalid: 0, rolledBack: 1 });
  // Nothing the agent would do until the file changes: as a file with errors, exit 0.
  t.equal(planExitCode(plan), 0);
  const text = formatPlanText(plan);
  t.match(text, new RegExp(`^< rolled-back default/web-node1 +web\\.yaml: ${words.replace(/[()]/g, '\\$&')}$`, 'm'));
  t.match(text, /^Plan: 0 to create, 0 to replace, 0 to remove; 1 to keep \(1 rolled back to the last Ready spec\)\.$/m);
  t.match(text, /^No changes: podman runs what the agent chose; a rolled-back pod waits for its file to change\.$/m);

  // podman still runs the failed spec (the agent stopped before it went back): a replace, said why.
  const back = report({ files: [file(bad.source, [bad])], observed: [observed(bad)], saved: [bad], records });
  t.same(verdicts(back), [`replace default/web-${NODE}`]);
  t.equal(back.pods[0]?.reason, `back to the last Ready spec, config hash ${bad.hash} to ${good.hash} (spec ${bad.hash} ${failed.message})`);
  t.same(back.pods[0]?.rolledBack, rolledBack);
  t.equal(planExitCode(back), 1);
  // podman has no pod: made on the last Ready spec.
  const made = report({ files: [file(bad.source, [bad])], observed: [], records });
  t.same(made.pods.map((one) => [one.verdict, one.hash.wanted]), [['create', good.hash]]);
  t.match(made.pods[0]?.reason, /^podman has no pod for it: made on its last Ready spec \(rolled back: spec /);
  // An edit of the file clears the rollback: the new spec is planned as any edit.
  const fixed = desired('web', { containers: [{ name: 'app', image: 'localhost/busybox:3' }] });
  t.same(verdicts(report({ files: [file(fixed.source, [fixed])], observed: [observed(good)], saved: [good], records })), [`replace default/web-${NODE}`]);
});

t.test('the JSON document: a stable shape a tool can rely on', async (t) => {
  const web = desired('web');
  const plan = JSON.parse(JSON.stringify(report({ files: [file(web.source, [web])], observed: [] }))) as Record<string, unknown>;
  t.same(Object.keys(plan), ['apiVersion', 'kind', 'generatedAt', 'nodeName', 'manifestDir', 'stateDir', 'agent', 'changes', 'summary', 'pods', 'files', 'problems']);
  t.equal(plan.apiVersion, PLAN_API_VERSION);
  t.equal(plan.kind, PLAN_KIND);
  t.equal(plan.generatedAt, NOW.toISOString());
  t.same(plan.pods, [{ verdict: 'create', pod: `default/web-${NODE}`, source: web.source, hash: { wanted: web.hash }, reason: 'podman has no pod for it' }]);
  t.same(plan.files, [{ path: web.source, valid: true, pods: [web.key], findings: [] }]);
});
