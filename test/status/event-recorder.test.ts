// The event ring: a repeat of the same event (pod uid, reason, message, fieldPath) counts up, as
// the kubelet's event aggregation does; the oldest events are dropped at capacity. Time comes from
// a fake clock the tests move by hand.
import t from 'tap';
import { EventRecorder, type PodEvent } from '../../src/status/event-recorder.js';

/** A fake clock: `now` is whatever the test last set. */
class FakeClock {
  now = Date.parse('2025-01-01T00:00:00.400Z');
  advance(ms: number): void {
    this.now += ms;
  }
  readonly read = (): number => this.now;
}

const WEB = { name: 'web-node1', namespace: 'default', uid: '6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f' };
const DB = { name: 'db-node1', namespace: 'infra', uid: '9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b' };
const APP = { name: 'app', kind: 'app' as const };
const INIT = { name: 'init', kind: 'init' as const };

function recorder(options: { capacity?: number } = {}): { events: EventRecorder; clock: FakeClock } {
  const clock = new FakeClock();
  return { events: new EventRecorder({ ...options, now: clock.read }), clock };
}

t.test('an event names its pod and, for a container, the container\'s fieldPath', async (t) => {
  const { events } = recorder();
  const pod = events.record(WEB, 'Normal', 'Scheduled', 'Successfully assigned default/web-node1 to node1');
  t.strictSame(pod.involvedObject, { kind: 'Pod', name: WEB.name, namespace: WEB.namespace, uid: WEB.uid }, 'a pod-level event has no fieldPath');
  t.equal(events.record(WEB, 'Normal', 'Started', 'Started container app', APP).involvedObject.fieldPath, 'spec.containers{app}');
  t.equal(events.record(WEB, 'Normal', 'Started', 'Started container init', INIT).involvedObject.fieldPath, 'spec.initContainers{init}');
});

t.test('a new event: count 1, both timestamps now in whole seconds, a name under the pod\'s', async (t) => {
  const { events } = recorder();
  const event = events.record(WEB, 'Warning', 'Failed', 'Error: ErrImagePull', APP);
  t.match(event, { type: 'Warning', reason: 'Failed', message: 'Error: ErrImagePull', count: 1, firstTimestamp: '2025-01-01T00:00:00Z', lastTimestamp: '2025-01-01T00:00:00Z' });
  t.match(event.name, /^web-node1\.6f1c2d3e[0-9a-f]{8}$/);
  t.not(events.record(WEB, 'Warning', 'Failed', 'Error: other', APP).name, event.name, 'each new event has its own name');
});

t.test('a repeat counts up and moves lastTimestamp, keeping the name and firstTimestamp', async (t) => {
  const { events, clock } = recorder();
  const first = events.record(WEB, 'Warning', 'BackOff', 'Back-off restarting failed container app in pod web-node1_default', APP);
  clock.advance(65_000);
  const again = events.record(WEB, 'Warning', 'BackOff', 'Back-off restarting failed container app in pod web-node1_default', APP);
  t.equal(again.name, first.name);
  t.equal(again.count, 2);
  t.equal(again.firstTimestamp, '2025-01-01T00:00:00Z');
  t.equal(again.lastTimestamp, '2025-01-01T00:01:05Z');
  t.equal(events.list().length, 1, 'one slot for both');
});

t.test('the dedupe key is (pod uid, reason, message, fieldPath)', async (t) => {
  const { events } = recorder();
  events.record(WEB, 'Normal', 'Pulled', 'Container image "x" already present on machine', APP);
  const variants: [string, () => PodEvent][] = [
    ['another pod', () => events.record(DB, 'Normal', 'Pulled', 'Container image "x" already present on machine', APP)],
    ['another reason', () => events.record(WEB, 'Normal', 'Created', 'Container image "x" already present on machine', APP)],
    ['another message', () => events.record(WEB, 'Normal', 'Pulled', 'Container image "y" already present on machine', APP)],
    ['another container', () => events.record(WEB, 'Normal', 'Pulled', 'Container image "x" already present on machine', { name: 'log', kind: 'app' })],
    ['an init container of the same name', () => events.record(WEB, 'Normal', 'Pulled', 'Container image "x" already present on machine', { name: 'app', kind: 'init' })],
    ['the pod itself', () => events.record(WEB, 'Normal', 'Pulled', 'Container image "x" already present on machine')],
  ];
  for (const [what, record] of variants) t.equal(record().count, 1, `${what}: a new event`);
  t.equal(events.list().length, 1 + variants.length);
  t.equal(events.record(WEB, 'Normal', 'Pulled', 'Container image "x" already present on machine', APP).count, 2, 'the first one again counts up');
});

t.test('at capacity the oldest event is dropped', async (t) => {
  const { events, clock } = recorder({ capacity: 3 });
  for (const reason of ['A', 'B', 'C', 'D']) {
    events.record(WEB, 'Normal', reason, reason);
    clock.advance(1000);
  }
  t.strictSame(events.list().map((event) => event.reason), ['B', 'C', 'D']);
});

t.test('a repeat is the newest: the ring drops the stalest instead', async (t) => {
  const { events } = recorder({ capacity: 3 });
  for (const reason of ['A', 'B', 'C']) events.record(WEB, 'Normal', reason, reason);
  events.record(WEB, 'Normal', 'A', 'A');
  t.strictSame(events.list().map((event) => event.reason), ['B', 'C', 'A'], 'oldest first, by last time seen');
  events.record(WEB, 'Normal', 'D', 'D');
  t.strictSame(events.list().map((event) => `${event.reason}x${event.count}`), ['C', 'A', 'D'].map((reason) => `${reason}x${reason === 'A' ? 2 : 1}`));
});

t.test('list(uid) gives one pod\'s events; list() gives copies', async (t) => {
  const { events } = recorder();
  events.record(WEB, 'Normal', 'Started', 'Started container app', APP);
  events.record(DB, 'Normal', 'Started', 'Started container app', APP);
  events.record(WEB, 'Warning', 'Unhealthy', 'Readiness probe failed', APP);
  t.strictSame(events.list(WEB.uid).map((event) => event.reason), ['Started', 'Unhealthy']);
  t.strictSame(events.list(DB.uid).map((event) => event.involvedObject.namespace), ['infra']);
  t.strictSame(events.list('no-such-uid'), []);
  t.equal(events.list().length, 3);
  const copy = events.list(WEB.uid)[0];
  if (copy) {
    copy.count = 99;
    copy.involvedObject.name = 'changed';
  }
  t.match(events.list(WEB.uid)[0], { count: 1, involvedObject: { name: WEB.name } }, 'changing a listed event changes nothing kept');
});

t.test('restore: events of an earlier agent are listed and counted on', async (t) => {
  const before = recorder();
  before.events.record(WEB, 'Warning', 'BackOff', 'back-off', APP);
  before.events.record(DB, 'Normal', 'Started', 'Started container app', APP);
  const saved = JSON.parse(JSON.stringify(before.events.list())) as PodEvent[];

  const { events, clock } = recorder();
  clock.advance(3_600_000);
  events.restore(saved);
  t.strictSame(events.list(), saved);
  const again = events.record(WEB, 'Warning', 'BackOff', 'back-off', APP);
  t.match(again, { count: 2, firstTimestamp: '2025-01-01T00:00:00Z', lastTimestamp: '2025-01-01T01:00:00Z' });
});

t.test('restore keeps at most capacity, the newest', async (t) => {
  const before = recorder();
  for (const reason of ['A', 'B', 'C', 'D']) before.events.record(WEB, 'Normal', reason, reason);
  const { events } = recorder({ capacity: 2 });
  events.restore(before.events.list());
  t.strictSame(events.list().map((event) => event.reason), ['C', 'D']);
});

// The sequence behind event names goes on after the restored events, so a new event of a restored
// pod never takes a restored one's name. (Found failing; fixed in 95f90a2.)
t.test('events recorded after restore have names of their own', async (t) => {
  const before = recorder();
  before.events.record(WEB, 'Normal', 'Started', 'Started container app', APP);
  before.events.record(WEB, 'Normal', 'Killing', 'Stopping container app', APP);
  const { events } = recorder();
  events.restore(before.events.list());
  events.record(WEB, 'Warning', 'BackOff', 'back-off', APP);
  const names = events.list().map((event) => event.name);
  t.equal(new Set(names).size, names.length, `no two events share a name: ${names.join(', ')}`);
});
