// The publishers through a bad endpoint (issue 11): the real agent publishes to the real test
// receivers of test/publish (a webhook receiver, a Kubernetes API receiver) through a fault
// proxy on 127.0.0.1 that cycles through the ways an endpoint fails: down (port closed), slow
// (the receiver's answer passed on 7 s late, or a 503 only after the client's deadline), trickling (headers, then a byte now and then,
// never done), 5xx (500/503 with Retry-After, the body an error page that echoes the request's
// Authorization header, as some proxies' debug pages do), connection resets (before the request
// reaches the receiver, or after it was applied and its answer lost) and hanging forever. Pods
// change meanwhile: a container is killed, a pod removed, one created (and, in long runs, one
// edited), and the container is killed again while the endpoint hangs, last. Then the endpoint
// is healthy again. Checked:
// - the agent's RSS (VmRSS, sampled every second) stays within RSS_GROWTH_MB of its warm-up
//   median over the bad phase and the recovery, and does not creep (last third against first);
// - the backlog is bounded (podvisor_publish_pending: one snapshot for the webhook, at most one
//   state per pod and the node for Kubernetes, however many changes) and attempts are spaced by
//   the back-off, not made per change;
// - the final state (every pod's latest status, the removed pod gone) arrives within
//   FINAL_MS of the recovery: the back-off cap of src/publish/retry.ts, plus one request's
//   deadline (an attempt hung just before), plus slack for a noisy machine;
// - the bearer token never shows in the log (debug level), the state directory, /metrics or
//   /healthz?verbose, although the 5xx bodies carry it;
// - supervision goes on: each killed container restarted within its back-off and slack.
//
// Both publishers run at once (two agents, two node names) so that CI's share stays under four
// minutes: 6 modes of 10 s each. PODVISOR_PUBLISHER_MINUTES=N runs N minutes of bad endpoint
// (modes of 30 s, cycled). Figures are printed as a test comment and, with
// PODVISOR_PUBLISHER_FIGURES=FILE, written there as JSON. A long run needs tap's timeout lifted.
import { randomBytes } from 'node:crypto';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t, { type Test } from 'tap';
import { DEFAULT_TIMEOUT_SECONDS } from '../../src/publish/publisher.js';
import { DEFAULT_RETRY_MAX_MS } from '../../src/publish/retry.js';
import { freePort, podman, podmanContainer, podYaml, putManifest, setup, sleeper, waitFor, type AgentProcess, type E2E, type StatusItem } from '../e2e/harness.js';
import { kubeconfigFor } from '../publish/helpers.js';
import { KubeTestReceiver } from '../publish/kube-test-receiver.js';
import { closeNow, listenOnLoopback } from '../publish/loopback-server.js';
import { WebhookTestReceiver } from '../publish/webhook-test-receiver.js';

const LONG_MINUTES = Number(process.env.PODVISOR_PUBLISHER_MINUTES ?? 0);
const LONG = Number.isFinite(LONG_MINUTES) && LONG_MINUTES > 0;
const MODE_MS = LONG ? 30_000 : 10_000;
// 'error' first: the back-off is at its start then, so the kill's change is sure to meet the
// answers that echo the token (later modes are met as the back-off allows).
const BAD_MODES = ['error', 'down', 'slow', 'trickle', 'reset', 'hang'] as const;
/** The bad phase: whole cycles of the modes, at least one. */
const BAD_MS = LONG ? Math.max(1, Math.round((LONG_MINUTES * 60_000) / MODE_MS)) * MODE_MS : BAD_MODES.length * MODE_MS;
/** The warm-up whose RSS is the baseline: after the first delivery, before the bad phase. */
const WARM_MS = 10_000;
/**
 * The final state's deadline once the endpoint is healthy: the last failed attempt's back-off is
 * drawn under the cap (60 s), and an attempt hung just before the recovery first runs out its
 * deadline (10 s); 15 s more for the webhook's interval, a Kubernetes pass of a few requests,
 * status.json's 2 s and a loaded 2-core machine.
 */
const FINAL_MS = DEFAULT_RETRY_MAX_MS + DEFAULT_TIMEOUT_SECONDS * 1000 + 15_000;
/**
 * RSS may rise this much above the warm-up's median. What a publisher holds is one snapshot of a
 * few pods (KBs), one request and at most 4 kept-alive sockets; the rest is V8's heap breathing
 * between collections and the log lines of debug level, measured at ~10 MB here. A queue of
 * every change, or a leak per failed request, would pass it in a long run.
 */
const RSS_GROWTH_MB = 40;
/** The last third of the bad phase against its first third: no creep. */
const RSS_CREEP_MB = LONG ? 15 : 25;
/** The proxy's slow mode answers (503) this long after the request: past the client's deadline. */
const SLOW_MS = DEFAULT_TIMEOUT_SECONDS * 1000 + 5_000;
/** ...or passes the receiver's answer on this late: within the deadline, unless the machine is loaded. */
const SLOW_OK_MS = DEFAULT_TIMEOUT_SECONDS * 1000 - 3_000;
/** A killed container restarts within its crash-loop back-off (at most --backoff-max 4 s) and this. */
const RESTART_SLACK_MS = 20_000;
const BACKOFF_MAX_S = 4;

// Under four minutes on a quiet machine; the headroom is for one shared with other suites.
t.setTimeout(LONG ? BAD_MS + 15 * 60_000 : 420_000);
// The two publishers at once: each is slow to run (its timeline is wall-clock), not heavy.
t.jobs = 2;

type Mode = 'healthy' | (typeof BAD_MODES)[number];

/**
 * A fault proxy in front of a test receiver: in 'healthy' mode it forwards each request to the
 * receiver and its answer back; in the others it fails as its mode says. 'down' closes the port.
 */
class FaultProxy {
  readonly requests = new Map<Mode, number>();
  readonly #targetPort: number;
  readonly #open = new Set<http.ServerResponse>();
  #mode: Mode = 'healthy';
  #server: http.Server | undefined;
  #port = 0;
  #resets = 0;
  #errors = 0;
  #slow = 0;

  constructor(targetPort: number) {
    this.#targetPort = targetPort;
  }

  get port(): number {
    return this.#port;
  }

  get mode(): Mode {
    return this.#mode;
  }

  async start(): Promise<void> {
    const server = http.createServer((req, res) => this.#handle(req, res));
    // A trickle or a hang must outlive Node's default request timeout (300 s) only in long modes.
    server.requestTimeout = 0;
    this.#port = await listenOnLoopback(server, this.#port);
    this.#server = server;
  }

  async setMode(mode: Mode): Promise<void> {
    this.#mode = mode;
    if (mode === 'down') {
      const server = this.#server;
      this.#server = undefined;
      this.#dropOpen();
      await closeNow(server);
    } else if (!this.#server) {
      await this.start();
    }
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    this.#dropOpen();
    await closeNow(server);
  }

  #dropOpen(): void {
    for (const res of this.#open) res.destroy();
    this.#open.clear();
  }

  #hold(res: http.ServerResponse): void {
    this.#open.add(res);
    res.on('close', () => this.#open.delete(res));
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const mode = this.#mode;
    this.requests.set(mode, (this.requests.get(mode) ?? 0) + 1);
    switch (mode) {
      case 'healthy':
      case 'down': // a request that slipped in while the port was closing
        this.#forward(req, res, false);
        return;
      case 'slow': {
        this.#hold(res);
        // Every other request is answered, late but within the client's deadline: slow, working.
        if (this.#slow++ % 2 === 0) {
          this.#forward(req, res, false, SLOW_OK_MS);
          return;
        }
        req.resume();
        const timer = setTimeout(() => {
          if (!res.destroyed) res.writeHead(503, { 'Retry-After': '1' }).end('slow upstream');
        }, SLOW_MS);
        res.on('close', () => clearTimeout(timer));
        return;
      }
      case 'trickle': {
        this.#hold(res);
        req.resume();
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.write('{');
        const timer = setInterval(() => res.write(' '), 500);
        res.on('close', () => clearInterval(timer));
        return;
      }
      case 'error': {
        req.resume();
        const code = this.#errors++ % 2 === 0 ? 503 : 500;
        // An error page that echoes the request's credentials: whatever the agent makes of it
        // (a log line, a health message) must not carry them. Short, so that no cut drops it.
        const body = JSON.stringify({ message: `echo: authorization=${req.headers['authorization'] ?? ''}`, kind: 'Status', apiVersion: 'v1', status: 'Failure', code });
        req.on('end', () => res.writeHead(code, { 'Content-Type': 'application/json', 'Retry-After': '1' }).end(body));
        return;
      }
      case 'reset':
        // Every other request reaches the receiver and only its answer is lost: the agent cannot
        // know whether it was applied, and must cope with either.
        if (this.#resets++ % 2 === 0) req.socket.destroy();
        else this.#forward(req, res, true);
        return;
      case 'hang':
        this.#hold(res);
        req.resume();
        return;
    }
  }

  /** Passes the request on to the receiver and its answer back (`delayMs` late), or drops the answer. */
  #forward(req: http.IncomingMessage, res: http.ServerResponse, dropAnswer: boolean, delayMs = 0): void {
    const upstream = http.request({ host: '127.0.0.1', port: this.#targetPort, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      if (dropAnswer) {
        answer.resume();
        res.socket?.destroy();
        return;
      }
      const chunks: Buffer[] = [];
      answer.on('data', (chunk: Buffer) => chunks.push(chunk));
      answer.on('end', () => {
        const timer = setTimeout(() => {
          if (!res.destroyed) res.writeHead(answer.statusCode ?? 502, answer.headers).end(Buffer.concat(chunks));
        }, delayMs);
        res.on('close', () => clearTimeout(timer));
      });
    });
    upstream.on('error', () => res.socket?.destroy());
    req.pipe(upstream);
  }
}

/** Samples VmRSS of a process every second, tagged with the phase of the test. */
class RssSampler {
  readonly samples: { at: number; mb: number; phase: string }[] = [];
  phase = 'start';
  readonly #timer: NodeJS.Timeout;

  constructor(pid: number) {
    this.#timer = setInterval(() => {
      void readFile(`/proc/${pid}/status`, 'utf8').then((text) => {
        const kb = Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(text)?.[1]);
        if (Number.isFinite(kb)) this.samples.push({ at: Date.now(), mb: kb / 1024, phase: this.phase });
      }, () => undefined);
    }, 1000);
  }

  of(...phases: string[]): number[] {
    return this.samples.filter((sample) => phases.includes(sample.phase)).map((sample) => sample.mb);
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

const round = (mb: number) => Math.round(mb * 10) / 10;

/** The metric's samples from Prometheus text: labels (as text) → value. */
function metricValues(text: string, name: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const match = /^[^{ ]+(\{[^}]*\})?\s+(\S+)$/.exec(line);
    if (match) values.set(match[1] ?? '', Number(match[2]));
  }
  return values;
}

/** GET from the agent's API on loopback; the text, or '' when it does not answer in time. */
async function apiText(port: number, path: string): Promise<string> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(5000) });
    return await response.text();
  } catch {
    return '';
  }
}

/** What the final state is compared on: per pod, its phase and each container's run and restarts. */
type Shape = Record<string, { phase: string; containers: Record<string, string> }>;

interface ShapedPod {
  metadata: { name: string };
  status?: { phase?: string; containerStatuses?: { name: string; restartCount: number; containerID?: string }[] };
}

function shapeOf(pods: readonly ShapedPod[]): Shape {
  return Object.fromEntries(pods.map((pod) => [pod.metadata.name, {
    phase: pod.status?.phase ?? '',
    containers: Object.fromEntries((pod.status?.containerStatuses ?? []).map((c) => [c.name, `${c.containerID ?? 'none'} restarts=${c.restartCount}`])),
  }]));
}

/** The agent's own view (status.json), the truth the endpoint must end up with. */
async function agentShape(stateDir: string): Promise<Shape | undefined> {
  const text = await readFile(join(stateDir, 'status.json'), 'utf8').catch(() => undefined);
  if (!text) return undefined;
  return shapeOf((JSON.parse(text) as { items: StatusItem[] }).items as ShapedPod[]);
}

/** Every file under `dir`, as text. */
async function filesUnder(dir: string): Promise<{ path: string; text: string }[]> {
  const out: { path: string; text: string }[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => [])) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    out.push({ path, text: await readFile(path, 'latin1').catch(() => '') });
  }
  return out;
}

const manifest = (name: string, version: string) => podYaml({ name, grace: 1, containers: sleeper('main', { VERSION: version }) });

/** What differs between the two publishers. */
interface Target {
  mode: 'webhook' | 'kubernetes';
  /** Starts the receiver; returns its port. */
  start(): Promise<number>;
  stop(): Promise<void>;
  /** The agent's flags to publish through the proxy at `proxyPort`. */
  args(world: E2E, proxyPort: number, token: string): Promise<string[]>;
  /** The state the receiver holds now, shaped; undefined before anything arrived. */
  received(): Shape | undefined;
  /** The Authorization headers the receiver saw. */
  authorizations(): (string | undefined)[];
  /** Largest backlog that still is "one per pod", for `pods` desired pods. */
  pendingBound(pods: number): number;
}

function webhookTarget(): Target {
  const receiver = new WebhookTestReceiver();
  return {
    mode: 'webhook',
    async start() {
      await receiver.start();
      return receiver.port;
    },
    stop: () => receiver.stop(),
    async args(world, proxyPort, token) {
      const tokenFile = join(world.root, 'publish-token');
      await writeFile(tokenFile, `${token}\n`);
      return ['--publish-webhook', `http://127.0.0.1:${proxyPort}/hook`, '--publish-token-file', tokenFile, '--publish-interval', '1'];
    },
    received() {
      const last = receiver.posts.at(-1);
      return last ? shapeOf(last.body.items as unknown as ShapedPod[]) : undefined;
    },
    authorizations: () => receiver.posts.map((post) => post.authorization),
    // The webhook keeps one snapshot, made when a POST starts.
    pendingBound: () => 1,
  };
}

function kubernetesTarget(token: string): Target {
  const receiver = new KubeTestReceiver({ token });
  return {
    mode: 'kubernetes',
    async start() {
      await receiver.start();
      return Number(new URL(receiver.url).port);
    },
    stop: () => receiver.stop(),
    async args(world, proxyPort) {
      const config = join(world.root, 'kubeconfig');
      await writeFile(config, kubeconfigFor(`http://127.0.0.1:${proxyPort}`, token));
      return ['--publish-kubeconfig', config];
    },
    received() {
      if (receiver.pods.size === 0) return undefined;
      return shapeOf([...receiver.pods.values()] as unknown as ShapedPod[]);
    },
    authorizations: () => receiver.requests.map((request) => request.authorization),
    // One state per pod (a removed one's deletion among them) and the node's.
    pendingBound: (pods) => pods + 2,
  };
}

function sameShape(a: Shape | undefined, b: Shape | undefined): boolean {
  return a !== undefined && b !== undefined && JSON.stringify(sortDeep(a)) === JSON.stringify(sortDeep(b));
}

function sortDeep(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortDeep);
  if (value && typeof value === 'object') return Object.fromEntries(Object.keys(value).sort().map((key) => [key, sortDeep((value as Record<string, unknown>)[key])]));
  return value;
}

/** One publisher's run through the bad endpoint. */
async function endure(t: Test, makeTarget: (token: string) => Target): Promise<void> {
  // Distinctive, so that a search for it cannot hit anything else.
  const token = `pvtok-${randomBytes(12).toString('hex')}-secret`;
  const target = makeTarget(token);
  const world = await setup(t, `pub-${target.mode === 'webhook' ? 'hook' : 'kube'}`);
  const receiverPort = await target.start();
  t.teardown(() => target.stop());
  const proxy = new FaultProxy(receiverPort);
  await proxy.start();
  t.teardown(() => proxy.stop());
  const apiPort = await freePort();

  const name = (pod: string) => `${pod}-${world.node}`;
  await putManifest(world.manifestDir, 'keep.yaml', manifest('keep', '1'));
  await putManifest(world.manifestDir, 'gone.yaml', manifest('gone', '1'));
  const agent: AgentProcess = await world.startAgent([
    ...(await target.args(world, proxy.port, token)),
    '--api-address', `127.0.0.1:${apiPort}`,
    '--backoff-max', String(BACKOFF_MAX_S),
  ], { timeoutMs: 60_000 });
  const began = Date.now();
  const rss = new RssSampler(agent.child.pid ?? 0);
  t.teardown(() => rss.stop());

  // Healthy first: both pods delivered Running, as the agent shows them.
  rss.phase = 'first';
  await waitFor(`${target.mode}: the first state delivered`, async () => {
    const truth = await agentShape(world.stateDir);
    const names = Object.keys(truth ?? {});
    return names.length === 2 && Object.values(truth ?? {}).every((pod) => pod.phase === 'Running') && sameShape(truth, target.received());
  }, { timeoutMs: 90_000, intervalMs: 250 });
  const firstDeliveryMs = Date.now() - began;
  rss.phase = 'warm';
  await sleep(WARM_MS);

  // The bad phase: the modes in turn, and pod changes on a schedule of their own.
  const figures = {
    mode: target.mode,
    badSeconds: BAD_MS / 1000,
    requestsByMode: {} as Record<string, number>,
    attemptsByResult: {} as Record<string, number>,
    maxPending: 0,
    restartsMs: [] as number[],
    firstDeliveryMs: 0,
    finalMs: 0,
    rssMb: { warm: 0, peak: 0, end: 0, firstThird: 0, lastThird: 0 },
  };
  const scrapes: string[] = [];
  const actions: Promise<void>[] = [];
  let kills = 0;
  const kill = async () => {
    const key = `default/${name('keep')}`;
    const before = agent.find({ event: 'ContainerRestarting' }, key).length;
    const killedAt = Date.now();
    await podman('kill', '--signal', 'KILL', podmanContainer(name('keep'), 'main'));
    kills++;
    await agent.waitForCount({ event: 'ContainerRestarting' }, before + 1, { pod: key, timeoutMs: BACKOFF_MAX_S * 1000 + RESTART_SLACK_MS });
    figures.restartsMs.push(Date.now() - killedAt);
  };
  const pendingKey = `{mode="${target.mode}"}`;
  let stopScraping = false;
  const scraper = (async () => {
    while (!stopScraping) {
      const metrics = await apiText(apiPort, '/metrics');
      const pending = metricValues(metrics, 'podvisor_publish_pending').get(pendingKey);
      if (pending !== undefined) figures.maxPending = Math.max(figures.maxPending, pending);
      scrapes.push(await apiText(apiPort, '/healthz?verbose'));
      await sleep(2000);
    }
  })();

  rss.phase = 'bad';
  const badStart = Date.now();
  let slotEnd = badStart;
  const lastSlot = BAD_MS / MODE_MS - 1;
  for (let slot = 0; slot <= lastSlot; slot++) {
    const cycle = Math.floor(slot / BAD_MODES.length);
    const modeIndex = slot % BAD_MODES.length;
    const mode = BAD_MODES[modeIndex] ?? 'down';
    await proxy.setMode(mode);
    slotEnd += MODE_MS;
    // The first change comes at once, to meet the first mode; the others halfway through theirs.
    const when = sleep(modeIndex === 0 ? 0 : MODE_MS / 2);
    actions.push(when.then(async () => {
      // The last change falls in the last (hanging) mode, so that what is delivered after the
      // recovery could not have slipped through before it (a reset request that was applied).
      if (modeIndex === 0 || slot === lastSlot) await kill();
      else if (modeIndex === 2 && cycle === 0) await rm(join(world.manifestDir, 'gone.yaml'));
      else if (modeIndex === 3 && cycle === 0) await putManifest(world.manifestDir, 'late.yaml', manifest('late', '1'));
      else if (modeIndex === 3) await putManifest(world.manifestDir, 'late.yaml', manifest('late', String(cycle + 1)));
    }));
    await sleep(slotEnd - Date.now());
    if (mode === 'error' && cycle === 0) {
      // On a loaded machine the change may take a while to reach the publisher: the first 5xx
      // (which echoes the token) must be met, so this mode waits for it, MODE_MS more at most.
      await waitFor('a request in the 5xx mode', () => (proxy.requests.get('error') ?? 0) > 0, { timeoutMs: MODE_MS, intervalMs: 100 }).catch(() => undefined);
      slotEnd = Math.max(slotEnd, Date.now());
    }
  }
  figures.badSeconds = Math.round((Date.now() - badStart) / 1000);

  // Healthy again: the latest state must arrive.
  await proxy.setMode('healthy');
  rss.phase = 'recovery';
  const healthyAt = Date.now();
  const settled = await Promise.allSettled(actions);
  for (const result of settled) if (result.status === 'rejected') t.fail(`a pod change or its supervision failed: ${String(result.reason)}`);
  let truth: Shape | undefined;
  const delivered = await waitFor(`${target.mode}: the final state delivered`, async () => {
    truth = await agentShape(world.stateDir);
    const names = Object.keys(truth ?? {});
    // The agent itself must have settled: the removed pod gone, the new one running.
    if (!names.includes(name('late')) || names.includes(name('gone'))) return undefined;
    if (!Object.values(truth ?? {}).every((pod) => pod.phase === 'Running')) return undefined;
    return sameShape(truth, target.received()) ? Date.now() : undefined;
  }, { timeoutMs: FINAL_MS + 30_000, intervalMs: 250 }).catch((error: unknown) => {
    t.comment(`agent: ${JSON.stringify(truth)}\nreceived: ${JSON.stringify(target.received())}`);
    throw error;
  });
  figures.finalMs = delivered - healthyAt;
  figures.firstDeliveryMs = firstDeliveryMs;
  rss.phase = 'end';
  await sleep(3000);
  stopScraping = true;
  await scraper;
  const metrics = await apiText(apiPort, '/metrics');
  for (const [labels, value] of metricValues(metrics, 'podvisor_publish_requests_total')) {
    const result = /result="([^"]+)"/.exec(labels)?.[1] ?? labels;
    figures.attemptsByResult[result] = value;
  }
  figures.requestsByMode = Object.fromEntries(proxy.requests);
  rss.stop();

  // --- Checks ---
  t.ok(figures.finalMs <= FINAL_MS, `${target.mode}: the final state arrived ${figures.finalMs} ms after the recovery (bound ${FINAL_MS} ms: back-off cap ${DEFAULT_RETRY_MAX_MS} ms + deadline ${DEFAULT_TIMEOUT_SECONDS} s + 15 s)`);
  const final = target.received() ?? {};
  t.notOk(final[name('gone')], 'the removed pod is gone from the endpoint');
  t.match(final[name('keep')]?.containers['main'], new RegExp(`restarts=${kills}$`), `the killed container's ${kills} restart(s) delivered`);
  t.equal(figures.restartsMs.length, kills, `every killed container restarted (${figures.restartsMs.join(', ')} ms)`);

  const warm = median(rss.of('warm'));
  const bad = rss.of('bad');
  const after = rss.of('bad', 'recovery', 'end');
  const third = Math.max(1, Math.floor(bad.length / 3));
  figures.rssMb = {
    warm: round(warm),
    peak: round(Math.max(...after)),
    end: round(median(rss.of('end'))),
    firstThird: round(median(bad.slice(0, third))),
    lastThird: round(median(bad.slice(-third))),
  };
  t.ok(figures.rssMb.peak - warm <= RSS_GROWTH_MB, `RSS peak ${figures.rssMb.peak} MB within ${RSS_GROWTH_MB} MB of the warm-up's ${figures.rssMb.warm} MB`);
  t.ok(figures.rssMb.lastThird - figures.rssMb.firstThird <= RSS_CREEP_MB, `RSS does not creep: ${figures.rssMb.firstThird} MB → ${figures.rssMb.lastThird} MB over the bad phase (bound +${RSS_CREEP_MB} MB)`);

  t.ok(figures.maxPending >= 1, `the backlog was seen (max ${figures.maxPending})`);
  t.ok(figures.maxPending <= target.pendingBound(3), `the backlog stays at one per pod or less: max ${figures.maxPending} (bound ${target.pendingBound(3)})`);
  const badRequests = BAD_MODES.reduce((sum, mode) => sum + (figures.requestsByMode[mode] ?? 0), 0);
  // A tight loop would make hundreds: the back-off keeps it to a few a minute (the Kubernetes
  // mode's node Lease has its own loop, retried within its 10 s renew interval).
  const perMinute = (badRequests / figures.badSeconds) * 60;
  t.ok(perMinute <= (target.mode === 'webhook' ? 30 : 60), `requests reaching the bad endpoint are spaced: ${perMinute.toFixed(1)} a minute`);
  t.ok((figures.requestsByMode['error'] ?? 0) >= 1, 'the agent met the 5xx answers that echo its token');

  t.ok(target.authorizations().includes(`Bearer ${token}`), 'the token was sent to the endpoint');
  const leaks: string[] = [];
  if (agent.dump().includes(token)) leaks.push('the log');
  for (const file of await filesUnder(world.stateDir)) if (file.text.includes(token)) leaks.push(file.path);
  if (metrics.includes(token)) leaks.push('/metrics');
  if (scrapes.some((text) => text.includes(token))) leaks.push('/healthz?verbose');
  t.same(leaks, [], 'the token shows nowhere');
  t.ok(agent.find(/delivery failed/).length >= 1, 'the failures were logged (so the search above had something to search)');
  t.ok(agent.running, 'the agent ran throughout');
  t.comment(`figures: ${JSON.stringify(figures)}`);
  const figuresFile = process.env.PODVISOR_PUBLISHER_FIGURES;
  if (figuresFile) await writeFile(`${figuresFile}.${target.mode}.json`, `${JSON.stringify(figures, null, 2)}\n`);
}

t.test('webhook publisher through a bad endpoint', (t) => endure(t, webhookTarget));
t.test('kubernetes publisher through a bad endpoint', (t) => endure(t, kubernetesTarget));
