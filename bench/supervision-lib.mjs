// Helpers shared by the supervision benchmarks (supervision-restart.mjs, supervision-probes.mjs),
// on top of lib.mjs. The call-recording wrapper here writes the same `<epoch ns> <args>` lines as
// lib.mjs's makeWrapper (so readCalls() reads them), but takes its timestamp from bash's
// $EPOCHREALTIME (microseconds, no `date` process): a restart is measured in tens of
// milliseconds, and the probes benchmark counts CPU, so the wrapper should add as little as it can.
// The calls file is written into the script, not taken from the environment: the agent starts its
// nsenter helpers with a clean environment (PATH only).
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, watch, writeFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CLK_TCK, nowMs, podman, round, sleep } from './lib.mjs';

/** Absolute path of a binary on PATH (the real one, looked up before any wrapper is put first). */
export function realBinary(name) {
  try {
    return execFileSync('bash', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim() || name;
  } catch {
    return name;
  }
}

/** A bash script at `path` that appends `<epoch ns> <args>` to `callsFile`, then execs `real`. */
export function makeTimestampWrapper(path, real, callsFile) {
  writeFileSync(path, `#!/bin/bash
t=\${EPOCHREALTIME/[.,]/}
printf '%s000 %s\\n' "$t" "$*" >> ${JSON.stringify(callsFile)}
exec ${JSON.stringify(real)} "$@"
`);
  chmodSync(path, 0o755);
  return path;
}

/** utime+stime and cutime+cstime of this process, in ms. */
export function selfCpuMs() {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { self: (Number(f[11]) + Number(f[12])) * 1000 / CLK_TCK, children: (Number(f[13]) + Number(f[14])) * 1000 / CLK_TCK };
}

const execFileP = (file, args, options = {}) => new Promise((resolve) => {
  const child = execFile(file, args, { maxBuffer: 16 * 1024 * 1024, ...options }, (error, stdout, stderr) => resolve({ error, stdout, stderr }));
  if (options.input !== undefined) child.stdin.end(options.input);
});

/**
 * Runs `file args` `times` times one after another from this process: wall time per run and the
 * CPU of the (reaped) children per run, from this process's cutime+cstime (10 ms ticks: a mean).
 */
export async function childCost(file, args, times, options = {}) {
  const c0 = selfCpuMs();
  const walls = [];
  let failures = 0;
  for (let i = 0; i < times; i++) {
    const t = nowMs();
    const { error } = await execFileP(file, args, options);
    walls.push(nowMs() - t);
    if (error) failures++;
  }
  const c1 = selfCpuMs();
  const sorted = [...walls].sort((a, b) => a - b);
  return {
    runs: times,
    failures,
    wallMsMedian: round(sorted[Math.floor(sorted.length / 2)], 1),
    childCpuMsPerRun: round((c1.children - c0.children) / times, 2),
  };
}

/** The wrapper's own CPU per call: the wrapper in front of /bin/true, against /bin/true alone. */
export async function wrapperCost(dir, times = 100) {
  const calls = join(dir, 'wrapper-cost-calls.txt');
  const wrapper = makeTimestampWrapper(join(dir, 'wrapper-cost.sh'), realBinary('true'), calls);
  const wrapped = await childCost(wrapper, [], times);
  const bare = await childCost(realBinary('true'), [], times);
  return { times, wrappedCpuMsPerCall: wrapped.childCpuMsPerRun, bareTrueCpuMsPerCall: bare.childCpuMsPerRun, wrapperCpuMsPerCall: round(wrapped.childCpuMsPerRun - bare.childCpuMsPerRun, 2), wrappedWallMs: wrapped.wallMsMedian, bareWallMs: bare.wallMsMedian };
}

/** Busy and total jiffies of the whole machine (all CPUs), from /proc/stat. */
export function machineCpu() {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = v[3] + (v[4] ?? 0); // idle + iowait
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0); // user..steal (guest is inside user)
  return { busy: total - idle, total, at: nowMs() };
}

/** % of one core the whole machine was busy between two machineCpu() samples. */
export function machineBusyPercentOfCore(a, b) {
  const seconds = (b.at - a.at) / 1000;
  return round(((b.busy - a.busy) / CLK_TCK) / seconds * 100, 1);
}

/** The cgroup v1 cpuacct mount, if there is one (cgroup v2 has cpu.stat instead). */
const CPUACCT = ['/sys/fs/cgroup/cpuacct', '/sys/fs/cgroup/cpu,cpuacct'].find((dir) => existsSync(join(dir, 'cpuacct.usage')));
const UNIFIED = existsSync('/sys/fs/cgroup/cgroup.controllers') ? '/sys/fs/cgroup' : undefined;

/** CPU time (ms) a cgroup (path as podman reports it, e.g. /libpod_parent/<id>) has used; undefined if unreadable. */
export function cgroupCpuMs(path) {
  try {
    if (CPUACCT) return Number(readFileSync(join(CPUACCT, path, 'cpuacct.usage'), 'utf8')) / 1e6;
    if (UNIFIED) return Number(/usage_usec (\d+)/.exec(readFileSync(join(UNIFIED, path, 'cpu.stat'), 'utf8'))[1]) / 1e3;
  } catch {
    // gone or not there
  }
  return undefined;
}

/** The cgroup paths of the pods of `node` (`podman pod inspect` CgroupPath). */
export async function podCgroups(node) {
  const ids = (await podman(['pod', 'ps', '-q', '--no-trunc', '--filter', `label=io.podvisor.node=${node}`], { allowFail: true })).stdout.split('\n').filter(Boolean);
  const out = [];
  for (const id of ids) {
    const r = await podman(['pod', 'inspect', '--format', '{{.CgroupPath}}', id], { allowFail: true });
    const path = r.stdout.trim();
    if (path) out.push(path);
  }
  return out;
}

/** Sum of cgroupCpuMs over `paths` (missing ones count 0) and how many were readable. */
export function sumCgroupCpuMs(paths) {
  let sum = 0;
  let readable = 0;
  for (const path of paths) {
    const v = cgroupCpuMs(path);
    if (v !== undefined) { sum += v; readable++; }
  }
  return { ms: sum, readable };
}

/** podman's exits directory, as the agent finds it ("Using tmp dir" in podman's debug log). */
export async function exitsDirectory() {
  const r = await podman(['--log-level=debug', 'info', '--format', '{{.Host.Security.Rootless}}'], { allowFail: true });
  const tmp = /msg="Using tmp dir (.+?)"\s*$/m.exec(r.stderr)?.[1];
  return tmp ? join(tmp, 'exits') : '/run/libpod/exits';
}

/** Watches the exits directory: every exit file seen, with when this process saw it and its times. */
export function watchExitFiles(dir) {
  const seen = [];
  const keys = new Set();
  const onChange = async (filename) => {
    if (!filename || !/^[0-9a-f]{64}$/.test(filename)) return;
    const receivedAt = nowMs();
    try {
      const s = await stat(join(dir, filename), { bigint: true });
      const key = `${filename}:${s.ino}:${s.mtimeNs}`;
      if (keys.has(key)) return;
      keys.add(key);
      seen.push({ id: filename, receivedAt, mtimeMs: Number(s.mtimeNs / 1000n) / 1000, ctimeMs: Number(s.ctimeNs / 1000n) / 1000 });
    } catch {
      // removed by podman's cleanup already (another event for it came first)
    }
  };
  const watcher = watch(dir, { persistent: false }, (_event, filename) => void onChange(filename));
  return { seen, close: () => watcher.close() };
}

/** The id of `container` once podman has created it (polled every `intervalMs`, 120 s at most). */
export async function waitForContainerId(container, intervalMs = 100) {
  const deadline = nowMs() + 120_000;
  for (;;) {
    const r = await podman(['container', 'inspect', '--format', '{{.Id}}', container], { allowFail: true });
    if (r.code === 0 && r.stdout.trim()) return r.stdout.trim();
    if (nowMs() > deadline) throw new Error(`container ${container} not created within 120 s`);
    await sleep(intervalMs);
  }
}
