// Typed errors with stable codes. Every error podvisor raises on purpose is a PodvisorError,
// keeps what caused it as `cause`, and carries a code a caller (or a test) can switch on.

export type ErrorCode =
  | 'E_USAGE'
  | 'E_CONFIG'
  | 'E_MANIFEST'
  | 'E_PODMAN'
  | 'E_PODMAN_TIMEOUT'
  | 'E_PODMAN_MISSING'
  | 'E_HOST_PATH'
  | 'E_STATE'
  | 'E_PROBE'
  | 'E_PUBLISH'
  | 'E_ABORTED';

export class PodvisorError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PodvisorError';
    this.code = code;
  }
}

/** A bad command line: printed as one line, exit status 2. */
export class UsageError extends PodvisorError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_USAGE', message, options);
    this.name = 'UsageError';
  }
}

/** Returns the message of anything thrown, for log lines. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
