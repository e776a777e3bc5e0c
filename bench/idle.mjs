// Idle: N pods running and nothing changing, over a 60 s window: the agent's RSS (VmRSS each
// second), its CPU (utime+stime delta, % of one core), and the podman processes it starts
// (counted by a PODVISOR_PODMAN wrapper) per reconcile pass; first with 20 pods, then with 1, to
// show the calls per pass do not grow with the number of pods. Default intervals (relist 10 s,
// resync 20 s), default log level (info).
// PVB_CLI may also be a launcher script that execs a runtime (packaging/make-launcher.sh's), to
// measure the agent as a package runs it; each phase records the runtime the agent ran on.
import { execFileSync, spawn } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import {
  ROOT, Agent, CLK_TCK, callKind, cleanupNode, freshDir, join, log, makeWrapper, manifestYaml, procSample, sampleRssEverySecond, readCalls,
  round, runningAppContainers, sleep, stats, waitRunning, readFileSync, writeFileSync, writeResult, machineFacts,
} from './lib.mjs';

const WINDOW_S = Number(process.env.PVB_IDLE_WINDOW_S ?? 60);
const PHASES = (process.env.PVB_IDLE_PODS ?? '20,1').split(',').map(Number);

async function phase(n) {
  const node = `pvb-idle${n}`;
  const dir = freshDir('idle', `pods-${n}`);
  const [watch, state] = ['watch', 'state'].map((d) => freshDir('idle', `pods-${n}`, d));
  const callsFile = join(dir, 'calls.txt');
  writeFileSync(callsFile, '');
  const wrapper = makeWrapper(dir);
  for (let i = 1; i <= n; i++) {
    const name = `pvb-idle${n}-${String(i).padStart(2, '0')}`;
    writeFileSync(join(watch, `${name}.yaml`), manifestYaml(name));
  }
  await cleanupNode(node);
  log(`idle: ${n} pod(s), node ${node}, window ${WINDOW_S} s`);
  const agent = new Agent({
    node, manifestDir: watch, stateDir: state, logFile: join(dir, 'agent.log'), logLevel: 'info',
    env: { PODVISOR_PODMAN: wrapper, PVB_CALLS_FILE: callsFile },
    // PVB_AGENT_ARGS: extra flags, e.g. "--api-address 127.0.0.1:0" to measure with the API on.
    extraArgs: (process.env.PVB_AGENT_ARGS ?? '').split(' ').filter(Boolean),
  });
  try {
    await agent.ready();
    await waitRunning(node, n, { intervalMs: 500, timeoutMs: 240_000 });
    await sleep(3000); // the bring-up's trailing passes
    const fromCall = readCalls(callsFile).length;
    const s0 = procSample(agent.pid);
    const rss = await sampleRssEverySecond(agent.pid, s0.at, WINDOW_S);
    const s1 = procSample(agent.pid);
    const runtime = agentRuntime(agent.pid);
    const windowS = (s1.at - s0.at) / 1000;
    const calls = readCalls(callsFile).slice(fromCall).filter((c) => c.ms <= s1.at);
    const byKind = {};
    for (const call of calls) byKind[callKind(call.args)] = (byKind[callKind(call.args)] ?? 0) + 1;
    const passes = byKind['relist:pod ps'] ?? 0; // one `pod ps` per pass
    // Calls of each pass: a pass's two listing calls start together (in either order); a relist
    // call more than 1 s after the previous one starts a new pass; other calls join the current one.
    const perPass = [];
    let lastRelist = -Infinity;
    for (const call of [...calls].sort((a, b) => a.ms - b.ms)) {
      const relist = callKind(call.args).startsWith('relist');
      if (relist && call.ms - lastRelist > 1000) perPass.push(0);
      if (relist) lastRelist = call.ms;
      if (perPass.length > 0) perPass[perPass.length - 1]++;
    }
    const creates = calls.filter((c) => callKind(c.args) === 'pod create').length;
    const kills = calls.filter((c) => /^pod (stop|rm)/.test(c.args)).length;
    const { running } = await runningAppContainers(node);
    const result = {
      pods: n, node, windowS: round(windowS, 2), runtime,
      rssMB: { ...stats(rss.map((kb) => kb / 1024)), first: round(rss[0] / 1024, 1), last: round(rss.at(-1) / 1024, 1), secondsAbove80: rss.filter((kb) => kb > 80 * 1024).length },
      rssSamplesMB: rss.map((kb) => round(kb / 1024, 1)),
      nodeOptions: process.env.NODE_OPTIONS ?? '',
      cpuPercentOfCore: round((((s1.utime + s1.stime) - (s0.utime + s0.stime)) / CLK_TCK) / windowS * 100, 3),
      cpuTicks: (s1.utime + s1.stime) - (s0.utime + s0.stime),
      // CPU of the podman clients it started and reaped in the window (not the agent's own; for context)
      childrenCpuPercentOfCore: round((((s1.cutime + s1.cstime) - (s0.cutime + s0.cstime)) / CLK_TCK) / windowS * 100, 3),
      podmanCalls: calls.length, byKind, passes,
      callsPerPass: passes ? round(calls.length / passes, 2) : null,
      perPass,
      callsPerSteadyPass: stats(perPass).median ?? null,
      // All pods ran at the window's start and the agent stopped none: a create means the pod had
      // been removed by something else on this shared machine (the agent then recreated it).
      podsRecreated: creates,
      agentStopOrRmCalls: kills,
      externalRemovals: kills === 0 ? creates : null,
      runningAtEnd: running,
      errors: agent.lines.filter((e) => e.level === 'error' || e.level === 'warn').map((e) => e.message).slice(0, 5),
      clkTck: CLK_TCK,
    };
    if (creates > 0) log(`idle ${n}: warning: ${creates} pod create(s) in the window (${kills} stop/rm by the agent): pods removed from outside`);
    log(`idle ${n}: RSS max ${result.rssMB.max} MB mean ${result.rssMB.mean} MB, CPU ${result.cpuPercentOfCore}% of a core, ${calls.length} podman calls in ${passes} passes (${result.callsPerPass}/pass)`);
    return result;
  } finally {
    await agent.stop();
    await cleanupNode(node);
  }
}

/** What the agent runs on: its executable, its command line and its malloc settings (facts.node is the bench's own Node). */
function agentRuntime(pid) {
  const exe = readlinkSync(`/proc/${pid}/exe`);
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
  let version = null;
  try { version = execFileSync(exe, ['--version'], { encoding: 'utf8' }).trim(); } catch { /* not a node */ }
  const value = (name) => env.find((e) => e.startsWith(`${name}=`))?.slice(name.length + 1) ?? null;
  return { exe, version, argv, mallocArenaMax: value('MALLOC_ARENA_MAX'), glibcTunables: value('GLIBC_TUNABLES') };
}

/** VmRSS of a Node process that only loads `code` and idles: what the runtime and modules cost alone. */
async function baselineRss(label, code) {
  const child = spawn(process.execPath, ['--input-type=module', '-e', `${code}; setInterval(() => {}, 1000);`], { cwd: ROOT, stdio: 'ignore' });
  try {
    await sleep(2500);
    return { label, rssMB: round(procSample(child.pid).rssKb / 1024, 1) };
  } finally {
    child.kill('SIGKILL');
  }
}

async function main() {
  const facts = await machineFacts();
  const phases = [];
  for (const n of PHASES) phases.push(await phase(n));
  const baselines = [
    await baselineRss('node alone', ''),
    await baselineRss('node + winston, chokidar, execa, zod, yaml', "await Promise.all(['winston', 'chokidar', 'execa', 'zod', 'yaml'].map((m) => import(m)))"),
  ];
  for (const module of ['winston', 'chokidar', 'execa', 'zod', 'yaml']) baselines.push(await baselineRss(`node + ${module}`, `await import('${module}')`));
  const big = phases.find((p) => p.pods === Math.max(...PHASES));
  const small = phases.find((p) => p.pods === Math.min(...PHASES));
  const summary = {
    windowS: WINDOW_S,
    relistIntervalS: 10, resyncIntervalS: 20,
    targets: { rssMaxMB: 80, cpuPercentOfCore: 1, callsPerPass: 'equal for 1 and 20 pods' },
    rssMaxMB: big.rssMB.max, rssMeanMB: big.rssMB.mean, cpuPercentOfCore: big.cpuPercentOfCore,
    callsPerPass: Object.fromEntries(phases.map((p) => [p.pods, p.callsPerPass])),
    callsPerSteadyPass: Object.fromEntries(phases.map((p) => [p.pods, p.callsPerSteadyPass])),
    baselines,
  };
  summary.targetsMet = {
    rss: Math.max(...phases.map((p) => p.rssMB.max)) <= 80,
    cpu: Math.max(...phases.map((p) => p.cpuPercentOfCore)) <= 1,
    // compared on the median pass, so a pass that recreated an externally removed pod does not count
    callsPerPass: big.callsPerSteadyPass !== null && big.callsPerSteadyPass === small.callsPerSteadyPass,
  };
  writeResult('idle', { facts, summary, phases });
}

main().catch(async (error) => {
  log(`idle failed: ${error.stack ?? error}`);
  for (const n of PHASES) await cleanupNode(`pvb-idle${n}`).catch(() => {});
  process.exitCode = 1;
});
