// /healthz (and /livez, /readyz) in the Kubernetes components' words: "ok", a verbose list of
// checks, 503 when a required check fails, informational checks that show but never fail it.
// /metrics in the Prometheus text format, checked by promtool when it is there, with the
// podvisor_* series the pods and the agent's counters make.
import { execFile } from 'node:child_process';
import { access } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { HealthChecks, type CheckResult } from '../../src/health/health.js';
import { AgentMetrics } from '../../src/metrics/metrics.js';
import type { MirrorPod } from '../../src/mirror/mirror-pod.js';
import { fixtureStore, get, startApi } from './fixtures/api.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** Health checks whose results the test sets. */
function checks() {
  const results: Record<string, CheckResult> = { reconcile: { ok: true }, 'podman-events': { ok: true }, manifests: { ok: true, message: '1 file(s) with errors' } };
  const health = new HealthChecks();
  health.add({ name: 'reconcile', required: true, check: () => results.reconcile! });
  health.add({ name: 'podman-events', required: false, check: () => results['podman-events']! });
  health.add({ name: 'manifests', required: false, check: () => results.manifests! });
  return { health, results };
}

t.test('/healthz: "ok" while every required check passes; ?verbose lists each', async (t) => {
  const { health } = checks();
  const { base } = await startApi(t, { health });
  const answer = await get(`${base}/healthz`);
  t.equal(answer.status, 200);
  t.match(answer.headers['content-type'], /^text\/plain/);
  t.equal(answer.text, 'ok');
  const verbose = await get(`${base}/healthz?verbose`);
  t.equal(verbose.status, 200);
  t.equal(verbose.text, ['[+]reconcile ok', '[+]podman-events ok', '[+]manifests ok (1 file(s) with errors)', 'healthz check passed'].join('\n'));
  for (const path of ['/livez', '/readyz']) t.equal((await get(`${base}${path}`)).text, 'ok', path);
});

t.test('a failing required check: 503 with its reason', async (t) => {
  const { health, results } = checks();
  const { base } = await startApi(t, { health });
  results.reconcile = { ok: false, message: 'no reconcile pass for 95 s' };
  const answer = await get(`${base}/healthz`);
  t.equal(answer.status, 503);
  t.match(answer.text, /^\[-\]reconcile failed: no reconcile pass for 95 s$/m);
  t.match(answer.text, /healthz check failed$/);
  t.equal((await get(`${base}/readyz`)).status, 503);
  results.reconcile = { ok: true };
  t.equal((await get(`${base}/healthz`)).status, 200, 'healthy again once it passes');
});

t.test('a failing informational check: still 200 "ok", shown by ?verbose', async (t) => {
  const { health, results } = checks();
  const { base } = await startApi(t, { health });
  results['podman-events'] = { ok: false, message: 'not connected; relisting every 10 s meanwhile' };
  const answer = await get(`${base}/healthz`);
  t.equal(answer.status, 200);
  t.equal(answer.text, 'ok');
  const verbose = await get(`${base}/healthz?verbose`);
  t.equal(verbose.status, 200);
  t.match(verbose.text, /^\[!\]podman-events failed: not connected; relisting every 10 s meanwhile$/m);
  t.match(verbose.text, /healthz check passed$/);
});

t.test('a check that throws counts as failing, with the error as its reason', async (t) => {
  const health = new HealthChecks();
  health.add({
    name: 'exploding',
    required: true,
    check: () => {
      throw new Error('boom');
    },
  });
  const { base } = await startApi(t, { health });
  const answer = await get(`${base}/healthz`);
  t.equal(answer.status, 503);
  t.match(answer.text, /^\[-\]exploding failed: check failed: boom$/m);
});

/** promtool from PATH or .cache/tools/bin (scripts/test-tools.sh puts it there). */
async function findPromtool(): Promise<string | undefined> {
  const candidates = [...(process.env.PATH ?? '').split(':').filter(Boolean).map((dir) => join(dir, 'promtool')), join(REPO, '.cache', 'tools', 'bin', 'promtool')];
  for (const candidate of candidates) {
    try {
      await access(candidate);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** `promtool check metrics` on `text`: its exit code and what it said. */
function promtoolCheck(promtool: string, text: string): Promise<{ code: number; output: string }> {
  return new Promise((done) => {
    const child = execFile(promtool, ['check', 'metrics'], (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      done({ code, output: `${stdout}${stderr}` });
    });
    child.stdin?.end(text);
  });
}

t.test('/metrics: the pods by phase, restarts per container, and the agent\'s counters', async (t) => {
  const store = fixtureStore();
  const metrics = new AgentMetrics({ pods: () => store.list('pods') as unknown as MirrorPod[], processMetrics: false });
  metrics.podmanCall(['pod', 'ps', '--format', 'json'], 0, 120);
  metrics.podmanCall(['pod', 'ps', '--format', 'json'], 0, 80);
  metrics.podmanCall(['inspect', 'abc'], 125, 30);
  metrics.podmanCall(['stop', 'abc'], undefined, 30_000);
  metrics.reconcilePasses.inc();
  metrics.probeResults.inc({ probe_type: 'readiness', result: 'success' });
  const { base } = await startApi(t, { store, metrics });
  const answer = await get(`${base}/metrics`);
  t.equal(answer.status, 200);
  t.match(answer.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  const text = answer.text;
  const expected = [
    'podvisor_pods{phase="Running"} 2',
    'podvisor_pods{phase="Succeeded"} 1',
    'podvisor_pods{phase="Pending"} 1',
    'podvisor_pods{phase="Failed"} 0',
    'podvisor_pods{phase="Unknown"} 0',
    'podvisor_container_restarts{namespace="infra",pod="db-node1",container="db"} 3',
    'podvisor_container_restarts{namespace="default",pod="web-node1",container="app"} 0',
    'podvisor_podman_calls_total{command="pod ps",result="success"} 2',
    'podvisor_podman_calls_total{command="inspect",result="error"} 1',
    'podvisor_podman_calls_total{command="stop",result="killed"} 1',
    'podvisor_podman_call_duration_seconds_count{command="pod ps"} 2',
    'podvisor_podman_call_duration_seconds_bucket{le="0.1",command="pod ps"} 1',
    'podvisor_reconcile_passes_total 1',
    'podvisor_probe_results_total{probe_type="readiness",result="success"} 1',
    '# TYPE podvisor_pods gauge',
    '# TYPE podvisor_reconcile_duration_seconds histogram',
  ];
  const lines = new Set(text.split('\n'));
  for (const line of expected) t.ok(lines.has(line), line);

  store.replace('pods', store.list('pods').filter((pod) => pod.metadata.name !== 'web-node1'));
  const after = new Set((await get(`${base}/metrics`)).text.split('\n'));
  t.ok(after.has('podvisor_pods{phase="Running"} 1'), 'read from the pods at scrape time');
  t.notOk([...after].some((line) => line.includes('pod="web-node1"')), 'a gone pod\'s series are gone');
});

const PROMTOOL = await findPromtool();

t.test('/metrics passes `promtool check metrics`, with and without the process metrics', { skip: PROMTOOL ? false : 'promtool is not on PATH nor at .cache/tools/bin/promtool (scripts/test-tools.sh puts it there): cannot check the exposition format' }, async (t) => {
  const promtool = PROMTOOL!;
  for (const processMetrics of [false, true]) {
    const store = fixtureStore();
    const metrics = new AgentMetrics({ pods: () => store.list('pods') as unknown as MirrorPod[], processMetrics });
    metrics.podmanCall(['pod', 'ps'], 0, 50);
    const { base } = await startApi(t, { store, metrics });
    const text = (await get(`${base}/metrics`)).text;
    if (processMetrics) t.match(text, /^podvisor_process_cpu_seconds_total /m, 'the process metrics are there, prefixed');
    const checked = await promtoolCheck(promtool, text);
    t.equal(checked.code, 0, `promtool check metrics (processMetrics: ${processMetrics}): ${checked.output.trim() || 'no complaints'}`);
  }
  const broken = await promtoolCheck(promtool, '# TYPE x counter\nx{a="b" 1\n');
  t.not(broken.code, 0, 'promtool does reject a broken exposition (the check can fail)');
});
