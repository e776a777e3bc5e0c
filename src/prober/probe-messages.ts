// The kubelet's words for probe runs (pkg/kubelet/prober/prober.go) and probe kills
// (kuberuntime), kept so that podvisor's events read as the kubelet's do.
import type { ProbeEventReason, ProbeKind, ProbeOutcome } from './types.js';

const KIND_NAMES: Record<ProbeKind, string> = { liveness: 'Liveness', readiness: 'Readiness', startup: 'Startup' };

/** The event a run earns: 'Unhealthy' for a failure or error, 'ProbeWarning' for a warning, none for a success. */
export function probeEvent(kind: ProbeKind, outcome: ProbeOutcome): { reason: ProbeEventReason | undefined; message: string } {
  const name = KIND_NAMES[kind];
  switch (outcome.result) {
    case 'failure':
      return { reason: 'Unhealthy', message: `${name} probe failed: ${outcome.output}` };
    case 'unknown':
      return { reason: 'Unhealthy', message: `${name} probe errored: ${outcome.output}` };
    case 'warning':
      return { reason: 'ProbeWarning', message: `${name} probe warning: ${outcome.output}` };
    case 'success':
      return { reason: undefined, message: '' };
  }
}

/** The kubelet's 'Killing' message when a probe's failures kill a container. */
export function probeKillMessage(kind: ProbeKind, containerName: string): string {
  return `Container ${containerName} failed ${kind} probe, will be restarted`;
}
