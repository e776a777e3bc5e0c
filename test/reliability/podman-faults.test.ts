// A podman that misbehaves (issue 11): the agent runs a few pods through test/reliability/
// faulty-podman.sh, a fake in front of the real podman. For a while it fails a share of calls with
// podman's own messages, hangs some, prints broken JSON for listings and cuts `podman events`;
// meanwhile a manifest changes, a pod is added, one removed and a container killed. Then the
// faults stop. The agent must converge (every desired pod running exactly once with its current
// spec), have killed every hung call (each has a timeout), back off rather than spin (calls per
// minute, from the fake's call log, against the same agent's rate without faults) and have
// reported the failures in its log, in the pods' status events and in its metrics. Last, with
// every listing hanging, SIGTERM must still stop it.
//
// CI runs a short fault phase with hangs limited to the calls whose timeouts are at most a minute
// (the listing, inspect); PODVISOR_FAULT_MINUTES=N (npm run test:reliability) runs N minutes with
// hangs of any call, and waits for convergence as long as the longest podman timeout allows.
// Figures (faults by kind, time to converge, peak calls per minute) are printed as a test comment
// and, with PODVISOR_FAULT_FIGURES=FILE, written there as JSON; only bounds that do not rest on
// the machine's speed are asserted. A long run needs tap's file timeout lifted (`--timeout 0`).
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { containersOf, freePort, podman, podsOf, podYaml, putManifest, REPO, setup, sleeper, waitFor, within, type AgentProcess, type E2E } from '../e2e/harness.js';

const FAKE = join(REPO, 'test', 'reliability', 'faulty-podman.sh');
const LONG_MINUTES = Number(process.env.PODVISOR_FAULT_MINUTES ?? 0);
const LONG = Number.isFinite(LONG_MINUTES) && LONG_MINUTES > 0;
/** How long the faults last: 50 s in CI. */
const FAULT_MS = LONG ? LONG_MINUTES * 60_000 : 50_000;
/**
 * How long convergence may take once the faults stop: a hang begun just before is only killed at
 * its call's timeout (a listing's 60 s in CI; `podman run`'s 15 min in the long run), then the
 * back-off of the pods it held up.
 */
const CONVERGE_MS = LONG ? 20 * 60_000 : 150_000;

t.setTimeout(LONG ? FAULT_MS + CONVERGE_MS + 10 * 60_000 : 280_000);

/** One line of the fake's call log. */
interface Call {
  at: number;
  pid: number;
  fault: string;
  args: string;
}

async function readCalls(path: string): Promise<Call[]> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text.split('\n').filter(Boolean).map((line) => {
    const [at = '0', pid = '0', fault = '', args = ''] = line.split('\t');
    return { at: Number(at) * 1000, pid: Number(pid), fault, args };
  });
}

/** Writes the fake's plan at once (a temporary file, then a rename): it applies from the next call. */
async function writePlan(path: string, plan: Record<string, string | number>): Promise<void> {
  const text = Object.entries(plan).map(([key, value]) => `${key}=${value}`).join('\n');
  await writeFile(`${path}.tmp`, `${text}\n`);
  await rename(`${path}.tmp`, path);
}

/** The highest number of calls in any 10 s bucket of [from, to), as calls per minute. */
function peakPerMinute(calls: Call[], from: number, to: number): number {
  const buckets = new Map<number, number>();
  for (const call of calls) {
    if (call.at < from || call.at >= to || call.fault === 'events-cut') continue;
    const bucket = Math.floor((call.at - from) / 10_000);
    buckets.set(bucket, (buckets.get(bucket) ?? 0) + 1);
  }
  return Math.max(0, ...buckets.values()) * 6;
}

/** Calls per minute over [from, to). */
function meanPerMinute(calls: Call[], from: number, to: number): number {
  return (calls.filter((call) => call.at >= from && call.at < to && call.fault !== 'events-cut').length / (to - from)) * 60_000;
}

/** The version each desired pod must run (by manifest name), carried in its containers' env. */
type Desired = Record<string, string>;

function manifest(name: string, version: string, containers = 1): string {
  const all = Array.from({ length: containers }, (_, index) => sleeper(`c${index}`, { VERSION: version })).join('');
  return podYaml({ name, containers: all });
}

/** Whether podman runs exactly the desired pods, each once, every container running its version; why not otherwise. */
async function divergence(world: E2E, desired: Desired): Promise<string | undefined> {
  const pods = await podsOf(world.node);
  const want = Object.keys(desired).map((name) => `default_${name}-${world.node}`).sort();
  const have = pods.map((pod) => pod.Name).sort();
  if (JSON.stringify(have) !== JSON.stringify(want)) return `pods ${have.join(', ')} (want ${want.join(', ')})`;
  const containers = await containersOf(world.node);
  for (const [name, version] of Object.entries(desired)) {
    const pod = pods.find((one) => one.Name === `default_${name}-${world.node}`);
    const mine = containers.filter((container) => container.Pod === pod?.Id);
    const expected = name === 'multi' ? 2 : 1;
    if (mine.length !== expected) return `${name}: ${mine.length} containers`;
    const notRunning = mine.find((container) => container.State !== 'running');
    if (notRunning) return `${name}: ${notRunning.Names[0]} is ${notRunning.State}`;
    const envs = await podman('inspect', '--type', 'container', '--format', '{{range .Config.Env}}{{println .}}{{end}}', ...mine.map((container) => container.Id));
    const versions = envs.split('\n').filter((line) => line.startsWith('VERSION='));
    if (versions.length !== expected || versions.some((line) => line !== `VERSION=${version}`)) return `${name}: ${versions.join(' ')} (want ${version})`;
  }
  return undefined;
}

async function converge(world: E2E, desired: Desired, timeoutMs: number): Promise<void> {
  let why: string | undefined = 'not checked';
  await waitFor(`convergence (${why})`, async () => {
    why = await divergence(world, desired);
    return why === undefined;
  }, { timeoutMs, intervalMs: 500 }).catch((error: unknown) => {
    throw new Error(`${(error as Error).message}; last: ${why}`);
  });
}

/** The agent's /metrics as `name{labels}` → value. */
async function metrics(port: number): Promise<Map<string, number>> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(10_000) });
  const text = await response.text();
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const space = line.lastIndexOf(' ');
    values.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return values;
}

/** Sum of a metric's samples whose labels include all of `labels`. */
function sum(values: Map<string, number>, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const [key, value] of values) {
    if (!key.startsWith(`${name}{`) && key !== name) continue;
    if (Object.entries(labels).every(([label, want]) => key.includes(`${label}="${want}"`))) total += value;
  }
  return total;
}

/** Whether a process is still there. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

t.test('the agent converges, kills hung calls, backs off and reports under podman faults', async (t) => {
  const world = await setup(t, 'faults');
  const planPath = join(world.root, 'fault-plan');
  const callLog = join(world.root, 'podman-calls.log');
  await writePlan(planPath, {});
  process.env.PODVISOR_PODMAN = FAKE;
  process.env.FAULTY_PODMAN_PLAN = planPath;
  process.env.FAULTY_PODMAN_LOG = callLog;
  t.teardown(async () => {
    // A hang the agent failed to kill must not outlive the test (these are the fake's own sleeps).
    for (const call of await readCalls(callLog)) if (call.fault === 'hang' && alive(call.pid)) process.kill(call.pid, 'SIGKILL');
    await rm(`${planPath}.calls`, { force: true });
  });

  let desired: Desired = { alpha: 'v1', multi: 'v1', gone: 'v1' };
  await putManifest(world.manifestDir, 'alpha.yaml', manifest('alpha', 'v1'));
  await putManifest(world.manifestDir, 'multi.yaml', manifest('multi', 'v1', 2));
  await putManifest(world.manifestDir, 'gone.yaml', manifest('gone', 'v1'));
  const port = await freePort();
  const agent: AgentProcess = await world.startAgent(['--api-address', `127.0.0.1:${port}`]);
  await converge(world, desired, 90_000);

  // Without faults: the rate of a steady agent with these pods (the harness relists every second).
  const baselineFrom = Date.now();
  await agent.waitForRelists(10, { timeoutMs: 120_000 });
  const baselineTo = Date.now();
  const before = await metrics(port);

  // Faults, and work to do meanwhile: a changed spec, a new pod, a removed one, a killed container.
  // A hung listing stalls planning for its 60 s timeout: CI has the one hang of the script below
  // and no more, so that the rest of its short window sees the other faults.
  const plan = { seed: 11, fail: 10, malformed: 6, events_cut: 5, ...(LONG ? { hang: 2 } : { hang: 0, hang_only: 'ps,pod-ps,inspect,container-inspect' }) };
  // Each kind for sure, early (the fake gives each line to the next call it fits), then at random.
  await writeFile(`${planPath}.script`, 'malformed\nfail\nmalformed\nhang\n');
  await writePlan(planPath, plan);
  const faultFrom = Date.now();
  desired = { alpha: 'v1', multi: 'v2', fresh: 'v1' };
  await putManifest(world.manifestDir, 'multi.yaml', manifest('multi', 'v2', 2));
  await putManifest(world.manifestDir, 'fresh.yaml', manifest('fresh', 'v1'));
  await rm(join(world.manifestDir, 'gone.yaml'));
  await sleep(Math.min(10_000, FAULT_MS / 4));
  await podman('kill', `default_alpha-${world.node}_c0`);
  await sleep(FAULT_MS - Math.min(10_000, FAULT_MS / 4));
  t.ok(agent.running, 'the agent is still running at the end of the faults');

  await writePlan(planPath, {});
  await rm(`${planPath}.script`, { force: true });
  const faultTo = Date.now();
  await converge(world, desired, CONVERGE_MS);
  const convergeMs = Date.now() - faultTo;

  // Every hung call was killed by its timeout (the fake's hang lasts an hour).
  const calls = await readCalls(callLog);
  const hangs = calls.filter((call) => call.fault === 'hang');
  await waitFor('every hung podman call to be killed', () => hangs.every((call) => !alive(call.pid)), { timeoutMs: 90_000 });

  // Figures.
  const during = calls.filter((call) => call.at >= faultFrom && call.at < faultTo);
  const byKind: Record<string, number> = {};
  for (const call of during) byKind[call.fault] = (byKind[call.fault] ?? 0) + 1;
  const callsDuring = during.length - (byKind['events-cut'] ?? 0);
  const failing = (byKind.fail ?? 0) + (byKind.hang ?? 0) + (byKind.malformed ?? 0);
  const figures = {
    faultSeconds: Math.round((faultTo - faultFrom) / 1000),
    plan,
    callsDuringFaults: callsDuring,
    faultsByKind: byKind,
    failingShare: Number((failing / Math.max(1, callsDuring)).toFixed(3)),
    convergeSecondsAfterFaults: Number((convergeMs / 1000).toFixed(1)),
    callsPerMinute: {
      baselinePeak: peakPerMinute(calls, baselineFrom, baselineTo),
      baselineMean: Math.round(meanPerMinute(calls, baselineFrom, baselineTo)),
      faultPeak: peakPerMinute(calls, faultFrom, faultTo),
      faultMean: Math.round(meanPerMinute(calls, faultFrom, faultTo)),
    },
  };
  t.comment(`figures: ${JSON.stringify(figures)}`);
  const figuresFile = process.env.PODVISOR_FAULT_FIGURES;
  if (figuresFile) await writeFile(figuresFile, `${JSON.stringify(figures, null, 2)}\n`);

  // The plan's share is what is held under 20%; the share drawn varies with few calls.
  t.ok(plan.fail + plan.hang + plan.malformed < 20, `the plan fails under 20% of calls (observed: ${figures.failingShare} of ${callsDuring})`);
  for (const kind of ['fail', 'hang', 'malformed', 'events-cut']) t.ok((byKind[kind] ?? 0) > 0, `faults of kind ${kind} were injected (${byKind[kind] ?? 0})`);
  // Backing off, not spinning: a retry loop without a delay makes thousands of calls a minute.
  // The bound is generous (work on four pods happens during the faults, and a listing that fails
  // at once makes a pass quicker than a good one) and relative to this agent on this machine, not
  // a wall-clock figure.
  const bound = 6 * Math.max(figures.callsPerMinute.baselinePeak, 60);
  t.ok(figures.callsPerMinute.faultPeak <= bound, `calls per minute under faults (peak ${figures.callsPerMinute.faultPeak}) within ${bound}`);

  // Reported: the log, the pods' status events, the metrics.
  t.ok(agent.find({ event: 'ListingFailed' }).length > 0, 'failed listings are logged (ListingFailed)');
  t.ok(agent.find({ event: ['ActionFailed', 'PodmanCallFailed'] }).length > 0, 'failed pod actions are logged (ActionFailed, PodmanCallFailed)');
  t.ok(agent.find({ event: 'PodmanEventsEnded' }).length > 0, 'the cut event stream is logged (PodmanEventsEnded) and reconnected');
  t.ok(agent.find({ event: 'PodmanEventUnreadable' }).length > 0, 'the half line it ended on is logged and skipped (PodmanEventUnreadable)');
  t.same(agent.rawLines.filter((line) => /TypeError|RangeError|Unhandled|at .*\.js:\d+/.test(line)), [], 'no crash or stack trace');
  const status = JSON.parse(await readFile(join(world.stateDir, 'status.json'), 'utf8')) as { events: { type: string; reason: string; message: string; involvedObject: { name: string } }[] };
  const warnings = status.events.filter((event) => event.type === 'Warning' && ['FailedSync', 'Failed'].includes(event.reason));
  t.ok(warnings.length > 0, `podman's failures show in the pods' status events (${warnings.map((event) => `${event.involvedObject.name}: ${event.reason}`).slice(0, 3).join('; ')})`);
  const after = await metrics(port);
  const errors = sum(after, 'podvisor_podman_calls_total', { result: 'error' }) - sum(before, 'podvisor_podman_calls_total', { result: 'error' });
  const killed = sum(after, 'podvisor_podman_calls_total', { result: 'killed' }) - sum(before, 'podvisor_podman_calls_total', { result: 'killed' });
  t.ok(errors > 0, `podman calls that failed are counted in the metrics (${errors})`);
  t.ok(killed >= hangs.filter((call) => call.at < faultTo).length, `hung calls killed are counted in the metrics (${killed})`);
  t.ok(sum(after, 'podvisor_event_stream_reconnects_total') > 0, 'event stream reconnects are counted');
  t.ok(agent.running, 'the agent is still running');

  // Stopping never waits on a hung podman: with every listing hanging, SIGTERM still ends the agent.
  await writePlan(planPath, { hang: 100, hang_only: 'ps,pod-ps' });
  const hangFrom = Date.now();
  const hung = await waitFor('a hung listing', async () => (await readCalls(callLog)).find((call) => call.fault === 'hang' && call.at >= hangFrom), { timeoutMs: 30_000 });
  agent.child.kill('SIGTERM');
  const exit = await within('the agent stopping on SIGTERM', 90_000, agent.exited);
  t.equal(exit.code, 0, 'the agent stops on SIGTERM while a listing hangs, exit 0');
  t.notOk(alive(hung.pid), 'the hung listing is killed as the agent stops');
});
