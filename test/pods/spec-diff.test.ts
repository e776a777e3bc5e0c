// The field diff `podvisor plan` shows for a replace: paths as an operator reads them (list items
// by name), old and new values, env values left out unless asked for, and nothing for what
// podvisor itself adds to a pod (uid, config.* annotations) or for a default spelt out.
import t from 'tap';
import { toDesiredPod } from '../../src/manifest/identity.js';
import type { PodManifest, PodSpec } from '../../src/manifest/pod-schema.js';
import { diffValues, formatChange, formatValue, specChanges, type FieldChange } from '../../src/pods/spec-diff.js';

const IMAGE = 'localhost/busybox:1';

/** A defaulted pod as the planner sees it: `web` with one `app` container unless told otherwise. */
function pod(spec: Partial<PodSpec> = {}, metadata: Partial<PodManifest['metadata']> = {}, seen = new Date('2026-01-01T00:00:00Z')): PodManifest {
  const manifest: PodManifest = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web', ...metadata }, spec: { containers: [{ name: 'app', image: IMAGE }], ...spec } };
  return toDesiredPod(manifest, '/etc/pods.d/web.yaml', 'node1', seen).pod;
}

const lines = (changes: FieldChange[]) => changes.map(formatChange);
const shown = { showEnvValues: true };
const hidden = { showEnvValues: false };

t.test('an image change is one line, the container named', async (t) => {
  const before = pod();
  const after = pod({ containers: [{ name: 'app', image: 'localhost/busybox:2' }] });
  t.same(lines(specChanges(before, after, hidden)), ['spec.containers[app].image: localhost/busybox:1 -> localhost/busybox:2']);
  t.same(specChanges(before, after, hidden), [{ path: 'spec.containers[app].image', from: IMAGE, to: 'localhost/busybox:2' }], 'the values as they are, for JSON');
});

t.test('the same content read again, at another time: no change (uid, config.* annotations left out)', async (t) => {
  const before = pod({}, {}, new Date('2026-01-01T00:00:00Z'));
  const after = pod({}, {}, new Date('2026-06-01T00:00:00Z'));
  t.not(before.metadata.annotations?.['kubernetes.io/config.seen'], after.metadata.annotations?.['kubernetes.io/config.seen'], 'the seen annotation differs');
  t.same(specChanges(before, after, hidden), []);
  // The uid follows the hash: a real change changes it, and it is still not listed.
  const changed = pod({ hostNetwork: true });
  t.not(changed.metadata.uid, before.metadata.uid);
  t.same(lines(specChanges(before, changed, hidden)), ['spec.hostNetwork: (none) -> true']);
});

t.test('a default spelt out is no change; a value other than the default is', async (t) => {
  t.same(specChanges(pod(), pod({ restartPolicy: 'Always' }), hidden), [], 'restartPolicy Always is the default');
  t.same(lines(specChanges(pod(), pod({ restartPolicy: 'Never' }), hidden)), ['spec.restartPolicy: Always -> Never']);
});

t.test('env: values redacted unless asked for, names and the fact of a change shown', async (t) => {
  const withEnv = (value: string, extra: { name: string; value?: string }[] = []) =>
    pod({ containers: [{ name: 'app', image: IMAGE, env: [{ name: 'GREETING', value }, ...extra] }] });
  t.same(lines(specChanges(withEnv('hello'), withEnv('bye'), hidden)), ['spec.containers[app].env[GREETING].value: (redacted) -> (redacted)']);
  t.same(lines(specChanges(withEnv('hello'), withEnv('bye'), shown)), ['spec.containers[app].env[GREETING].value: hello -> bye']);
  const added = specChanges(withEnv('hello'), withEnv('hello', [{ name: 'TOKEN', value: 's3cret' }]), hidden);
  t.same(added, [{ path: 'spec.containers[app].env[TOKEN]', to: { name: 'TOKEN', value: '(redacted)' } }], 'an added variable is one change, its value left out');
  t.notMatch(JSON.stringify(added), /s3cret/);
  // A whole container added carries its env: left out there too.
  const sidecar = pod({ containers: [{ name: 'app', image: IMAGE }, { name: 'side', image: IMAGE, env: [{ name: 'PASSWORD', value: 'hunter2' }] }] });
  const whole = specChanges(pod(), sidecar, hidden);
  t.same(whole.map((one) => one.path), ['spec.containers[side]'], 'an added container is one change');
  t.notMatch(JSON.stringify(whole), /hunter2/, 'its env value is not shown');
  t.match(JSON.stringify(specChanges(pod(), sidecar, shown)), /hunter2/, 'shown when asked for');
});

t.test('list items are matched by name: an insert changes no later item; a reorder says so', async (t) => {
  const two = pod({ containers: [{ name: 'a', image: IMAGE }, { name: 'b', image: IMAGE }] });
  const three = pod({ containers: [{ name: 'new', image: IMAGE }, { name: 'a', image: IMAGE }, { name: 'b', image: IMAGE }] });
  const paths = specChanges(two, three, hidden).map((one) => one.path);
  t.ok(paths.includes('spec.containers[new]'), 'the new container');
  t.notOk(paths.some((path) => path.startsWith('spec.containers[a]') || path.startsWith('spec.containers[b]')), 'a and b unchanged');
  const swapped = pod({ containers: [{ name: 'b', image: IMAGE }, { name: 'a', image: IMAGE }] });
  t.same(lines(specChanges(two, swapped, hidden)), ['spec.containers[*].name: ["a","b"] -> ["b","a"]'], 'order matters to podvisor (start order): shown');
  t.same(lines(specChanges(two, pod({ containers: [{ name: 'a', image: IMAGE }] }), hidden)).length, 1);
  t.match(lines(specChanges(two, pod({ containers: [{ name: 'a', image: IMAGE }] }), hidden))[0], /^spec\.containers\[b\]: \{"name":"b","image":"localhost\/busybox:1".*\.\.\. -> \(none\)$/, 'the whole item, cut short in text');
});

t.test('maps by key: an added limit is its own field; keys that are not identifiers in brackets', async (t) => {
  const limited = pod({ containers: [{ name: 'app', image: IMAGE, resources: { limits: { memory: '64Mi' } } }] });
  t.same(lines(specChanges(pod(), limited, hidden)).filter((line) => line.includes('limits')), ['spec.containers[app].resources.limits.memory: (none) -> 64Mi']);
  const labelled = pod({}, { labels: { 'app.kubernetes.io/name': 'web' } });
  t.same(lines(specChanges(pod(), labelled, hidden)), ['metadata.labels[app.kubernetes.io/name]: (none) -> web']);
});

t.test('lists of plain values (command, args) are one value; items without names by position', async (t) => {
  const cmd = (command: string[]) => pod({ containers: [{ name: 'app', image: IMAGE, command }] });
  t.same(lines(specChanges(cmd(['sleep', '1']), cmd(['sleep', '2']), hidden)), ['spec.containers[app].command: ["sleep","1"] -> ["sleep","2"]']);
  t.same(diffValues({ ports: [{ containerPort: 80 }, { containerPort: 81 }] }, { ports: [{ containerPort: 80 }, { containerPort: 82 }] }), [{ path: 'ports[1].containerPort', from: 81, to: 82 }]);
  t.same(diffValues({ a: 1 }, { a: '1' }), [{ path: 'a', from: 1, to: '1' }], 'a change of type is a change');
  t.same(diffValues({ a: [1] }, { a: { b: 1 } }), [{ path: 'a', from: [1], to: { b: 1 } }], 'a list become a map: one change');
});

t.test('values as a line shows them: unambiguous, bounded, no control characters', async (t) => {
  const rows: [unknown, string][] = [
    ['busybox:1', 'busybox:1'],
    ['', '""'],
    [' padded', '" padded"'],
    ['1', '"1"'],
    ['true', '"true"'],
    ['(none)', '"(none)"'],
    ['a -> b', '"a -> b"'],
    [1, '1'],
    [false, 'false'],
    [null, 'null'],
    ['line\nbreak', 'line\\nbreak'],
    ['x'.repeat(200), `${'x'.repeat(77)}...`],
  ];
  for (const [value, text] of rows) t.equal(formatValue(value), text, JSON.stringify(value));
  t.equal(formatValue(undefined), '(none)', 'absent');
  t.equal(formatChange({ path: 'spec.x' }), 'spec.x: (none) -> (none)');
});
