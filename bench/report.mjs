// Appends a dated section to bench/RESULTS.md from bench/results/{bring-up,reaction,idle,
// supervision-restart,supervision-probes}.json.
//   node bench/report.mjs                      every result present
//   node bench/report.mjs NAME...              only these (e.g. supervision-restart supervision-probes)
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BENCH, RESULTS_DIR } from './lib.mjs';

const only = process.argv.slice(2);
const read = (name) => {
  if (only.length > 0 && !only.includes(name)) return undefined;
  const path = join(RESULTS_DIR, `${name}.json`);
  return existsSync(path) ? JSON.parse(readFileSync(path, 'utf8')) : undefined;
};
const bringUp = read('bring-up');
const reaction = read('reaction');
const idle = read('idle');
const restart = read('supervision-restart');
const probes = read('supervision-probes');
const yesNo = (ok) => (ok ? '**met**' : '**not met**');
const f = (x, d = 1) => (typeof x === 'number' ? x.toFixed(d) : String(x));
const out = [];
const facts = (bringUp ?? reaction ?? idle ?? restart ?? probes)?.facts;
const provisional = process.env.PVB_QUIET === '1'
  ? ''
  : '**Provisional**: other sessions were running podman tests on this machine during this run; re-run on a quiet machine before drawing conclusions from absolute numbers (the ratios measured in the same run are the meaningful figures).';

out.push(`## Run ${facts?.date ?? new Date().toISOString()}`, '');
if (provisional) out.push(provisional, '');
if (facts) {
  out.push('Machine:', '');
  out.push(`- ${facts.cores} × ${facts.cpu}, ${facts.memTotalMB} MB RAM, Linux ${facts.kernel}, host ${facts.host}`);
  out.push(`- Node ${facts.node}, podman ${facts.podman}, ${facts.runtime}`);
  out.push(`- podvisor commit ${facts.gitCommit}${facts.gitDirty && !String(facts.gitCommit).includes('uncommitted') ? ' (src has uncommitted changes)' : ''}; agent ${facts.agentCli ?? 'dist/cli.js'} (sha256 of its .js files ${facts.agentDistSha ?? '?'})`);
  const load = [['bring-up', bringUp], ['reaction', reaction], ['idle', idle], ['supervision-restart', restart], ['supervision-probes', probes]].filter(([, r]) => r)
    .map(([name, r]) => `${name}: load ${r.facts.loadavg.join(' ')}, ${r.facts.podmanContainersOnHost} containers / ${r.facts.podmanPodsOnHost} pods on the host, ${r.facts.concurrentPodmanClients} podman clients running`);
  out.push(`- At each benchmark's start: ${load.join('; ')}`, '');
}

if (bringUp) {
  const s = bringUp.summary;
  out.push(`### Bring-up: ${s.pods} pods dropped at once vs \`podman kube play\` one after another`, '');
  const end = s.poller === false
    ? `until the agent's own log says the last of them started (its PodStarted line, after \`podman run\` returned); no poller runs during either side`
    : `until all ${s.pods} containers run, from \`podman ps --filter label=io.podvisor.node=pvb-bringup\` every 100 ms (the same poller also runs during kube play)`;
  out.push(`Agent: started on an empty directory (debug log, JSON), then the ${s.pods} files renamed in; time ${end}. Kube play: the same ${s.pods} files played sequentially, whole loop timed. Order A K A K A K.`, '');
  out.push('| rep | agent (ms) | agent, last `run` ended (log, ms) | kube play (ms) | ratio agent/kube | agent podman calls | per pod | relist passes | agent `pod create` median (ms) | agent `run` median (ms) | kube play per file median (ms) | agent effective concurrency |');
  out.push('|---|---|---|---|---|---|---|---|---|---|---|---|');
  const agents = bringUp.reps.filter((r) => r.kind === 'agent');
  const kubes = bringUp.reps.filter((r) => r.kind === 'kube-play');
  agents.forEach((a, i) => {
    const k = kubes[i];
    out.push(`| ${a.rep} | ${f(a.ms, 0)} | ${f(a.logLastRunEndMs, 0)} | ${f(k?.ms, 0)} | ${f(s.pairRatios[i], 3)} | ${a.podmanCalls} | ${a.perPodCalls} | ${a.relistPasses} | ${a.podCreateMs.median} | ${a.runMs.median} | ${k?.perFileMs.median} | ${a.effectiveConcurrency} |`);
  });
  out.push(`| **median** | **${f(s.agentMs.median, 0)}** | ${f(s.agentLogLastRunEndMs.median, 0)} | **${f(s.kubePlayMs.median, 0)}** | **${f(s.medianPairRatio, 3)}** | | ${s.perPodCalls.median} | ${s.relistPasses.median} | | | | |`, '');
  if (s.agentCpuMs) out.push(`Agent's own CPU from the drop until all ran (utime+stime): median ${s.agentCpuMs.median} ms (${agents.map((a) => a.agentCpuMs).join(', ')}); CPU of the podman clients it started and reaped in that time: median ${s.podmanClientsCpuMs.median} ms.`, '');
  out.push(`Ratio of the medians: ${f(s.ratioOfMedians, 3)}. Agent calls by kind (rep 1): ${Object.entries(agents[0].byKind).map(([k, v]) => `${k} ×${v}`).join(', ')}. First \`pod create\` started ${f(agents[0].firstPodCreateStartMs, 0)} ms after the drop (snapshot at ${f(agents[0].snapshotAfterMs, 0)} ms).`, '');
  if (s.raw?.length) {
    out.push('Diagnostic (not the agent; run once after the reps): the agent\'s call pattern by hand, `pod create` then `run --detach` per pod with the same arguments, so podman\'s own cost of two processes per pod is visible:', '');
    out.push('| variant | total (ms) | / kube play median | `pod create` median (ms) | `run` median (ms) |', '|---|---|---|---|---|');
    for (const r of s.raw) out.push(`| ${r.kind} | ${f(r.ms, 0)} | ${f(r.ratioToKubePlayMedian, 3)} | ${r.podCreateMs.median} | ${r.runMs.median} |`);
    out.push('');
  }
  out.push(`Target ratio ≤ 0.8, measured without a poller: ${yesNo(s.medianPairRatio <= 0.8 && s.poller === false)}.`, "");
}

if (reaction) {
  const s = reaction.summary;
  out.push(`### Reaction: one manifest renamed in → first \`pod create\` for it (${s.tries} tries)`, '');
  out.push(`Method: ${s.method}. ${s.stagedMs === undefined ? '' : `The file is written ${s.stagedMs} ms before the rename. `}Distinct pod names; between tries the file is deleted and the pod's removal awaited (0 pods at each try), then 0.8–1.2 s of quiet.`, '');
  out.push(`| | median | p95 | min | max |`, '|---|---|---|---|---|');
  out.push(`| rename → \`pod create\` starts (wrapper) | **${s.reactionMs.median}** | **${s.reactionMs.p95}** | ${s.reactionMs.min} | ${s.reactionMs.max} |`);
  out.push(`| rename → snapshot logged ('desired state', log ms) | ${s.snapshotMs.median} | ${s.snapshotMs.p95} | ${s.snapshotMs.min} | ${s.snapshotMs.max} |`);
  if (s.listStartMs.n) out.push(`| rename → first relist call started, if one started before the create (${s.listStartMs.n}/${s.tries} tries) | ${s.listStartMs.median} | ${s.listStartMs.p95} | ${s.listStartMs.min} | ${s.listStartMs.max} |`);
  out.push(`| rename → \`pod create\` start per the agent's own log (end − ms) | ${s.logCreateStartMs.median} | ${s.logCreateStartMs.p95} | ${s.logCreateStartMs.min} | ${s.logCreateStartMs.max} |`);
  if (s.wrapperLagMs) out.push(`| wrapper timestamp − agent's call start (spawn + the wrapper's start-up, ±1 ms) | ${s.wrapperLagMs.median} | ${s.wrapperLagMs.p95} | ${s.wrapperLagMs.min} | ${s.wrapperLagMs.max} |`);
  if (s.calibration) out.push(`| calibration: spawn() → wrapper timestamp, from the bench process (10 runs) | ${s.calibration.spawnToWrapperTimestampMs.median} | ${s.calibration.spawnToWrapperTimestampMs.p95} | ${s.calibration.spawnToWrapperTimestampMs.min} | ${s.calibration.spawnToWrapperTimestampMs.max} |`);
  if (s.calibration?.execaToWrapperTimestampMs) out.push(`| calibration: execa() → wrapper timestamp, from the bench process (10 runs) | ${s.calibration.execaToWrapperTimestampMs.median} | ${s.calibration.execaToWrapperTimestampMs.p95} | ${s.calibration.execaToWrapperTimestampMs.min} | ${s.calibration.execaToWrapperTimestampMs.max} |`);
  out.push('');
  out.push(`Raw (ms): ${reaction.tries.map((t) => f(t.ms, 1)).join(', ')}`, '');
  out.push(`Target: ${s.target}: ${yesNo(s.targetMet)}.`, '');
}

if (idle) {
  const s = idle.summary;
  out.push(`### Idle: pods running, nothing changing, ${s.windowS} s window (relist ${s.relistIntervalS} s, resync ${s.resyncIntervalS} s, log level info)`, '');
  out.push('| pods | RSS max (MB) | RSS mean (MB) | RSS first / last (MB), s > 80 MB | agent CPU (% of a core) | CPU of its reaped podman clients (% of a core) | podman calls | passes | calls per pass (all / median pass) | calls in each pass | calls by kind |');
  out.push('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const p of idle.phases) {
    out.push(`| ${p.pods} | ${p.rssMB.max} | ${p.rssMB.mean} | ${p.rssMB.first} / ${p.rssMB.last}${p.rssMB.secondsAbove80 === undefined ? '' : `, ${p.rssMB.secondsAbove80} s`} | ${f(p.cpuPercentOfCore, 2)} (${p.cpuTicks} ticks) | ${f(p.childrenCpuPercentOfCore, 2)} | ${p.podmanCalls} | ${p.passes} | ${p.callsPerPass} / ${p.callsPerSteadyPass} | ${(p.perPass ?? []).join(' ')} | ${Object.entries(p.byKind).map(([k, v]) => `${k} ×${v}`).join(', ')} |`);
  }
  out.push('');
  for (const p of idle.phases) {
    if (p.podsRecreated > 0) out.push(`Note (${p.pods} pod(s)): ${p.podsRecreated} \`pod create\` in the window while the agent stopped/removed nothing (${p.agentStopOrRmCalls} stop/rm calls): the pod was removed by something else on this shared machine and the agent recreated it at its next relist. Those passes carry 2 extra calls; the median pass is the steady-state figure.`, '');
  }
  if (s.baselines) out.push(`For scale, RSS of a bare idle process: ${s.baselines.map((b) => `${b.label}: ${b.rssMB} MB`).join('; ')}.`, '');
  out.push(`Targets: RSS ≤ 80 MB (max) ${yesNo(s.targetsMet.rss)}; CPU ≤ 1% of a core ${yesNo(s.targetsMet.cpu)}; calls per pass equal for 1 and 20 pods (median pass) ${yesNo(s.targetsMet.callsPerPass)}.`, '');
}

if (restart) {
  const s = restart.summary;
  const row = (label, st, bold = false) => (st?.n ? `| ${label} | ${bold ? `**${st.median}**` : st.median} | ${bold ? `**${st.p95}**` : st.p95} | ${st.min} | ${st.max} |` : `| ${label} | – | – | – | – |`);
  out.push(`### Supervision, restart: container exit → the agent's \`podman start\` (${s.deaths} deaths, zero back-off)`, '');
  out.push(`One pod, restartPolicy Always, container \`sleep 1; echo exit | ts %.s; exit 1\` (busybox \`date\` has no %N; \`ts %.s\` prints µs), agent \`${s.agentArgs}\`. Method: ${s.method}. ${s.warmup} warm-up death, then ${s.deaths} measured. The container's timestamp is taken just before \`exit 1\`, so every "exit →" figure includes the shell's own exit and is slightly pessimistic.`, '');
  out.push('| ms | median | p95 | min | max |', '|---|---|---|---|---|');
  out.push(row('exit → `podman start <id>` starts (wrapper timestamp)', s.exitToStartMs, true));
  out.push(row("exit → conmon's exit file mtime (= podman's FinishedAt; the kernel's coarse clock, can be < 0)", s.exitToExitFileMtimeMs));
  out.push(row('exit → exit file seen by the benchmark (its own inotify watch)', s.exitToBenchInotifyMs));
  out.push(row('exit file seen by the benchmark → `podman start` starts', s.benchInotifyToStartMs));
  out.push(row("exit → agent logs 'restarting container' (1 ms log resolution)", s.exitToRestartLogMs));
  out.push(row("exit → agent starts the call (its log: end − duration)", s.exitToAgentCallStartMs));
  out.push(row("wrapper timestamp − agent's call start (spawn + bash)", s.wrapperLagMs));
  out.push(row('exit → `podman start` returned (container running again)', s.exitToStartDoneMs));
  out.push(row('`podman start` duration', s.startCallMs));
  out.push(row("exit → `died` event's own time (podman's, written after its cleanup)", s.exitToDiedEventTimeMs));
  out.push(row('exit → `died` event received (the benchmark\'s `podman events`)', s.exitToDiedReceivedMs));
  out.push(row('calibration: execa() → wrapper timestamp (10 runs)', s.calibration?.execaToWrapperTimestampMs));
  out.push('');
  out.push(`How the agent learnt of each exit: ${s.paths['exit-file']} with no listing between the exit and the start (the exit-file fast path), ${s.paths.pass} after a listing (a pass). \`podman start\` attempts per death: median ${s.startAttempts.median}, max ${s.startAttempts.max}. Seen: ${s.containerTimestamps} container timestamps, ${s.exitFilesSeen} exit files, ${s.diedEventsSeen} died events.${s.agentErrors?.length ? ` Agent errors: ${s.agentErrors.join('; ')}.` : ''}`, '');
  out.push(`Raw exit → start (ms): ${restart.deaths.filter((d) => !d.warmup).map((d) => f(d.exitToStartMs, 1)).join(', ')}`, '');
  out.push(`Target median ≤ 100 ms: ${yesNo(s.targetMet)}.`, '');
}

if (probes) {
  const s = probes.summary;
  out.push(`### Supervision, probes: ${s.pods} pods, exec liveness + httpGet readiness every ${s.periodS} s, against the same pods without probes (${s.windowS} s windows)`, '');
  out.push(`Each pod: busybox httpd serving /www/index.html on the pod's port 8080. Liveness \`exec: cat /www/index.html\` (\`podman exec\`), readiness \`httpGet /index.html\` (\`nsenter --net\` + node netns-probe-main.js, to the pod's own 127.0.0.1). A fresh agent per phase (log level info, default intervals), its own node name, 3 s after all ${s.pods} run. Probe processes counted by wrappers in front of podman (PODVISOR_PODMAN) and nsenter (first on the agent's PATH); each wrapper costs ~${s.wrapper.wrapperCpuMsPerCall} ms CPU per call (bash in front of /bin/true, ${s.wrapper.times} runs), included in the children's figure. The pods' cgroups hold what runs outside the agent's process tree: the containers (httpd, the exec'd \`cat\`) and \`<pod>/conmon\` (the container's conmon, and per \`podman exec\` an exec conmon and the podman cleanup process it starts).`, '');
  out.push('| phase | agent CPU (% of a core) | CPU of its reaped children (% of a core) | pods\' cgroups CPU (% of a core; of which conmon, ms) | RSS max / mean (MB) | `podman exec` | nsenter helpers | probe processes / s (expected runs) | podman calls by kind | whole machine busy (% of a core, all sessions) |');
  out.push('|---|---|---|---|---|---|---|---|---|---|');
  for (const p of probes.phases) {
    out.push(`| ${p.probes ? 'with probes' : 'no probes'} | ${f(p.agentCpuPercentOfCore, 2)} (${p.agentCpuMs} ms) | ${f(p.childrenCpuPercentOfCore, 2)} (${p.childrenCpuMs} ms) | ${p.podsCgroupCpuPercentOfCore ?? '–'} (${p.ofWhichConmonCgroupsCpuMs ?? '–'} ms) | ${p.rssMB.max} / ${p.rssMB.mean} | ${p.execProbeProcesses} | ${p.nsenterHelperProcesses} | ${f(p.probeProcessesPerSecond, 2)} (${p.expectedProbeRuns}) | ${Object.entries(p.byKind).map(([k, v]) => `${k} ×${v}`).join(', ')} | ${p.machineBusyPercentOfCore} |`);
  }
  if (s.delta) out.push(`| **probes − none** | **${f(s.delta.agentCpuPercentOfCore, 2)}** | **${f(s.delta.childrenCpuPercentOfCore, 2)}** | **${s.delta.podsCgroupCpuPercentOfCore ?? '–'}** | ${f(s.delta.rssMaxMB, 1)} (max) | | | | | ${s.delta.machineBusyPercentOfCore} |`);
  out.push('');
  if (s.perProbeRun) out.push(`Per probe run (the differences over the probe processes counted): agent ${s.perProbeRun.agentCpuMs} ms CPU, its children ${s.perProbeRun.childrenCpuMs} ms (of which the counting wrapper ~${s.perProbeRun.wrapperCpuMs} ms), the pods' cgroups ${s.perProbeRun.podsCgroupCpuMs ?? '–'} ms.`, '');
  const diag = probes.phases.find((p) => p.diagnostic)?.diagnostic;
  if (diag) {
    out.push(`Diagnostic, after the window (agent stopped, pods still running): each probe's parts run ${diag.runs} times from the benchmark process against ${diag.container}; CPU of the reaped child per run (10 ms ticks, so a mean) and what landed in the pods' cgroups meanwhile:`, '');
    out.push('| command | wall median (ms) | child CPU per run (ms) | pods\' cgroups CPU per run (ms) | of which conmon (ms) | failures |', '|---|---|---|---|---|---|');
    for (const part of diag.parts) out.push(`| ${part.label} | ${part.wallMsMedian} | ${part.childCpuMsPerRun} | ${part.podsCgroupCpuMsPerRun} | ${part.ofWhichConmonCgroupCpuMsPerRun} | ${part.failures} |`);
    out.push('');
  }
  const settled = probes.phases.find((p) => p.probes)?.probeLogLines;
  if (settled) out.push(`Settled probe results over the probed agent's life: ${Object.entries(settled).map(([k, v]) => `${k} ×${v}`).join(', ') || 'none logged'}.`, '');
  for (const p of probes.phases) if (p.warningsAndErrors?.length) out.push(`Agent warnings/errors in the ${p.kind} window: ${p.warningsAndErrors.join('; ')}`, '');
}

const path = join(BENCH, 'RESULTS.md');
const header = `# podvisor benchmarks

Produced by \`bash bench/run.sh\` (bring-up.mjs, reaction.mjs, idle.mjs, supervision-restart.mjs,
supervision-probes.mjs; raw JSON in bench/results/).
Benchmarks, not tests: this machine is shared and noisy, so compare the ratios measured within one
run rather than absolute times across runs. Each run appends a dated section below.

`;
const previous = existsSync(path) ? readFileSync(path, 'utf8') : header;
writeFileSync(path, `${previous.trimEnd()}\n\n${out.join('\n')}\n`);
process.stderr.write(`appended a section to ${path}\n`);
