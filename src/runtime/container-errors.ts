// Why a container could not be started, in the kubelet's words (the `waiting.reason` a status
// shows), read from what podman said. The reasons are the kubelet's: ErrImagePull,
// ErrImageNeverPull, InvalidImageName, CreateContainerConfigError, CreateContainerError,
// RunContainerError; and CreatePodSandboxError (the kubelet's sync error for a sandbox it could not
// make: podman's pod, or its infra container, e.g. a host port already in use), shown as the
// kubelet shows such a pod's containers: waiting, ContainerCreating.
import { errorMessage, PodvisorError } from '../errors.js';
import type { Container } from '../manifest/pod-schema.js';
import { PodmanError } from './podman-cli.js';

export type StartFailureReason =
  | 'ErrImagePull'
  | 'ErrImageNeverPull'
  | 'InvalidImageName'
  | 'CreateContainerConfigError'
  | 'CreateContainerError'
  | 'RunContainerError'
  | 'PostStartHookError'
  | 'CreatePodSandboxError';

/** A container of a pod failed to be created or started; the pod's other work stops there. */
export class ContainerStartError extends PodvisorError {
  readonly containerName: string;
  readonly reason: StartFailureReason;

  constructor(containerName: string, reason: StartFailureReason, message: string, options?: { cause?: unknown }) {
    super('E_PODMAN', `container "${containerName}": ${reason}: ${message}`, options);
    this.name = 'ContainerStartError';
    this.containerName = containerName;
    this.reason = reason;
  }
}

/**
 * The pod's sandbox (podman's pod and its infra container, which holds the pod's network and host
 * ports) could not be made or started. Recorded against the container that was to start next, so
 * it backs off as a failed container start does; the message is the kubelet's
 * FailedCreatePodSandBox message.
 */
export class SandboxStartError extends ContainerStartError {
  constructor(containerName: string, error: unknown) {
    super(containerName, 'CreatePodSandboxError', `Failed to create pod sandbox: ${podmanSaid(error)}`, { cause: error });
    this.name = 'SandboxStartError';
  }
}

/**
 * What podman said went wrong, in one line: its stderr comes joined with '; ' (progress, retry
 * warnings, then the error). The last part is the error, unless an earlier part names the
 * cause more precisely (a port that cannot be bound, reported before "internal libpod error").
 */
export function podmanSaid(error: unknown): string {
  const said = error instanceof PodmanError ? error.stderr || error.message : errorMessage(error);
  const parts = said.split(/\n|; /).map((part) => part.trim().replace(/^\\?"|\\?"$/g, '').replace(/^Error: /, '')).filter((part) => part !== '');
  const port = parts.find((part) => /cannot listen on the|address already in use/i.test(part));
  // `podman start` of the infra puts `unable to start container "<id>": ` before it.
  if (port) return port.slice(Math.max(0, port.search(/cannot listen on the/i)));
  return parts.at(-1) ?? said;
}

/** Classifies a failed `podman run` / `podman start` of `container`. */
export function classifyStartFailure(error: unknown, container: Container, started: boolean): ContainerStartError {
  if (error instanceof ContainerStartError) return error;
  const said = error instanceof PodmanError ? error.stderr || error.message : errorMessage(error);
  const detail = podmanSaid(error);
  let reason: StartFailureReason;
  let message = detail;
  if (/invalid reference format|repository name must|invalid image name|invalid tag/i.test(said)) {
    reason = 'InvalidImageName';
    message = `Failed to apply default image tag "${container.image}": couldn't parse image name "${container.image}": invalid reference format`;
  } else if (container.imagePullPolicy === 'Never' && /image not known|no such image|not present/i.test(said)) {
    reason = 'ErrImageNeverPull';
    message = `Container image "${container.image}" is not present with pull policy of Never`;
  } else if (/pull|registry|manifest unknown|unauthorized|name unknown|initializing source|reading manifest|no such host|connection refused|i\/o timeout/i.test(said) && !started) {
    reason = 'ErrImagePull';
  } else if (error instanceof PodvisorError && error.code === 'E_CONFIG') {
    reason = 'CreateContainerConfigError';
  } else if (started || /OCI runtime|executable file|permission denied|crun:|runc:/i.test(said)) {
    reason = 'RunContainerError';
  } else {
    reason = 'CreateContainerError';
  }
  return new ContainerStartError(container.name, reason, message, { cause: error });
}
