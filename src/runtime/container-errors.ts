// Why a container could not be started, in the kubelet's words (the `waiting.reason` a status
// shows), read from what podman said. The reasons are the kubelet's: ErrImagePull,
// ErrImageNeverPull, InvalidImageName, CreateContainerConfigError, CreateContainerError,
// RunContainerError.
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
  | 'PostStartHookError';

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

/** Classifies a failed `podman run` / `podman start` of `container`. */
export function classifyStartFailure(error: unknown, container: Container, started: boolean): ContainerStartError {
  if (error instanceof ContainerStartError) return error;
  const said = error instanceof PodmanError ? error.stderr || error.message : errorMessage(error);
  const detail = said.split('\n').find((line) => line.trim() !== '') ?? said;
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
