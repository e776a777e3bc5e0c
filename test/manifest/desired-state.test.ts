// The pure merge from per-file results to the pods this node should run: keep-last-good per
// file, removal when a file goes, and lexical order between files that ask for the same pod.
import t from 'tap';
import { mergeFiles, type LastGood } from '../../src/manifest/desired-state.js';
import { validateManifestText, type FileResult } from '../../src/manifest/load-file.js';

/** A file result from real manifest text, as the directory source would produce it. */
function file(path: string, text: string): FileResult {
  return { ...validateManifestText(text, path, { nodeName: 'node1' }), mtimeMs: 1, size: text.length };
}

/** A manifest document for pod `name` running `image` (an empty image makes it invalid). */
function pod(name: string, image: string): string {
  return `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${name}\nspec:\n  containers:\n    - name: app\n      image: "${image}"\n`;
}

const docs = (...documents: string[]) => documents.join('---\n');

/** Runs merges in sequence, carrying lastGood, and returns every state. */
function mergeSequence(...rounds: FileResult[][]) {
  let lastGood: LastGood = new Map();
  return rounds.map((files) => {
    const merged = mergeFiles(files, lastGood);
    lastGood = merged.lastGood;
    return merged;
  });
}

const images = (state: { pods: Map<string, { pod: { spec: { containers: { image: string }[] } } }> }) =>
  Object.fromEntries([...state.pods].map(([key, desired]) => [key, desired.pod.spec.containers[0]?.image]));

t.test('valid files become pods, keyed namespace/name-node', async (t) => {
  const { state } = mergeFiles([file('/m/a.yaml', pod('a', 'nginx:1')), file('/m/b.yaml', pod('b', 'redis:7'))], new Map());
  t.same(images(state), { 'default/a-node1': 'nginx:1', 'default/b-node1': 'redis:7' });
  t.same([...state.erroredSources], []);
  t.same(state.conflicts, []);
  t.equal(state.pods.get('default/a-node1')?.source, '/m/a.yaml');
});

t.test('a file turned invalid keeps its last good pods', async (t) => {
  const [first, second, third] = mergeSequence(
    [file('/m/a.yaml', pod('a', 'nginx:1'))],
    [file('/m/a.yaml', pod('a', ''))],
    [file('/m/a.yaml', pod('a', 'nginx:2'))],
  );
  t.same(images(first!.state), { 'default/a-node1': 'nginx:1' });
  t.same(images(second!.state), { 'default/a-node1': 'nginx:1' }, 'the typo does not kill the pod');
  t.same([...second!.state.erroredSources], ['/m/a.yaml']);
  t.same(images(third!.state), { 'default/a-node1': 'nginx:2' }, 'the fix is picked up');
  t.same([...third!.state.erroredSources], []);
});

t.test('a file invalid from the start has no pods, and is reported', async (t) => {
  const { state } = mergeFiles([file('/m/a.yaml', pod('a', ''))], new Map());
  t.same(images(state), {});
  t.same([...state.erroredSources], ['/m/a.yaml']);
});

t.test('a file absent from the input drops its pods', async (t) => {
  const [, second, third] = mergeSequence(
    [file('/m/a.yaml', pod('a', 'nginx:1')), file('/m/b.yaml', pod('b', 'redis:7'))],
    [file('/m/b.yaml', pod('b', 'redis:7'))],
    [file('/m/a.yaml', pod('a', ''))],
  );
  t.same(images(second!.state), { 'default/b-node1': 'redis:7' });
  t.same([...second!.lastGood.keys()], ['/m/b.yaml'], 'nothing remembered of a deleted file');
  t.same(images(third!.state), {}, 'a deleted file that comes back invalid does not revive its old pods');
});

t.test('a valid file that no longer lists a pod drops it', async (t) => {
  const [, second] = mergeSequence(
    [file('/m/a.yaml', docs(pod('a', 'nginx:1'), pod('b', 'redis:7')))],
    [file('/m/a.yaml', pod('a', 'nginx:1'))],
  );
  t.same(images(second!.state), { 'default/a-node1': 'nginx:1' });
});

t.test('two files with the same pod: the lexically first path wins, whatever the order', async (t) => {
  const z = file('/m/z.yaml', pod('web', 'nginx:z'));
  const a = file('/m/a.yaml', pod('web', 'nginx:a'));
  const m = file('/m/m.yaml', pod('web', 'nginx:m'));
  const orders = [[a, m, z], [z, m, a], [m, z, a], [z, a, m]];
  for (const order of orders) {
    const { state } = mergeFiles(order, new Map());
    const label = order.map((f) => f.path).join(',');
    t.same(images(state), { 'default/web-node1': 'nginx:a' }, label);
    t.equal(state.pods.get('default/web-node1')?.source, '/m/a.yaml', label);
    t.same(state.conflicts, [
      { key: 'default/web-node1', winner: '/m/a.yaml', loser: '/m/m.yaml' },
      { key: 'default/web-node1', winner: '/m/a.yaml', loser: '/m/z.yaml' },
    ], label);
  }
  // Lexical, not natural, order: "10" sorts before "9".
  const { state } = mergeFiles([file('/m/9-web.yaml', pod('web', 'nginx:9')), file('/m/10-web.yaml', pod('web', 'nginx:10'))], new Map());
  t.same(images(state), { 'default/web-node1': 'nginx:10' });
});

t.test('a conflict losing file still has its other pods', async (t) => {
  const { state } = mergeFiles([
    file('/m/b.yaml', docs(pod('web', 'nginx:b'), pod('cache', 'redis:7'))),
    file('/m/a.yaml', pod('web', 'nginx:a')),
  ], new Map());
  t.same(images(state), { 'default/web-node1': 'nginx:a', 'default/cache-node1': 'redis:7' });
  t.same(state.conflicts, [{ key: 'default/web-node1', winner: '/m/a.yaml', loser: '/m/b.yaml' }]);
});

t.test('a partially invalid file updates its valid pods and keeps the rest', async (t) => {
  const [, second] = mergeSequence(
    [file('/m/a.yaml', docs(pod('web', 'nginx:1'), pod('cache', 'redis:7')))],
    [file('/m/a.yaml', docs(pod('web', 'nginx:2'), pod('cache', '')))],
  );
  t.same(images(second!.state), { 'default/web-node1': 'nginx:2', 'default/cache-node1': 'redis:7' });
  t.same([...second!.state.erroredSources], ['/m/a.yaml']);
  t.same(Object.fromEntries([...(second!.lastGood.get('/m/a.yaml') ?? new Map())].map(([key, desired]) => [key, desired.pod.spec.containers[0]?.image])), {
    'default/web-node1': 'nginx:2',
    'default/cache-node1': 'redis:7',
  }, 'what is kept is remembered for the next merge');
});

t.test('mergeFiles does not change the lastGood it is given', async (t) => {
  const [first] = mergeSequence([file('/m/a.yaml', pod('a', 'nginx:1'))]);
  const before = [...first!.lastGood.get('/m/a.yaml')!.keys()];
  mergeFiles([file('/m/a.yaml', pod('b', ''))], first!.lastGood);
  t.same([...first!.lastGood.get('/m/a.yaml')!.keys()], before);
});
