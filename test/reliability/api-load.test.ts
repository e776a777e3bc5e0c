// The API under load from other processes while the agent supervises (issue 11): 100 clients
// read it at once (autocannon, in processes of their own, on 127.0.0.1): half list pods as JSON,
// half as `kubectl get pods` asks (a Table), and 20 watches stay open. Meanwhile containers are
// killed. Every request must be answered without error, /healthz must answer throughout, the
// killed containers must be restarted (supervision goes on), and the agent's RSS must not grow
// beyond a stated bound. Speed is measured, not asserted: bench/api-load.mjs measures how long an
// exit takes to reach its restart decision under such load; the figures here are printed.
//
// CI loads the API for 20 s; PODVISOR_API_LOAD_SECONDS=N (npm run test:reliability: 60) for longer.
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { containerOf, freePort, getWithin, podman, podmanContainer, podYaml, putManifest, rssMB, setup, sleeper, waitForStatus } from '../e2e/harness.js';

const SECONDS = Number(process.env.PODVISOR_API_LOAD_SECONDS ?? 20);
const PODS = 8;
const CLIENTS = 100;
const WATCHES = 20;
/**
 * RSS growth allowed under load: the answer cache (at most 4 MiB), buffers of 100 connections
 * whose answers (~30 KiB each here) are being written, the watches' buffers, and the garbage
 * between collections. Measured growth is about 10 MB; a leak of a request's worth per request
 * (tens of thousands of requests) would pass it many times over.
 */
const RSS_GROWTH_MB = 60;
const HEALTH_DEADLINE_MS = 3000;
const TABLE_ACCEPT = 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json';
const AUTOCANNON = createRequire(import.meta.url).resolve('autocannon/autocannon.js');

t.setTimeout(240_000 + SECONDS * 2000);

interface CannonResult {
  requests: { total: number; average: number };
  latency: { p50: number; p99: number; max: number };
  errors: number;
  timeouts: number;
  non2xx: number;
  '2xx': number;
}

/** autocannon in a process of its own (tap's NODE_OPTIONS left out: it is not a test process). */
function cannon(url: string, connections: number, headers: Record<string, string>): Promise<CannonResult> {
  const args = [AUTOCANNON, '-c', String(connections), '-d', String(SECONDS), '-j', '--timeout', '10'];
  for (const [name, value] of Object.entries(headers)) args.push('-H', `${name}=${value}`);
  const { NODE_OPTIONS: _omitted, ...env } = process.env;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...args, url], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { err += chunk.toString(); });
    child.on('exit', (code) => {
      try {
        resolve(JSON.parse(out) as CannonResult);
      } catch {
        reject(new Error(`autocannon exited ${String(code)}: ${err.slice(0, 500)}`));
      }
    });
  });
}

t.test(`${CLIENTS} clients for ${SECONDS} s: every request answered, supervision goes on, RSS bounded`, async (t) => {
  const world = await setup(t, 'api-load');
  const port = await freePort();
  const names = Array.from({ length: PODS }, (_, index) => `load-${index}`);
  for (const name of names) await putManifest(world.manifestDir, `${name}.yaml`, podYaml({ name, containers: sleeper('app') }));
  const podName = (name: string) => `${name}-${world.node}`;
  const agent = await world.startAgent(['--api-address', `127.0.0.1:${port}`, '--backoff-initial', '0', '--backoff-max', '1']);
  const pid = agent.child.pid!;
  for (const name of names) await waitForStatus(world.stateDir, podName(name), 'running', (pod) => containerOf(pod, 'app')?.state.running !== undefined, { timeoutMs: 120_000 });
  const base = `http://127.0.0.1:${port}`;
  await sleep(2000);
  const rssBefore = await rssMB(pid);

  // Watches first, held for the whole load.
  const watchStatuses: number[] = [];
  const watchRequests = Array.from({ length: WATCHES }, () => {
    const req = request(`${base}/api/v1/pods?watch=true`, { agent: false }, (response) => {
      watchStatuses.push(response.statusCode ?? 0);
      response.resume();
      response.on('error', () => {});
    });
    req.on('error', () => {});
    req.end();
    return req;
  });

  let loading = true;
  const rss: number[] = [];
  const health: number[] = [];
  const sampling = (async () => {
    while (loading) {
      rss.push(await rssMB(pid));
      health.push((await getWithin(`${base}/healthz`, HEALTH_DEADLINE_MS)).status);
      await sleep(500);
    }
  })();
  const load = Promise.all([
    cannon(`${base}/api/v1/pods`, CLIENTS / 2, { Accept: 'application/json' }),
    cannon(`${base}/api/v1/pods?limit=500`, CLIENTS / 2, { Accept: TABLE_ACCEPT }),
  ]);
  // Kill a container every few seconds while the load runs: each must be restarted.
  const killed: string[] = [];
  const killing = (async () => {
    for (let round = 0; round * 4 + 3 < SECONDS; round++) {
      await sleep(3000);
      const name = names[round % PODS]!;
      await podman('kill', podmanContainer(podName(name), 'app')).catch(() => undefined);
      killed.push(name);
      await sleep(1000);
    }
  })();
  const [json, table] = await load;
  await killing;
  loading = false;
  await sampling;
  for (const req of watchRequests) req.destroy();

  for (const [what, result] of [['JSON list', json], ['Table list', table]] as const) {
    t.ok(result.requests.total > 0, `${what}: ${result.requests.total} requests, ${Math.round(result.requests.average)}/s, median ${result.latency.p50} ms, p99 ${result.latency.p99} ms, max ${result.latency.max} ms`);
    t.equal(result.errors, 0, `${what}: no connection errors`);
    t.equal(result.timeouts, 0, `${what}: no request timed out (10 s)`);
    t.equal(result.non2xx, 0, `${what}: every answer a 2xx`);
  }
  t.equal(watchStatuses.filter((status) => status === 200).length, WATCHES, `${WATCHES} watches served`);
  t.ok(health.length > 0 && health.every((status) => status === 200), `/healthz answered 200 within ${HEALTH_DEADLINE_MS} ms each of ${health.length} times under load`);
  const peak = Math.max(...rss);
  t.ok(peak - rssBefore <= RSS_GROWTH_MB, `RSS ${rssBefore.toFixed(1)} MB before, peak ${peak.toFixed(1)} MB under load (bound: +${RSS_GROWTH_MB} MB)`);
  t.ok(killed.length >= 3, `${killed.length} containers killed under load`);
  for (const name of new Set(killed)) {
    const times = killed.filter((other) => other === name).length;
    await waitForStatus(world.stateDir, podName(name), `${name} restarted ${times} times`, (pod) => {
      const app = containerOf(pod, 'app');
      return app !== undefined && app.restartCount >= times && app.state.running !== undefined;
    }, { timeoutMs: 60_000 });
  }
  t.pass('every killed container was restarted and runs');
  t.ok(agent.running, 'the agent is still running');
  t.equal(agent.find({ event: 'ApiRequestFailed' }).length + agent.lines.filter((line) => line.level === 'error' && /API/.test(line.message)).length, 0, 'no API errors logged');
});
