// API load against supervision: how long a container's exit takes to reach the agent's restart
// decision while a hundred clients read the API, and what the API serves meanwhile.
// 20 pods: one whose container runs `sleep 1`, prints a timestamp (busybox `ts %.s`, µs) and exits
// 1, restarted at once (zero back-off), and 19 that sleep. The agent serves its API on 127.0.0.1.
// Phases, each PVB_API_LOAD_SECONDS long (60): no load; autocannon (a second process) with 100
// connections on `/api/v1/pods` (JSON, as a client lists); on `/api/v1/pods` as `kubectl get pods`
// asks (a Table); on the kubelet's `/pods`; and 100 open watches of pods, idle but for the
// restarter's changes. Per death: the container's own timestamp → the agent's first `podman start`
// for it, stamped by a wrapper in front of podman (as in supervision-restart.mjs); and, to tell
// where a slow one went, the exit file's mtime (when conmon wrote it: the agent cannot know
// sooner) and the agent's 'restarting container' line (its decision). Also the agent's RSS once
// a second and autocannon's requests/s, latency and errors.
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { createRequire } from 'node:module';
import { Agent, REAL_PODMAN, cleanupNode, freshDir, join, log, machineFacts, manifestYaml, nowMs, podman, procSample, readCalls, round, sleep, stats, writeFileSync, writeResult } from './lib.mjs';
import { exitsDirectory, makeTimestampWrapper, waitForContainerId, watchExitFiles } from './supervision-lib.mjs';

const NODE = 'pvb-apiload';
const SECONDS = Number(process.env.PVB_API_LOAD_SECONDS ?? 60);
const CLIENTS = Number(process.env.PVB_API_LOAD_CLIENTS ?? 100);
const PORT = Number(process.env.PVB_API_LOAD_PORT ?? 18255);
const NAME = 'pvb-al-restarter';
const CONTAINER = `default_${NAME}-${NODE}_main`;
const IMAGE = process.env.PODVISOR_TEST_IMAGE ?? 'localhost/busybox:podvisor';
const TABLE_ACCEPT = 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json';
const AUTOCANNON = createRequire(import.meta.url).resolve('autocannon/autocannon.js');

const restarter = `apiVersion: v1
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

/** autocannon in a process of its own for `seconds`: its JSON summary. */
function cannon(url, seconds, headers = {}) {
  const args = [AUTOCANNON, '-c', String(CLIENTS), '-d', String(seconds), '-j', '--timeout', '10'];
  for (const [name, value] of Object.entries(headers)) args.push('-H', `${name}=${value}`);
  args.push(url);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk) => { out += chunk; });
    child.stderr.on('data', (chunk) => { err += chunk; });
    child.on('exit', (code) => {
      try {
        resolve(JSON.parse(out));
      } catch {
        reject(new Error(`autocannon exited ${code}: ${err.slice(0, 500)}`));
      }
    });
  });
}

/** `count` watches of pods held open for `seconds`; the bytes and lines each received. */
async function watches(url, count, seconds) {
  const results = [];
  const requests = [];
  for (let i = 0; i < count; i++) {
    const entry = { lines: 0, bytes: 0, status: 0, error: '' };
    results.push(entry);
    const req = request(`${url}?watch=true&allowWatchBookmarks=true`, { agent: false }, (response) => {
      entry.status = response.statusCode ?? 0;
      response.on('data', (chunk) => {
        entry.bytes += chunk.length;
        for (const byte of chunk) if (byte === 10) entry.lines++;
      });
      response.on('error', () => {});
    });
    req.on('error', (error) => { entry.error = error.code ?? error.message; });
    req.end();
    requests.push(req);
  }
  await sleep(seconds * 1000);
  for (const req of requests) req.destroy();
  return {
    watches: count,
    ok: results.filter((r) => r.status === 200).length,
    errors: results.filter((r) => r.error).length,
    lines: stats(results.map((r) => r.lines), 0),
    bytes: results.reduce((a, r) => a + r.bytes, 0),
  };
}

function summariseCannon(result) {
  return {
    requests: result.requests.total,
    requestsPerSecond: round(result.requests.average, 0),
    latencyMs: { median: result.latency.p50, p99: result.latency.p99, max: result.latency.max },
    bytesPerSecond: round(result.throughput.average, 0),
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
  };
}

async function main() {
  const facts = await machineFacts();
  const dir = freshDir('api-load');
  const [watchDir, state] = ['watch', 'state'].map((d) => freshDir('api-load', d));
  const callsFile = join(dir, 'calls.txt');
  writeFileSync(callsFile, '');
  const wrapper = makeTimestampWrapper(join(dir, 'podman-wrapper.sh'), REAL_PODMAN, callsFile);
  await cleanupNode(NODE);
  const exitFiles = watchExitFiles(await exitsDirectory());
  writeFileSync(join(watchDir, `${NAME}.yaml`), restarter);
  for (let i = 1; i <= 19; i++) writeFileSync(join(watchDir, `pvb-al-${String(i).padStart(2, '0')}.yaml`), manifestYaml(`pvb-al-${String(i).padStart(2, '0')}`));
  const agent = new Agent({
    node: NODE, manifestDir: watchDir, stateDir: state, logFile: join(dir, 'agent.log'), logLevel: process.env.PVB_LOG_LEVEL ?? 'info',
    env: { PODVISOR_PODMAN: wrapper }, extraArgs: ['--backoff-initial', '0', '--backoff-max', '0', '--api-address', `127.0.0.1:${PORT}`],
  });
  const base = `http://127.0.0.1:${PORT}`;
  const phases = [];
  const rss = [];
  let sampling = true;
  let id;
  let logs = '';
  try {
    await agent.ready();
    id = await waitForContainerId(CONTAINER, 200);
    // Every pod running before the first phase.
    const deadline = nowMs() + 180_000;
    for (;;) {
      const running = (await podman(['ps', '--filter', `label=io.podvisor.node=${NODE}`, '--filter', 'status=running', '--format', '{{.Names}}'])).stdout.split('\n').filter((n) => n && !n.includes('-infra')).length;
      if (running >= 20) break;
      if (nowMs() > deadline) throw new Error(`only ${running}/20 containers running within 180 s`);
      await sleep(1000);
    }
    log(`api-load: 20 pods up; ${SECONDS} s per phase, ${CLIENTS} clients, agent ${agent.pid} (${process.env.PVB_CLI ?? 'dist'})`);
    void (async () => {
      while (sampling) {
        try { rss.push({ at: nowMs(), kb: procSample(agent.pid).rssKb }); } catch { /* gone */ }
        await sleep(1000);
      }
    })();
    const plan = [
      ['no load', () => sleep(SECONDS * 1000).then(() => undefined)],
      ['/api/v1/pods, JSON', async () => summariseCannon(await cannon(`${base}/api/v1/pods`, SECONDS, { Accept: 'application/json' }))],
      ['/api/v1/pods, Table (kubectl get pods)', async () => summariseCannon(await cannon(`${base}/api/v1/pods?limit=500`, SECONDS, { Accept: TABLE_ACCEPT }))],
      ['/pods (the kubelet\'s)', async () => summariseCannon(await cannon(`${base}/pods`, SECONDS))],
      [`${CLIENTS} watches of pods`, () => watches(`${base}/api/v1/pods`, CLIENTS, SECONDS)],
    ];
    for (const [name, run] of plan) {
      const from = nowMs();
      const load = await run();
      phases.push({ name, from, to: nowMs(), load });
      log(`api-load: ${name} done`);
      await sleep(2000);
    }
  } finally {
    sampling = false;
    exitFiles.close();
    await agent.stop();
    if (id) logs = (await podman(['logs', id], { allowFail: true })).stdout;
    await cleanupNode(NODE);
  }

  const exitTimes = logs.split('\n').map((line) => /^(\d+\.\d+) exit/.exec(line)?.[1]).filter(Boolean).map((s) => Number(s) * 1000).sort((a, b) => a - b);
  const starts = readCalls(callsFile).filter((c) => c.args === `start ${id}`);
  const decisions = agent.lines.filter((e) => e.event === 'ContainerRestarting').map((e) => e.at);
  const ours = exitFiles.seen.filter((e) => e.id === id);
  const deaths = [];
  exitTimes.forEach((t, k) => {
    const next = exitTimes[k + 1] ?? Infinity;
    const first = starts.find((c) => c.ms > t && c.ms < next);
    if (!first) return;
    const exitFile = ours.find((e) => e.mtimeMs >= t - 5 && e.mtimeMs < next);
    const decision = decisions.find((at) => at >= Math.floor(t) && at < next);
    deaths.push({
      at: t,
      exitToStartMs: round(first.ms - t, 1),
      exitToExitFileMs: exitFile ? round(exitFile.mtimeMs - t, 1) : null,
      exitFileToDecisionMs: exitFile && decision !== undefined ? round(decision - exitFile.mtimeMs, 1) : null,
      decisionToStartMs: decision !== undefined ? round(first.ms - decision, 1) : null,
    });
  });
  const summary = phases.map((phase) => {
    const inPhase = deaths.filter((d) => d.at >= phase.from && d.at < phase.to);
    const kb = rss.filter((s) => s.at >= phase.from && s.at < phase.to).map((s) => s.kb / 1024);
    const part = (key) => stats(inPhase.map((d) => d[key]).filter((v) => v !== null));
    return { phase: phase.name, exitToStartMs: stats(inPhase.map((d) => d.exitToStartMs)), exitToExitFileMs: part('exitToExitFileMs'), exitFileToDecisionMs: part('exitFileToDecisionMs'), decisionToStartMs: part('decisionToStartMs'), rssMB: stats(kb), load: phase.load };
  });
  for (const row of summary) {
    const l = row.load;
    log(`api-load: ${row.phase}: exit → podman start median ${row.exitToStartMs.median} ms, p95 ${row.exitToStartMs.p95}, max ${row.exitToStartMs.max} (${row.exitToStartMs.n} deaths; p95 of its parts: exit → exit file ${row.exitToExitFileMs.p95}, → decision ${row.exitFileToDecisionMs.p95}, → start ${row.decisionToStartMs.p95}); RSS median ${row.rssMB.median} MB, max ${row.rssMB.max}${l?.requestsPerSecond !== undefined ? `; ${l.requestsPerSecond} req/s, p99 ${l.latencyMs.p99} ms, errors ${l.errors}, non-2xx ${l.non2xx}` : ''}`);
  }
  writeResult('api-load', { facts, cli: process.env.PVB_CLI ?? 'dist/podvisor.mjs', clients: CLIENTS, seconds: SECONDS, summary, deaths, agentErrors: agent.lines.filter((e) => e.level === 'error').map((e) => e.message).slice(0, 10) });
}

main().catch(async (error) => {
  log(`api-load failed: ${error.stack ?? error}`);
  await cleanupNode(NODE).catch(() => {});
  process.exitCode = 1;
});
