// The prober's typed errors: a ProbeError for an HTTP GET made for a lifecycle hook that got no
// response (probe runs never throw: every problem is an outcome), and a NetnsError when the pod's
// network namespace could not be entered, which makes a probe run an error rather than a failure.
import { PodvisorError } from '../errors.js';

export class ProbeError extends PodvisorError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_PROBE', message, options);
    this.name = 'ProbeError';
  }
}

/** Entering the pod's network namespace (or starting the process there) failed: nothing was dialled. */
export class NetnsError extends ProbeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NetnsError';
  }
}
