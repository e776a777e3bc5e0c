// The end-to-end harness: starts the built agent (dist/podvisor.mjs, the bundle that ships) as a child process on temporary
// directories, reads its JSON log lines, and looks at podman directly. Every test gets its own
// node name, so its pods (labelled io.podvisor.node=<node>) never meet another test's, and one
// teardown kills its agents, then removes its pods and directories, in that order. Waits poll
// with a deadline; nothing rests on a fixed sleep.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import type { Test } from 'tap';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = join(REPO, 'dist', 'podvisor.mjs');
/**
 * Node flags for the agents a test starts, to look into one (PODVISOR_AGENT_NODE_ARGS="--cpu-prof
 * --cpu-prof-dir=/var/tmp/prof"); with them, teardown stops agents with SIGTERM so that a profile
 * is written.
 */
const AGENT_NODE_ARGS = (process.env.PODVISOR_AGENT_NODE_ARGS ?? '').split(' ').filter(Boolean);
export const IMAGE = process.env.PODVISOR_TEST_IMAGE ?? 'localhost/busybox:podvisor';

/** The environment and Node flags of the bundle's `#!/usr/bin/env -S VAR=value ... node --flag ...` line. */
function shebangLaunch(): { env: Record<string, string>; flags: string[] } {
  const first = readFileSync(CLI, 'utf8').slice(0, 1000).split('\n')[0] ?? '';
  const words = first.replace(/^#!\/usr\/bin\/env -S /, '').split(/\s+/).filter(Boolean);
  const node = words.indexOf('node');
  if (!first.startsWith('#!/usr/bin/env -S ') || node < 0) throw new Error(`${CLI}: its first line is not the launch line the harness reads: ${first}`);
  const env = Object.fromEntries(words.slice(0, node).map((word) => [word.slice(0, word.indexOf('=')), word.slice(word.indexOf('=') + 1)]));
  return { env, flags: words.slice(node + 1) };
}

/** One JSON log line of the agent (winston's json format). */
export interface LogLine {
  level: string;
  message: string;
  timestamp: string;
  [field: string]: unknown;
}

export interface WaitOptions {
  timeoutMs?: number;
  intervalMs?: number;
}

/** Polls `probe` until it returns something other than undefined/false, or throws after the deadline. */
export async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, options: WaitOptions = {}): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const intervalMs = options.intervalMs ?? 200;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
      // An error of an earlier try is not why this one came up empty.
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const why = lastError instanceof Error ? ` (the last try threw: ${lastError.message})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await new Promise((resolveDelay) => setTimeout(resolveDelay, intervalMs));
  }
}

/** Resolves as `promise` does, or rejects once `timeoutMs` has passed (the timer is cleared). */
export async function within<T>(what: string, timeoutMs: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs podman; rejects with its stderr unless it exits 0. */
export async function podman(...args: string[]): Promise<string> {
  const result = await execa('podman', args, { reject: false, stdin: 'ignore', timeout: 120_000 });
  if (result.exitCode !== 0) throw new Error(`podman ${args.join(' ')}: exit ${String(result.exitCode)}: ${result.stderr}`);
  return result.stdout;
}

/** Runs podman and returns its exit code only. */
export async function podmanStatus(...args: string[]): Promise<number> {
  const result = await execa('podman', args, { reject: false, stdin: 'ignore', timeout: 120_000 });
  return result.exitCode ?? -1;
}

/** `podman pod ps` as podman 4.3 prints it (the fields the tests read). */
export interface PodEntry {
  Id: string;
  Name: string;
  Status: string;
  InfraId: string;
  Labels: Record<string, string> | null;
  Containers: { Id: string; Names: string; Status: string }[] | null;
}

/** `podman ps -a` as podman 4.3 prints it (the fields the tests read). */
export interface ContainerEntry {
  Id: string;
  Names: string[];
  State: string;
  ExitCode: number;
  StartedAt: number;
  Labels: Record<string, string> | null;
  Pod: string;
}

/** The pods labelled with `node`. */
export async function podsOf(node: string): Promise<PodEntry[]> {
  const out = await podman('pod', 'ps', '--filter', `label=io.podvisor.node=${node}`, '--format', 'json');
  return (JSON.parse(out || '[]') as PodEntry[] | null) ?? [];
}

/** The config hash of the Running pod podvisor made from the manifest pod `name` on `node`, if any. */
export async function runningHash(node: string, name: string): Promise<string | undefined> {
  return (await podsOf(node)).find((pod) => pod.Labels?.['io.podvisor.name'] === `${name}-${node}` && pod.Status === 'Running')?.Labels?.['io.podvisor.hash'];
}

/** Waits for pod `name` to run a spec other than `hash` (its replace done) and returns the new spec's hash. */
export async function replacedFrom(node: string, name: string, hash: string | undefined, options: { timeoutMs: number; intervalMs?: number }): Promise<string> {
  return await waitFor(`${name} replaced`, async () => {
    const now = await runningHash(node, name);
    return now && now !== hash ? now : undefined;
  }, options);
}

/** The manifest containers (not infra) of the pods labelled with `node`, sorted by name. */
export async function containersOf(node: string): Promise<ContainerEntry[]> {
  const out = await podman('ps', '--all', '--filter', `label=io.podvisor.node=${node}`, '--format', 'json');
  const all = (JSON.parse(out || '[]') as ContainerEntry[] | null) ?? [];
  return all
    .filter((entry) => entry.Labels?.['io.podvisor.container'] !== undefined)
    .sort((a, b) => (a.Names[0] ?? '').localeCompare(b.Names[0] ?? ''));
}

/** Name → id of the manifest containers of `node`'s pods. */
export async function containerIds(node: string): Promise<Record<string, string>> {
  return Object.fromEntries((await containersOf(node)).map((entry) => [entry.Names[0] ?? '', entry.Id]));
}

/** podman's own record of when a container last started (inspect .State.StartedAt). */
export async function startedAt(container: string): Promise<string> {
  return (await podman('inspect', '--type', 'container', '--format', '{{.State.StartedAt}}', container)).trim();
}

/** Runs a command in a container and returns its standard output without the final newline. */
export async function exec(container: string, ...command: string[]): Promise<string> {
  return (await podman('exec', container, ...command)).replace(/\n$/, '');
}

/** True when podman still has a pod with this name or id. */
export async function podExists(nameOrId: string): Promise<boolean> {
  return (await podmanStatus('pod', 'exists', nameOrId)) === 0;
}

/** A free TCP port on 127.0.0.1 (free now; the test publishes it moments later). */
export async function freePort(): Promise<number> {
  return await new Promise<number>((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

/** A node name unique to this run of this test file, e.g. e2e-add-3f9a1c. */
export function uniqueNode(file: string): string {
  return `e2e-${file}-${randomBytes(3).toString('hex')}`;
}

/** Writes a manifest the way a deployment tool does: a temporary name, then an atomic rename. */
export async function putManifest(dir: string, name: string, text: string): Promise<string> {
  const path = join(dir, name);
  const temporary = join(dir, `.${name}.${randomBytes(3).toString('hex')}.tmp`);
  await writeFile(temporary, text);
  await rename(temporary, path);
  return path;
}

/**
 * What a log line is looked for by. Tests match the stable `event` field the agent puts on the
 * lines that record what it did (`{ event: 'PodStarted' }`, or one of several events, with any
 * other fields to equal); a string or RegExp matches the message, for lines without an event.
 */
/** The events of the agent's actions on pods: a test that expects no action looks for these. */
export const ACTION_EVENTS: readonly string[] = ['PodCreating', 'PodReplacing', 'PodStopping', 'DeadlineExceeded', 'ContainerRestarting', 'ContainersCreating'];

export type LogMatch = string | RegExp | ({ event: string | readonly string[] } & Record<string, unknown>);

function logMatches(line: LogLine, match: LogMatch): boolean {
  if (typeof match === 'string') return line.message === match;
  if (match instanceof RegExp) return match.test(line.message);
  return Object.entries(match).every(([key, want]) => (key === 'event' && Array.isArray(want) ? want.includes(line.event) : line[key] === want));
}

function describeMatch(match: LogMatch): string {
  return typeof match === 'string' || match instanceof RegExp ? String(match) : JSON.stringify(match);
}

/** The agent as a child process, with its log lines as they arrive. */
export class AgentProcess {
  readonly lines: LogLine[] = [];
  /** Lines that were not JSON (a crash, a stack trace): kept for the failure report. */
  readonly rawLines: string[] = [];
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exitCode: number | null | undefined;

  /**
   * `cwd`: where the agent runs; conmon drops an `oom` file in its cwd when it sees an OOM kill.
   * `shipped`: with the Node flags and environment of the bundle's shebang, as `podvisor` runs on
   * a device (a test of memory measures that, not Node's defaults).
   */
  constructor(args: string[], cwd?: string, shipped = false) {
    const launch = shipped ? shebangLaunch() : { env: {}, flags: [] };
    this.child = spawn(process.execPath, [...launch.flags, ...AGENT_NODE_ARGS, CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...launch.env }, ...(cwd ? { cwd } : {}) });
    let buffered = '';
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      let newline;
      while ((newline = buffered.indexOf('\n')) !== -1) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        this.#take(line);
      }
    };
    this.child.stdout?.on('data', onData);
    this.child.stderr?.on('data', onData);
    this.exited = new Promise((resolveExit) => {
      this.child.on('exit', (code, signal) => {
        this.exitCode = code;
        if (buffered) this.#take(buffered);
        resolveExit({ code, signal });
      });
    });
  }

  #take(line: string): void {
    if (line.trim() === '') return;
    try {
      const parsed = JSON.parse(line) as LogLine;
      if (typeof parsed === 'object' && parsed !== null && typeof parsed.message === 'string') {
        this.lines.push(parsed);
        return;
      }
    } catch {
      // not JSON: kept as raw
    }
    this.rawLines.push(line);
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  /** Log lines that match (see LogMatch), optionally about one pod. */
  find(match: LogMatch, pod?: string): LogLine[] {
    return this.lines.filter((line) => logMatches(line, match) && (pod === undefined || line.pod === pod));
  }

  /** Waits for a log line matching `message` (and `pod`) and returns the first one. */
  async waitForLog(message: LogMatch, options: WaitOptions & { pod?: string } = {}): Promise<LogLine> {
    return await waitFor(`log line ${describeMatch(message)}${options.pod ? ` for ${options.pod}` : ''}`, () => {
      if (!this.running && this.find(message, options.pod).length === 0) throw new Error(`the agent exited (${String(this.exitCode)})`);
      return this.find(message, options.pod)[0];
    }, { intervalMs: 50, ...options });
  }

  /** Waits until at least `count` log lines match `message` (and `pod`). */
  async waitForCount(message: LogMatch, count: number, options: WaitOptions & { pod?: string } = {}): Promise<LogLine[]> {
    return await waitFor(`${count} log lines ${describeMatch(message)}${options.pod ? ` for ${options.pod}` : ''}`, () => {
      const found = this.find(message, options.pod);
      if (!this.running && found.length < count) throw new Error(`the agent exited (${String(this.exitCode)})`);
      return found.length >= count ? found : undefined;
    }, { intervalMs: 50, ...options });
  }

  /** How many listings of podman's pods (reconciler passes) the agent has made so far. */
  relists(): number {
    return this.lines.filter((line) => line.event === 'PodmanCall' && typeof line.args === 'string' && line.args.startsWith('pod ps')).length;
  }

  /** Waits until the agent has listed podman's pods `count` more times (each a full pass). */
  async waitForRelists(count: number, options: WaitOptions = {}): Promise<void> {
    const target = this.relists() + count;
    await waitFor(`${count} more relists`, () => {
      if (!this.running) throw new Error(`the agent exited (${String(this.exitCode)})`);
      return this.relists() >= target;
    }, { intervalMs: 50, timeoutMs: 30_000, ...options });
  }

  /** Sends a signal and waits for the process to exit. */
  async stop(signal: NodeJS.Signals = 'SIGKILL'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.running) this.child.kill(signal);
    return await this.exited;
  }

  /** The log, for a failure report. */
  dump(): string {
    return [...this.lines.map((line) => JSON.stringify(line)), ...this.rawLines].join('\n');
  }
}

/** One test's world: a node name, a manifest directory, a state directory, and its agents. */
export interface E2E {
  node: string;
  root: string;
  manifestDir: string;
  stateDir: string;
  /** Starts an agent on this world's directories (extra flags are appended); waits 30 s for it unless told. */
  startAgent(extraArgs?: string[], options?: WaitOptions & { shipped?: boolean }): Promise<AgentProcess>;
  /** Pods and containers made outside podvisor, removed at teardown. */
  ownPodmanObjects: string[];
}

/** Makes a test's world and registers its teardown: agents killed, pods and directories removed. */
export async function setup(t: Test, file: string): Promise<E2E> {
  const node = uniqueNode(file);
  const root = await mkdtemp(join(tmpdir(), `podvisor-${node}-`));
  const manifestDir = join(root, 'manifests');
  const stateDir = join(root, 'state');
  await mkdir(manifestDir);
  await mkdir(stateDir);
  const agents: AgentProcess[] = [];
  const world: E2E = {
    node,
    root,
    manifestDir,
    stateDir,
    ownPodmanObjects: [],
    async startAgent(extraArgs = [], options = {}) {
      const agent = new AgentProcess([
        'run',
        '--manifest-dir', manifestDir,
        '--state-dir', stateDir,
        '--node-name', node,
        '--log-format', 'json',
        '--log-level', 'debug',
        '--relist-interval', '1',
        '--resync-interval', '2',
        '--backoff-initial', '1',
        // Update locks of its own: /run/podvisor/locks is one for every agent on the machine.
        '--locks-dir', join(root, 'locks'),
        ...extraArgs,
      ], root, options.shipped ?? false);
      agents.push(agent);
      await agent.waitForLog({ event: 'AgentRunning' }, { timeoutMs: 30_000, ...options });
      return agent;
    },
  };
  t.teardown(async () => {
    if (!t.passing()) {
      for (const [index, agent] of agents.entries()) t.comment(`agent ${index} log:\n${agent.dump()}`);
    }
    for (const agent of agents) await agent.stop(AGENT_NODE_ARGS.length > 0 ? 'SIGTERM' : 'SIGKILL');
    const ids = (await podsOf(node).catch(() => [])).map((pod) => pod.Id);
    const mine = [...ids, ...world.ownPodmanObjects];
    // --ignore: one pod already gone must not keep the others from being removed.
    if (mine.length > 0) await execa('podman', ['pod', 'rm', '--ignore', '--force', '--time', '0', ...mine], { reject: false, stdin: 'ignore' });
    await rm(root, { recursive: true, force: true });
  });
  return world;
}

/** A pod manifest's text from parts, so each test writes only what it is about. */
export function podYaml(options: {
  name: string;
  namespace?: string;
  grace?: number;
  restartPolicy?: string;
  extraSpec?: string;
  containers: string;
}): string {
  return [
    'apiVersion: v1',
    'kind: Pod',
    'metadata:',
    `  name: ${options.name}`,
    ...(options.namespace ? [`  namespace: ${options.namespace}`] : []),
    'spec:',
    `  terminationGracePeriodSeconds: ${options.grace ?? 2}`,
    ...(options.restartPolicy ? [`  restartPolicy: ${options.restartPolicy}`] : []),
    ...(options.extraSpec ? [options.extraSpec.replace(/\n$/, '')] : []),
    '  containers:',
    options.containers.replace(/\n$/, ''),
    '',
  ].join('\n');
}

/** A container that sleeps and exits promptly on SIGTERM (YAML list item, 4-space indent). */
export function sleeper(name: string, env: Record<string, string> = {}): string {
  const envLines = Object.entries(env).map(([key, value]) => `        - { name: ${key}, value: "${value}" }`);
  return [
    `    - name: ${name}`,
    `      image: ${IMAGE}`,
    `      command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]`,
    ...(envLines.length > 0 ? ['      env:', ...envLines] : []),
    '',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// Supervision helpers (added with test/e2e/supervision-*.test.ts): the agent's status as a user
// reads it (`podvisor status -o json`, `podvisor status`, `podvisor describe`), podman's own
// record of each run of a container, and files the containers write through hostPath volumes.

/** What the built CLI printed and how it exited. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI (`node dist/podvisor.mjs ARGS`) as a user would. */
export async function podvisorCli(...args: string[]): Promise<CliResult> {
  const result = await execa(process.execPath, [CLI, ...args], { reject: false, stdin: 'ignore', timeout: 30_000 });
  return { code: result.exitCode ?? -1, stdout: result.stdout, stderr: result.stderr };
}

/**
 * Checks what an operator reads of a held replace: `podvisor status` shows the pod's pending
 * replace held by `heldBy` (a pattern's source), and `podvisor plan PLAN_ARGS` has it as the pod's
 * pending replace (exit 1: a change to come) and says why.
 */
export async function checkPendingReplace(t: Test, options: { stateDir: string; podName: string; heldBy: string; planArgs: string[] }): Promise<void> {
  const table = await waitFor('the status to say so', async () => {
    const result = await podvisorCli('status', '--state-dir', options.stateDir);
    return /Pending replace/.test(result.stdout) ? result.stdout : undefined;
  }, { timeoutMs: 20_000 });
  t.match(table, new RegExp(`pod/${options.podName}: ReplaceHeld: Pending replace: spec \\w+ held by ${options.heldBy}`), '`podvisor status` shows the pending replace');
  const plan = await podvisorCli('plan', '--state-dir', options.stateDir, ...options.planArgs);
  // Exit 1: the files ask for a replace the agent makes once released (README, `podvisor plan`).
  t.equal(plan.code, 1, `podvisor plan: a held replace is a change to come (exit ${plan.code}; ${plan.stderr.trim()})`);
  t.match(plan.stdout, new RegExp(`^~ pending +default/${options.podName} +\\S+: Pending replace: spec \\w+ held by ${options.heldBy}`, 'm'), 'and it says Pending replace, and why');
}

/** A container's status as `podvisor status -o json` serves it (the fields the tests read). */
export interface StatusContainer {
  name: string;
  state: { waiting?: { reason?: string; message?: string }; running?: { startedAt?: string }; terminated?: { exitCode: number; signal?: number; reason?: string; startedAt?: string; finishedAt?: string; containerID?: string } };
  lastState: StatusContainer['state'];
  ready: boolean;
  started?: boolean;
  restartCount: number;
  containerID?: string;
}

/** A pod as `podvisor status -o json` serves it (the fields the tests read). */
export interface StatusItem {
  metadata: { name: string; namespace?: string; uid: string };
  status: {
    phase: string;
    reason?: string;
    message?: string;
    startTime?: string;
    conditions: { type: string; status: string; reason?: string }[];
    initContainerStatuses: StatusContainer[];
    containerStatuses: StatusContainer[];
  };
}

/** The pods of `podvisor status -o json --state-dir DIR`; throws if the command fails. */
export async function statusItems(stateDir: string): Promise<StatusItem[]> {
  const result = await podvisorCli('status', '-o', 'json', '--state-dir', stateDir);
  if (result.code !== 0) throw new Error(`podvisor status -o json: exit ${result.code}: ${result.stderr}`);
  const list = JSON.parse(result.stdout) as { kind: string; items: StatusItem[] };
  if (list.kind !== 'PodList') throw new Error(`podvisor status -o json printed a ${list.kind}`);
  return list.items;
}

/** One pod of the status by its full name (`<name>-<node>`), or undefined. */
export async function statusOf(stateDir: string, podName: string): Promise<StatusItem | undefined> {
  return (await statusItems(stateDir)).find((item) => item.metadata.name === podName);
}

/** Polls the status until `check` returns something for the pod (it is not called before the pod shows). */
export async function waitForStatus<T>(stateDir: string, podName: string, what: string, check: (pod: StatusItem) => T | undefined | false, options: WaitOptions = {}): Promise<T> {
  return await waitFor(`${podName}: ${what}`, async () => {
    const pod = await statusOf(stateDir, podName);
    return pod ? check(pod) : undefined;
  }, { intervalMs: 250, ...options });
}

/** The table `podvisor status --state-dir DIR` prints, one record per pod keyed by column. */
export async function statusTable(stateDir: string): Promise<Record<string, string>[]> {
  const result = await podvisorCli('status', '--state-dir', stateDir);
  if (result.code !== 0) throw new Error(`podvisor status: exit ${result.code}: ${result.stderr}`);
  // The table ends at the first empty line; notes on pods (a rollback, an invalid file) follow it.
  const [header, ...rows] = (result.stdout.split('\n\n')[0] ?? '').split('\n').filter((line) => line.trim() !== '');
  // Cells are padded to the column width plus three spaces; RESTARTS may hold "3 (2s ago)".
  const columns = (header ?? '').split(/\s{3,}/);
  return rows.map((row) => Object.fromEntries(row.split(/\s{3,}/).map((cell, index) => [columns[index] ?? `column${index}`, cell])));
}

/** The container called `name` of a status item (init containers with `init`). */
export function containerOf(pod: StatusItem, name: string, init = false): StatusContainer | undefined {
  return (init ? pod.status.initContainerStatuses : pod.status.containerStatuses).find((one) => one.name === name);
}

/** podman's name for a container of a static pod (podman-args: `<namespace>_<pod>_<container>`). */
export function podmanContainer(podName: string, container: string, namespace = 'default'): string {
  return `${namespace}_${podName}_${container}`;
}

/** One run of a container, as podman's inspect records it (ms since the epoch, sub-second). */
export interface ContainerRun {
  startedAt: number;
  finishedAt: number | undefined;
  exitCode: number | undefined;
}

/** podman's `.State` of a container: status, exit code and start and finish times (ms, sub-second). */
export async function containerState(container: string): Promise<{ status: string; exitCode: number; startedAt: number; finishedAt: number | undefined }> {
  const out = await podman('inspect', '--type', 'container', '--format', '{{json .State}}', container);
  const state = JSON.parse(out) as { Status: string; ExitCode: number; StartedAt: string; FinishedAt: string };
  const finished = Date.parse(state.FinishedAt);
  // podman's zero time (year 1) for "not finished" parses as a negative number.
  return { status: state.Status, exitCode: state.ExitCode, startedAt: Date.parse(state.StartedAt), finishedAt: finished > 0 ? finished : undefined };
}

/**
 * Watches one container through `podman inspect` every `intervalMs`, recording each run (a new
 * StartedAt) with its finish time and exit code once podman has them. A run shorter than the
 * interval is still seen: the finish time of the previous run is read with the next start.
 */
export class RunRecorder {
  readonly runs: ContainerRun[] = [];
  readonly #container: string;
  readonly #intervalMs: number;
  #stopped = false;
  readonly #loop: Promise<void>;

  constructor(container: string, intervalMs = 100) {
    this.#container = container;
    this.#intervalMs = intervalMs;
    this.#loop = this.#poll();
  }

  async #poll(): Promise<void> {
    while (!this.#stopped) {
      const state = await containerState(this.#container).catch(() => undefined);
      if (state && Number.isFinite(state.startedAt) && state.startedAt > 0) {
        const last = this.runs.at(-1);
        if (!last || state.startedAt > last.startedAt) {
          this.runs.push({ startedAt: state.startedAt, finishedAt: undefined, exitCode: undefined });
        }
        const current = this.runs.at(-1);
        if (current && state.finishedAt !== undefined && state.finishedAt >= current.startedAt && state.status !== 'running') {
          current.finishedAt = state.finishedAt;
          current.exitCode = state.exitCode;
        }
      }
      await new Promise((resolveDelay) => setTimeout(resolveDelay, this.#intervalMs));
    }
  }

  /** Waits until `count` runs have been seen. */
  async waitForRuns(count: number, options: WaitOptions = {}): Promise<ContainerRun[]> {
    return await waitFor(`${count} runs of ${this.#container}`, () => (this.runs.length >= count ? this.runs.slice() : undefined), { intervalMs: 50, ...options });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#loop;
  }
}

/** The non-empty lines of a file, or [] while it does not exist. */
export async function fileLines(path: string): Promise<string[]> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text.split('\n').filter((line) => line.trim() !== '');
}

/**
 * A shell snippet (for a container's `sh -c`) that appends `<label> <uptime>` to `file`: the
 * kernel's /proc/uptime is shared by every container and the host, so lines written by different
 * containers compare on one clock (10 ms ticks). busybox's date has no %N.
 */
export function stamp(label: string, file: string): string {
  // No quotes of its own, so it can sit inside a trap's single-quoted command.
  return `read -r up idle < /proc/uptime; echo ${label} $up >> ${file}`;
}

/** Parses lines written by stamp(): label and uptime in ms. */
export function parseStamps(lines: string[]): { label: string; at: number }[] {
  return lines.map((line) => {
    const [label = '', at = 'NaN'] = line.split(' ');
    return { label, at: Math.round(Number(at) * 1000) };
  });
}

/** The host's /proc/uptime in ms: the clock stamp() writes. */
export async function uptimeMs(): Promise<number> {
  const text = await readFile('/proc/uptime', 'utf8');
  return Math.round(Number(text.split(' ')[0]) * 1000);
}

/** One `died` event of podman (4.3: `Time`; 5.x: `time` and `timeNano`). */
export interface DiedEvent {
  name: string;
  /** ms since the epoch. */
  at: number;
  exitCode: number | undefined;
}

/**
 * Collects podman's `died` events for the containers of `node` from now on (a `podman events`
 * child process, killed by stop()). Start it well before the deaths it is to see: podman streams
 * only what happens after it has started.
 */
export class DiedEvents {
  readonly events: DiedEvent[] = [];
  readonly #child;

  constructor(node: string) {
    this.#child = execa('podman', ['events', '--format', 'json', '--filter', 'event=died', '--filter', `label=io.podvisor.node=${node}`], { reject: false, stdin: 'ignore', buffer: false });
    let buffered = '';
    this.#child.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      let newline;
      while ((newline = buffered.indexOf('\n')) !== -1) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        try {
          const event = JSON.parse(line) as { Name?: string; Time?: string; time?: number; timeNano?: number; ContainerExitCode?: number };
          const at = event.timeNano !== undefined ? event.timeNano / 1e6 : event.Time !== undefined ? Date.parse(event.Time) : (event.time ?? 0) * 1000;
          this.events.push({ name: event.Name ?? '', at, exitCode: event.ContainerExitCode });
        } catch {
          // not an event line
        }
      }
    });
  }

  /** The first `died` event of the container called `name` (podman's name). */
  async waitFor(name: string, options: WaitOptions = {}): Promise<DiedEvent> {
    return await waitFor(`podman's died event for ${name}`, () => this.events.find((event) => event.name === name), { intervalMs: 50, ...options });
  }

  async stop(): Promise<void> {
    this.#child.kill('SIGTERM');
    await this.#child.catch(() => undefined);
  }
}

/**
 * An awk program's rules that read busybox's `adjtimex` output into `s` (seconds) and `u`
 * (microseconds). The kernel reports the fraction in nanoseconds, under the same "tv_usec" name,
 * when its clock is in nano mode (status bit STA_NANO, 0x2000), which an NTP daemon on the host
 * can switch on at any time: read as microseconds, it would be a thousand times too large.
 */
const ADJTIMEX_RULES = '/status:/ { nano = int($2 / 8192) % 2 } /tv_sec/ { s = $2 } /tv_usec/ { u = nano ? int($2 / 1000) : $2 }';

/**
 * A shell snippet (for a container's `sh -c`, not inside single quotes) that appends
 * `<label> <seconds since the epoch, to the microsecond>` to `file`: the wall clock podman's own
 * timestamps use, read through busybox's adjtimex (busybox's date has no %N).
 */
export function wallStamp(label: string, file: string): string {
  return `adjtimex | awk -v l=${label} '${ADJTIMEX_RULES} END { printf "%s %d.%06d\\n", l, s, u }' >> ${file}`;
}

/** A shell snippet that waits until the wall clock's fraction of a second is in [fromUs, toUs). */
export function waitForWallFraction(fromUs: number, toUs: number): string {
  return `until adjtimex | awk '${ADJTIMEX_RULES} END { exit !(u >= ${fromUs} && u < ${toUs}) }'; do sleep 0.01; done`;
}

/** Parses lines written by wallStamp(): label and ms since the epoch. */
export function parseWallStamps(lines: string[]): { label: string; at: number }[] {
  return lines.map((line) => {
    const [label = '', at = 'NaN'] = line.split(' ');
    return { label, at: Number(at) * 1000 };
  });
}

/** A process's resident set size in MB, from /proc. */
export async function rssMB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024;
}

/** A GET on a connection of its own: its status and the ms it took; status 0 and why when it failed or missed `deadlineMs`. */
export function getWithin(url: string, deadlineMs: number): Promise<{ status: number; ms: number; error?: string }> {
  const start = performance.now();
  return new Promise((resolve) => {
    const req = request(url, { agent: false }, (response) => {
      response.resume();
      response.on('end', () => {
        clearTimeout(timer);
        resolve({ status: response.statusCode ?? 0, ms: performance.now() - start });
      });
    });
    // The whole answer within the deadline, not just some bytes of it.
    const timer = setTimeout(() => req.destroy(new Error(`no answer within ${deadlineMs} ms`)), deadlineMs);
    req.on('error', (error) => {
      clearTimeout(timer);
      resolve({ status: 0, ms: performance.now() - start, error: error.message });
    });
    req.end();
  });
}
