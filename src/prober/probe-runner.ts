// Runs one probe's handler against one container and says what it found. exec calls the OCI
// runtime directly (oci-exec.ts: `crun exec`, as CRI-O's ExecSync does), falling back to `podman
// exec` where that cannot be done; httpGet, tcpSocket and grpc reach the pod's own network
// namespace: for a pod on the host's network (or a probe naming a host) they connect from the agent
// itself, otherwise through a `busybox nc` started in the pod's namespace (netns-dial.ts), so that
// 127.0.0.1 is the pod's loopback, with HTTP, TLS and gRPC spoken by the agent over it. The pod IP
// is never used: it may not be routable from the host (rootless networks), and nothing here
// connects to pod-network addresses.
import { errorMessage } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { ContainerPort, Probe } from '../manifest/pod-schema.js';
import type { PodmanCli } from '../runtime/podman-cli.js';
import { runNetProbe, type NetProbeRequest } from './net-probe.js';
import { NetnsDialer } from './netns-dial.js';
import { detectOciRuntime, directExec, MAX_EXEC_OUTPUT, type OciRuntime } from './oci-exec.js';
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
  /** Gives the runner a logger for what it has to say about itself, if it was made without one. */
  attachLogger?(logger: Logger): void;
}

export interface PodProbeRunnerOptions {
  cli: PodmanCli;
  /** The nsenter binary (default: nsenter, from util-linux). */
  nsenterPath?: string;
  /** The busybox whose nc dials inside a pod's network namespace (default: busybox on PATH). */
  busyboxPath?: string;
  /** Where the runner says, once each, which way exec probes go and why (default: attachLogger's). */
  logger?: Logger;
}

/** Exit codes an exec probe may return; all but podman's own 125 are the command's. */
const COMMAND_EXIT_CODES = Array.from({ length: 255 }, (_, index) => index + 1);
/** podman's exit code for an error of podman itself (container not running, no such container). */
const PODMAN_ERROR_EXIT = 125;
/**
 * podman exec's exit codes when the command did not run: podman's own error, a command not
 * executable (126) or not found (127), a container in the wrong state (255, podman 4.3).
 */
const PODMAN_NOT_RUN_EXITS = new Set([PODMAN_ERROR_EXIT, 126, 127, 255]);
/** Time allowed for `podman exec` to start and stop, on top of the probe's timeout (a backstop only). */
const PODMAN_ALLOWANCE_MS = 5000;

export class PodProbeRunner implements ProbeRunner {
  readonly #cli: PodmanCli;
  readonly #nsenterPath: string;
  readonly #busyboxPath: string;
  #logger: Logger | undefined;
  /** The runtime exec probes call directly, once known (undefined: podman exec). */
  #runtime: Promise<OciRuntime | undefined> | undefined;
  /** What has been logged already (each reason once). */
  readonly #noted = new Set<string>();

  constructor(options: PodProbeRunnerOptions) {
    this.#cli = options.cli;
    this.#nsenterPath = options.nsenterPath ?? 'nsenter';
    this.#busyboxPath = options.busyboxPath ?? 'busybox';
    this.#logger = options.logger;
  }

  attachLogger(logger: Logger): void {
    this.#logger ??= logger;
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
    return runNetProbe(request, signal, new NetnsDialer({ pid: target.pid, nsenterPath: this.#nsenterPath, busyboxPath: this.#busyboxPath }));
  }

  /**
   * exec: through the OCI runtime when it can be called directly, else `podman exec`; exit 0
   * succeeds, a timeout fails. When the runtime fails where podman does not, podman exec is used
   * from then on.
   */
  async #exec(containerId: string, command: string[], timeoutMs: number, signal: AbortSignal): Promise<ProbeOutcome> {
    const runtime = await this.#ociRuntime();
    if (runtime !== undefined) {
      const direct = await directExec(runtime, containerId, command, timeoutMs, signal);
      switch (direct.kind) {
        case 'exited':
          return execOutcome(direct.exitCode, direct.stdout, direct.stderr);
        case 'timedOut':
          return timedOut(command);
        case 'cancelled':
          return { result: 'unknown', output: 'cancelled' };
        case 'unavailable':
          this.#note('unavailable', 'info', `exec probe through podman exec: ${direct.reason}`, { container: containerId });
          break;
        case 'runtimeError': {
          // podman decides: if it runs the command where the runtime could not, the direct way is broken here.
          const viaPodman = await this.#podmanExec(containerId, command, timeoutMs, signal);
          if (viaPodman.ran) {
            this.#runtime = Promise.resolve(undefined);
            this.#note('broken', 'warn', `exec probes go through podman exec from now on: ${runtime.name} exec failed where podman exec did not: ${direct.message}`, { container: containerId });
          }
          return viaPodman.outcome;
        }
      }
    }
    return (await this.#podmanExec(containerId, command, timeoutMs, signal)).outcome;
  }

  /** The runtime exec probes call directly, asked of podman once; undefined when podman exec it is. */
  #ociRuntime(): Promise<OciRuntime | undefined> {
    this.#runtime ??= detectOciRuntime(this.#cli).then(
      (found) => {
        if ('unusable' in found) {
          this.#note('unusable', 'info', `exec probes go through podman exec: ${found.unusable}`);
          return undefined;
        }
        this.#note('direct', 'debug', `exec probes call ${found.name} directly`, { runtime: found.path, root: found.root });
        return found;
      },
      (error: unknown) => {
        // Asked again next time: podman may be back.
        this.#runtime = undefined;
        this.#note('detect', 'warn', `exec probes go through podman exec for now: ${errorMessage(error)}`);
        return undefined;
      },
    );
    return this.#runtime;
  }

  /** `podman exec` with the probe's timeout; `ran` says whether the command itself ran. */
  async #podmanExec(containerId: string, command: string[], timeoutMs: number, signal: AbortSignal): Promise<{ outcome: ProbeOutcome; ran: boolean }> {
    const timeout = AbortSignal.timeout(timeoutMs);
    try {
      const result = await this.#cli.run(['exec', containerId, ...command], {
        signal: AbortSignal.any([signal, timeout]),
        // A backstop only: the signal above ends the call at the probe's timeout.
        timeoutMs: timeoutMs + PODMAN_ALLOWANCE_MS,
        okExitCodes: COMMAND_EXIT_CODES,
      });
      // A podman client stopped by the signal may still exit 0: the timeout decides, not the code.
      if (timeout.aborted) return { outcome: timedOut(command), ran: true };
      if (signal.aborted) return { outcome: { result: 'unknown', output: 'cancelled' }, ran: false };
      const ran = !PODMAN_NOT_RUN_EXITS.has(result.exitCode);
      if (result.exitCode === PODMAN_ERROR_EXIT) {
        const output = joinOutput(result.stdout, result.stderr);
        return { outcome: { result: 'unknown', output: output || `podman exec: exit code ${PODMAN_ERROR_EXIT}` }, ran };
      }
      return { outcome: execOutcome(result.exitCode, result.stdout, result.stderr), ran };
    } catch (error) {
      if (timeout.aborted || (error as { code?: string }).code === 'E_PODMAN_TIMEOUT') return { outcome: timedOut(command), ran: true };
      if (signal.aborted) return { outcome: { result: 'unknown', output: 'cancelled' }, ran: false };
      return { outcome: { result: 'unknown', output: errorMessage(error) }, ran: false };
    }
  }

  /** Logs `message` the first time `key` comes up. */
  #note(key: string, level: 'debug' | 'info' | 'warn', message: string, fields: Record<string, string> = {}): void {
    if (this.#noted.has(key)) return;
    this.#noted.add(key);
    this.#logger?.log(level, message, fields);
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

/** An exec probe's outcome from the command's exit code and output (capped as the kubelet caps it). */
function execOutcome(exitCode: number, stdout: string, stderr: string): ProbeOutcome {
  return { result: exitCode === 0 ? 'success' : 'failure', output: joinOutput(stdout, stderr) };
}

function joinOutput(stdout: string, stderr: string): string {
  return [stdout, stderr].filter((text) => text !== '').join('\n').slice(0, MAX_EXEC_OUTPUT);
}

/** The kubelet's words for an exec probe that outlasted its timeout. */
function timedOut(command: readonly string[]): ProbeOutcome {
  return { result: 'failure', output: `command ${goQuote(command.join(' '))} timed out` };
}

/** Go's %q for a plain string (what the kubelet's messages use). */
function goQuote(text: string): string {
  return JSON.stringify(text);
}
