// The crash-loop back-off against the kubelet's rules: immediate first restart, then the
// delay doubles from the initial value to the maximum, and resets after a long run.
import t from 'tap';
import { Backoff, backoffKey, formatGoDuration } from '../../src/pods/backoff.js';

const INITIAL = 10_000;
const MAX = 300_000;
const KEY = backoffKey('uid-1', 'app');

t.test('delays double from the initial value and stop at the maximum', async (t) => {
  const backoff = new Backoff({ initialMs: INITIAL, maxMs: MAX });
  let finishedAt = 1_000_000;
  t.equal(backoff.verdict(KEY, finishedAt, finishedAt).waiting, false, 'no entry: no wait');
  const delays: number[] = [];
  for (let restart = 0; restart < 8; restart++) {
    backoff.next(KEY, finishedAt);
    finishedAt += 1000; // it crashes a second after each start
    const verdict = backoff.verdict(KEY, finishedAt, finishedAt);
    delays.push(verdict.delayMs);
    t.equal(verdict.waiting, true);
    t.equal(verdict.until, finishedAt + verdict.delayMs);
  }
  t.strictSame(delays, [10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000, 300_000]);
});

t.test('the wait is over once the delay has passed since the exit', async (t) => {
  const backoff = new Backoff({ initialMs: INITIAL, maxMs: MAX });
  backoff.next(KEY, 0);
  t.equal(backoff.verdict(KEY, 5000, 5000 + INITIAL - 1).waiting, true);
  t.equal(backoff.verdict(KEY, 5000, 5000 + INITIAL).waiting, false);
});

t.test('a container that ran more than twice the maximum starts again from the initial delay', async (t) => {
  const backoff = new Backoff({ initialMs: INITIAL, maxMs: MAX });
  backoff.next(KEY, 0);
  backoff.next(KEY, 1000);
  backoff.next(KEY, 2000);
  t.equal(backoff.verdict(KEY, 3000, 3000).delayMs, 40_000);
  const longRun = 2000 + 2 * MAX + 1; // ran over ten minutes
  t.equal(backoff.verdict(KEY, longRun, longRun).waiting, false, 'no wait after a long run');
  backoff.next(KEY, longRun);
  t.equal(backoff.verdict(KEY, longRun + 1000, longRun + 1000).delayMs, INITIAL, 'back to the initial delay');
});

t.test('a zero initial delay never waits', async (t) => {
  const backoff = new Backoff({ initialMs: 0, maxMs: 0 });
  backoff.next(KEY, 0);
  backoff.next(KEY, 10);
  t.equal(backoff.verdict(KEY, 20, 20).waiting, false);
});

t.test('without an exit time, the last recorded failure counts', async (t) => {
  const backoff = new Backoff({ initialMs: INITIAL, maxMs: MAX });
  t.equal(backoff.verdict(KEY, undefined, 50).waiting, false);
  backoff.next(KEY, 100);
  t.strictSame(backoff.verdict(KEY, undefined, 200), { waiting: true, until: 100 + INITIAL, delayMs: INITIAL });
});

t.test('retain forgets other pods', async (t) => {
  const backoff = new Backoff({ initialMs: INITIAL, maxMs: MAX });
  backoff.next(backoffKey('a', 'app'), 0);
  backoff.next(backoffKey('b', 'app'), 0);
  backoff.retain((key) => key.startsWith('a/'));
  t.strictSame(backoff.entries().map(([key]) => key), ['a/app']);
});

t.test('durations print as Go prints them', async (t) => {
  t.equal(formatGoDuration(10_000), '10s');
  t.equal(formatGoDuration(40_000), '40s');
  t.equal(formatGoDuration(300_000), '5m0s');
  t.equal(formatGoDuration(160_000), '2m40s');
});
