// Files from careless or hostile hands: each is refused with a finding that names the file, the
// line and the limit, or read, and none throws out of the loader or blocks it. What they cost is
// measured in bench/hostile-files.mjs, not here.
import { execFileSync } from 'node:child_process';
import { symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { loadManifestFile, validateManifestText } from '../../src/manifest/load-file.js';
import { parseManifestText, YAML_LIMITS } from '../../src/manifest/parse.js';
import { formatFinding } from '../../src/manifest/validate.js';

const POD = 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: c\n    image: nginx:1.25\n';

/** The formatted findings of a text, as `podvisor validate` prints them. */
const findings = (text: string) => validateManifestText(text, 'x.yaml', { nodeName: 'n1' }).findings.map(formatFinding);

t.test('an alias bomb is refused when its values are made', async (t) => {
  const bomb = `${POD}  annotations:\n` // wrong place on purpose: the bomb must be caught before validation
    + 'x:\n  a: &a [l,l,l,l,l,l,l,l,l]\n  b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n  c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n  d: [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n';
  t.match(findings(bomb), [/^x\.yaml:\d+:\d+: YAML: aliases expand to more than the limit \(maxAliasCount 100\)$/]);
});

t.test('an unresolved alias is a finding of its file', async (t) => {
  t.match(findings('a: *nowhere\n'), [/^x\.yaml:1:1: YAML: Unresolved alias/]);
});

t.test('more nodes than the limit are refused at the node that breaks it', async (t) => {
  const text = `a: [${'1,'.repeat(YAML_LIMITS.maxNodes)}1]\n`;
  t.same(findings(text), [`x.yaml:1:${5 + 2 * (YAML_LIMITS.maxNodes - 2)}: YAML: more than ${YAML_LIMITS.maxNodes} YAML nodes in one file (the limit)`]);
});

t.test('more documents than the limit are refused', async (t) => {
  const text = Array.from({ length: YAML_LIMITS.maxDocuments + 1 }, () => 'a: 1\n').join('---\n');
  t.match(findings(text), [new RegExp(`^x\\.yaml:${2 * YAML_LIMITS.maxDocuments}:1: YAML: more than ${YAML_LIMITS.maxDocuments} documents in one file`)]);
  // A leading --- opens the first document; it is not counted as a second one.
  const exact = Array.from({ length: YAML_LIMITS.maxDocuments }, () => '---\nb: 1\n').join('');
  t.equal(parseManifestText(exact).length, YAML_LIMITS.maxDocuments);
});

t.test('nesting deeper than the limit is refused, in flow and in block style', async (t) => {
  const depth = YAML_LIMITS.maxDepth + 1;
  t.match(findings(`a: ${'['.repeat(depth)}${']'.repeat(depth)}\n`), [/collections nested more than 64 deep \(the limit\)/]);
  const block = Array.from({ length: depth + 1 }, (_, level) => `${' '.repeat(level)}k:\n`).join('');
  t.match(findings(block), [/collections nested more than 64 deep \(the limit\)/]);
});

t.test('duplicate keys are still an error, at the second key', async (t) => {
  t.same(findings(`${POD}metadata:\n  name: other\n`), ['x.yaml:9:1: YAML: Map keys must be unique']);
});

t.test('thousands of problems in one file are capped, with a count of the rest', async (t) => {
  const text = `${POD}${Array.from({ length: 500 }, (_, i) => `x${i}: 1\n`).join('')}`;
  const lines = findings(text);
  t.equal(lines.length, 101);
  t.match(lines.at(-1), /and 400 more finding\(s\) in this file$/);
});

t.test('a long run of digits in a quantity is refused (no backtracking regular expression)', async (t) => {
  const text = POD.replace('image: nginx:1.25', `image: nginx:1.25\n    resources: {limits: {cpu: "${'1'.repeat(80_000)}x"}}`);
  t.match(findings(text), [/resources\.limits\.cpu: must be a Kubernetes quantity/]);
});

t.test('control characters from the input are escaped in findings', async (t) => {
  const text = POD.replace('image: nginx:1.25', 'image: "nginx\\n\\e[31m\\u202e"');
  for (const line of findings(text)) {
    t.notMatch(line, /[\u0000-\u001f\u007f-\u009f]/, 'no raw control character');
  }
  t.match(findings(text).join('\n'), /"nginx\\n\\x1b\[31m\\u202e" is not a valid image reference/);
  const file = validateManifestText(text, 'a\nforged line.yaml', { nodeName: 'n1' }).findings.map(formatFinding);
  t.match(file[0], /^a\\nforged line\.yaml:/);
});

t.test('a FIFO, a device, a symlink loop and a directory are findings, read without blocking', async (t) => {
  const dir = t.testdir({ 'dir.yaml': {} });
  execFileSync('mkfifo', [join(dir, 'pipe.yaml')]);
  await symlink('/dev/zero', join(dir, 'zero.yaml'));
  await symlink('loop.yaml', join(dir, 'loop.yaml'));
  const load = async (name: string) => (await loadManifestFile(join(dir, name), { nodeName: 'n1', displayName: name }));
  t.match((await load('pipe.yaml')).findings.map(formatFinding), ['pipe.yaml:1:1: not a regular file (a FIFO): only regular files are read as manifests']);
  t.match((await load('zero.yaml')).findings.map(formatFinding), ['zero.yaml:1:1: not a regular file (a device): only regular files are read as manifests']);
  t.match((await load('dir.yaml')).findings.map(formatFinding), ['dir.yaml:1:1: not a regular file (a directory): only regular files are read as manifests']);
  const loop = await load('loop.yaml');
  t.equal(loop.readError, 'ELOOP');
  t.match(loop.findings.map(formatFinding), [/^loop\.yaml:1:1: cannot read: ELOOP/]);
  const gone = await load('missing.yaml');
  t.equal(gone.readError, 'ENOENT');
});

t.test('a file that grows past the limit between stat and read is refused', async (t) => {
  // Stands in for a file written while read: the loader reads at most the limit and one byte.
  const dir = t.testdir({});
  const path = join(dir, 'big.yaml');
  await writeFile(path, `a: ${'x'.repeat(1024 * 1024)}\n`);
  const result = await loadManifestFile(path, { nodeName: 'n1', displayName: 'big.yaml' });
  t.match(result.findings.map(formatFinding), [/over the 1048576-byte limit/]);
});
