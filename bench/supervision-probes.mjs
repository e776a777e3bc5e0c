// Supervision, probes: what probing costs. 20 pods, each one busybox httpd serving a file, run by
// the agent twice in this run, each time with its own node name and a fresh agent (log level
// info, default intervals): first without probes, then with an exec liveness probe
// (`cat /www/index.html`) and an httpGet readiness probe (GET /index.html on the pod's own
// 127.0.0.1:8080) on every container, period 10 s. Over a 60 s window of each: the agent's own
// CPU (utime+stime), the CPU of the child processes it started and reaped (cutime+cstime: podman
// clients, `podman exec` for exec probes, `nsenter … node netns-probe-main.js` for httpGet probes,
// and the call-counting wrappers), its RSS each second, and the probe processes started, counted
// by wrappers in front of podman (PODVISOR_PODMAN) and nsenter (first on the agent's PATH).
// Work done outside the agent's process tree is shown separately, from the pods' cgroups (cgroupfs
// manager): podman's conmon processes daemonize out of the agent's tree into `<pod cgroup>/conmon`
// (the containers' conmons, and for each `podman exec` an exec conmon and the podman cleanup
// process it runs), and the exec'd commands and httpd's work land in the containers' cgroups.
// Afterwards, with the agent stopped (so its own probes no longer land in the pods' cgroups) and
// the probed pods still running, each probe's parts are run 10 times from this process
// (diagnostic): `podman exec`, the nsenter+node helper, and cheaper alternatives.
import { dirname } from 'node:path';
import {
  Agent, CLI, CLK_TCK, REAL_PODMAN, callKind, cleanupNode, freshDir, join, log, machineFacts, mkdirSync, podman, procSample, readCalls,
  round, sleep, stats, waitRunning, writeFileSync, writeResult,
} from './lib.mjs';
import {
  childCost, machineBusyPercentOfCore, machineCpu, makeTimestampWrapper, podCgroups, realBinary, sumCgroupCpuMs, wrapperCost,
} from './supervision-lib.mjs';

const N = Number(process.env.PVB_PROBES_PODS ?? 20);
const WINDOW_S = Number(process.env.PVB_PROBES_WINDOW_S ?? 60);
const PERIOD_S = 10;
const PHASES = (process.env.PVB_PROBES_PHASES ?? 'none,probes').split(',');
const IMAGE = process.env.PODVISOR_TEST_IMAGE ?? 'localhost/busybox:podvisor';
const NSENTER = realBinary('nsenter');
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
  const inspect = (await podman(['container', 'inspect', '--format', '{{.Id}} {{.State.Pid}} {{.State.CgroupPath}}', container])).stdout.trim().split(' ');
  const [id, pid] = inspect;
  const script = join(dirname(CLI), 'prober', 'netns-probe-main.js');
  const request = JSON.stringify({ type: 'http', scheme: 'http', host: '127.0.0.1', port: 8080, path: '/index.html', headers: [], timeoutMs: 5000 });
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
  const parts = [
    await measure('podman exec <id> cat /www/index.html (the exec probe)', REAL_PODMAN, ['exec', id, 'cat', '/www/index.html']),
    await measure('nsenter --net -- node netns-probe-main.js (the httpGet probe)', NSENTER, ['--target', pid, '--net', '--', process.execPath, script], { input: request }),
    await measure('node -e 0 (Node start-up alone)', process.execPath, ['-e', '0']),
    await measure('alternative: crun exec <id> cat /www/index.html (no podman client, no conmon)', realBinary('crun'), ['exec', id, 'cat', '/www/index.html']),
    await measure('alternative: nsenter --net -- busybox wget (a small static binary instead of node)', NSENTER, ['--target', pid, '--net', '--', '/bin/busybox', 'wget', '-q', '-O', '/dev/null', 'http://127.0.0.1:8080/index.html']),
  ];
  return { container, runs: RUNS, parts };
}

async function phase(kind) {
  const probes = kind === 'probes';
  const node = nodeOf(kind);
  const dir = freshDir('supervision-probes', kind);
  const [watch, state, bin] = ['watch', 'state', 'bin'].map((d) => freshDir('supervision-probes', kind, d));
  const podmanCalls = join(dir, 'podman-calls.txt');
  const nsenterCalls = join(dir, 'nsenter-calls.txt');
  writeFileSync(podmanCalls, '');
  writeFileSync(nsenterCalls, '');
  const podmanWrapper = makeTimestampWrapper(join(dir, 'podman-wrapper.sh'), REAL_PODMAN, podmanCalls);
  makeTimestampWrapper(join(bin, 'nsenter'), NSENTER, nsenterCalls);
  const names = Array.from({ length: N }, (_, i) => `pvb-pr-${kind}-${String(i + 1).padStart(2, '0')}`);
  for (const name of names) writeFileSync(join(watch, `${name}.yaml`), manifest(name, probes));
  await cleanupNode(node);
  log(`supervision-probes: ${N} pods ${probes ? 'with' : 'without'} probes, node ${node}, window ${WINDOW_S} s`);
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
    const rss = [];
    for (let k = 1; k <= WINDOW_S; k++) {
      const wait = s0.at + k * 1000 - performance.timeOrigin - performance.now();
      if (wait > 0) await sleep(wait);
      rss.push(procSample(agent.pid).rssKb);
    }
    const s1 = procSample(agent.pid);
    const m1 = machineCpu();
    const pods1 = sumCgroupCpuMs(cgroups);
    const con1 = sumCgroupCpuMs(conmons);
    const windowS = (s1.at - s0.at) / 1000;
    const inWindow = (c) => c.ms >= s0.at && c.ms <= s1.at;
    const calls = readCalls(podmanCalls).filter(inWindow);
    const helpers = readCalls(nsenterCalls).filter(inWindow);
    const byKind = {};
    for (const call of calls) byKind[callKind(call.args)] = (byKind[callKind(call.args)] ?? 0) + 1;
    const execProbes = calls.filter((c) => c.args.startsWith('exec ')).length;
    const lines = agent.lines.slice(fromLine);
    const agentCpuMs = ((s1.utime + s1.stime) - (s0.utime + s0.stime)) * 1000 / CLK_TCK;
    const childrenCpuMs = ((s1.cutime + s1.cstime) - (s0.cutime + s0.cstime)) * 1000 / CLK_TCK;
    const pct = (ms) => round(ms / 1000 / windowS * 100, 2);
    const result = {
      kind, probes, pods: N, node, windowS: round(windowS, 2),
      agentCpuMs: round(agentCpuMs, 0), agentCpuPercentOfCore: pct(agentCpuMs),
      childrenCpuMs: round(childrenCpuMs, 0), childrenCpuPercentOfCore: pct(childrenCpuMs),
      rssMB: { ...stats(rss.map((kb) => kb / 1024)), first: round(rss[0] / 1024, 1), last: round(rss.at(-1) / 1024, 1) },
      rssSamplesMB: rss.map((kb) => round(kb / 1024, 1)),
      podmanCalls: calls.length, byKind,
      execProbeProcesses: execProbes,
      nsenterHelperProcesses: helpers.length,
      probeProcesses: execProbes + helpers.length,
      probeProcessesPerSecond: round((execProbes + helpers.length) / windowS, 2),
      expectedProbeRuns: probes ? 2 * N * WINDOW_S / PERIOD_S : 0,
      wrapperProcesses: calls.length + helpers.length,
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
    log(`supervision-probes ${kind}: agent CPU ${result.agentCpuPercentOfCore}% of a core, children ${result.childrenCpuPercentOfCore}%, RSS max ${result.rssMB.max} MB, ${execProbes} podman exec + ${helpers.length} nsenter helpers in ${result.windowS} s`);
    await agent.stop();
    if (probes) result.diagnostic = await probeParts(node, names[0]);
    return result;
  } finally {
    await agent.stop();
    await cleanupNode(node);
  }
}

async function main() {
  const facts = await machineFacts();
  const dir = freshDir('supervision-probes', 'calibration');
  mkdirSync(dir, { recursive: true });
  const wrapper = await wrapperCost(dir, 100);
  const phases = [];
  for (const kind of PHASES) phases.push(await phase(kind));
  const none = phases.find((p) => !p.probes);
  const withProbes = phases.find((p) => p.probes);
  const summary = { pods: N, windowS: WINDOW_S, periodS: PERIOD_S, wrapper };
  if (none && withProbes) {
    const runs = withProbes.probeProcesses || 1;
    const extraWrappers = withProbes.wrapperProcesses - none.wrapperProcesses;
    summary.delta = {
      agentCpuPercentOfCore: round(withProbes.agentCpuPercentOfCore - none.agentCpuPercentOfCore, 2),
      childrenCpuPercentOfCore: round(withProbes.childrenCpuPercentOfCore - none.childrenCpuPercentOfCore, 2),
      rssMaxMB: round(withProbes.rssMB.max - none.rssMB.max, 1),
      podsCgroupCpuMs: withProbes.podsCgroupCpuMs !== null && none.podsCgroupCpuMs !== null ? withProbes.podsCgroupCpuMs - none.podsCgroupCpuMs : null,
      podsCgroupCpuPercentOfCore: withProbes.podsCgroupCpuPercentOfCore !== null && none.podsCgroupCpuPercentOfCore !== null ? round(withProbes.podsCgroupCpuPercentOfCore - none.podsCgroupCpuPercentOfCore, 2) : null,
      machineBusyPercentOfCore: round(withProbes.machineBusyPercentOfCore - none.machineBusyPercentOfCore, 1),
    };
    summary.perProbeRun = {
      agentCpuMs: round((withProbes.agentCpuMs - none.agentCpuMs) / runs, 2),
      childrenCpuMs: round((withProbes.childrenCpuMs - none.childrenCpuMs) / runs, 2),
      // of which the counting wrappers (bash) in front of each probe process
      wrapperCpuMs: round(extraWrappers * wrapper.wrapperCpuMsPerCall / runs, 2),
      podsCgroupCpuMs: withProbes.podsCgroupCpuMs !== null && none.podsCgroupCpuMs !== null ? round((withProbes.podsCgroupCpuMs - none.podsCgroupCpuMs) / runs, 2) : null,
    };
  }
  log(`supervision-probes: agent CPU ${phases.map((p) => `${p.kind} ${p.agentCpuPercentOfCore}%`).join(', ')}; children ${phases.map((p) => `${p.kind} ${p.childrenCpuPercentOfCore}%`).join(', ')}`);
  writeResult('supervision-probes', { facts, summary, phases });
}

main().catch(async (error) => {
  log(`supervision-probes failed: ${error.stack ?? error}`);
  for (const kind of PHASES) await cleanupNode(nodeOf(kind)).catch(() => {});
  process.exitCode = 1;
});
