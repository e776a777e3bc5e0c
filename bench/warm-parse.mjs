// Steady-state cost of the agent's per-manifest work in a warm process, without podman: the
// benchmark manifest (bench/lib.mjs's) loaded with loadManifestFile (read, parse, validate) ITER
// times after WARM warm-up loads, per variant (runtime + environment + flags), in fresh processes
// alternated ROUNDS times. Reports the median per-load time (wall and CPU, µs) of each process:
// what the optimizing tiers (--max-opt) change for work the agent repeats (a manifest written,
// a resync of 20 files).
//   node bench/warm-parse.mjs --dist DIR --variant 'NAME|RUNTIME|ENV...|FLAGS...' ... [--rounds 3] [--iter 2000] [--out FILE]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { manifestYaml } from './lib.mjs';

const { values } = parseArgs({ options: { dist: { type: 'string' }, variant: { type: 'string', multiple: true }, rounds: { type: 'string', default: '3' }, iter: { type: 'string', default: '2000' }, warm: { type: 'string', default: '200' }, out: { type: 'string' } } });
const variants = values.variant.map((v) => { const [name, runtime, env, flags] = v.split('|'); return { name, runtime, env: Object.fromEntries(env.split(' ').filter(Boolean).map((kv) => kv.split(/=(.*)/s).slice(0, 2))), flags: flags.split(' ').filter(Boolean) }; });
const dir = mkdtempSync(join(tmpdir(), 'podvisor-warm-'));
const file = join(dir, 'pod.yaml');
writeFileSync(file, manifestYaml('pvb-warm-01'));
const child = `
const { loadManifestFile } = await import(${JSON.stringify(join(resolve(values.dist), 'index.js'))});
const file = process.argv[1], warm = Number(process.argv[2]), iter = Number(process.argv[3]);
for (let i = 0; i < warm; i++) await loadManifestFile(file, { nodeName: 'bench' });
const c0 = process.cpuUsage(), t0 = performance.now();
for (let i = 0; i < iter; i++) { const r = await loadManifestFile(file, { nodeName: 'bench' }); if (r.pods.length !== 1) throw new Error('no pod'); }
const c = process.cpuUsage(c0), t = performance.now() - t0;
process.stdout.write(JSON.stringify({ wallUs: t * 1000 / iter, cpuUs: (c.user + c.system) / iter, rssMb: process.memoryUsage().rss / 1048576 }));
`;
const runs = [];
try {
  for (let r = 0; r < Number(values.rounds); r++) for (const v of variants) {
    const run = spawnSync(v.runtime, [...v.flags, '--input-type=module', '-e', child, file, values.warm, values.iter], { encoding: 'utf8', env: { ...process.env, ...v.env } });
    runs.push({ round: r, variant: v.name, load1: loadavg()[0], ...(run.status === 0 ? JSON.parse(run.stdout) : { error: run.stderr.slice(0, 300) }) });
    console.log(JSON.stringify(runs.at(-1)));
  }
} finally { rmSync(dir, { recursive: true, force: true }); }
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const n = s.length; return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2; };
const summary = Object.fromEntries(variants.map((v) => { const mine = runs.filter((x) => x.variant === v.name && !x.error); return [v.name, { wallUs: median(mine.map((x) => x.wallUs)), cpuUs: median(mine.map((x) => x.cpuUs)), n: mine.length }]; }));
console.log(JSON.stringify(summary));
if (values.out) writeFileSync(values.out, JSON.stringify({ at: new Date().toISOString(), iter: Number(values.iter), warm: Number(values.warm), variants, runs, summary }, null, 2) + '\n');
