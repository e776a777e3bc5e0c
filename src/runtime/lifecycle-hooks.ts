// Container lifecycle hooks as the kubelet runs them: postStart right after a container starts
// (a failure kills the container: PostStartHookError), preStop first when a container is
// stopped, within the pod's grace period. exec runs in the container through podman; sleep
// waits; httpGet goes through the pod's own network namespace (the prober's way in).
import { setTimeout as sleep } from 'node:timers/promises';
import type { Container, ContainerPort } from '../manifest/pod-schema.js';
import { errorMessage, PodvisorError } from '../errors.js';
import type { PodmanCli } from './podman-cli.js';

type Handler = NonNullable<NonNullable<Container['lifecycle']>['preStop']>;

/** An HTTP GET in the pod's network namespace; resolves with the status code. */
export type HttpGetInPod = (request: {
  pid: number | undefined;
  hostNetwork: boolean;
  handler: NonNullable<Handler['httpGet']>;
  ports: ContainerPort[];
  timeoutMs: number;
  signal?: AbortSignal | undefined;
}) => Promise<number>;

export interface HookTarget {
  containerId: string;
  container: Container;
  pid: number | undefined;
  hostNetwork: boolean;
}

/** Runs one hook handler; rejects with a message in the kubelet's words when it fails. */
export async function runHook(cli: PodmanCli, httpGet: HttpGetInPod | undefined, target: HookTarget, handler: Handler, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  if (handler.exec) {
    const result = await cli.run(['exec', target.containerId, ...handler.exec.command], { signal, timeoutMs, okExitCodes: Array.from({ length: 255 }, (_, index) => index + 1) });
    if (result.exitCode !== 0) throw new PodvisorError('E_PODMAN', `command '${handler.exec.command.join(' ')}' exited with ${result.exitCode}: ${result.stdout}${result.stderr}`.trim());
    return;
  }
  if (handler.sleep) {
    await sleep(Math.min(handler.sleep.seconds * 1000, timeoutMs), undefined, { signal }).catch(() => undefined);
    return;
  }
  if (handler.httpGet) {
    if (!httpGet) throw new PodvisorError('E_PODMAN', 'httpGet hooks need the prober, which is not running');
    const status = await httpGet({ pid: target.pid, hostNetwork: target.hostNetwork, handler: handler.httpGet, ports: target.container.ports ?? [], timeoutMs, signal });
    if (status < 200 || status >= 400) throw new PodvisorError('E_PODMAN', `HTTP lifecycle hook (${handler.httpGet.path ?? '/'}) for Container "${target.container.name}" failed, status code: ${status}`);
    return;
  }
  if (handler.tcpSocket) throw new PodvisorError('E_PODMAN', 'tcpSocket lifecycle hooks are deprecated and not run');
}

/** Describes a hook failure for logs and events. */
export function hookFailure(kind: 'PostStart' | 'PreStop', container: string, error: unknown): string {
  return `${kind} hook for container "${container}" failed: ${errorMessage(error)}`;
}
