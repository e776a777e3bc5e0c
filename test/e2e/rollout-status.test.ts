// Fleet-ready status (issue 12), end to end with real podman: the webhook payload and `GET
// /rollout` carry each pod's rollout outcome. Two pods come up Ready; an edit of one that
// crash-loops is Applying (the node not settled) until it is rolled back, then RolledBack with
// its reason; and the receiver, having opted in to deltas, gets that change as a delta carrying
// only the changed pod. A bad new file is listed on its own (no pod carries it), unsettling the node.
import t from 'tap';
import { WebhookTestReceiver, type ReceivedItem } from '../publish/webhook-test-receiver.js';
import { freePort, IMAGE, podYaml, putManifest, setup, sleeper, waitFor } from './harness.js';

t.setTimeout(240_000);

interface Report {
  node: string;
  settled: boolean;
  metadata: { resourceVersion: string };
  pods: { name: string; outcome: string; reason: string; message: string; wantedHash?: string; runningHash?: string; since: string; source: string }[];
  invalid: { source: string; outcome: string; reason: string; message: string; since: string }[];
}

const WINDOW = 40;
const web = (containers: string) => podYaml({ name: 'web', containers }).replace('metadata:\n', `metadata:\n  annotations:\n    podvisor.io/rollback-after-seconds: "${WINDOW}"\n`);
const crashing = [`    - name: app`, `      image: ${IMAGE}`, '      command: ["sh", "-c", "echo broken; exit 3"]', ''].join('\n');

t.test('the webhook and GET /rollout carry Ready, Applying and RolledBack; the change goes as a delta', async (t) => {
  const world = await setup(t, 'rollout-status');
  const receiver = new WebhookTestReceiver();
  receiver.deltas = true;
  await receiver.start();
  t.teardown(() => receiver.stop());
  await putManifest(world.manifestDir, 'web.yaml', web(sleeper('app', { GEN: '1' })));
  await putManifest(world.manifestDir, 'db.yaml', podYaml({ name: 'db', containers: sleeper('app') }));
  const port = await freePort();
  await world.startAgent(['--publish-webhook', receiver.url, '--publish-interval', '1', '--api-address', `127.0.0.1:${port}`]);
  const webName = `web-${world.node}`;
  const dbName = `db-${world.node}`;
  const rollout = async (): Promise<Report> => (await (await fetch(`http://127.0.0.1:${port}/rollout`)).json()) as Report;
  const outcomeOf = (report: Report, name: string) => report.pods.find((pod) => pod.name === name);

  const ready = await waitFor('both pods Ready in /rollout', async () => {
    const report = await rollout();
    return report.pods.length === 2 && report.pods.every((pod) => pod.outcome === 'Ready') ? report : undefined;
  }, { timeoutMs: 90_000 });
  t.equal(ready.node, world.node);
  t.equal(ready.settled, true, 'settled: every pod Ready');
  const goodHash = outcomeOf(ready, webName)?.runningHash;
  t.match(outcomeOf(ready, webName), { reason: 'Ready', wantedHash: goodHash, source: /web\.yaml$/ }, 'Ready: the file\'s spec is the running one');

  const received = (name: string) => receiver.state.get(`default/${name}`);
  const outcomeIn = (item: ReceivedItem | undefined) => item?.metadata.annotations?.['podvisor.io/rollout'];
  await waitFor('the webhook receiver holding both pods Ready', () => outcomeIn(received(webName)) === 'Ready' && outcomeIn(received(dbName)) === 'Ready', { timeoutMs: 30_000 });
  t.match(received(webName)?.status.conditions?.find((one) => one.type === 'podvisor.io/ManifestApplied'), { status: 'True', reason: 'Ready' }, 'the payload carries the condition');
  t.equal(receiver.posts[0]?.body.kind, 'PodList', 'a full PodList first');

  // The edit: its new container exits at once; backed off 1 s, it crash-loops within seconds.
  const postsBefore = receiver.posts.length;
  await putManifest(world.manifestDir, 'web.yaml', web(crashing));
  const seen = new Set<string>();
  const rolledBack = await waitFor('web RolledBack in /rollout', async () => {
    const report = await rollout();
    const one = outcomeOf(report, webName);
    if (one) seen.add(`${one.outcome}:${String(report.settled)}`);
    return one?.outcome === 'RolledBack' ? { report, one } : undefined;
  }, { timeoutMs: (WINDOW + 30) * 1000, intervalMs: 200 });
  t.ok(seen.has('Applying:false'), `Applying, not settled, while on trial (seen: ${[...seen].join(', ')})`);
  t.match(rolledBack.one, { reason: 'CrashLoopBackOff', message: /container app is in CrashLoopBackOff .* rolled back to / }, 'RolledBack with its reason');
  t.not(rolledBack.one.wantedHash, goodHash, 'the wanted hash is the failed spec');
  t.equal(rolledBack.report.settled, true, 'settled again: a rollback is an end');
  await waitFor('the last Ready spec running again', async () => outcomeOf(await rollout(), webName)?.runningHash === goodHash, { timeoutMs: 60_000 });

  await waitFor('the receiver holding web RolledBack', () => outcomeIn(received(webName)) === 'RolledBack', { timeoutMs: 30_000 });
  const after = receiver.posts.slice(postsBefore);
  t.ok(after.every((post) => post.answer === 204), 'every POST after the edit applied by the receiver');
  const deltas = after.filter((post) => post.body.kind === 'PodListDelta');
  t.ok(deltas.length > 0, `the change went as deltas (${deltas.length} of ${after.length} POSTs)`);
  const carrying = deltas.filter((post) => post.body.items.length > 0);
  // db's own status may change meanwhile (a probe's time, say) and then rides along; what a delta
  // must never carry is a pod the receiver already holds as it is, nor a change of db's outcome.
  t.ok(carrying.length > 0, `${carrying.length} deltas carry pods`);
  t.same(carrying.flatMap((post) => post.unchanged), [], 'no delta carries a pod the receiver already held as it is');
  t.ok(carrying.some((post) => post.body.items.some((item) => item.metadata.name === webName)), 'the deltas carry web, the edited pod');
  t.same(carrying.flatMap((post) => post.body.items.filter((item) => item.metadata.name === dbName).map(outcomeIn)).filter((outcome) => outcome !== 'Ready'), [], 'db, when carried, is still Ready');
  t.ok(carrying.some((post) => post.body.items.some((item) => outcomeIn(item) === 'RolledBack')), 'one carries web RolledBack');
  t.match(received(webName)?.status.conditions?.find((one) => one.type === 'podvisor.io/ManifestApplied'), { status: 'False', reason: 'RolledBack' });
  t.equal(outcomeIn(received(dbName)), 'Ready', 'db untouched, still Ready at the receiver');

  // A bad new file: no pod runs from it, so the node carries its outcome, and is not settled.
  const invalidIn = (post: (typeof receiver.posts)[number] | undefined) => (post?.body as { invalidManifests?: Report['invalid'] } | undefined)?.invalidManifests;
  await putManifest(world.manifestDir, 'new.yaml', podYaml({ name: 'new', containers: '    - name: app\n' }));
  const bad = await waitFor('new.yaml Invalid in /rollout', async () => {
    const report = await rollout();
    return report.invalid.length > 0 ? report : undefined;
  }, { timeoutMs: 30_000 });
  t.equal(bad.settled, false, 'a bad new file: not settled');
  t.match(bad.invalid, [{ source: /new\.yaml$/, outcome: 'Invalid', reason: 'ManifestInvalid', message: /new\.yaml:\d+:\d+: spec\.containers\[0\]\.image: / }], 'the file and its first error');
  await waitFor('the receiver told of the invalid file', () => (invalidIn(receiver.posts.at(-1)) ?? []).length === 1, { timeoutMs: 30_000 });
  t.match(invalidIn(receiver.posts.at(-1)), bad.invalid, 'the webhook carries the same');
  await putManifest(world.manifestDir, 'new.yaml', podYaml({ name: 'new', containers: sleeper('app') }));
  await waitFor('new.yaml fixed: nothing invalid in /rollout', async () => (await rollout()).invalid.length === 0, { timeoutMs: 30_000 });
  await waitFor('the receiver told it is gone', () => invalidIn(receiver.posts.at(-1))?.length === 0, { timeoutMs: 30_000 });
});
