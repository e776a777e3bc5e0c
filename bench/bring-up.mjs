// Bring-up: 20 one-container manifests dropped at once into the watched directory of a running
// agent, timed until the agent's own log says the last of them started (its PodStarted line,
// after its `podman run` returned), against `podman kube play` of the same 20 files one after
// another. No poller runs during either side: a `podman ps` every 100 ms slowed serial kube play
// by half and the agent less, which flattered the agent (PVB_BRINGUP_POLLER=1 brings it back, and
// the end is then the poller's). Alternating A K A K A K; ratios are taken within the run. Also
// counts the podman processes the agent started (from its debug log).
import {
  Agent, CLK_TCK, procSample, callKind, cleanupNode, cleanupPodsByName, dropFiles, freshDir, join, log, manifestYaml, nowMs, podman,
  IMAGE, round, runningAppContainers, sleep, stats, waitRunning, writeFileSync, writeResult, machineFacts,
} from './lib.mjs';

const NODE = 'pvb-bringup';
const N = Number(process.env.PVB_BRINGUP_PODS ?? 20);
const REPS = Number(process.env.PVB_BRINGUP_REPS ?? 3);
const names = Array.from({ length: N }, (_, i) => `pvb-bu-${String(i + 1).padStart(2, '0')}`);
const files = names.map((name) => ({ name: `${name}.yaml`, text: manifestYaml(name) }));
const POLLER = process.env.PVB_BRINGUP_POLLER === '1';

/** Runs `podman ps` for NODE every 100 ms until stopped (the same load the agent run sees). */
function backgroundPoller() {
  let stop = false;
  let polls = 0;
  const done = (async () => {
    while (!stop) {
      const started = nowMs();
      await podman(['ps', '--filter', `label=io.podvisor.node=${NODE}`, '--format', 'json'], { allowFail: true });
      polls++;
      const wait = 100 - (nowMs() - started);
      if (wait > 0 && !stop) await sleep(wait);
    }
  })();
  return { async stop() { stop = true; await done; return polls; } };
}

async function agentRep(rep) {
  const dir = freshDir('bringup', `agent-${rep}`);
  const [watch, stage, state] = ['watch', 'stage', 'state'].map((d) => freshDir('bringup', `agent-${rep}`, d));
  await cleanupNode(NODE);
  const agent = new Agent({ node: NODE, manifestDir: watch, stateDir: state, logFile: join(dir, 'agent.log'), logLevel: 'debug' });
  try {
    await agent.ready();
    await agent.waitFor((e) => e.message === 'podman' && String(e.args).startsWith('ps --all'), 30_000, 'first listing');
    await agent.waitFor((e) => e.message === 'podman' && String(e.args).startsWith('pod ps'), 30_000, 'first listing');
    await sleep(500);
    const from = agent.lines.length;
    const cpu0 = procSample(agent.pid);
    const t0 = dropFiles(stage, watch, files);
    let seen;
    if (POLLER) {
      seen = await waitRunning(NODE, N, { intervalMs: 100 });
    } else {
      const started = new Set();
      const last = await agent.waitFor((e) => e.event === 'PodStarted' && (started.add(e.pod), started.size === N), 120_000, `${N} PodStarted lines`);
      seen = { seenAt: last.receivedAt, polls: 0 };
    }
    const cpu1 = procSample(agent.pid);
    const ms = seen.seenAt - t0;
    if (!POLLER) {
      const { running } = await runningAppContainers(NODE); // after the timing: a check, not a measure
      if (running !== N) throw new Error(`agent: the log says ${N} started, podman runs ${running}`);
    }
    await sleep(1500); // trailing passes, so their calls are counted
    const lines = agent.lines.slice(from);
    const calls = lines.filter((e) => e.message === 'podman');
    const byKind = {};
    for (const call of calls) byKind[callKind(String(call.args))] = (byKind[callKind(String(call.args))] ?? 0) + 1;
    const perPodCalls = calls.filter((c) => !callKind(String(c.args)).startsWith('relist')).length;
    const runs = calls.filter((c) => callKind(String(c.args)) === 'run');
    const creates = calls.filter((c) => callKind(String(c.args)) === 'pod create');
    const snapshot = lines.find((e) => e.message === 'desired state' && e.pods === N);
    const firstCreateStart = Math.min(...creates.map((c) => c.at - c.ms));
    const lastRunEnd = Math.max(...runs.map((c) => c.at));
    const busyMs = [...creates, ...runs].reduce((a, c) => a + c.ms, 0);
    const result = {
      kind: 'agent', rep, ms: round(ms), polls: seen.polls,
      logLastRunEndMs: round(lastRunEnd - t0), // agent log timestamps have 1 ms resolution
      snapshotAfterMs: snapshot ? round(snapshot.at - t0) : null,
      firstPodCreateStartMs: round(firstCreateStart - t0),
      podmanCalls: calls.length, byKind, perPodCalls: round(perPodCalls / N, 2),
      relistPasses: byKind['relist:pod ps'] ?? 0,
      podCreateMs: stats(creates.map((c) => c.ms)), runMs: stats(runs.map((c) => c.ms)),
      // sum of pod create + run durations over the wall time: podman work in flight on average
      effectiveConcurrency: round(busyMs / (lastRunEnd - firstCreateStart), 2),
      errors: lines.filter((e) => e.level === 'error').map((e) => e.message).slice(0, 5),
      podsStarted: lines.filter((e) => e.message === 'pod started').length,
      // the agent's own CPU (node: planning, execa, logging, JSON parsing) until all ran, and its
      // reaped podman clients' CPU; on 2 cores, both compete with podman for the same CPUs
      agentCpuMs: round(((cpu1.utime + cpu1.stime) - (cpu0.utime + cpu0.stime)) * 1000 / CLK_TCK, 0),
      podmanClientsCpuMs: round(((cpu1.cutime + cpu1.cstime) - (cpu0.cutime + cpu0.cstime)) * 1000 / CLK_TCK, 0),
    };
    log(`agent rep ${rep}: ${result.ms} ms (log: last run ended at ${result.logLastRunEndMs} ms), ${calls.length} podman calls, ${result.perPodCalls}/pod + ${result.relistPasses} relist passes`);
    return result;
  } finally {
    await agent.stop();
    await cleanupNode(NODE);
  }
}

async function kubeRep(rep) {
  const dir = freshDir('bringup', `kube-${rep}`);
  for (const file of files) writeFileSync(join(dir, file.name), file.text);
  await cleanupPodsByName(names);
  const poller = POLLER ? backgroundPoller() : { stop: async () => 0 };
  const perFile = [];
  let ms;
  let polls;
  const t0 = nowMs();
  try {
    for (const file of files) {
      const r = await podman(['kube', 'play', join(dir, file.name)]);
      perFile.push(r.ms);
    }
  } finally {
    ms = nowMs() - t0;
    polls = await poller.stop();
  }
  const { stdout } = await podman(['ps', '--format', 'json']);
  const running = (JSON.parse(stdout || '[]') ?? []).filter((c) => !c.IsInfra && c.State === 'running' && (c.Names ?? []).some((n) => names.includes(n.replace(/-main$/, '')))).length;
  await cleanupPodsByName(names);
  const result = { kind: 'kube-play', rep, ms: round(ms), polls, running, perFileMs: stats(perFile) };
  log(`kube play rep ${rep}: ${result.ms} ms (${running}/${N} running)`);
  if (running !== N) throw new Error(`kube play: only ${running}/${N} containers running`);
  return result;
}

/** Diagnostic, not the agent: the agent's two podman calls per pod (same arguments, by hand), lanes at once. */
async function rawTwoCalls(lanes) {
  const node = `${NODE}-raw`;
  await cleanupNode(node);
  const poller = backgroundPoller();
  const createMs = [];
  const runMs = [];
  let next = 0;
  let ms;
  const t0 = nowMs();
  const lane = async () => {
    while (next < N) {
      const name = `${names[next++]}-${node}`;
      const pod = `default_${name}`;
      const labels = ['io.pvb.raw=true', `io.podvisor.node=${node}`, 'io.podvisor.namespace=default', `io.podvisor.name=${name}`,
        'io.podvisor.uid=00000000-0000-0000-0000-000000000000', 'io.podvisor.hash=0000000000000000'].flatMap((l) => ['--label', l]);
      const c = await podman(['pod', 'create', '--name', pod, ...labels, '--label', 'io.podvisor.source=/dev/null', '--label', 'io.podvisor.grace-period=1',
        '--share', 'ipc,net,uts', '--hostname', name, '--infra-name', `${pod}-infra`]);
      createMs.push(c.ms);
      const r = await podman(['run', '--detach', '--pod', pod, '--name', `${pod}_main`, ...labels, '--label', 'io.podvisor.container=main',
        '--label', 'io.podvisor.container-kind=app', '--restart', 'no', '--pull', 'missing', '--stop-timeout', '1',
        '--entrypoint', '["sleep","3600"]', IMAGE]);
      runMs.push(r.ms);
    }
  };
  try {
    await Promise.all(Array.from({ length: lanes }, lane));
  } finally {
    ms = nowMs() - t0;
    await poller.stop();
  }
  const { running } = await runningAppContainers(node);
  await cleanupNode(node);
  const result = { kind: `raw pod create + run, ${lanes} at once`, lanes, ms: round(ms), running, podCreateMs: stats(createMs), runMs: stats(runMs) };
  log(`raw 2 calls/pod, ${lanes} lane(s): ${result.ms} ms (${running}/${N} running)`);
  return result;
}

async function main() {
  const facts = await machineFacts();
  log(`bring-up: ${N} pods, ${REPS} reps, node ${NODE}`);
  await cleanupNode(NODE);
  await cleanupPodsByName(names);
  // Warm-up (image and pause image in cache, podman's storage warmed): one kube play, not timed.
  const warm = freshDir('bringup', 'warm');
  writeFileSync(join(warm, 'w.yaml'), manifestYaml('pvb-bu-warm'));
  await podman(['kube', 'play', join(warm, 'w.yaml')]);
  await cleanupPodsByName(['pvb-bu-warm']);

  const reps = [];
  for (let rep = 1; rep <= REPS; rep++) {
    reps.push(await agentRep(rep));
    reps.push(await kubeRep(rep));
  }
  // Diagnostics after the alternating reps: podman's own cost of the agent's call pattern.
  const raw = process.env.PVB_BRINGUP_RAW === '0' ? [] : [await rawTwoCalls(1), await rawTwoCalls(2)];
  const agent = reps.filter((r) => r.kind === 'agent');
  const kube = reps.filter((r) => r.kind === 'kube-play');
  const pairRatios = agent.map((a, i) => round(a.ms / kube[i].ms, 3));
  const agentStats = stats(agent.map((r) => r.ms));
  const kubeStats = stats(kube.map((r) => r.ms));
  const summary = {
    pods: N, reps: REPS, poller: POLLER,
    agentMs: agentStats, kubePlayMs: kubeStats,
    pairRatios, medianPairRatio: stats(pairRatios, 3).median,
    ratioOfMedians: round(agentStats.median / kubeStats.median, 3),
    agentLogLastRunEndMs: stats(agent.map((r) => r.logLastRunEndMs)),
    perPodCalls: stats(agent.map((r) => r.perPodCalls)),
    relistPasses: stats(agent.map((r) => r.relistPasses)),
    agentCpuMs: stats(agent.map((r) => r.agentCpuMs)),
    podmanClientsCpuMs: stats(agent.map((r) => r.podmanClientsCpuMs)),
    target: 'ratio agent/kube-play <= 0.8, measured without a poller',
    raw: raw.map((r) => ({ ...r, ratioToKubePlayMedian: round(r.ms / kubeStats.median, 3) })),
  };
  summary.targetMet = summary.medianPairRatio <= 0.8;
  log(`bring-up: agent median ${round(agentStats.median)} ms, kube play median ${round(kubeStats.median)} ms, ratio ${summary.medianPairRatio}`);
  writeResult('bring-up', { facts, summary, reps });
}

main().catch(async (error) => {
  log(`bring-up failed: ${error.stack ?? error}`);
  await cleanupNode(NODE).catch(() => {});
  await cleanupPodsByName([...names, 'pvb-bu-warm']).catch(() => {});
  await cleanupNode(`${NODE}-raw`).catch(() => {});
  process.exitCode = 1;
});
