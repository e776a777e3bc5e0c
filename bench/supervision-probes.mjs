// Supervision, probes: what probing costs. 20 pods, each one busybox httpd serving a file, run by
// the agent more than once in this run, each time with its own node name and a fresh agent (log
// level info, default intervals): first without probes, then with an exec liveness probe
// (`cat /www/index.html`) and an httpGet readiness probe (GET /index.html on the pod's own
// 127.0.0.1:8080) on every container, period 10 s; and, with PVB_PROBES_BASELINE_CLI set to the
// dist/cli.js of an earlier build, the same probes run by that build (in a child process of this
// script, which runs only that phase), so that both are measured in one run on this noisy machine.
// Over a 60 s window of each: the agent's own CPU (utime+stime), the CPU of the child processes it
// started and reaped (cutime+cstime: podman clients, the OCI runtime for exec probes (or `podman
// exec`, before), `nsenter … busybox nc` for httpGet probes (or `nsenter … node
// netns-probe-main.js`, before), and the call-counting wrappers), its RSS each second, and the
// probe processes started, counted by wrappers in front of podman (PODVISOR_PODMAN), nsenter
// (first on the agent's PATH) and the OCI runtime (its path in the `podman info` the podman
// wrapper hands the agent).
// Work done outside the agent's process tree is shown separately, from the pods' cgroups (cgroupfs
// manager): podman's conmon processes daemonize out of the agent's tree into `<pod cgroup>/conmon`
// (the containers' conmons, and for each `podman exec` an exec conmon and the podman cleanup
// process it runs), and the exec'd commands and httpd's work land in the containers' cgroups.
// Afterwards, with the agent stopped (so its own probes no longer land in the pods' cgroups) and
// the probed pods still running, each probe's parts are run 10 times from this process
// (diagnostic): `podman exec`, the OCI runtime's exec, the nc connection, the old node helper.
import { execFile } from 'node:child_process';
import { chmodSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  Agent, CLI, CLK_TCK, REAL_PODMAN, callKind, cleanupNode, freshDir, join, log, machineFacts, mkdirSync, podman, procSample, sampleRssEverySecond, readCalls,
  round, sleep, stats, waitRunning, writeFileSync, writeResult,
} from './lib.mjs';
import {
  childCost, machineBusyPercentOfCore, machineCpu, makeTimestampWrapper, podCgroups, realBinary, sumCgroupCpuMs, wrapperCost,
} from './supervision-lib.mjs';

const N = Number(process.env.PVB_PROBES_PODS ?? 20);
const WINDOW_S = Number(process.env.PVB_PROBES_WINDOW_S ?? 60);
const PERIOD_S = 10;
/** The agent build to compare with (its dist/cli.js), run as phase 'baseline'. */
const BASELINE_CLI = process.env.PVB_PROBES_BASELINE_CLI;
const PHASES = (process.env.PVB_PROBES_PHASES ?? `none,probes${BASELINE_CLI ? ',baseline' : ''}`).split(',');
/** Internal: set by the parent for the child that runs the baseline phase; the phases go to this file. */
const PHASES_OUT = process.env.PVB_PROBES_PHASES_OUT;
const IMAGE = process.env.PODVISOR_TEST_IMAGE ?? 'localhost/busybox:podvisor';
const NSENTER = realBinary('nsenter');
const CRUN = realBinary('crun');
const BUSYBOX = realBinary('busybox');
const nodeOf = (kind) => `pvb-probes-${kind}`;

function manifest(name, probes) {
  const probeYaml = probes ? `
      livenessProbe:
        exec:
          command: ["cat", "/www/index.html"]
        periodSeconds: ${PERIOD_S}
        timeoutSeconds: 5
      readinessProbe:
        httpGet:
          path: /index.html
          port: http
        periodSeconds: ${PERIOD_S}
        timeoutSeconds: 5` : '';
  return `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: web
      image: ${IMAGE}
      imagePullPolicy: IfNotPresent
      command: ["sh", "-c", "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"]
      ports:
        - name: http
          containerPort: 8080${probeYaml}
`;
}

/** Diagnostic: each probe's parts, 10 runs each from this process, against one probed container. */
async function probeParts(node, name) {
  const container = `default_${name}-${node}_web`;
  const inspect = (await podman(['container', 'inspect', '--format', '{{.Id}} {{.State.Pid}} {{.OCIConfigPath}}', container])).stdout.trim().split(' ');
  const [id, pid, configPath] = inspect;
  const RUNS = 10;
  const pods = await podCgroups(node);
  const conmons = pods.map((path) => `${path}/conmon`);
  /** childCost plus the CPU that landed in the pods' cgroups meanwhile (all of it, and their conmon part). */
  const measure = async (label, file, args, options) => {
    const pod0 = sumCgroupCpuMs(pods).ms;
    const con0 = sumCgroupCpuMs(conmons).ms;
    const cost = await childCost(file, args, RUNS, options);
    await sleep(2000); // podman's exec cleanup process runs after the client returned: let it finish here
    const pod1 = sumCgroupCpuMs(pods).ms;
    const con1 = sumCgroupCpuMs(conmons).ms;
    return { label, ...cost, podsCgroupCpuMsPerRun: round((pod1 - pod0) / RUNS, 2), ofWhichConmonCgroupCpuMsPerRun: round((con1 - con0) / RUNS, 2) };
  };
  // The exec probe as the agent now makes it: the container's process with the probe's command.
  const dir = freshDir('supervision-probes', 'diagnostic');
  const processFile = join(dir, 'process.json');
  const spec = JSON.parse(readFileSync(configPath, 'utf8')).process;
  writeFileSync(processFile, JSON.stringify({ ...spec, args: ['cat', '/www/index.html'], terminal: false }));
  const get = 'GET /index.html HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: kube-probe/1.33\r\nAccept: */*\r\nConnection: close\r\n\r\n';
  const parts = [
    await measure('podman exec <id> cat /www/index.html (the exec probe before)', REAL_PODMAN, ['exec', id, 'cat', '/www/index.html']),
    await measure('crun exec --process <process.json> <id> (the exec probe now)', CRUN, ['exec', '--process', processFile, id]),
    await measure('nsenter --net -- busybox nc 127.0.0.1 8080, a GET on stdin (the httpGet probe now)', NSENTER, ['--target', pid, '--net', '--', BUSYBOX, 'nc', '127.0.0.1', '8080'], { input: get }),
  ];
  if (BASELINE_CLI) {
    const script = join(dirname(BASELINE_CLI), 'prober', 'netns-probe-main.js');
    const request = JSON.stringify({ type: 'http', scheme: 'http', host: '127.0.0.1', port: 8080, path: '/index.html', headers: [], timeoutMs: 5000 });
    parts.push(await measure('nsenter --net -- node netns-probe-main.js (the httpGet probe before)', NSENTER, ['--target', pid, '--net', '--', process.execPath, script], { input: request }));
  }
  parts.push(await measure('node -e 0 (Node start-up alone)', process.execPath, ['-e', '0']));
  return { container, runs: RUNS, parts };
}

/**
 * A podman wrapper that records each call (as makeTimestampWrapper does) and hands out a `podman
 * info` whose OCI runtime path is `runtimeWrapper`, so that the agent's runtime calls are counted too.
 */
function makePodmanWrapper(path, callsFile, runtimeWrapper) {
  writeFileSync(path, `#!/bin/bash
t=\${EPOCHREALTIME/[.,]/}
printf '%s000 %s\\n' "$t" "$*" >> ${JSON.stringify(callsFile)}
if [ "$1" = info ]; then
  ${JSON.stringify(REAL_PODMAN)} "$@" | sed 's#"${CRUN}"#"${runtimeWrapper}"#g'
  exit \${PIPESTATUS[0]}
fi
exec ${JSON.stringify(REAL_PODMAN)} "$@"
`);
  chmodSync(path, 0o755);
  return path;
}

/** The baseline phase, run by a child of this script whose agent is BASELINE_CLI. */
function baselinePhase() {
  const out = join(freshDir('supervision-probes', 'baseline-result'), 'phases.json');
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [new URL(import.meta.url).pathname], {
      env: { ...process.env, PVB_CLI: BASELINE_CLI, PVB_PROBES_PHASES: 'baseline', PVB_PROBES_PHASES_OUT: out },
      maxBuffer: 64 * 1024 * 1024,
    }, (error, _stdout, stderr) => {
      process.stderr.write(stderr);
      if (error) return reject(error);
      resolve(JSON.parse(readFileSync(out, 'utf8'))[0]);
    });
  });
}

async function phase(kind) {
  if (kind === 'baseline' && !PHASES_OUT) return baselinePhase();
  const probes = kind !== 'none';
  const node = nodeOf(kind);
  const dir = freshDir('supervision-probes', kind);
  const [watch, state, bin] = ['watch', 'state', 'bin'].map((d) => freshDir('supervision-probes', kind, d));
  const podmanCalls = join(dir, 'podman-calls.txt');
  const nsenterCalls = join(dir, 'nsenter-calls.txt');
  const runtimeCalls = join(dir, 'runtime-calls.txt');
  writeFileSync(podmanCalls, '');
  writeFileSync(nsenterCalls, '');
  writeFileSync(runtimeCalls, '');
  const runtimeWrapper = makeTimestampWrapper(join(bin, 'crun'), CRUN, runtimeCalls);
  const podmanWrapper = makePodmanWrapper(join(dir, 'podman-wrapper.sh'), podmanCalls, runtimeWrapper);
  makeTimestampWrapper(join(bin, 'nsenter'), NSENTER, nsenterCalls);
  const names = Array.from({ length: N }, (_, i) => `pvb-pr-${kind}-${String(i + 1).padStart(2, '0')}`);
  for (const name of names) writeFileSync(join(watch, `${name}.yaml`), manifest(name, probes));
  await cleanupNode(node);
  log(`supervision-probes: ${N} pods ${probes ? 'with' : 'without'} probes, node ${node}, window ${WINDOW_S} s, agent ${CLI}`);
  const agent = new Agent({
    node, manifestDir: watch, stateDir: state, logFile: join(dir, 'agent.log'), logLevel: 'info',
    env: { PODVISOR_PODMAN: podmanWrapper, PATH: `${bin}:${process.env.PATH}` },
  });
  try {
    await agent.ready();
    await waitRunning(node, N, { intervalMs: 500, timeoutMs: 240_000 });
    const cgroups = await podCgroups(node);
    const conmons = cgroups.map((path) => `${path}/conmon`);
    await sleep(3000); // the bring-up's trailing passes
    const fromLine = agent.lines.length;
    const s0 = procSample(agent.pid);
    const m0 = machineCpu();
    const pods0 = sumCgroupCpuMs(cgroups);
    const con0 = sumCgroupCpuMs(conmons);
    const rss = await sampleRssEverySecond(agent.pid, s0.at, WINDOW_S);
    const s1 = procSample(agent.pid);
    const m1 = machineCpu();
    const pods1 = sumCgroupCpuMs(cgroups);
    const con1 = sumCgroupCpuMs(conmons);
    const windowS = (s1.at - s0.at) / 1000;
    const inWindow = (c) => c.ms >= s0.at && c.ms <= s1.at;
    const calls = readCalls(podmanCalls).filter(inWindow);
    const helpers = readCalls(nsenterCalls).filter(inWindow);
    const runtimeExecs = readCalls(runtimeCalls).filter(inWindow).filter((c) => / exec /.test(` ${c.args} `)).length;
    const byKind = {};
    for (const call of calls) byKind[callKind(call.args)] = (byKind[callKind(call.args)] ?? 0) + 1;
    const execProbes = calls.filter((c) => c.args.startsWith('exec ')).length;
    const lines = agent.lines.slice(fromLine);
    const agentCpuMs = ((s1.utime + s1.stime) - (s0.utime + s0.stime)) * 1000 / CLK_TCK;
    const childrenCpuMs = ((s1.cutime + s1.cstime) - (s0.cutime + s0.cstime)) * 1000 / CLK_TCK;
    const pct = (ms) => round(ms / 1000 / windowS * 100, 2);
    const result = {
      kind, probes, agentCli: CLI, pods: N, node, windowS: round(windowS, 2),
      agentCpuMs: round(agentCpuMs, 0), agentCpuPercentOfCore: pct(agentCpuMs),
      childrenCpuMs: round(childrenCpuMs, 0), childrenCpuPercentOfCore: pct(childrenCpuMs),
      rssMB: { ...stats(rss.map((kb) => kb / 1024)), first: round(rss[0] / 1024, 1), last: round(rss.at(-1) / 1024, 1) },
      rssSamplesMB: rss.map((kb) => round(kb / 1024, 1)),
      podmanCalls: calls.length, byKind,
      execProbeProcesses: execProbes,
      runtimeExecProcesses: runtimeExecs,
      nsenterHelperProcesses: helpers.length,
      probeProcesses: execProbes + runtimeExecs + helpers.length,
      probeProcessesPerSecond: round((execProbes + runtimeExecs + helpers.length) / windowS, 2),
      expectedProbeRuns: probes ? 2 * N * WINDOW_S / PERIOD_S : 0,
      wrapperProcesses: calls.length + helpers.length + runtimeExecs,
      // outside the agent's process tree (cgroup CPU, ms): the pods' cgroups (containers: httpd,
      // exec'd commands; and <pod>/conmon: conmons, exec conmons and their podman cleanup processes)
      podsCgroupCpuMs: pods0.readable ? round(pods1.ms - pods0.ms, 0) : null,
      podsCgroupCpuPercentOfCore: pods0.readable ? pct(pods1.ms - pods0.ms) : null,
      ofWhichConmonCgroupsCpuMs: con0.readable ? round(con1.ms - con0.ms, 0) : null,
      podsCgroupsReadable: pods1.readable,
      machineBusyPercentOfCore: machineBusyPercentOfCore(m0, m1),
      // settled probe results that changed, over the agent's whole life (readiness settles to success once per container)
      probeLogLines: agent.lines.filter((e) => /probe (succeeded|failed)/.test(String(e.message))).map((e) => `${e.message}`).reduce((acc, m) => ({ ...acc, [m]: (acc[m] ?? 0) + 1 }), {}),
      warningsAndErrors: lines.filter((e) => e.level === 'error' || e.level === 'warn').map((e) => e.message).slice(0, 5),
      clkTck: CLK_TCK,
    };
    log(`supervision-probes ${kind}: agent CPU ${result.agentCpuPercentOfCore}% of a core, children ${result.childrenCpuPercentOfCore}%, RSS max ${result.rssMB.max} MB, ${execProbes} podman exec + ${runtimeExecs} runtime exec + ${helpers.length} nsenter in ${result.windowS} s`);
    await agent.stop();
    if (kind === 'probes') result.diagnostic = await probeParts(node, names[0]);
    return result;
  } finally {
    await agent.stop();
    await cleanupNode(node);
  }
}

async function main() {
  if (PHASES_OUT) {
    // The child running the baseline phase: its phases go to the parent, not to the results.
    const phases = [];
    for (const kind of PHASES) phases.push(await phase(kind));
    writeFileSync(PHASES_OUT, JSON.stringify(phases));
    return;
  }
  const facts = await machineFacts();
  const dir = freshDir('supervision-probes', 'calibration');
  mkdirSync(dir, { recursive: true });
  const wrapper = await wrapperCost(dir, 100);
  const phases = [];
  for (const kind of PHASES) phases.push(await phase(kind));
  const none = phases.find((p) => !p.probes);
  const summary = { pods: N, windowS: WINDOW_S, periodS: PERIOD_S, wrapper, baselineCli: BASELINE_CLI ?? null };
  for (const withProbes of phases.filter((p) => p.probes)) {
    if (!none) break;
    const runs = withProbes.probeProcesses || 1;
    const extraWrappers = withProbes.wrapperProcesses - none.wrapperProcesses;
    const key = withProbes.kind === 'probes' ? '' : `.${withProbes.kind}`;
    const delta = {
      agentCpuPercentOfCore: round(withProbes.agentCpuPercentOfCore - none.agentCpuPercentOfCore, 2),
      childrenCpuPercentOfCore: round(withProbes.childrenCpuPercentOfCore - none.childrenCpuPercentOfCore, 2),
      rssMaxMB: round(withProbes.rssMB.max - none.rssMB.max, 1),
      podsCgroupCpuMs: withProbes.podsCgroupCpuMs !== null && none.podsCgroupCpuMs !== null ? withProbes.podsCgroupCpuMs - none.podsCgroupCpuMs : null,
      podsCgroupCpuPercentOfCore: withProbes.podsCgroupCpuPercentOfCore !== null && none.podsCgroupCpuPercentOfCore !== null ? round(withProbes.podsCgroupCpuPercentOfCore - none.podsCgroupCpuPercentOfCore, 2) : null,
      machineBusyPercentOfCore: round(withProbes.machineBusyPercentOfCore - none.machineBusyPercentOfCore, 1),
    };
    delta.totalPercentOfCore = round(delta.agentCpuPercentOfCore + delta.childrenCpuPercentOfCore + (delta.podsCgroupCpuPercentOfCore ?? 0), 2);
    const perProbeRun = {
      agentCpuMs: round((withProbes.agentCpuMs - none.agentCpuMs) / runs, 2),
      childrenCpuMs: round((withProbes.childrenCpuMs - none.childrenCpuMs) / runs, 2),
      // of which the counting wrappers (bash) in front of each probe process
      wrapperCpuMs: round(extraWrappers * wrapper.wrapperCpuMsPerCall / runs, 2),
      podsCgroupCpuMs: delta.podsCgroupCpuMs !== null ? round(delta.podsCgroupCpuMs / runs, 2) : null,
    };
    perProbeRun.totalCpuMs = round(perProbeRun.agentCpuMs + perProbeRun.childrenCpuMs + (perProbeRun.podsCgroupCpuMs ?? 0), 2);
    summary[`delta${key}`] = delta;
    summary[`perProbeRun${key}`] = perProbeRun;
  }
  const base = summary['perProbeRun.baseline'];
  if (base && summary.perProbeRun) summary.perProbeRunRatioToBaseline = round(summary.perProbeRun.totalCpuMs / base.totalCpuMs, 3);
  log(`supervision-probes: agent CPU ${phases.map((p) => `${p.kind} ${p.agentCpuPercentOfCore}%`).join(', ')}; children ${phases.map((p) => `${p.kind} ${p.childrenCpuPercentOfCore}%`).join(', ')}`);
  writeResult('supervision-probes', { facts, summary, phases });
}

main().catch(async (error) => {
  log(`supervision-probes failed: ${error.stack ?? error}`);
  for (const kind of PHASES) await cleanupNode(nodeOf(kind)).catch(() => {});
  process.exitCode = 1;
});
