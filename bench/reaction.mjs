// Reaction: the agent runs with 0 pods; one manifest is written and renamed into the watched
// directory; measured from the rename to the start of the agent's first podman process for that
// pod (`pod create --name <pod>`; the relist calls are not per pod). The start times come from a
// wrapper (PODVISOR_PODMAN) that appends `<epoch ns> <args>` to a file, then execs podman.
// 20 tries with distinct pod names; between tries the file is deleted and the pod's removal
// awaited, so every try starts from 0 pods. The file is written PVB_REACTION_STAGED_MS (20) before
// it is renamed in, as a file prepared beforehand: the agent reads a file renamed in at once, but
// one renamed within the clock tick of its last write looks like one still being written and
// waits out the 20 ms settle (PVB_REACTION_STAGED_MS=0 measures that case).
import { spawn } from 'node:child_process';
import { unlinkSync } from 'node:fs';
import {
  Agent, cleanupNode, podman, freshDir, join, log, makeWrapper, manifestYaml, nowMs, readCalls, renameSync,
  round, sleep, stats, writeFileSync, writeResult, machineFacts,
} from './lib.mjs';

const NODE = 'pvb-react';
const TRIES = Number(process.env.PVB_REACTION_TRIES ?? 20);
const STAGED_MS = Number(process.env.PVB_REACTION_STAGED_MS ?? 20);

/** From spawn() in this process to the wrapper's timestamp: the method's own lag (10 runs of `podman --version`). */
async function calibrate(wrapper, file) {
  writeFileSync(file, '');
  const lags = [];
  for (let i = 0; i < 10; i++) {
    const before = readCalls(file).length;
    const t = nowMs();
    await new Promise((resolve) => spawn(wrapper, ['--version'], { env: { ...process.env, PVB_CALLS_FILE: file }, stdio: 'ignore' }).on('exit', resolve));
    lags.push(readCalls(file)[before].ms - t);
  }
  // the same through execa, as the agent calls podman (same options as PodmanCli.run)
  const { execa } = await import('execa');
  const execaLags = [];
  for (let i = 0; i < 10; i++) {
    const before = readCalls(file).length;
    const t = nowMs();
    await execa(wrapper, ['--version'], { reject: false, stdin: 'ignore', timeout: 60_000, forceKillAfterDelay: 2000, maxBuffer: 64 * 1024 * 1024, stripFinalNewline: true, env: { PVB_CALLS_FILE: file } });
    execaLags.push(readCalls(file)[before].ms - t);
  }
  return { spawnToWrapperTimestampMs: stats(lags, 2), execaToWrapperTimestampMs: stats(execaLags, 2) };
}

async function main() {
  const facts = await machineFacts();
  const dir = freshDir('reaction');
  const [watch, stage, state] = ['watch', 'stage', 'state'].map((d) => freshDir('reaction', d));
  const callsFile = join(dir, 'calls.txt');
  writeFileSync(callsFile, '');
  const wrapper = makeWrapper(dir);
  await cleanupNode(NODE);
  const calibration = await calibrate(wrapper, join(dir, 'calibration.txt'));
  log(`reaction: ${TRIES} tries, node ${NODE}, wrapper ${wrapper}`);
  const agent = new Agent({
    node: NODE, manifestDir: watch, stateDir: state, logFile: join(dir, 'agent.log'), logLevel: 'debug',
    env: { PODVISOR_PODMAN: wrapper, PVB_CALLS_FILE: callsFile },
  });
  const tries = [];
  try {
    await agent.ready();
    await agent.waitFor((e) => e.message === 'podman' && String(e.args).startsWith('pod ps'), 30_000, 'first listing');
    await sleep(1000);
    for (let i = 1; i <= TRIES; i++) {
      const name = `pvb-rx-${String(i).padStart(2, '0')}`;
      const podmanName = `default_${name}-${NODE}`;
      const key = `default/${name}-${NODE}`;
      const file = `${name}.yaml`;
      const fromLine = agent.lines.length;
      const fromCall = readCalls(callsFile).length;
      writeFileSync(join(stage, file), manifestYaml(name));
      if (STAGED_MS > 0) await sleep(STAGED_MS);
      const t0 = nowMs();
      renameSync(join(stage, file), join(watch, file));
      let create;
      const deadline = nowMs() + 15_000;
      while (!create) {
        create = readCalls(callsFile).slice(fromCall).find((c) => c.args.startsWith(`pod create --name ${podmanName} `));
        if (create) break;
        if (nowMs() > deadline) throw new Error(`no pod create for ${podmanName} within 15 s`);
        await sleep(5);
      }
      const calls = readCalls(callsFile).slice(fromCall);
      const listStart = calls.filter((c) => c.ms < create.ms && /^(pod ps|ps --all)/.test(c.args));
      const snapshot = agent.lines.slice(fromLine).find((e) => e.message === 'desired state' && e.pods === 1);
      const logCreate = await agent.waitFor((e) => e.message === 'podman' && String(e.args).startsWith('pod create') && agent.lines.indexOf(e) >= fromLine, 15_000, 'pod create log line');
      const result = {
        try: i,
        ms: round(create.ms - t0, 2),
        // breakdown (the agent log's timestamps have 1 ms resolution)
        snapshotMs: snapshot ? round(snapshot.at - t0, 1) : null,
        listStartMs: listStart.length ? round(Math.min(...listStart.map((c) => c.ms)) - t0, 2) : null,
        listCalls: listStart.length,
        logCreateStartMs: round(logCreate.at - logCreate.ms - t0, 1),
      };
      // the wrapper's own start-up (spawn, bash, date) as seen from the agent's side (±1 ms)
      result.wrapperLagMs = round(result.ms - result.logCreateStartMs, 1);
      tries.push(result);
      log(`try ${i}: ${result.ms} ms (snapshot at ${result.snapshotMs}, listing started ${result.listStartMs})`);
      // Wait for the pod to be up (or its failure), delete the file, wait until the pod is gone
      // (by the agent, or by anything else on this shared machine).
      const up = await agent.waitFor((e) => e.pod === key && (e.message === 'pod started' || e.level === 'error'), 30_000, `pod started ${key}`);
      if (up.level === 'error') result.note = up.message;
      unlinkSync(join(watch, file));
      const goneBy = nowMs() + 30_000;
      while ((await podman(['pod', 'exists', podmanName], { allowFail: true })).code === 0) {
        if (nowMs() > goneBy) throw new Error(`pod ${podmanName} not removed within 30 s`);
        await sleep(200);
      }
      await sleep(800 + Math.random() * 400); // quiet again (the kill's trailing pass), at a random phase
    }
  } finally {
    await agent.stop();
    await cleanupNode(NODE);
  }
  const ms = stats(tries.map((t) => t.ms));
  const summary = {
    tries: TRIES,
    stagedMs: STAGED_MS,
    method: `wrapper (PODVISOR_PODMAN): ${wrapper.endsWith('.sh') ? 'bash `date +%s%N`' : 'compiled, clock_gettime'} at wrapper start vs performance.timeOrigin+now() just before rename()`,
    reactionMs: ms,
    snapshotMs: stats(tries.map((t) => t.snapshotMs).filter((x) => x !== null)),
    listStartMs: stats(tries.map((t) => t.listStartMs).filter((x) => x !== null)),
    logCreateStartMs: stats(tries.map((t) => t.logCreateStartMs)),
    wrapperLagMs: stats(tries.map((t) => t.wrapperLagMs)),
    calibration,
    target: 'median <= 20 ms',
    targetMet: ms.median <= 20,
  };
  log(`reaction: median ${ms.median} ms, p95 ${ms.p95} ms`);
  writeResult('reaction', { facts, summary, tries });
}

main().catch(async (error) => {
  log(`reaction failed: ${error.stack ?? error}`);
  await cleanupNode(NODE).catch(() => {});
  process.exitCode = 1;
});
