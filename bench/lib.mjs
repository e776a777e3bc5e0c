// Shared helpers for podvisor's benchmarks: plain Node ESM, no TypeScript loader. The agent is
// always the built bundle dist/podvisor.mjs run as a child process; the benchmarks' own podman calls go to the
// real podman, never through the wrapper that counts the agent's calls.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { appendFileSync, createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import os from 'node:os';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const BENCH = join(ROOT, 'bench');
export const RESULTS_DIR = join(BENCH, 'results');
export const TMP = join(RESULTS_DIR, 'tmp');
/** The agent: run.sh points PVB_CLI at a copy of dist/ taken after its build, so a concurrent rebuild cannot change it mid-run. */
export const CLI = process.env.PVB_CLI ?? join(ROOT, 'dist', 'podvisor.mjs');
export const IMAGE = process.env.PODVISOR_TEST_IMAGE ?? 'localhost/busybox:podvisor';

/** Epoch milliseconds with sub-millisecond precision (comparable with `date +%s%N` / 1e6). */
export const nowMs = () => performance.timeOrigin + performance.now();
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function log(...parts) {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 23)}] ${parts.join(' ')}\n`);
}

/** Absolute path of the real podman binary. */
export const REAL_PODMAN = (() => {
  try { return execFileSync('bash', ['-c', 'command -v podman'], { encoding: 'utf8' }).trim() || 'podman'; } catch { return 'podman'; }
})();

/** Runs the real podman; resolves {code, stdout, stderr, ms}; rejects on failure unless allowFail. */
export function podman(args, { allowFail = false, timeoutMs = 120_000 } = {}) {
  const started = nowMs();
  return new Promise((resolvePromise, reject) => {
    execFile(REAL_PODMAN, args, { maxBuffer: 64 * 1024 * 1024, timeout: timeoutMs }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      const result = { code, stdout, stderr, ms: nowMs() - started, end: nowMs(), start: started };
      if (code !== 0 && !allowFail) reject(new Error(`podman ${args.slice(0, 3).join(' ')} failed (${code}): ${stderr.trim()}`));
      else resolvePromise(result);
    });
  });
}

/** The benchmark manifest: one busybox container sleeping, grace period 1 s. */
export function manifestYaml(name) {
  return `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: main
      image: ${IMAGE}
      imagePullPolicy: IfNotPresent
      command: ["sleep", "3600"]
`;
}

/** A fresh directory under bench/results/tmp. */
export function freshDir(...parts) {
  const dir = join(TMP, ...parts);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Writes files into `stageDir`, then renames them all into `watchDir`; returns the epoch ms just before the first rename. */
export function dropFiles(stageDir, watchDir, files) {
  for (const file of files) writeFileSync(join(stageDir, file.name), file.text);
  const t0 = nowMs();
  for (const file of files) renameSync(join(stageDir, file.name), join(watchDir, file.name));
  return t0;
}

/** Non-infra containers of `node`'s pods that are running (one `podman ps`). */
export async function runningAppContainers(node) {
  const result = await podman(['ps', '--filter', `label=io.podvisor.node=${node}`, '--format', 'json'], { allowFail: true });
  let list = [];
  try { list = JSON.parse(result.stdout || '[]') ?? []; } catch { list = []; }
  const running = list.filter((c) => !c.IsInfra && String(c.State).toLowerCase() === 'running').length;
  return { running, result };
}

/** Polls `podman ps` for node's pods every `intervalMs` until `count` app containers run; returns the observing poll's end time. */
export async function waitRunning(node, count, { intervalMs = 100, timeoutMs = 180_000, onPoll } = {}) {
  const deadline = nowMs() + timeoutMs;
  let polls = 0;
  for (;;) {
    const started = nowMs();
    const { running, result } = await runningAppContainers(node);
    polls++;
    onPoll?.(running);
    if (running >= count) return { seenAt: result.end, pollStart: result.start, polls };
    if (nowMs() > deadline) throw new Error(`timeout: only ${running}/${count} containers running for node ${node}`);
    const wait = intervalMs - (nowMs() - started);
    if (wait > 0) await sleep(wait);
  }
}

/** Removes every pod labelled with `node`: a fast stop (-t 0) first, then `pod rm -f`. */
export async function cleanupNode(node) {
  const { stdout } = await podman(['pod', 'ps', '-q', '--filter', `label=io.podvisor.node=${node}`], { allowFail: true });
  const ids = stdout.split('\n').map((s) => s.trim()).filter(Boolean);
  if (ids.length > 0) {
    await podman(['pod', 'stop', '-t', '0', ...ids], { allowFail: true });
    await podman(['pod', 'rm', '-f', '-t', '0', ...ids], { allowFail: true });
  }
  const left = (await podman(['pod', 'ps', '-q', '--filter', `label=io.podvisor.node=${node}`], { allowFail: true })).stdout.trim();
  if (left) log(`warning: pods of node ${node} still present after cleanup: ${left.replace(/\n/g, ' ')}`);
  return ids.length;
}

/** Removes pods by name (kube play pods), ignoring missing ones. */
export async function cleanupPodsByName(names) {
  if (names.length === 0) return;
  await podman(['pod', 'stop', '-i', '-t', '0', ...names], { allowFail: true });
  await podman(['pod', 'rm', '-i', '-f', '-t', '0', ...names], { allowFail: true });
}

/** A wrapper that appends `<epoch ns> <args>` to $PVB_CALLS_FILE and execs the real podman (compiled from podman-wrapper.c, else bash). */
export function makeWrapper(dir) {
  // A compiled wrapper where a C compiler is at hand: a bash one adds its own start-up (~15 ms)
  // to every call it times.
  const compiled = join(dir, 'podman-wrapper');
  try {
    execFileSync('cc', ['-O2', '-o', compiled, `-DREAL_PODMAN="${REAL_PODMAN}"`, join(dirname(fileURLToPath(import.meta.url)), 'podman-wrapper.c')], { stdio: 'pipe' });
    return compiled;
  } catch {
    // no compiler: the bash wrapper below
  }
  const path = join(dir, 'podman-wrapper.sh');
  writeFileSync(path, `#!/bin/bash
printf '%s %s\\n' "$(date +%s%N)" "$*" >> "$PVB_CALLS_FILE"
exec ${REAL_PODMAN} "$@"
`);
  chmodSync(path, 0o755);
  return path;
}

/** The wrapper's calls file: [{ms (epoch, float), args}] */
export function readCalls(file) {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((line) => {
    const space = line.indexOf(' ');
    const ns = BigInt(line.slice(0, space));
    return { ms: Number(ns / 1000n) / 1000, args: line.slice(space + 1) };
  });
}

/** Kind of an agent podman call from its first words: relist calls are not per pod. */
export function callKind(args) {
  const a = args.trim();
  if (a.startsWith('pod ps')) return 'relist:pod ps';
  if (a.startsWith('ps --all') || a.startsWith('ps -a')) return 'relist:ps --all';
  const words = a.split(/\s+/);
  if (words[0] === 'pod' || words[0] === 'image' || words[0] === 'container') return `${words[0]} ${words[1]}`;
  return words[0];
}

/** The agent as a child process, with its JSON log lines parsed as they arrive. */
export class Agent {
  constructor({ node, manifestDir, stateDir, logFile, logLevel = 'debug', env = {}, extraArgs = [] }) {
    this.node = node;
    this.lines = [];
    this.waiters = [];
    this.logFile = logFile;
    const args = [CLI, 'run', '--manifest-dir', manifestDir, '--state-dir', stateDir, '--node-name', node,
      '--log-level', logLevel, '--log-format', 'json', ...extraArgs];
    // Started as the installed command is (`podvisor run`), so its shebang's node flags apply.
    this.child = spawn(args[0], args.slice(1), { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.pid = this.child.pid;
    this.exited = new Promise((r) => this.child.on('exit', (code, signal) => r({ code, signal })));
    const out = createWriteStream(logFile);
    let buffer = '';
    const onData = (chunk) => {
      out.write(chunk);
      buffer += chunk.toString('utf8');
      let nl;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const text = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        let entry;
        try { entry = JSON.parse(text); } catch { entry = { message: text, raw: true }; }
        entry.receivedAt = nowMs();
        if (entry.timestamp) entry.at = Date.parse(entry.timestamp);
        this.lines.push(entry);
        this.waiters = this.waiters.filter((w) => !(w.pred(entry) && (w.resolve(entry), true)));
      }
    };
    this.child.stdout.on('data', onData);
    this.child.stderr.on('data', onData);
    this.child.on('exit', () => out.end());
  }

  /** Resolves with the first log line (already seen or future) matching `pred`. */
  waitFor(pred, timeoutMs = 60_000, what = 'log line') {
    const found = this.lines.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolvePromise, reject) => {
      const timer = setTimeout(() => reject(new Error(`timeout waiting for ${what} from agent ${this.node}`)), timeoutMs);
      this.waiters.push({ pred, resolve: (e) => { clearTimeout(timer); resolvePromise(e); } });
    });
  }

  /** Waits until the agent has started and finished its first listing. */
  async ready() {
    await this.waitFor((e) => e.message === 'podvisor running', 30_000, "'podvisor running'");
    await sleep(300);
  }

  async stop() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 30_000);
    await this.exited;
    clearTimeout(timer);
  }
}

/** /proc facts of a process: rss (kB), utime/stime/cutime/cstime (ticks). */
export function procSample(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime is field 14 -> index 11
  return { rssKb, utime: Number(fields[11]), stime: Number(fields[12]), cutime: Number(fields[13]), cstime: Number(fields[14]), at: nowMs() };
}

/** RSS (kB) of `pid` once a second for `seconds`, on the second marks after `fromMs` (nowMs()). */
export async function sampleRssEverySecond(pid, fromMs, seconds) {
  const rss = [];
  for (let k = 1; k <= seconds; k++) {
    const wait = fromMs + k * 1000 - performance.timeOrigin - performance.now();
    if (wait > 0) await sleep(wait);
    rss.push(procSample(pid).rssKb);
  }
  return rss;
}

export const CLK_TCK = (() => { try { return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100; } catch { return 100; } })();

export function stats(values, digits = 1) {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  if (n === 0) return { n: 0 };
  const q = (p) => sorted[Math.min(n - 1, Math.ceil(p * n) - 1)]; // nearest-rank
  const median = n % 2 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  const r = (x) => round(x, digits);
  return { n, min: r(sorted[0]), median: r(median), mean: r(sorted.reduce((a, b) => a + b, 0) / n), p95: r(q(0.95)), max: r(sorted[n - 1]) };
}

export const round = (x, digits = 1) => (Number.isFinite(x) ? Math.round(x * 10 ** digits) / 10 ** digits : x);

/** Facts about this machine and its current podman load, for the report. */
export async function machineFacts() {
  const sh = (cmd) => { try { return execFileSync('bash', ['-c', cmd], { encoding: 'utf8' }).trim(); } catch { return ''; } };
  const podmanVersion = (await podman(['version', '--format', '{{.Client.Version}}'], { allowFail: true })).stdout.trim();
  const others = (await podman(['ps', '-a', '--format', '{{.Names}}'], { allowFail: true })).stdout.split('\n').filter(Boolean).length;
  const otherPods = (await podman(['pod', 'ps', '-q'], { allowFail: true })).stdout.split('\n').filter(Boolean).length;
  return {
    date: new Date().toISOString(),
    host: os.hostname(),
    kernel: os.release(),
    cpu: os.cpus()[0]?.model ?? '?',
    cores: os.cpus().length,
    memTotalMB: Math.round(os.totalmem() / 2 ** 20),
    loadavg: os.loadavg().map((x) => round(x, 2)),
    node: process.version,
    podman: podmanVersion,
    runtime: sh('crun --version | head -1'),
    gitCommit: process.env.PVB_COMMIT ?? sh(`git -C ${ROOT} rev-parse --short HEAD`),
    agentCli: CLI,
    agentDistSha: sh(`cd ${dirname(CLI)} && find . -name '*.js' -type f | sort | xargs cat | sha256sum | cut -c1-12`),
    gitDirty: sh(`git -C ${ROOT} status --porcelain -- src | head -1`) !== '',
    podmanContainersOnHost: others,
    podmanPodsOnHost: otherPods,
    concurrentPodmanClients: Number(sh("pgrep -c -x podman || true")) || 0,
  };
}

export function writeResult(name, data) {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const path = join(RESULTS_DIR, `${name}${process.env.PVB_RESULT_SUFFIX ?? ''}.json`);
  writeFileSync(path, `${JSON.stringify(data, null, 2)}\n`);
  log(`wrote ${path}`);
}

export { appendFileSync, join, existsSync, readFileSync, writeFileSync, mkdirSync, renameSync, rmSync };
