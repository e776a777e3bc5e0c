// Back-off between failed deliveries: full jitter under a cap that doubles from the initial
// delay to the maximum, and starts over after a success.
import t from 'tap';
import { RetryBackoff } from '../../src/publish/retry.js';

t.test('the cap doubles from the initial delay to the maximum', async (t) => {
  const backoff = new RetryBackoff({ initialMs: 1000, maxMs: 60_000, random: () => 0.999999 });
  const delays = Array.from({ length: 9 }, () => backoff.next());
  t.same(delays, [999, 1999, 3999, 7999, 15_999, 31_999, 59_999, 59_999, 59_999]);
  t.equal(backoff.failures, 9);
});

t.test('full jitter: anywhere between 0 and the cap', async (t) => {
  const draws = [0, 0.5, 0.25];
  const backoff = new RetryBackoff({ initialMs: 1000, maxMs: 60_000, random: () => draws.shift() ?? 0 });
  t.same([backoff.next(), backoff.next(), backoff.next()], [0, 1000, 1000]);
});

t.test('a success starts the back-off over', async (t) => {
  const backoff = new RetryBackoff({ initialMs: 100, maxMs: 1000, random: () => 0.5 });
  backoff.next();
  backoff.next();
  backoff.next();
  t.equal(backoff.cap, 800);
  backoff.reset();
  t.equal(backoff.failures, 0);
  t.equal(backoff.next(), 50);
});

t.test('the defaults are 1 s doubling to 60 s', async (t) => {
  const backoff = new RetryBackoff({ random: () => 0.999999 });
  t.equal(backoff.cap, 1000);
  for (let failure = 0; failure < 100; failure++) backoff.next();
  t.equal(backoff.cap, 60_000, 'and the cap stays finite after many failures');
});

t.test("a server's Retry-After is the least delay; the back-off still counts the failure", async (t) => {
  const backoff = new RetryBackoff({ initialMs: 100, maxMs: 1000, random: () => 0.5 });
  t.equal(backoff.next(5000), 5000, 'longer than the jittered delay: the server wins');
  t.equal(backoff.next(10), 100, 'shorter: the back-off wins (cap 200 ms, half of it)');
  t.equal(backoff.failures, 2);
});
