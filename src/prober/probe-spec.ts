// A probe as the prober runs it: the API's defaults filled in, and its one handler picked out.
// The defaults are the Kubernetes API's (pkg/apis/core/v1/defaults.go), applied here rather than in
// the manifest layer so a pod's config hash does not change with them.
import type { Probe } from '../manifest/pod-schema.js';

export const PROBE_DEFAULTS = {
  initialDelaySeconds: 0,
  timeoutSeconds: 1,
  periodSeconds: 10,
  successThreshold: 1,
  failureThreshold: 3,
} as const;

export type ProbeHandler =
  | { type: 'exec'; command: string[] }
  | {
      type: 'httpGet';
      scheme: 'http' | 'https';
      host: string | undefined;
      port: number | string;
      path: string;
      headers: Array<[string, string]>;
    }
  | { type: 'tcpSocket'; host: string | undefined; port: number | string }
  | { type: 'grpc'; port: number; service: string };

export interface ProbeSpec {
  handler: ProbeHandler | undefined;
  initialDelaySeconds: number;
  timeoutSeconds: number;
  periodSeconds: number;
  successThreshold: number;
  failureThreshold: number;
  terminationGracePeriodSeconds: number | undefined;
}

/** The probe with its defaults, and its handler (the first of exec, httpGet, tcpSocket, grpc). */
export function toProbeSpec(probe: Probe): ProbeSpec {
  return {
    handler: pickHandler(probe),
    initialDelaySeconds: probe.initialDelaySeconds ?? PROBE_DEFAULTS.initialDelaySeconds,
    timeoutSeconds: probe.timeoutSeconds ?? PROBE_DEFAULTS.timeoutSeconds,
    periodSeconds: probe.periodSeconds ?? PROBE_DEFAULTS.periodSeconds,
    successThreshold: probe.successThreshold ?? PROBE_DEFAULTS.successThreshold,
    failureThreshold: probe.failureThreshold ?? PROBE_DEFAULTS.failureThreshold,
    terminationGracePeriodSeconds: probe.terminationGracePeriodSeconds,
  };
}

/** The probe's handler; the API allows exactly one, validation is the manifest layer's job. */
function pickHandler(probe: Probe): ProbeHandler | undefined {
  if (probe.exec) return { type: 'exec', command: probe.exec.command };
  if (probe.httpGet) {
    const { httpGet } = probe;
    return {
      type: 'httpGet',
      scheme: httpGet.scheme === 'HTTPS' ? 'https' : 'http',
      host: httpGet.host === '' ? undefined : httpGet.host,
      port: httpGet.port,
      path: httpGet.path ?? '',
      headers: (httpGet.httpHeaders ?? []).map((header) => [header.name, header.value]),
    };
  }
  if (probe.tcpSocket) {
    return { type: 'tcpSocket', host: probe.tcpSocket.host === '' ? undefined : probe.tcpSocket.host, port: probe.tcpSocket.port };
  }
  if (probe.grpc) return { type: 'grpc', port: probe.grpc.port, service: probe.grpc.service ?? '' };
  return undefined;
}
