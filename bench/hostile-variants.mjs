// The hostile files of bench/hostile-files.mjs (the same generators, imported from nowhere: copied
// below, keep in step), loaded by several runtime + environment + flag variants alternately
// (case by case, variant by variant, REPS times), each load in a fresh process: wall time and CPU
// time (user + system, all threads) of loadManifestFile, and the process's peak RSS.
//   node bench/hostile-variants.mjs --dist DIR --variant 'NAME|RUNTIME|ENV...|FLAGS...' ... [--reps 5] [--out FILE]
// DIR is a built dist/ (its index.js); ENV is space-separated VAR=value, FLAGS space-separated.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { dist: { type: 'string' }, variant: { type: 'string', multiple: true }, reps: { type: 'string', default: '5' }, out: { type: 'string' }, cases: { type: 'string' } } });
const dist = resolve(values.dist);
const variants = values.variant.map((v) => { const [name, runtime, env, flags] = v.split('|'); return { name, runtime, env: Object.fromEntries(env.split(' ').filter(Boolean).map((kv) => kv.split(/=(.*)/s).slice(0, 2))), flags: flags.split(' ').filter(Boolean) }; });
const MIB = 1024 * 1024;
const pod = (name, extra = '') => `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${name}\n${extra}spec:\n  containers:\n  - name: c\n    image: localhost/busybox:podvisor\n`;
let cases = [
  ['annotations at the node limit', pod('keys', '  annotations:\n' + Array.from({ length: 9_990 }, (_, i) => `    k${i}: v\n`).join(''))],
  ['one flow list at the node limit', pod('flow', `  labels: {a: [${'1,'.repeat(19_980)}1]}\n`)],
  ['1,000 valid pods in one file', Array.from({ length: 1000 }, (_, i) => pod(`p${i}`)).join('---\n')],
  ['1,000 documents of unknown fields', Array.from({ length: 1000 }, (_, i) => pod(`u${i}`, Array.from({ length: 2 }, (_, j) => `  x${j}: 1\n`).join(''))).join('---\n')],
  ['900 containers', `apiVersion: v1\nkind: Pod\nmetadata: {name: many}\nspec:\n  containers:\n${Array.from({ length: 900 }, (_, i) => `  - {name: c${i}, image: "localhost/busybox:podvisor", env: [{name: A, value: "1"}]}\n`).join('')}`],
  ['nesting at the depth limit', `a: ${'['.repeat(63)}${']'.repeat(63)}\n`],
  ['long values (1 MiB of digits in a quantity)', pod('q').replace('image: localhost/busybox:podvisor', `image: ${'a'.repeat(400_000)}\n    resources: {limits: {cpu: "${'1'.repeat(600_000)}x"}}`)],
  ['alias bomb', `a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n`],
  ['one byte over the size limit', 'a: ' + 'x'.repeat(MIB) + '\n'],
  ['one valid pod', pod('one')],
];
if (values.cases) cases = cases.filter((_, i) => values.cases.split(',').map(Number).includes(i));
const child = `
const { loadManifestFile } = await import(${JSON.stringify(join(dist, 'index.js'))});
const before = process.memoryUsage().rss;
const u0 = process.resourceUsage();
const started = performance.now();
const result = await loadManifestFile(process.argv[1], { nodeName: 'bench' });
const ms = performance.now() - started;
const u1 = process.resourceUsage();
process.stdout.write(JSON.stringify({ ms, cpuMs: (u1.userCPUTime + u1.systemCPUTime - u0.userCPUTime - u0.systemCPUTime) / 1000, beforeMb: before / 1e6, peakMb: u1.maxRSS / 1024, pods: result.pods.length, findings: result.findings.length }));
`;
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const n = s.length; return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2; };
const dir = mkdtempSync(join(tmpdir(), 'podvisor-hostile-v-'));
const runs = [];
try {
  const files = cases.map(([name, text], index) => { const path = join(dir, `case${index}.yaml`); writeFileSync(path, text); return { name, path }; });
  for (let rep = 0; rep < Number(values.reps); rep++) {
    for (const file of files) {
      for (const v of variants) {
        const run = spawnSync(v.runtime, [...v.flags, '--input-type=module', '-e', child, file.path], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...v.env } });
        const out = run.status === 0 ? JSON.parse(run.stdout) : { error: (run.stderr || String(run.error)).slice(0, 200) };
        runs.push({ rep, case: file.name, variant: v.name, load1: loadavg()[0], ...out });
      }
    }
  }
  const rows = [];
  for (const file of files) {
    const row = { case: file.name };
    for (const v of variants) {
      const mine = runs.filter((r) => r.case === file.name && r.variant === v.name && r.ms !== undefined);
      row[v.name] = { ms: median(mine.map((r) => r.ms)), cpuMs: median(mine.map((r) => r.cpuMs)), peakMb: median(mine.map((r) => r.peakMb)), n: mine.length };
    }
    rows.push(row);
  }
  const [base, ...others] = variants.map((v) => v.name);
  console.log(`load ${loadavg().map((x) => x.toFixed(2)).join(' ')}; medians of ${values.reps}; wall ms / CPU ms / peak RSS MB`);
  console.log(`| case | ${variants.map((v) => v.name).join(' | ')} | ${others.map((o) => `${o}/${base} wall, CPU`).join(' | ')} |`);
  for (const row of rows) {
    const cell = (x) => `${x.ms.toFixed(0)} / ${x.cpuMs.toFixed(0)} / ${x.peakMb.toFixed(0)}`;
    console.log(`| ${row.case} | ${variants.map((v) => cell(row[v.name])).join(' | ')} | ${others.map((o) => `${(row[o].ms / row[base].ms).toFixed(2)}, ${(row[o].cpuMs / row[base].cpuMs).toFixed(2)}`).join(' | ')} |`);
  }
  if (values.out) writeFileSync(values.out, JSON.stringify({ at: new Date().toISOString(), dist, variants, reps: Number(values.reps), rows, runs }, null, 2) + '\n');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
