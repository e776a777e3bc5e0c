// Two pods asking for one host port cannot both run: as for two pods of one name, the first in
// lexical order of files (then document order) keeps it, and the other is not run, with a finding
// that names the winner's pod, file and line. An address of 0.0.0.0 (or none) is every address.
import t from 'tap';
import { mergeFiles } from '../../src/manifest/desired-state.js';
import { validateManifestText, type FileResult } from '../../src/manifest/load-file.js';
import { formatFinding } from '../../src/manifest/validate.js';

/** A pod publishing `port` (with `extra` lines in the port's entry). */
function pod(name: string, port: number, extra = ''): string {
  return `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${name}\nspec:\n  containers:\n  - name: c\n    image: nginx:1.25\n    ports:\n    - containerPort: 80\n      hostPort: ${port}\n${extra}`;
}

function file(path: string, text: string): FileResult {
  return { ...validateManifestText(text, path, { nodeName: 'n1' }), mtimeMs: 1, size: text.length };
}

t.test('two files: the lexically first keeps the port, whatever the order given', async (t) => {
  const a = file('/m/a.yaml', pod('a', 8080));
  const b = file('/m/b.yaml', pod('b', 8080));
  for (const order of [[a, b], [b, a]]) {
    const { state } = mergeFiles(order, new Map());
    t.same([...state.pods.keys()], ['default/a-n1']);
    t.same(state.conflicts.map((conflict) => [conflict.key, conflict.winner, conflict.loser, conflict.reason]), [['default/b-n1', '/m/a.yaml', '/m/b.yaml', 'hostPort']]);
    t.same(state.conflicts.map((conflict) => conflict.finding && formatFinding(conflict.finding)), [
      '/m/b.yaml:11:7: spec.containers[0].ports[0].hostPort: host port 8080/TCP is already asked for by pod default/a-n1 (/m/a.yaml:11:7); this pod is not run',
    ]);
  }
});

t.test('one file: the first document keeps the port, the second is an error at its port', async (t) => {
  const result = file('/m/a.yaml', `${pod('a', 8080)}---\n${pod('b', 8080)}`);
  t.same(result.pods.map((one) => one.key), ['default/a-n1']);
  t.same(result.findings.map(formatFinding), ['/m/a.yaml:23:7: spec.containers[0].ports[0].hostPort: host port 8080/TCP is already asked for by pod default/a-n1 (/m/a.yaml:11:7); this pod is not run']);
});

t.test('what counts as the same port', async (t) => {
  const rows: [string, string, string, boolean][] = [
    ['same port, same protocol', pod('a', 80), pod('b', 80), true],
    ['UDP beside TCP', pod('a', 53), pod('b', 53, '      protocol: UDP\n'), false],
    ['two UDP', pod('a', 53, '      protocol: UDP\n'), pod('b', 53, '      protocol: UDP\n'), true],
    ['two addresses', pod('a', 80, '      hostIP: 127.0.0.1\n'), pod('b', 80, '      hostIP: 10.0.0.1\n'), false],
    ['one address and every address', pod('a', 80, '      hostIP: 127.0.0.1\n'), pod('b', 80), true],
    ['0.0.0.0 and one address', pod('a', 80, '      hostIP: 0.0.0.0\n'), pod('b', 80, '      hostIP: 127.0.0.1\n'), true],
    ['different ports', pod('a', 80), pod('b', 81), false],
    ['a hostNetwork pod\'s containerPort', pod('a', 80).replace('spec:\n', 'spec:\n  hostNetwork: true\n').replace('      hostPort: 80\n', ''), pod('b', 80), true],
  ];
  for (const [name, first, second, conflict] of rows) {
    const { state } = mergeFiles([file('/m/1.yaml', first), file('/m/2.yaml', second)], new Map());
    t.equal(state.conflicts.length, conflict ? 1 : 0, name);
    t.equal(state.pods.size, conflict ? 1 : 2, `${name}: pods run`);
  }
});

t.test('a pod that lost on its name claims no port; a loser runs once the winner lets the port go', async (t) => {
  // z.yaml's web loses its name to a.yaml's web, so its port 9090 is not taken from m.yaml's pod.
  const { state } = mergeFiles([file('/m/a.yaml', pod('web', 8080)), file('/m/z.yaml', pod('web', 9090)), file('/m/m.yaml', pod('other', 9090))], new Map());
  t.same([...state.pods.keys()].sort(), ['default/other-n1', 'default/web-n1']);
  const first = mergeFiles([file('/m/a.yaml', pod('a', 8080)), file('/m/b.yaml', pod('b', 8080))], new Map());
  const second = mergeFiles([file('/m/a.yaml', pod('a', 8081)), file('/m/b.yaml', pod('b', 8080))], first.lastGood);
  t.same([...second.state.pods.keys()].sort(), ['default/a-n1', 'default/b-n1']);
  t.same(second.state.conflicts, []);
});

t.test('within one pod, every address overlaps any one address', async (t) => {
  const text = pod('a', 80, '      hostIP: 127.0.0.1\n    - containerPort: 81\n      hostPort: 80\n');
  t.match(validateManifestText(text, 'x.yaml', { nodeName: 'n1' }).findings.map(formatFinding), [/ports\[1\]\.hostPort: host port 80\/TCP is already published by spec\.containers\[0\]\.ports\[0\]$/]);
});

t.test('hostPort 0 is no host port, as the API server reads it', async (t) => {
  const result = validateManifestText(pod('a', 0), 'x.yaml', { nodeName: 'n1' });
  t.same(result.findings, []);
  t.equal(result.pods[0]?.pod.spec.containers[0]?.ports?.[0]?.hostPort, undefined);
  const { state } = mergeFiles([file('/m/1.yaml', pod('a', 0)), file('/m/2.yaml', pod('b', 0))], new Map());
  t.equal(state.pods.size, 2, 'two pods with hostPort 0 do not conflict');
  t.match(validateManifestText(pod('a', 65536), 'x.yaml', { nodeName: 'n1' }).findings.map(formatFinding), [/hostPort: (must be between 1 and 65535|Invalid input)/]);
});
