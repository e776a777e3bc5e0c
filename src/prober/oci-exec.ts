// exec probes through the OCI runtime itself, as CRI-O's ExecSync does, rather than `podman exec`
// (a podman client, an exec conmon and the `podman container cleanup` it starts: ~135 ms of CPU a
// run, against ~10 ms for the runtime alone). The command runs as
//   <crun|runc> --root <root> --log <file> --log-format=json exec --process <process.json> --pid-file <file> <id>
// with process.json built as podman builds an exec session's: the container's own OCI process
// (its env, user and groups, working directory, capabilities, rlimits, labels) with the probe's
// command as args and no terminal. The runtime puts the process in the container's namespaces and
// cgroup. Limits the spec leaves unset are inherited (from podman's conmon for `podman exec`, from
// the agent here), so the exec gets the limits of the container's main process, read from
// /proc/<pid>/limits (the spec's, as the runtime applied them, and what it inherited).
// One difference from podman 4's exec: podman starts from the spec it made at creation, which
// lacks the HOSTNAME variable added at start; the bundle's config.json (what the container's main
// process got) has it, as an exec in Kubernetes has.
//
// The runtime's root is the one podman uses: podman passes no --root (unless given
// --runtime-flag) and runs the runtime with XDG_RUNTIME_DIR empty when rootful, so it is the
// runtime's default for root: crun says which in `crun --version` ("rundir:"), runc's is
// /run/runc. Each run checks that <root>/<id> exists; the caller falls back to podman exec when it
// does not, when podman is rootless or the agent not root, or when the runtime is neither.
//
// Signals (crun 1.8 and runc 1.1, seen): a non-detached `exec` waits for its process and exits
// with its status (128+n for a signal). It starts the process in a session of its own, as that
// session's only member to begin with. SIGTERM to the runtime is passed on to the process alone, so
// a shell's children live on; SIGKILL to the runtime leaves the process running, reparented to the
// container's init. So on timeout or cancel this module SIGKILLs the process named in the pid file,
// its descendants and the rest of its session, while the runtime still waits on it (the pid cannot
// have been reused yet), and only then lets execa stop the runtime.
import type { ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { execa } from 'execa';
import { errorMessage } from '../errors.js';
import type { PodmanCli } from '../runtime/podman-cli.js';

/** An OCI runtime podvisor may call directly, and the state root podman's containers are under. */
export interface OciRuntime {
  name: 'crun' | 'runc';
  path: string;
  root: string;
}

/** What one direct exec came to. */
export type DirectExecResult =
  /** The command ran and exited with `exitCode` (128+n for signal n). */
  | { kind: 'exited'; exitCode: number; stdout: string; stderr: string }
  /** The probe's timeout passed; the process and its descendants were killed. */
  | { kind: 'timedOut' }
  | { kind: 'cancelled' }
  /** This container is not the runtime's to exec into (no state, or not started): ask podman. */
  | { kind: 'unavailable'; reason: string }
  /** The runtime itself failed (its log has an error): ask podman, which may know better. */
  | { kind: 'runtimeError'; message: string };

/** The kubelet keeps at most this much of an exec probe's output (each stream is capped at it here). */
export const MAX_EXEC_OUTPUT = 10 * 1024;
/** Time allowed for the runtime to start and stop, on top of the probe's timeout (a backstop only). */
const RUNTIME_ALLOWANCE_MS = 5000;
/** How long output may still come after the runtime exited, when the pipes stay open. */
const OUTPUT_GRACE_MS = 100;
/** Container ids as podman gives them: nothing that could leave the state root. */
const CONTAINER_ID = /^[0-9a-f]{12,64}$/;

interface PodmanInfo {
  host?: { ociRuntime?: { name?: string; path?: string }; security?: { rootless?: boolean } };
}

/**
 * The OCI runtime podman uses, if podvisor can call it directly; otherwise why not. Asks podman
 * once (`podman info`), and crun where its state root is.
 */
export async function detectOciRuntime(cli: PodmanCli): Promise<OciRuntime | { unusable: string }> {
  if (process.geteuid?.() !== 0) return { unusable: 'the agent does not run as root, so the OCI runtime state is not its to use' };
  const info = await cli.json<PodmanInfo>(['info', '--format', 'json'], { timeoutMs: 60_000 });
  if (info?.host?.security?.rootless) return { unusable: 'podman runs rootless' };
  const runtime = info?.host?.ociRuntime;
  const name = basename(runtime?.name ?? '');
  const path = runtime?.path;
  if (name !== 'crun' && name !== 'runc') return { unusable: `podman's OCI runtime is ${name || 'unknown'}, not crun or runc` };
  if (!path) return { unusable: `podman info gives no path for ${name}` };
  let root = '/run/runc';
  if (name === 'crun') {
    // What crun takes for its root when podman calls it: XDG_RUNTIME_DIR empty (rootful podman).
    const version = await execa(path, ['--version'], { reject: false, timeout: 10_000, env: { XDG_RUNTIME_DIR: '' } });
    if (version.exitCode !== 0) return { unusable: `${path} --version failed: ${version.stderr || version.shortMessage}` };
    root = /^rundir: (.+)$/m.exec(version.stdout)?.[1]?.trim() ?? '/run/crun';
  }
  if (!(await isDirectory(root))) return { unusable: `${name}'s state root ${root} does not exist` };
  await removeStaleExecDirs();
  return { name, path, root };
}

/**
 * Where each direct exec keeps its process spec, pid file and log: under /run (a tmpfs, emptied
 * at boot, root's own), since the spec holds the container's environment and its secrets.
 */
const EXEC_BASE = '/run/podvisor/exec';
/** Longer than any probe runs: an older exec directory was left by an agent that was killed. */
const STALE_EXEC_MS = 10 * 60_000;

/** Removes exec directories an agent killed mid-probe left behind (other agents' live ones stay). */
async function removeStaleExecDirs(): Promise<void> {
  const names = await readdir(EXEC_BASE).catch(() => [] as string[]);
  await Promise.all(names.map(async (name) => {
    const dir = join(EXEC_BASE, name);
    const info = await stat(dir).catch(() => undefined);
    if (info && Date.now() - info.mtimeMs > STALE_EXEC_MS) await rm(dir, { recursive: true, force: true });
  }));
}

/**
 * Runs `command` in container `containerId` through `runtime`. `timeoutMs` is the probe's timeout:
 * when it passes, what was started is killed. `signal` cancels (with the same kill).
 */
export async function directExec(runtime: OciRuntime, containerId: string, command: readonly string[], timeoutMs: number, signal: AbortSignal): Promise<DirectExecResult> {
  const timeout = AbortSignal.timeout(timeoutMs);
  const stop = AbortSignal.any([signal, timeout]);
  const prepared = await processSpec(runtime, containerId, command);
  if ('reason' in prepared) return { kind: 'unavailable', reason: prepared.reason };
  if (stop.aborted) return timeout.aborted ? { kind: 'timedOut' } : { kind: 'cancelled' };

  await mkdir(EXEC_BASE, { recursive: true, mode: 0o700 });
  const dir = await mkdtemp(join(EXEC_BASE, 'exec-'));
  try {
    const files = { process: join(dir, 'process.json'), pid: join(dir, 'pid'), log: join(dir, 'log.json') };
    // Mode 0600 in a 0700 directory: the container's environment may hold secrets.
    await writeFile(files.process, prepared.json, { mode: 0o600 });
    const args = ['--root', runtime.root, `--log=${files.log}`, '--log-format=json', 'exec', '--process', files.process, '--pid-file', files.pid, containerId];

    let runtimePid: number | undefined;
    let killedPid: number | undefined;
    const kill = (): void => {
      killedPid ??= killExecSession(files.pid, runtimePid);
    };
    // Registered before execa's own listener on the same signal: the exec'd process is killed
    // while the runtime still waits on it, then execa stops the runtime.
    stop.addEventListener('abort', kill, { once: true });
    const subprocess = execa(runtime.path, args, {
      reject: false,
      stdin: 'ignore',
      buffer: false,
      timeout: timeoutMs + RUNTIME_ALLOWANCE_MS,
      cancelSignal: stop,
      forceKillAfterDelay: 2000,
      env: { XDG_RUNTIME_DIR: '' },
    });
    runtimePid = subprocess.pid;
    const stdout = capture(subprocess.stdout);
    const stderr = capture(subprocess.stderr);
    const exit = await exited(subprocess);
    // The output written before the exit is in the pipes; children the command left running may
    // hold them open, and are not waited for (podman exec does not wait for them either).
    await Promise.all([stdout.ended, stderr.ended].map((ended) => Promise.race([ended, delay(OUTPUT_GRACE_MS)])));
    subprocess.stdout?.destroy();
    subprocess.stderr?.destroy();
    const result = await subprocess;
    stop.removeEventListener('abort', kill);
    // Stopped before the pid file was written: the process may have started since.
    if (stop.aborted && killedPid === undefined) killExecSession(files.pid, undefined);

    if (timeout.aborted) return { kind: 'timedOut' };
    if (signal.aborted) return { kind: 'cancelled' };
    const errors = await runtimeErrors(files.log);
    if (errors.length > 0) return { kind: 'runtimeError', message: errors.join('; ') };
    if (exit.code === null) return { kind: 'runtimeError', message: `${runtime.name} exec: ${result.shortMessage || `killed by ${String(exit.signal)}`}` };
    return { kind: 'exited', exitCode: exit.code, stdout: stdout.text(), stderr: stderr.text() };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The exec process for `command`: the container's own process (from its bundle), as podman makes it. */
async function processSpec(runtime: OciRuntime, containerId: string, command: readonly string[]): Promise<{ json: string } | { reason: string }> {
  if (!CONTAINER_ID.test(containerId)) return { reason: `${containerId} is not a container id` };
  const state = join(runtime.root, containerId);
  let found: { bundle: string | undefined; pid: number | undefined };
  try {
    found = runtime.name === 'crun' ? crunState(await readFile(join(state, 'status'), 'utf8')) : runcState(await readFile(join(state, 'state.json'), 'utf8'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { reason: `no ${runtime.name} state at ${state}` };
    return { reason: `${runtime.name} state at ${state} unreadable: ${errorMessage(error)}` };
  }
  if (found.bundle === undefined) return { reason: `${runtime.name} state at ${state} names no bundle` };
  // The runtime keeps exec.fifo until `start`: a container created but not started is not podman's "running".
  if (existsSync(join(state, 'exec.fifo'))) return { reason: 'the container has not started' };
  let spec: { process?: Record<string, unknown> };
  try {
    spec = JSON.parse(await readFile(join(found.bundle, 'config.json'), 'utf8')) as typeof spec;
  } catch (error) {
    return { reason: `the container's config.json unreadable: ${errorMessage(error)}` };
  }
  if (typeof spec.process !== 'object' || spec.process === null) return { reason: "the container's config.json has no process" };
  // The spec's rlimits are replaced by the main process's: JSON.parse cannot hold RLIM_INFINITY.
  const { consoleSize: _consoleSize, rlimits: _rlimits, ...base } = spec.process;
  const rlimits = found.pid === undefined ? [] : await processLimits(found.pid);
  if (rlimits.length === 0) return { reason: "the container's main process is gone" };
  return { json: processJson({ ...base, args: [...command], terminal: false }, rlimits) };
}

/** The bundle and main process in crun's `status` file. */
function crunState(text: string): { bundle: string | undefined; pid: number | undefined } {
  const status = JSON.parse(text) as { bundle?: unknown; pid?: unknown };
  return { bundle: typeof status.bundle === 'string' ? status.bundle : undefined, pid: typeof status.pid === 'number' ? status.pid : undefined };
}

/** The bundle (a `bundle=` label of its config) and main process in runc's state.json. */
function runcState(text: string): { bundle: string | undefined; pid: number | undefined } {
  const state = JSON.parse(text) as { config?: { labels?: unknown }; init_process_pid?: unknown };
  const labels = state.config?.labels;
  const label = Array.isArray(labels) ? labels.find((one): one is string => typeof one === 'string' && one.startsWith('bundle=')) : undefined;
  return { bundle: label?.slice('bundle='.length), pid: typeof state.init_process_pid === 'number' ? state.init_process_pid : undefined };
}

/** An OCI rlimit, its values as decimal text (RLIM_INFINITY, 2^64-1, has no exact JavaScript number). */
interface Rlimit {
  type: string;
  soft: string;
  hard: string;
}

const RLIM_INFINITY = '18446744073709551615';
const LIMIT_NAMES: Record<string, string> = {
  'Max cpu time': 'RLIMIT_CPU',
  'Max file size': 'RLIMIT_FSIZE',
  'Max data size': 'RLIMIT_DATA',
  'Max stack size': 'RLIMIT_STACK',
  'Max core file size': 'RLIMIT_CORE',
  'Max resident set': 'RLIMIT_RSS',
  'Max processes': 'RLIMIT_NPROC',
  'Max open files': 'RLIMIT_NOFILE',
  'Max locked memory': 'RLIMIT_MEMLOCK',
  'Max address space': 'RLIMIT_AS',
  'Max file locks': 'RLIMIT_LOCKS',
  'Max pending signals': 'RLIMIT_SIGPENDING',
  'Max msgqueue size': 'RLIMIT_MSGQUEUE',
  'Max nice priority': 'RLIMIT_NICE',
  'Max realtime priority': 'RLIMIT_RTPRIO',
  'Max realtime timeout': 'RLIMIT_RTTIME',
};

/** The resource limits of process `pid` (none when it is gone). */
async function processLimits(pid: number): Promise<Rlimit[]> {
  const text = await readFile(`/proc/${pid}/limits`, 'utf8').catch(() => '');
  const limits: Rlimit[] = [];
  for (const line of text.split('\n').slice(1)) {
    const match = /^(.+?)\s{2,}(unlimited|\d+)\s+(unlimited|\d+)/.exec(line);
    const type = match?.[1] === undefined ? undefined : LIMIT_NAMES[match[1]];
    if (match?.[2] === undefined || match[3] === undefined || type === undefined) continue;
    const value = (text: string): string => (text === 'unlimited' ? RLIM_INFINITY : text);
    limits.push({ type, soft: value(match[2]), hard: value(match[3]) });
  }
  return limits;
}

/** process.json's text, the rlimits written out as JSON numbers. */
function processJson(process: Record<string, unknown>, rlimits: readonly Rlimit[]): string {
  const text = JSON.stringify(process);
  const limits = rlimits.map((limit) => `{"type":${JSON.stringify(limit.type)},"soft":${limit.soft},"hard":${limit.hard}}`).join(',');
  return `${text.slice(0, -1)},"rlimits":[${limits}]}`;
}

/** Keeps the first MAX_EXEC_OUTPUT bytes of a stream and drains the rest. */
function capture(stream: NodeJS.ReadableStream | null): { text: () => string; ended: Promise<void> } {
  const chunks: Buffer[] = [];
  let size = 0;
  stream?.on('data', (chunk: Buffer) => {
    if (size >= MAX_EXEC_OUTPUT) return;
    const part = chunk.subarray(0, MAX_EXEC_OUTPUT - size);
    chunks.push(part);
    size += part.length;
  });
  const ended = new Promise<void>((resolve) => {
    if (stream === null) return resolve();
    stream.once('end', resolve);
    stream.once('close', resolve);
  });
  return { text: () => Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, ''), ended };
}

/** Resolves when the process exits (not when its pipes close). */
function exited(subprocess: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => {
    if (subprocess.exitCode !== null || subprocess.signalCode !== null) return resolve({ code: subprocess.exitCode, signal: subprocess.signalCode });
    subprocess.once('exit', (code, signal) => resolve({ code, signal }));
    // Never spawned (no such runtime binary): execa's result says why.
    subprocess.once('error', () => resolve({ code: null, signal: null }));
  });
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The error messages the runtime logged (its JSON log: one object a line). */
async function runtimeErrors(logFile: string): Promise<string[]> {
  const text = await readFile(logFile, 'utf8').catch(() => '');
  const errors: string[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      const entry = JSON.parse(line) as { level?: unknown; msg?: unknown };
      if (entry.level === 'error' && typeof entry.msg === 'string') errors.push(entry.msg);
    } catch {
      errors.push(line.trim());
    }
  }
  return errors;
}

interface ProcInfo {
  ppid: number;
  session: number;
}

/**
 * SIGKILLs the process named in `pidFile`, its descendants and the rest of its session (unless that
 * session is the agent's or the runtime's). Returns the pid, or undefined when there was none yet.
 * Synchronous, so that it finishes before the runtime is signalled.
 */
function killExecSession(pidFile: string, runtimePid: number | undefined): number | undefined {
  let pid: number;
  try {
    pid = Number(readFileSync(pidFile, 'utf8').trim());
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 1) return undefined;
  const table = processTable();
  const exec = table.get(pid);
  if (exec === undefined) return pid; // already gone
  const victims = new Set([pid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [other, info] of table) {
      if (!victims.has(other) && victims.has(info.ppid)) {
        victims.add(other);
        grew = true;
      }
    }
  }
  const spared = new Set([table.get(process.pid)?.session, runtimePid === undefined ? undefined : table.get(runtimePid)?.session]);
  if (exec.session > 1 && !spared.has(exec.session)) {
    for (const [other, info] of table) if (info.session === exec.session) victims.add(other);
  }
  victims.delete(process.pid);
  if (runtimePid !== undefined) victims.delete(runtimePid);
  for (const victim of victims) {
    try {
      process.kill(victim, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  return pid;
}

/** Parent and session of every process, from /proc/<pid>/stat. */
function processTable(): Map<number, ProcInfo> {
  const table = new Map<number, ProcInfo>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // After "(comm)": state ppid pgrp session ...
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      table.set(Number(entry), { ppid: Number(fields[1]), session: Number(fields[3]) });
    } catch {
      // exited meanwhile
    }
  }
  return table;
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}
