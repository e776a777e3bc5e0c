// The rollout outcome of each pod as a table: what the guard remembers, what is held and which
// files have errors, in; the outcome word, hashes, reason and since, out. And the /rollout report
// read back from mirror pods carrying those outcomes.
import t from 'tap';
import { outcomeOf, rolloutReport } from '../../src/api/rollout-report.js';
import type { RolloutRecord } from '../../src/rollout/rollout-guard.js';
import { FirstSeen, INVALID_MANIFESTS_ANNOTATION, invalidManifests, isSettled, parseInvalidManifests, rolloutOutcomes, type OutcomeInput } from '../../src/rollout/rollout-outcome.js';
import { rolloutAnnotations, rolloutCondition, type RolloutMark } from '../../src/status/manifest-problem.js';

const POD = { key: 'default/web-n1', source: '/etc/pods.d/web.yaml', hash: 'new' };
const SEEN = '2024-05-01T09:00:00Z';
const input = (over: Partial<OutcomeInput>): OutcomeInput => ({
  wanted: [POD],
  running: new Map([[POD.key, { hash: 'new' }]]),
  records: new Map(),
  held: new Map(),
  invalidFiles: new Map(),
  seenSince: () => SEEN,
  ...over,
});
const readyOld: RolloutRecord['ready'] = { hash: 'old', pod: {} as never, at: '2024-05-01T08:00:00Z' };

const cases: { name: string; input: OutcomeInput; want: Record<string, unknown> }[] = [
  {
    name: 'a new pod not yet Ready: Applying since first seen',
    input: input({}),
    want: { outcome: 'Applying', reason: 'Applying', wantedHash: 'new', runningHash: 'new', since: SEEN, message: 'spec new not yet Ready' },
  },
  {
    name: 'a replace on trial: Applying since the trial began',
    input: input({ records: new Map([[POD.key, { ready: readyOld, trial: { hash: 'new', since: '2024-05-01T10:00:00Z' } }]]) }),
    want: { outcome: 'Applying', since: '2024-05-01T10:00:00Z', message: 'spec new replacing old, not yet proven Ready' },
  },
  {
    name: 'the file\'s spec is the last proven Ready: Ready since then',
    input: input({ records: new Map([[POD.key, { ready: { hash: 'new', pod: {} as never, at: '2024-05-01T10:01:00Z' } }]]) }),
    want: { outcome: 'Ready', reason: 'Ready', wantedHash: 'new', since: '2024-05-01T10:01:00Z' },
  },
  {
    name: 'rolled back: the failed hash, its reason and message, running the last Ready',
    input: input({
      running: new Map([[POD.key, { hash: 'old' }]]),
      records: new Map([[POD.key, { ready: readyOld, failed: { hash: 'new', reason: 'CrashLoopBackOff', message: 'container app is in CrashLoopBackOff 12 s after the replace', at: '2024-05-01T10:02:00Z' } }]]),
    }),
    want: { outcome: 'RolledBack', reason: 'CrashLoopBackOff', wantedHash: 'new', runningHash: 'old', since: '2024-05-01T10:02:00Z', message: 'spec new container app is in CrashLoopBackOff 12 s after the replace: rolled back to old' },
  },
  {
    name: 'a failure of an older spec does not make a newer one RolledBack',
    input: input({ records: new Map([[POD.key, { ready: readyOld, failed: { hash: 'older', reason: 'NotReady', message: 'x', at: SEEN } }]]) }),
    want: { outcome: 'Applying' },
  },
  {
    name: 'a held replace: by what, running the old spec',
    input: input({ running: new Map([[POD.key, { hash: 'old' }]]), records: new Map([[POD.key, { ready: readyOld }]]), held: new Map([[POD.key, { by: 'the update lock /run/podvisor/locks/default_web', wantedHash: 'new', since: '2024-05-01T10:03:00Z' }]]) }),
    want: { outcome: 'Held', reason: 'ReplaceHeld', wantedHash: 'new', runningHash: 'old', message: 'replace by spec new held by the update lock /run/podvisor/locks/default_web', since: '2024-05-01T10:03:00Z' },
  },
  {
    name: 'a file with errors wins over all: Invalid, no wanted hash, the first error',
    input: input({
      records: new Map([[POD.key, { ready: readyOld }]]),
      held: new Map([[POD.key, { by: 'x', wantedHash: 'new', since: SEEN }]]),
      invalidFiles: new Map([[POD.source, { message: 'web.yaml:3:5: spec.containers: Required', since: '2024-05-01T10:04:00Z' }]]),
    }),
    want: { outcome: 'Invalid', reason: 'ManifestInvalid', message: 'web.yaml:3:5: spec.containers: Required; running the last good spec', since: '2024-05-01T10:04:00Z' },
  },
];

t.test('rolloutOutcomes, case by case', async (t) => {
  for (const { name, input: given, want } of cases) {
    const [outcome] = rolloutOutcomes(given);
    t.match(outcome, { namespace: 'default', name: 'web-n1', source: POD.source, ...want }, name);
    if (want['outcome'] === 'Invalid') t.notOk(outcome && 'wantedHash' in outcome, `${name}: no wanted hash`);
  }
});

t.test('sorted by key; settled only when nothing is Applying or Held', async (t) => {
  const outcomes = rolloutOutcomes(input({ wanted: [{ ...POD, key: 'kube/b' }, { ...POD, key: 'default/z' }, { ...POD, key: 'default/a' }] }));
  t.same(outcomes.map((one) => `${one.namespace}/${one.name}`), ['default/a', 'default/z', 'kube/b']);
  t.equal(isSettled([]), true, 'no pods: settled');
  t.equal(isSettled([{ outcome: 'Ready' }, { outcome: 'RolledBack' }, { outcome: 'Invalid' }]), true, 'terminal outcomes are settled');
  t.equal(isSettled([{ outcome: 'Ready' }, { outcome: 'Applying' }]), false);
  t.equal(isSettled([{ outcome: 'Held' }]), false);
});

t.test('FirstSeen keeps a hash\'s time until the hash changes, and forgets pods gone', async (t) => {
  let now = new Date('2024-05-01T10:00:00.123Z');
  const seen = new FirstSeen(() => now);
  t.equal(seen.since('a', 'h1'), '2024-05-01T10:00:00Z');
  now = new Date('2024-05-01T11:00:00Z');
  t.equal(seen.since('a', 'h1'), '2024-05-01T10:00:00Z', 'unchanged');
  t.equal(seen.since('a', 'h2'), '2024-05-01T11:00:00Z', 'a new hash');
  seen.keep(new Set());
  now = new Date('2024-05-01T12:00:00Z');
  t.equal(seen.since('a', 'h2'), '2024-05-01T12:00:00Z', 'forgotten, seen afresh');
});

t.test('the condition: True/Ready once proven, False/Applying before, none for problems', async (t) => {
  t.match(rolloutCondition({ outcome: 'Ready', source: 's', reason: 'Ready', message: 'm', since: SEEN }), { type: 'podvisor.io/ManifestApplied', status: 'True', reason: 'Ready', lastTransitionTime: SEEN });
  t.match(rolloutCondition({ outcome: 'Applying', source: 's', reason: 'Applying', message: 'm', since: SEEN }), { status: 'False', reason: 'Applying' });
  t.equal(rolloutCondition({ outcome: 'RolledBack', source: 's', reason: 'NotReady', message: 'm', since: SEEN }), undefined, 'a problem brings its own condition');
});

t.test('the /rollout report reads the outcomes back from mirror pods', async (t) => {
  const mirror = (name: string, mark?: RolloutMark) => ({ metadata: { name, namespace: 'default', annotations: { 'kubernetes.io/config.hash': 'run', ...(mark ? rolloutAnnotations(mark) : {}) } } });
  const mark = (outcome: string, reason: string, wantedHash?: string): RolloutMark => ({ outcome, source: `/etc/pods.d/${outcome}.yaml`, reason, message: `${outcome} message`, since: SEEN, ...(wantedHash ? { wantedHash } : {}) });
  const pods = [
    mirror('a', mark('Ready', 'Ready', 'run')),
    mirror('b', mark('RolledBack', 'CrashLoopBackOff', 'bad')),
    mirror('c', mark('Invalid', 'ManifestInvalid')),
    mirror('d'),
    mirror('e', mark('Bogus', 'x')),
  ];
  const report = rolloutReport(pods, 'n1', '42');
  t.match(report, { kind: 'RolloutReport', apiVersion: 'podvisor.io/v1', node: 'n1', metadata: { resourceVersion: '42' }, settled: true });
  t.same(report.pods.map((one) => [one.name, one.outcome, one.reason]), [['a', 'Ready', 'Ready'], ['b', 'RolledBack', 'CrashLoopBackOff'], ['c', 'Invalid', 'ManifestInvalid']], 'pods without a known outcome are left out');
  t.same(report.pods[1], { namespace: 'default', name: 'b', source: '/etc/pods.d/RolledBack.yaml', wantedHash: 'bad', runningHash: 'run', outcome: 'RolledBack', reason: 'CrashLoopBackOff', message: 'RolledBack message', since: SEEN });
  t.notOk('wantedHash' in (report.pods[2] ?? {}), 'an invalid file has no wanted hash');
  t.equal(rolloutReport([mirror('f', mark('Applying', 'Applying', 'x'))], 'n1', '1').settled, false, 'Applying: not settled');
  const broken = { metadata: { name: 'g', annotations: { 'podvisor.io/rollout': 'Held', 'podvisor.io/rollout-detail': '{not json' } } };
  t.match(outcomeOf(broken), { namespace: 'default', outcome: 'Held', reason: 'Held', message: '', source: '' }, 'a broken detail annotation: the word alone');
});

t.test('a file with errors that no pod runs from has its own Invalid entry; the node is not settled', async (t) => {
  const bad = { message: '/etc/pods.d/new.yaml:4:7: spec.containers[0].image: Required value', since: SEEN };
  const files = new Map([['/etc/pods.d/new.yaml', bad], [POD.source, { message: 'web.yaml:1:1: x', since: SEEN }]]);
  const invalid = invalidManifests(files, [POD]);
  t.same(invalid, [{ source: '/etc/pods.d/new.yaml', outcome: 'Invalid', reason: 'ManifestInvalid', message: bad.message, since: SEEN }], 'the new file, with its first error; a file whose pods run is their outcome, not an entry');
  t.same(invalidManifests(new Map([['/b.yaml', bad], ['/a.yaml', bad]]), []).map((one) => one.source), ['/a.yaml', '/b.yaml'], 'sorted by file');
  t.equal(isSettled([{ outcome: 'Ready' }], invalid), false, 'a bad new file: not settled');
  t.equal(isSettled([{ outcome: 'Ready' }], []), true);
  t.same(parseInvalidManifests(JSON.stringify(invalid)), invalid, 'read back from the node annotation');
  t.same(parseInvalidManifests('{not json'), [], 'a broken annotation: none');
  t.same(parseInvalidManifests('[{"message":"no source"}, 3]'), [], 'entries without a file: left out');

  const node = { metadata: { annotations: { [INVALID_MANIFESTS_ANNOTATION]: JSON.stringify(invalid) } } };
  const report = rolloutReport([], 'n1', '7', node);
  t.equal(report.settled, false, '/rollout: not settled with no pod at all');
  t.same(report.invalid, invalid, '/rollout names the file and its first error');
  t.same(rolloutReport([], 'n1', '7', { metadata: { annotations: {} } }), { kind: 'RolloutReport', apiVersion: 'podvisor.io/v1', node: 'n1', metadata: { resourceVersion: '7' }, settled: true, pods: [], invalid: [] }, 'none: settled, an empty list');
});
