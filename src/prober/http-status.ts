// The kubelet's rule for an HTTP probe's final response (pkg/probe/http/http.go): 2xx succeeds,
// 3xx succeeds with a warning (a redirect it did not follow), anything else fails. Imports nothing,
// so the netns probe script stays quick to start.
import type { ProbeOutcome } from './types.js';

/** The outcome of an HTTP probe whose last response had `statusCode` and (up to 10 KiB of) `body`. */
export function classifyHttpStatus(statusCode: number, body: string): ProbeOutcome {
  if (statusCode >= 200 && statusCode < 300) return { result: 'success', output: body };
  if (statusCode >= 300 && statusCode < 400) {
    return { result: 'warning', output: `Probe terminated redirects, Response body: ${body}` };
  }
  return { result: 'failure', output: `HTTP probe failed with statuscode: ${statusCode}` };
}
