// What the worst files the manifest limits let through cost to read, parse and validate: each
// generated file is loaded once in a fresh Node process (the built dist/), which reports the
// wall time of the load and its peak RSS against its RSS before the load. The bound to hold:
// under 2 s and under 200 MB for any file (see src/manifest/parse.ts and load-file.ts).
// Usage: node bench/hostile-files.mjs [--out bench/results/hostile-files.json]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const MIB = 1024 * 1024;
const pod = (name, extra = '') => `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${name}\n${extra}spec:\n  containers:\n  - name: c\n    image: localhost/busybox:podvisor\n`;

/** Each case: a name and the file's text, as close to a limit as it gets (1 MiB, 20,000 nodes, 1,000 documents, depth 64). */
const cases = [
  ['annotations at the node limit', pod('keys', '  annotations:\n' + Array.from({ length: 9_990 }, (_, i) => `    k${i}: v\n`).join(''))],
  ['one flow list at the node limit', pod('flow', `  labels: {a: [${'1,'.repeat(19_980)}1]}\n`)],
  ['1,000 valid pods in one file', Array.from({ length: 1000 }, (_, i) => pod(`p${i}`)).join('---\n')],
  ['1,000 documents of unknown fields', Array.from({ length: 1000 }, (_, i) => pod(`u${i}`, Array.from({ length: 2 }, (_, j) => `  x${j}: 1\n`).join(''))).join('---\n')],
  ['900 containers', `apiVersion: v1\nkind: Pod\nmetadata: {name: many}\nspec:\n  containers:\n${Array.from({ length: 900 }, (_, i) => `  - {name: c${i}, image: "localhost/busybox:podvisor", env: [{name: A, value: "1"}]}\n`).join('')}`],
  ['nesting at the depth limit', `a: ${'['.repeat(63)}${']'.repeat(63)}\n`],
  ['long values (1 MiB of digits in a quantity)', pod('q').replace('image: localhost/busybox:podvisor', `image: ${'a'.repeat(400_000)}\n    resources: {limits: {cpu: "${'1'.repeat(600_000)}x"}}`)],
  ['alias bomb', `a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n`],
  ['one byte over the size limit', 'a: ' + 'x'.repeat(MIB) + '\n'],
];

const child = `
const { loadManifestFile } = await import(${JSON.stringify(join(root, 'dist/index.js'))});
globalThis.gc?.();
const before = process.memoryUsage().rss;
const started = performance.now();
const result = await loadManifestFile(process.argv[1], { nodeName: 'bench' });
const ms = performance.now() - started;
process.stdout.write(JSON.stringify({ ms, beforeMb: before / 1e6, peakMb: process.resourceUsage().maxRSS / 1024, pods: result.pods.length, findings: result.findings.length, first: result.findings[0]?.message.slice(0, 90) }));
`;

// The agent's own Node flags (its shebang's): a small young generation makes parsing slower.
const shebang = readFileSync(join(root, 'dist/cli.js'), 'utf8').split('\n')[0] ?? '';
const nodeFlags = shebang.split(/\s+/).filter((word) => word.startsWith('--'));

const dir = mkdtempSync(join(tmpdir(), 'podvisor-hostile-'));
try {
  const files = cases.map(([name, text], index) => {
    const path = join(dir, `case${index}.yaml`);
    writeFileSync(path, text);
    return { name, path, bytes: Buffer.byteLength(text) };
  });
  spawnSync('mkfifo', [join(dir, 'fifo.yaml')]); // Node has no mkfifo
  symlinkSync('/dev/zero', join(dir, 'zero.yaml'));
  files.push({ name: 'a FIFO', path: join(dir, 'fifo.yaml'), bytes: 0 }, { name: 'a symlink to /dev/zero', path: join(dir, 'zero.yaml'), bytes: 0 });
  const rows = [];
  for (const file of files) {
    const run = spawnSync(process.execPath, [...nodeFlags, '--input-type=module', '-e', child, file.path], { encoding: 'utf8', timeout: 60_000 });
    const out = run.status === 0 ? JSON.parse(run.stdout) : { error: (run.stderr || String(run.error)).slice(0, 200) };
    rows.push({ case: file.name, bytes: file.bytes, ...out });
  }
  console.log(`load ${loadavg().map((x) => x.toFixed(2)).join(' ')}, node ${process.version} ${nodeFlags.join(' ')}`);
  console.log('| case | bytes | load ms | RSS before (MB) | peak RSS (MB) | pods | findings | first finding |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const row of rows) console.log(`| ${row.case} | ${row.bytes} | ${row.ms?.toFixed(0) ?? '-'} | ${row.beforeMb?.toFixed(0) ?? '-'} | ${row.peakMb?.toFixed(0) ?? '-'} | ${row.pods ?? '-'} | ${row.findings ?? '-'} | ${row.first ?? row.error ?? ''} |`);
  const outAt = process.argv.indexOf('--out');
  if (outAt > 0) writeFileSync(process.argv[outAt + 1], JSON.stringify({ at: new Date().toISOString(), load: loadavg(), nodeFlags, rows }, null, 2) + '\n');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
