// `podvisor describe POD`: one pod as `kubectl describe pod` shows it, with its containers'
// states, conditions, volumes and events, read from the status the agent writes.
import type { PodEvent } from '../status/event-recorder.js';
import type { StatusPod } from '../status/status-manager.js';
import type { ContainerState, ContainerStatus } from '../status/types.js';
import { humanDuration } from '../status/printers.js';
import { findPods, notFound, readStatusForDisplay } from './read-status.js';

function stateLines(label: string, state: ContainerState, indent: string): string[] {
  if (state.running) return [`${indent}${label}:\tRunning`, `${indent}  Started:\t${state.running.startedAt ?? ''}`];
  if (state.waiting) return [`${indent}${label}:\tWaiting`, `${indent}  Reason:\t${state.waiting.reason ?? ''}`, ...(state.waiting.message ? [`${indent}  Message:\t${state.waiting.message}`] : [])];
  if (state.terminated) {
    const t = state.terminated;
    return [
      `${indent}${label}:\tTerminated`,
      `${indent}  Reason:\t${t.reason ?? ''}`,
      `${indent}  Exit Code:\t${t.exitCode}`,
      ...(t.signal ? [`${indent}  Signal:\t${t.signal}`] : []),
      `${indent}  Started:\t${t.startedAt ?? ''}`,
      `${indent}  Finished:\t${t.finishedAt ?? ''}`,
    ];
  }
  return [`${indent}${label}:\t<none>`];
}

function containerBlock(pod: StatusPod, status: ContainerStatus, kind: 'init' | 'app'): string[] {
  const spec = (kind === 'init' ? pod.spec.initContainers ?? [] : pod.spec.containers).find((one) => one.name === status.name);
  const lines = [`  ${status.name}:`, `    Container ID:\t${status.containerID ?? ''}`, `    Image:\t${status.image}`, `    Image ID:\t${status.imageID}`];
  const ports = (spec?.ports ?? []).map((port) => `${port.containerPort}/${port.protocol ?? 'TCP'}`);
  lines.push(`    Port:\t${ports.join(', ') || '<none>'}`);
  if (spec?.command) lines.push(`    Command:`, ...spec.command.map((part) => `      ${part}`));
  if (spec?.args) lines.push(`    Args:`, ...spec.args.map((part) => `      ${part}`));
  lines.push(...stateLines('State', status.state, '    '));
  if (status.lastState.terminated || status.lastState.waiting || status.lastState.running) lines.push(...stateLines('Last State', status.lastState, '    '));
  lines.push(`    Ready:\t${status.ready ? 'True' : 'False'}`, `    Restart Count:\t${status.restartCount}`);
  const limits = spec?.resources?.limits;
  if (limits && Object.keys(limits).length > 0) lines.push('    Limits:', ...Object.entries(limits).map(([key, value]) => `      ${key}:\t${value}`));
  const requests = spec?.resources?.requests;
  if (requests && Object.keys(requests).length > 0) lines.push('    Requests:', ...Object.entries(requests).map(([key, value]) => `      ${key}:\t${value}`));
  for (const [label, probe] of [['Liveness', spec?.livenessProbe], ['Readiness', spec?.readinessProbe], ['Startup', spec?.startupProbe]] as const) {
    if (!probe) continue;
    // The probe's host when it names one (kubeadm's 127.0.0.1), else the pod's address, left blank as kubectl does.
    const host = (address: string | undefined) => (address?.includes(':') ? `[${address}]` : address ?? '');
    const how = probe.exec ? `exec [${probe.exec.command.join(' ')}]` : probe.httpGet ? `http-get ${(probe.httpGet.scheme ?? 'HTTP').toLowerCase()}://${host(probe.httpGet.host)}:${probe.httpGet.port}${probe.httpGet.path ?? '/'}` : probe.tcpSocket ? `tcp-socket ${host(probe.tcpSocket.host)}:${probe.tcpSocket.port}` : `grpc <pod>:${probe.grpc?.port ?? ''}`;
    lines.push(`    ${label}:\t${how} delay=${probe.initialDelaySeconds ?? 0}s timeout=${probe.timeoutSeconds ?? 1}s period=${probe.periodSeconds ?? 10}s #success=${probe.successThreshold ?? 1} #failure=${probe.failureThreshold ?? 3}`);
  }
  const env = spec?.env ?? [];
  lines.push(`    Environment:${env.length === 0 ? '\t<none>' : ''}`, ...env.map((variable) => `      ${variable.name}:\t${variable.value ?? (variable.valueFrom?.fieldRef ? `(v1:${variable.valueFrom.fieldRef.fieldPath})` : '<set from the pod>')}`));
  const mounts = spec?.volumeMounts ?? [];
  lines.push(`    Mounts:${mounts.length === 0 ? '\t<none>' : ''}`, ...mounts.map((mount) => `      ${mount.mountPath} from ${mount.name} (${mount.readOnly ? 'ro' : 'rw'}${mount.subPath ? `,path="${mount.subPath}"` : ''})`));
  return lines;
}

function eventLines(events: PodEvent[]): string[] {
  if (events.length === 0) return ['Events:\t<none>'];
  const now = Date.now();
  const rows = [['Type', 'Reason', 'Age', 'From', 'Message'], ['----', '------', '----', '----', '-------']];
  for (const event of events) {
    const age = humanDuration(now - Date.parse(event.lastTimestamp));
    const span = event.count > 1 ? `${age} (x${event.count} over ${humanDuration(now - Date.parse(event.firstTimestamp))})` : age;
    rows.push([event.type, event.reason, span, 'podvisor', event.message]);
  }
  const widths = [0, 1, 2, 3].map((column) => Math.max(...rows.map((row) => (row[column] ?? '').length)));
  return ['Events:', ...rows.map((row) => `  ${row.map((cell, column) => (column < 4 ? cell.padEnd((widths[column] ?? 0) + 2) : cell)).join('')}`)];
}

/** Renders one pod as text. */
export function describePod(pod: StatusPod, events: PodEvent[]): string {
  const meta = pod.metadata;
  const status = pod.status;
  const labels = Object.entries(meta.labels ?? {}).map(([key, value]) => `${key}=${value}`);
  const annotations = Object.entries(meta.annotations ?? {}).map(([key, value]) => `${key}: ${value}`);
  const lines = [
    `Name:\t${meta.name}`,
    `Namespace:\t${meta.namespace ?? 'default'}`,
    ...(pod.spec.priorityClassName ? [`Priority Class Name:\t${pod.spec.priorityClassName}`] : []),
    `Node:\t${String(pod.spec.nodeName ?? '')}/${status.hostIP ?? ''}`,
    `Start Time:\t${status.startTime ?? '<unknown>'}`,
    `Labels:\t${labels.length ? labels.join('\n\t') : '<none>'}`,
    `Annotations:\t${annotations.length ? annotations.join('\n\t') : '<none>'}`,
    `Status:\t${status.phase}`,
    ...(status.reason ? [`Reason:\t${status.reason}`] : []),
    ...(status.message ? [`Message:\t${status.message}`] : []),
    `IP:\t${status.podIP ?? ''}`,
    `Controlled By:\tNode/${String(pod.spec.nodeName ?? '')}`,
  ];
  if (status.initContainerStatuses.length > 0) lines.push('Init Containers:', ...status.initContainerStatuses.flatMap((one) => containerBlock(pod, one, 'init')));
  lines.push('Containers:', ...status.containerStatuses.flatMap((one) => containerBlock(pod, one, 'app')));
  lines.push('Conditions:', '  Type\tStatus', ...status.conditions.map((condition) => `  ${condition.type}\t${condition.status}`));
  const volumes = pod.spec.volumes ?? [];
  lines.push(`Volumes:${volumes.length === 0 ? '\t<none>' : ''}`);
  for (const volume of volumes) {
    lines.push(`  ${volume.name}:`);
    if (volume.hostPath) lines.push('    Type:\tHostPath (bare host directory volume)', `    Path:\t${volume.hostPath.path}`, `    HostPathType:\t${volume.hostPath.type ?? ''}`);
    else if (volume.emptyDir) lines.push('    Type:\tEmptyDir (a temporary directory that shares a pod\'s lifetime)', `    Medium:\t${volume.emptyDir.medium ?? ''}`, `    SizeLimit:\t${volume.emptyDir.sizeLimit ?? '<unset>'}`);
    else if (volume.downwardAPI) lines.push('    Type:\tDownwardAPI (a volume populated by information about the pod)');
  }
  lines.push(`QoS Class:\t${status.qosClass}`);
  lines.push(...eventLines(events));
  return `${alignTabs(lines).join('\n')}\n`;
}

/** Aligns the text after the first tab of each line into one column per indentation, as kubectl's tabwriter does. */
function alignTabs(lines: string[]): string[] {
  const width = Math.max(...lines.filter((line) => line.includes('\t')).map((line) => line.indexOf('\t')));
  return lines.map((line) => {
    const at = line.indexOf('\t');
    return at === -1 ? line : `${line.slice(0, at).padEnd(width + 2)}${line.slice(at + 1).replace(/\n\t/g, `\n${' '.repeat(width + 2)}`)}`;
  });
}

/** Finds the pod by name (or namespace/name, or the manifest's name without the node suffix). */
export async function describeCommand(name: string, options: { stateDir: string; namespace?: string | undefined; serveEnvValues?: boolean }): Promise<number> {
  const file = await readStatusForDisplay(options.stateDir, options);
  const matches = findPods(file, name, options.namespace);
  // As kubectl: a pod that is not there is an error of the lookup (exit 1), not of the usage.
  if (matches.length === 0) {
    process.stderr.write(`podvisor describe: ${notFound(name, options.namespace)}\n`);
    return 1;
  }
  for (const pod of matches) {
    const events = file.events.filter((event) => event.involvedObject.uid === pod.metadata.uid);
    process.stdout.write(describePod(pod, events));
  }
  return 0;
}
