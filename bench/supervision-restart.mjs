// Supervision, restart: how long from a container's exit to the agent's decision to restart it.
// One pod, restartPolicy Always, whose container runs `sleep 1`, prints a timestamp with
// microseconds (busybox `ts %.s`: busybox `date` has no %N) and exits 1; the agent runs with a
// zero crash-loop back-off (--backoff-initial 0 --backoff-max 0), so every death is restarted at
// once. Measured per death: from the container's own timestamp (taken just before `exit 1`, so
// the true exit is slightly later and the figure slightly pessimistic) to the start of the agent's
// first `podman start <id>` for it, stamped by a wrapper in front of podman (PODVISOR_PODMAN).
// One warm-up death, then DEATHS measured deaths; median and p95.
//
// For the breakdown the benchmark also watches podman's exits directory itself (inotify, as the
// agent does: the time conmon's exit file showed up here, and the file's mtime, which is what
// podman reports as FinishedAt), follows `podman events` for the `died` event (podman writes it
// only after its cleanup read the exit file), and reads the agent's debug log ('restarting
// container', and each podman call's start = log time − duration, 1 ms resolution).
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import {
  Agent, REAL_PODMAN, callKind, cleanupNode, freshDir, join, log, machineFacts, nowMs, podman, readCalls, round, sleep, stats, writeFileSync, writeResult,
} from './lib.mjs';
import { exitsDirectory, makeTimestampWrapper, waitForContainerId, watchExitFiles, wrapperCost } from './supervision-lib.mjs';

const NODE = 'pvb-restart';
const DEATHS = Number(process.env.PVB_RESTART_DEATHS ?? 20);
const WARMUP = 1;
const NAME = 'pvb-rs-01';
const POD = `default_${NAME}-${NODE}`;
const CONTAINER = `${POD}_main`;
const IMAGE = process.env.PODVISOR_TEST_IMAGE ?? 'localhost/busybox:podvisor';

const manifest = `apiVersion: v1
kind: Pod
metadata:
  name: ${NAME}
spec:
  restartPolicy: Always
  terminationGracePeriodSeconds: 1
  containers:
    - name: main
      image: ${IMAGE}
      imagePullPolicy: IfNotPresent
      command: ["sh", "-c", "sleep 1; echo exit | ts %.s; exit 1"]
`;

/** From execa() in this process to the wrapper's timestamp, as the agent calls podman (10 runs). */
async function calibrate(dir) {
  const file = join(dir, 'calibration-calls.txt');
  writeFileSync(file, '');
  const wrapper = makeTimestampWrapper(join(dir, 'calibration-wrapper.sh'), REAL_PODMAN, file);
  const { execa } = await import('execa');
  const lags = [];
  for (let i = 0; i < 10; i++) {
    const before = readCalls(file).length;
    const t = nowMs();
    await execa(wrapper, ['--version'], { reject: false, stdin: 'ignore', timeout: 60_000, forceKillAfterDelay: 2000, maxBuffer: 64 * 1024 * 1024, stripFinalNewline: true });
    lags.push(readCalls(file)[before].ms - t);
  }
  return stats(lags, 2);
}

/** Follows `podman events` for died events of NODE's containers (the real podman, not the wrapper). */
function followDiedEvents() {
  const events = [];
  const child = spawn(REAL_PODMAN, ['events', '--format', 'json', '--filter', 'type=container', '--filter', 'event=died', '--filter', `label=io.podvisor.node=${NODE}`], { stdio: ['ignore', 'pipe', 'ignore'] });
  createInterface({ input: child.stdout }).on('line', (line) => {
    const receivedAt = nowMs();
    try {
      const e = JSON.parse(line);
      let timeMs;
      const nano = /"timeNano"\s*:\s*(\d+)/.exec(line)?.[1];
      if (nano) timeMs = Number(BigInt(nano) / 1000n) / 1000;
      else if (typeof e.Time === 'string') {
        const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(e.Time);
        if (m) timeMs = Date.parse(`${m[1]}${m[3]}`) + Number(`0.${m[2] ?? '0'}`) * 1000;
      }
      events.push({ id: e.ID ?? e.id, status: e.Status ?? e.status, receivedAt, timeMs });
    } catch {
      // not JSON
    }
  });
  return { events, stop: () => child.kill('SIGTERM') };
}

async function main() {
  const facts = await machineFacts();
  const dir = freshDir('supervision-restart');
  const [watchDir, state] = ['watch', 'state'].map((d) => freshDir('supervision-restart', d));
  const callsFile = join(dir, 'calls.txt');
  writeFileSync(callsFile, '');
  const wrapper = makeTimestampWrapper(join(dir, 'podman-wrapper.sh'), REAL_PODMAN, callsFile);
  await cleanupNode(NODE);
  const calibration = { execaToWrapperTimestampMs: await calibrate(dir), wrapper: await wrapperCost(dir, 50) };
  const exitsDir = await exitsDirectory();
  log(`supervision-restart: ${WARMUP} + ${DEATHS} deaths, node ${NODE}, exits directory ${exitsDir}`);
  const exitFiles = watchExitFiles(exitsDir);
  const died = followDiedEvents();
  await sleep(500); // the events process is listening
  writeFileSync(join(watchDir, `${NAME}.yaml`), manifest);
  const agent = new Agent({
    node: NODE, manifestDir: watchDir, stateDir: state, logFile: join(dir, 'agent.log'), logLevel: 'debug',
    env: { PODVISOR_PODMAN: wrapper }, extraArgs: ['--backoff-initial', '0', '--backoff-max', '0'],
  });
  let id;
  let logs = '';
  let finishedAt = '';
  try {
    await agent.ready();
    id = await waitForContainerId(CONTAINER);
    const want = WARMUP + DEATHS;
    const okStarts = () => agent.lines.filter((e) => e.message === 'podman' && e.args === `start ${id}` && e.exitCode === 0).length;
    const deadline = nowMs() + 180_000;
    while (okStarts() < want) {
      if (nowMs() > deadline) throw new Error(`only ${okStarts()}/${want} restarts within 180 s`);
      const errors = agent.lines.filter((e) => e.level === 'error');
      if (errors.length > 5) throw new Error(`agent errors: ${errors.slice(0, 3).map((e) => e.message).join('; ')}`);
      await sleep(200);
    }
  } finally {
    await agent.stop();
    exitFiles.close();
    died.stop();
    if (id) {
      logs = (await podman(['logs', id], { allowFail: true })).stdout;
      finishedAt = (await podman(['container', 'inspect', '--format', '{{.State.FinishedAt}}', id], { allowFail: true })).stdout.trim();
    }
    await cleanupNode(NODE);
  }

  // One row per death the agent acted on, from the container's own timestamps.
  const exitTimes = logs.split('\n').map((line) => /^(\d+\.\d+) exit/.exec(line)?.[1]).filter(Boolean).map((s) => Number(s) * 1000).sort((a, b) => a - b);
  const calls = readCalls(callsFile);
  const starts = calls.filter((c) => c.args === `start ${id}`);
  const agentStarts = agent.lines.filter((e) => e.message === 'podman' && e.args === `start ${id}`).map((e) => ({ begin: e.at - e.ms, end: e.at, ms: e.ms, ok: e.exitCode === 0 }));
  const restartLines = agent.lines.filter((e) => e.message === 'restarting container');
  const ours = exitFiles.seen.filter((e) => e.id === id);
  const diedOurs = died.events.filter((e) => e.id === id);
  const deaths = [];
  exitTimes.forEach((t, k) => {
    const next = exitTimes[k + 1] ?? Infinity;
    const inWindow = (x) => x > t && x < next;
    const first = starts.find((c) => inWindow(c.ms));
    if (!first) return;
    const attempts = starts.filter((c) => inWindow(c.ms));
    const agentFirst = agentStarts.find((c) => c.begin >= Math.floor(t) && c.begin < next);
    const agentOk = agentStarts.find((c) => c.ok && c.begin >= Math.floor(t) && c.begin < next);
    const exitFile = ours.find((e) => inWindow(e.receivedAt));
    const diedEvent = diedOurs.find((e) => inWindow(e.receivedAt));
    const restartLine = restartLines.find((e) => e.at >= Math.floor(t) && e.at < next);
    const relistBefore = calls.filter((c) => c.ms > t && c.ms < first.ms && callKind(c.args).startsWith('relist'));
    const d = (x) => (x === undefined ? null : round(x - t, 2));
    deaths.push({
      death: k + 1,
      warmup: k < WARMUP,
      exitToStartMs: d(first.ms),
      // by which way the agent learnt of the exit: no listing started between the exit and the start (exit file), or a pass listed first
      path: relistBefore.length === 0 ? 'exit-file' : 'pass',
      relistCallsBefore: relistBefore.length,
      startAttempts: attempts.length,
      exitToExitFileMtimeMs: d(exitFile?.mtimeMs),
      exitToBenchInotifyMs: d(exitFile?.receivedAt),
      exitFileMtimeToStartMs: exitFile ? round(first.ms - exitFile.mtimeMs, 2) : null,
      benchInotifyToStartMs: exitFile ? round(first.ms - exitFile.receivedAt, 2) : null,
      exitToRestartLogMs: d(restartLine?.at),
      exitToAgentCallStartMs: d(agentFirst?.begin),
      wrapperLagMs: agentFirst ? round(first.ms - agentFirst.begin, 1) : null,
      exitToStartDoneMs: d(agentOk?.end),
      startCallMs: agentOk ? agentOk.ms : null,
      exitToDiedEventTimeMs: d(diedEvent?.timeMs),
      exitToDiedReceivedMs: d(diedEvent?.receivedAt),
    });
  });
  const measured = deaths.filter((x) => !x.warmup).slice(0, DEATHS);
  if (measured.length < DEATHS) log(`warning: only ${measured.length}/${DEATHS} deaths could be matched to a restart`);
  const col = (key, digits = 1) => stats(measured.map((x) => x[key]).filter((v) => v !== null && v !== undefined), digits);
  const exitToStart = col('exitToStartMs');
  const summary = {
    deaths: measured.length, warmup: WARMUP,
    method: 'container prints `ts %.s` (µs) just before `exit 1`; agent\'s first `podman start <id>` stamped by a bash wrapper ($EPOCHREALTIME) via PODVISOR_PODMAN',
    agentArgs: '--backoff-initial 0 --backoff-max 0 --log-level debug (relist 10 s default)',
    exitToStartMs: exitToStart,
    paths: Object.fromEntries(['exit-file', 'pass'].map((p) => [p, measured.filter((x) => x.path === p).length])),
    startAttempts: col('startAttempts', 0),
    exitToExitFileMtimeMs: col('exitToExitFileMtimeMs'),
    exitToBenchInotifyMs: col('exitToBenchInotifyMs'),
    benchInotifyToStartMs: col('benchInotifyToStartMs'),
    exitFileMtimeToStartMs: col('exitFileMtimeToStartMs'),
    exitToRestartLogMs: col('exitToRestartLogMs'),
    exitToAgentCallStartMs: col('exitToAgentCallStartMs'),
    wrapperLagMs: col('wrapperLagMs'),
    exitToStartDoneMs: col('exitToStartDoneMs'),
    startCallMs: col('startCallMs', 0),
    exitToDiedEventTimeMs: col('exitToDiedEventTimeMs'),
    exitToDiedReceivedMs: col('exitToDiedReceivedMs'),
    calibration,
    lastFinishedAt: finishedAt,
    exitFilesSeen: ours.length, diedEventsSeen: diedOurs.length, containerTimestamps: exitTimes.length,
    agentErrors: agent.lines.filter((e) => e.level === 'error').map((e) => e.message).slice(0, 5),
    target: 'median exit → `podman start` ≤ 100 ms',
  };
  summary.targetMet = exitToStart.median <= 100;
  log(`supervision-restart: exit → podman start median ${exitToStart.median} ms, p95 ${exitToStart.p95} ms (${summary.paths['exit-file']} via the exit file, ${summary.paths.pass} via a pass); exit → died event received median ${summary.exitToDiedReceivedMs.median} ms`);
  writeResult('supervision-restart', { facts, summary, deaths });
}

main().catch(async (error) => {
  log(`supervision-restart failed: ${error.stack ?? error}`);
  await cleanupNode(NODE).catch(() => {});
  process.exitCode = 1;
});
