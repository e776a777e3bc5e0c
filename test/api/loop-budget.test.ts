// The API's share of the event loop (src/api/loop-budget.ts), with real time: tasks that each
// hold the loop for at least 2 ms. The bounds checked hold however slow the machine is (a slower
// task only makes fewer of them fit), so they are upper bounds on what runs, not timings.
import { performance } from 'node:perf_hooks';
import { setImmediate as turn } from 'node:timers/promises';
import t from 'tap';
import { LoopBudget } from '../../src/api/loop-budget.js';

/** Holds the loop for `ms`. */
function spin(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // busy: an expensive request
  }
}

t.test('tasks run in order, a slice per turn of the loop, a budget per window', async (t) => {
  const budget = new LoopBudget({ windowMs: 100, budgetMs: 20, sliceMs: 5 });
  const ran: { index: number; turn: number; at: number }[] = [];
  let turns = 0;
  let counting = true;
  void (async () => {
    while (counting) {
      await turn();
      turns++;
    }
  })();
  const started = performance.now();
  for (let index = 0; index < 40; index++) {
    t.ok(budget.run(() => {
      ran.push({ index, turn: turns, at: performance.now() - started });
      spin(2);
    }), `task ${index} accepted`);
  }
  t.ok(ran.length <= 3, `at most a slice's worth ran at once (${ran.length})`);
  while (ran.length < 40) await new Promise((resolve) => setTimeout(resolve, 20));
  counting = false;
  t.strictSame(ran.map((entry) => entry.index), [...Array(40).keys()], 'every task ran, in order');
  const perTurn = new Map<number, number>();
  for (const entry of ran) perTurn.set(entry.turn, (perTurn.get(entry.turn) ?? 0) + 1);
  t.ok(Math.max(...perTurn.values()) <= 3, `no turn of the loop ran more than a 5 ms slice of 2 ms tasks (most: ${Math.max(...perTurn.values())})`);
  // 20 ms of every 100 ms: 40 tasks of 2 ms need at least four windows.
  const elapsed = ran.at(-1)!.at;
  t.ok(elapsed >= 300, `80 ms of tasks spread over windows of 100 ms with 20 ms each (${Math.round(elapsed)} ms)`);
});

t.test('a task that fits runs at once; too many waiting are refused', async (t) => {
  const budget = new LoopBudget({ windowMs: 100, budgetMs: 10, sliceMs: 5, maxWaiting: 3 });
  let ranAtOnce = false;
  t.ok(budget.run(() => { ranAtOnce = true; }));
  t.ok(ranAtOnce, 'with time left, the task ran in the call');
  budget.run(() => spin(6));
  const accepted = [1, 2, 3, 4].map(() => budget.run(() => {}));
  t.strictSame(accepted, [true, true, true, false], 'three wait; the fourth is refused');
  t.equal(budget.waiting, 3);
  budget.clear();
  t.equal(budget.waiting, 0, 'cleared on stop');
});
