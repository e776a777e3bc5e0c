// Runs one probe's handler against one container and says what it found. exec goes through
// `podman exec`; httpGet, tcpSocket and grpc reach the pod's own network namespace: for a pod on
// the host's network (or a probe naming a host) they connect from the agent itself, otherwise they
// run in a short-lived `nsenter --target <pid> --net -- node netns-probe-main.js` so that
// 127.0.0.1 is the pod's loopback. The pod IP is never used: it may not be routable from the host
// (rootless networks), and nothing here connects to pod-network addresses.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { errorMessage } from '../errors.js';
import type { ContainerPort, Probe } from '../manifest/pod-schema.js';
import type { PodmanCli } from '../runtime/podman-cli.js';
import { formatDuration, joinHostPort, probeUrl, runNetProbe, type NetProbeRequest } from './net-probe.js';
import { ProbeError } from './probe-error.js';
import { toProbeSpec, type ProbeHandler, type ProbeSpec } from './probe-spec.js';
import { resolveContainerPort } from './resolve-port.js';
import type { ProbeOutcome } from './types.js';

type HttpGetAction = NonNullable<Probe['httpGet']>;

/** What a probe needs to know of its container. */
export interface ProbeTarget {
  containerId: string;
  pid: number | undefined;
  hostNetwork: boolean;
  ports: readonly ContainerPort[];
}

/** Runs a probe's handler once. Never rejects: every problem is an outcome. */
export interface ProbeRunner {
  run(target: ProbeTarget, spec: ProbeSpec, signal: AbortSignal): Promise<ProbeOutcome>;
}

export interface PodProbeRunnerOptions {
  cli: PodmanCli;
  /** The node binary for the netns script (default: the agent's own). */
  nodePath?: string;
  /** The compiled netns script (default: dist/prober/netns-probe-main.js). */
  scriptPath?: string;
  /** The nsenter binary (default: nsenter, from util-linux). */
  nsenterPath?: string;
}

/** The kubelet keeps at most this much of an exec probe's output. */
const MAX_EXEC_OUTPUT = 10 * 1024;
/** Exit codes an exec probe may return; all but podman's own 125 are the command's. */
const COMMAND_EXIT_CODES = Array.from({ length: 255 }, (_, index) => index + 1);
/** podman's exit code for an error of podman itself (container not running, no such container). */
const PODMAN_ERROR_EXIT = 125;
/**
 * Time allowed for nsenter and Node to start, on top of the probe's own timeout, which the script
 * enforces on the network exchange alone (as the kubelet's timeout covers its request, not its
 * scheduling). The outer limit only stops a wedged helper.
 */
const HELPER_START_ALLOWANCE_MS = 5000;

/** Where the compiled netns script is: beside this module in dist/, or dist/ when run from src/. */
export function defaultProbeScript(): string {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.js')) return join(dirname(here), 'netns-probe-main.js');
  // Running from the TypeScript sources (tests): the build's copy.
  return join(dirname(here), '..', '..', 'dist', 'prober', 'netns-probe-main.js');
}

export class PodProbeRunner implements ProbeRunner {
  readonly #cli: PodmanCli;
  readonly #nodePath: string;
  readonly #scriptPath: string;
  readonly #nsenterPath: string;

  constructor(options: PodProbeRunnerOptions) {
    this.#cli = options.cli;
    this.#nodePath = options.nodePath ?? process.execPath;
    this.#scriptPath = options.scriptPath ?? defaultProbeScript();
    this.#nsenterPath = options.nsenterPath ?? 'nsenter';
  }

  /** Runs `spec`'s handler against `target`; `signal` cancels it (the outcome is then unknown). */
  async run(target: ProbeTarget, spec: ProbeSpec, signal: AbortSignal): Promise<ProbeOutcome> {
    const handler = spec.handler;
    const timeoutMs = spec.timeoutSeconds * 1000;
    try {
      if (handler === undefined) return { result: 'unknown', output: 'missing probe handler' };
      if (handler.type === 'exec') return await this.#exec(target.containerId, handler.command, timeoutMs, signal);
      const request = netRequest(handler, target.ports, timeoutMs);
      if ('error' in request) return { result: 'unknown', output: request.error };
      return await this.#network(target, handler, request, signal);
    } catch (error) {
      return { result: 'unknown', output: errorMessage(error) };
    }
  }

  /**
   * An HTTP GET for a lifecycle hook, made as an httpGet probe is (same place, headers, redirect
   * rule and TLS); resolves with the final status code, rejects with a ProbeError when no response
   * came. An arrow property, so it can be handed on as a function.
   */
  readonly httpGetInPod = async (request: {
    pid: number | undefined;
    hostNetwork: boolean;
    handler: HttpGetAction;
    ports: readonly ContainerPort[];
    timeoutMs: number;
    signal?: AbortSignal | undefined;
  }): Promise<number> => {
    const handler = toProbeSpec({ httpGet: request.handler }).handler;
    if (handler?.type !== 'httpGet') throw new ProbeError('not an httpGet handler');
    const net = netRequest(handler, request.ports, request.timeoutMs);
    if ('error' in net) throw new ProbeError(net.error);
    const outcome = await this.#network(request, handler, net, request.signal ?? new AbortController().signal);
    if (outcome.statusCode !== undefined) return outcome.statusCode;
    throw new ProbeError(outcome.output);
  };

  /** Runs a network request from the host (hostNetwork, or a probe naming a host) or in the pod's netns. */
  async #network(target: { pid: number | undefined; hostNetwork: boolean }, handler: ProbeHandler, request: NetProbeRequest, signal: AbortSignal): Promise<ProbeOutcome> {
    const fromHost = target.hostNetwork || (handler.type !== 'exec' && handler.type !== 'grpc' && handler.host !== undefined);
    if (fromHost) return runNetProbe(request, signal);
    if (target.pid === undefined) return { result: 'unknown', output: 'the container has no running process: cannot enter its network namespace' };
    return this.#inNetns(target.pid, request, signal);
  }

  /** exec: `podman exec` with the probe's timeout; exit 0 succeeds, a timeout fails. */
  async #exec(containerId: string, command: string[], timeoutMs: number, signal: AbortSignal): Promise<ProbeOutcome> {
    const timeout = AbortSignal.timeout(timeoutMs);
    const timedOut: ProbeOutcome = { result: 'failure', output: `command ${goQuote(command.join(' '))} timed out` };
    try {
      const result = await this.#cli.run(['exec', containerId, ...command], {
        signal: AbortSignal.any([signal, timeout]),
        // A backstop only: the signal above ends the call at the probe's timeout.
        timeoutMs: timeoutMs + HELPER_START_ALLOWANCE_MS,
        okExitCodes: COMMAND_EXIT_CODES,
      });
      // A podman client stopped by the signal may still exit 0: the timeout decides, not the code.
      if (timeout.aborted) return timedOut;
      if (signal.aborted) return { result: 'unknown', output: 'cancelled' };
      const output = [result.stdout, result.stderr].filter((text) => text !== '').join('\n').slice(0, MAX_EXEC_OUTPUT);
      if (result.exitCode === 0) return { result: 'success', output };
      if (result.exitCode === PODMAN_ERROR_EXIT) return { result: 'unknown', output: output || `podman exec: exit code ${PODMAN_ERROR_EXIT}` };
      return { result: 'failure', output };
    } catch (error) {
      if (timeout.aborted || (error as { code?: string }).code === 'E_PODMAN_TIMEOUT') return timedOut;
      if (signal.aborted) return { result: 'unknown', output: 'cancelled' };
      return { result: 'unknown', output: errorMessage(error) };
    }
  }

  /** Runs the network request inside the network namespace of process `pid`. */
  async #inNetns(pid: number, request: NetProbeRequest, signal: AbortSignal): Promise<ProbeOutcome> {
    const result = await execa(this.#nsenterPath, ['--target', String(pid), '--net', '--', this.#nodePath, this.#scriptPath], {
      input: JSON.stringify(request),
      reject: false,
      timeout: request.timeoutMs + HELPER_START_ALLOWANCE_MS,
      cancelSignal: signal,
      // A clean environment: no NODE_OPTIONS (loaders, inspector) from the agent's own.
      extendEnv: false,
      env: { PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' },
      maxBuffer: 1024 * 1024,
      stripFinalNewline: true,
    });
    if (result.isCanceled) return { result: 'unknown', output: 'cancelled' };
    if (result.timedOut) return timeoutOutcome(request);
    const line = result.stdout.split('\n').at(-1) ?? '';
    const outcome = parseOutcome(line);
    if (outcome !== undefined) return outcome;
    const why = result.stderr.trim().split('\n').at(-1) || result.shortMessage;
    return { result: 'unknown', output: `probe in the pod's network namespace failed: ${why}` };
  }
}

/** The request for a network handler, its port resolved against the container's ports. */
export function netRequest(handler: Exclude<ProbeHandler, { type: 'exec' }>, ports: readonly ContainerPort[], timeoutMs: number): NetProbeRequest | { error: string } {
  const resolved = resolveContainerPort(handler.port, ports);
  if ('error' in resolved) return resolved;
  const { port } = resolved;
  switch (handler.type) {
    case 'httpGet':
      return { type: 'http', scheme: handler.scheme, host: handler.host ?? '127.0.0.1', port, path: handler.path, headers: handler.headers, timeoutMs };
    case 'tcpSocket':
      return { type: 'tcp', host: handler.host ?? '127.0.0.1', port, timeoutMs };
    case 'grpc':
      return { type: 'grpc', host: '127.0.0.1', port, service: handler.service, timeoutMs };
  }
}

/** The failure a probe of this type reports when its time is up. */
function timeoutOutcome(request: NetProbeRequest): ProbeOutcome {
  switch (request.type) {
    case 'http':
      return {
        result: 'failure',
        output: `Get "${probeUrl(request.scheme, request.host, request.port, request.path).href}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)`,
      };
    case 'tcp':
      return { result: 'failure', output: `dial tcp ${joinHostPort(request.host, request.port)}: i/o timeout` };
    case 'grpc':
      return { result: 'failure', output: `timeout: health rpc did not complete within ${formatDuration(request.timeoutMs)}` };
  }
}

/** The script's one-line result, if it is one. */
function parseOutcome(line: string): ProbeOutcome | undefined {
  try {
    const value = JSON.parse(line) as Partial<ProbeOutcome> | null;
    if (value && typeof value.output === 'string' && ['success', 'warning', 'failure', 'unknown'].includes(value.result ?? '')) {
      const outcome: ProbeOutcome = { result: value.result as ProbeOutcome['result'], output: value.output };
      if (typeof value.statusCode === 'number') outcome.statusCode = value.statusCode;
      return outcome;
    }
  } catch {
    // not JSON: reported by the caller with the helper's stderr
  }
  return undefined;
}

/** Go's %q for a plain string (what the kubelet's messages use). */
function goQuote(text: string): string {
  return JSON.stringify(text);
}
