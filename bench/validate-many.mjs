// Validating a directory of many manifests in one process (issue 11: 200 manifests under 1 s).
// The 98 real public manifests of test/fixtures/corpus/real-pods/, each renamed so that every
// file is a distinct pod, cycled up to PVB_VALIDATE_COUNT files (200), then `podvisor validate
// DIR` run PVB_VALIDATE_RUNS times (5) as an operator runs it (the CLI, its shebang's flags):
// wall time and CPU time (user + system, the process and its children) per run. Also a run of one
// manifest, for the process's own start-up, which every validate pays.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { CLI, ROOT, freshDir, join, log, machineFacts, nowMs, round, stats, writeFileSync, writeResult } from './lib.mjs';
import { selfCpuMs } from './supervision-lib.mjs';

const COUNT = Number(process.env.PVB_VALIDATE_COUNT ?? 200);
const RUNS = Number(process.env.PVB_VALIDATE_RUNS ?? 5);
const CORPUS = join(ROOT, 'test', 'fixtures', 'corpus', 'real-pods');

/** One `podvisor validate` run: wall ms, CPU ms (from this process's children counters), exit code. */
function validate(dir) {
  return new Promise((resolve, reject) => {
    const before = selfCpuMs().children;
    const start = nowMs();
    const child = spawn(CLI, ['validate', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (chunk) => { out += chunk; });
    child.stderr.on('data', (chunk) => { out += chunk; });
    child.on('error', reject);
    child.on('exit', (code) => resolve({ wallMs: round(nowMs() - start, 1), cpuMs: round(selfCpuMs().children - before, 0), code, lines: out.split('\n').filter(Boolean).length }));
  });
}

async function main() {
  const facts = await machineFacts();
  const sources = readdirSync(CORPUS).filter((name) => name.endsWith('.yaml')).sort();
  const many = freshDir('validate-many', 'many');
  const one = freshDir('validate-many', 'one');
  let bytes = 0;
  for (let index = 0; index < COUNT; index++) {
    const source = sources[index % sources.length];
    // Each copy a pod of its own name: the first `name:` under metadata gets a suffix.
    const text = readFileSync(join(CORPUS, source), 'utf8').replace(/^(metadata:\n(?:[ \t]+.*\n)*?[ \t]+name:[ \t]*)(\S+)/m, `$1$2-${index}`);
    bytes += Buffer.byteLength(text);
    writeFileSync(join(many, `${String(index).padStart(3, '0')}-${source}`), text);
  }
  writeFileSync(join(one, 'one.yaml'), readFileSync(join(CORPUS, sources[0]), 'utf8'));
  log(`validate-many: ${COUNT} files (${Math.round(bytes / 1024)} KiB) from ${sources.length} real manifests, ${RUNS} runs, CLI ${CLI}`);
  const runs = [];
  for (let run = 0; run < RUNS; run++) {
    // Alternated, so that the machine's load falls on both.
    runs.push({ many: await validate(many), one: await validate(one) });
  }
  const summary = {
    files: COUNT,
    kib: Math.round(bytes / 1024),
    exitCodes: [...new Set(runs.map((r) => r.many.code))],
    findingLines: runs[0].many.lines,
    manyWallMs: stats(runs.map((r) => r.many.wallMs)),
    manyCpuMs: stats(runs.map((r) => r.many.cpuMs), 0),
    oneWallMs: stats(runs.map((r) => r.one.wallMs)),
    oneCpuMs: stats(runs.map((r) => r.one.cpuMs), 0),
    target: `${COUNT} manifests validated in under 1 s (one process)`,
  };
  summary.targetMet = summary.manyWallMs.median < 1000;
  log(`validate-many: ${COUNT} files: median ${summary.manyWallMs.median} ms wall, ${summary.manyCpuMs.median} ms CPU; one file: ${summary.oneWallMs.median} ms wall, ${summary.oneCpuMs.median} ms CPU`);
  writeResult('validate-many', { facts, summary, runs });
}

main().catch((error) => {
  log(`validate-many failed: ${error.stack ?? error}`);
  process.exitCode = 1;
});
