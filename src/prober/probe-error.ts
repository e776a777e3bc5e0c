// The prober's typed error, for the one place it throws: an HTTP GET made for a lifecycle hook that
// got no response. (Probe runs never throw: every problem is an outcome.)
import { PodvisorError } from '../errors.js';

export class ProbeError extends PodvisorError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_PROBE', message, options);
    this.name = 'ProbeError';
  }
}
