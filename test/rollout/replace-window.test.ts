// Replace windows: durations and expressions as the config takes them, when a window is open
// (node-cron's own matching, in UTC here), what holds a replace in words, and the guard letting a
// held replace go when the window opens (a fake clock for the guard's idea of now).
process.env.TZ = 'UTC';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import t from 'tap';
import { createLogger } from '../../src/log/logger.js';
import type { DesiredState } from '../../src/manifest/desired-state.js';
import { toDesiredPod, type DesiredPod } from '../../src/manifest/identity.js';
import { holdingOf, parseDuration, ReplaceWindow, windowExpressionProblem, windowOpensAt } from '../../src/rollout/replace-window.js';
import { RolloutGuard } from '../../src/rollout/rollout-guard.js';

const at = (iso: string) => new Date(`2026-12-04T${iso}Z`);

t.test('durations: units, plain seconds, and what is not one', async (t) => {
  t.equal(parseDuration('1h'), 3600);
  t.equal(parseDuration('90m'), 5400);
  t.equal(parseDuration('1h30m'), 5400);
  t.equal(parseDuration('2d'), 172800);
  t.equal(parseDuration('45s'), 45);
  t.equal(parseDuration('600'), 600);
  t.equal(parseDuration(120), 120);
  for (const bad of ['', 'h', '1 h', '1x', '-5m', '30m1h', 'NaN']) t.equal(parseDuration(bad), undefined, `"${bad}" is no duration`);
  t.equal(parseDuration(Number.POSITIVE_INFINITY), undefined);
});

t.test('expressions: five fields, each checked by node-cron', async (t) => {
  t.equal(await windowExpressionProblem('0 2 * * *'), undefined);
  t.equal(await windowExpressionProblem('*/15 1-3 * * 1-5'), undefined);
  t.match(await windowExpressionProblem('0 0 2 * * *'), /five fields .* it has 6/, 'a seconds field is refused, with why');
  t.match(await windowExpressionProblem('0 2 * *'), /it has 4/);
  t.match(await windowExpressionProblem('0 25 * * *'), /is not a cron expression/, 'an hour out of range');
  await t.rejects(ReplaceWindow.create('nightly', 3600), /replace-window must be a cron expression of five fields/);
});

t.test('open and closed, on node-cron\'s matching', async (t) => {
  const nightly = await ReplaceWindow.create('0 2 * * *', 3600);
  t.equal(nightly.describe(), '"0 2 * * *" for 1h');
  t.notOk(nightly.isOpen(at('01:59:59')), 'closed before it opens');
  t.equal(nightly.openUntil(at('02:00:00')), at('03:00:00').getTime(), 'open at its minute, until its duration ends');
  t.ok(nightly.isOpen(at('02:30:00')), 'open in its middle: a window that opened while the agent was down still counts');
  t.ok(nightly.isOpen(at('02:59:59')));
  t.notOk(nightly.isOpen(at('03:00:00')), 'closed at its end');
  t.same(nightly.nextOpen(at('01:30:00')), at('02:00:00'), 'the next opening, the same night');
  t.same(nightly.nextOpen(at('03:00:00')), new Date('2026-12-05T02:00:00Z'), 'or the next');

  const overlapping = await ReplaceWindow.create('*/30 * * * *', 45 * 60);
  t.equal(overlapping.openUntil(at('10:40:00')), at('11:15:00').getTime(), 'windows that overlap: the latest opening decides');

  const weekly = await ReplaceWindow.create('0 2 * * 0', 3600);
  const friday = at('12:00:00');
  t.equal(weekly.nextOpen(friday), undefined, 'a week away is past the look-ahead');
  t.equal(windowOpensAt(weekly, friday), friday.getTime() + 24 * 3600_000, 'so the held replaces are judged again in a day');
  t.equal(windowOpensAt(nightly, at('02:10:00')), undefined, 'an open window ends no hold');
});

t.test('what holds a replace, in words', async (t) => {
  const nightly = await ReplaceWindow.create('0 2 * * *', 3600);
  t.equal(holdingOf('/run/podvisor/locks/all', nightly, at('02:10:00')), 'the update lock /run/podvisor/locks/all', 'a lock holds even in an open window');
  t.equal(holdingOf(undefined, nightly, at('02:10:00')), undefined, 'the window open: nothing holds');
  t.equal(holdingOf(undefined, nightly, at('12:00:00')), 'the replace window "0 2 * * *" for 1h, closed until 2026-12-05T02:00:00Z');
  t.equal(holdingOf(undefined, undefined, at('12:00:00')), undefined, 'no window, no lock: nothing holds');
});

t.test('the guard holds a replace while the window is closed and lets it go when it opens', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'podvisor-window-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const lines: string[] = [];
  const stream = new PassThrough();
  stream.on('data', (chunk: Buffer) => lines.push(...chunk.toString().split('\n').filter(Boolean)));
  const logger = createLogger({ level: 'info', format: 'json', stream });
  // A matcher of our own: open at 12:00:00 for a minute, on the guard's fake clock.
  const window = ReplaceWindow.withMatcher('0 12 * * *', 60, (minute) => minute.getUTCHours() === 12 && minute.getUTCMinutes() === 0);
  let now = at('11:59:59');
  const handedOn: DesiredState[] = [];
  const spec = (tag: string): DesiredPod => toDesiredPod({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web' }, spec: { containers: [{ name: 'app', image: `localhost/app:${tag}` }] } }, '/etc/pods.d/web.yaml', 'node1', now);
  const v1 = spec('1');
  const v2 = spec('2');
  const guard = new RolloutGuard({
    stateDir: dir, logger, defaultSeconds: 120, now: () => now, statuses: () => [],
    holding: () => holdingOf(undefined, window, now),
    // Due 100 ms after the fake now; by the time the timer fires the test has moved it into the window.
    holdEnds: () => (window.isOpen(now) ? undefined : now.getTime() + 100),
    onChange: (state) => handedOn.push(state),
    onRollback: () => undefined,
  });
  t.teardown(() => guard.stop());
  await guard.load();
  const state = (pod: DesiredPod): DesiredState => ({ pods: new Map([[pod.key, pod]]), erroredSources: new Set(), conflicts: [] });
  t.equal(guard.apply(state(v1)).pods.get(v1.key)?.hash, v1.hash, 'a new pod is created with the window closed');
  t.equal(guard.apply(state(v2)).pods.get(v2.key)?.hash, v1.hash, 'its replace is held');
  t.match(guard.heldReplaces().get(v2.key)?.by, /^the replace window "0 12 \* \* \*" for 1m, closed until 2026-12-04T12:00:00Z$/);
  now = at('12:00:01');
  await new Promise((resolve) => setTimeout(resolve, 400));
  t.equal(handedOn.at(-1)?.pods.get(v2.key)?.hash, v2.hash, 'the window opened: the replace is handed on without any other change');
  t.equal(guard.heldReplaces().size, 0);
  const events = lines.map((line) => (JSON.parse(line) as { event?: string }).event);
  t.ok(events.includes('ReplaceHeld') && events.includes('ReplaceReleased'), 'held and released, each said in the log');
});
