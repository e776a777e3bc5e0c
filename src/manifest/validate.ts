// Turns one parsed YAML document into a Pod podvisor can run, or into findings that each name
// the file, line, column and field path: `web.yaml:14:9: spec.containers[0].image: Required`.
// Errors make the document unusable; warnings name what will not be acted on.
import { z } from 'zod';
import { policyFindings, type Path } from './field-policy.js';
import type { ParsedDocument, Position } from './parse.js';
import { isDns1123Subdomain, podSchema, type Container, type PodManifest } from './pod-schema.js';
import { parseQuantity } from './quantity.js';
import { unknownFields } from './unknown-fields.js';
import { escapeText } from '../log/escape.js';

export interface Finding {
  file: string;
  line: number;
  column: number;
  /** Field path as Kubernetes prints it, e.g. spec.containers[0].image; empty for the document. */
  field: string;
  severity: 'error' | 'warning';
  message: string;
}

export interface DocumentResult {
  index: number;
  pod?: PodManifest;
  findings: Finding[];
}

/** Formats a finding as one line: `file:line:col: field: message`. */
export function formatFinding(finding: Finding): string {
  const field = finding.field ? ` ${escapeText(finding.field)}:` : '';
  const tag = finding.severity === 'warning' ? ' warning:' : '';
  return `${escapeText(finding.file)}:${finding.line}:${finding.column}:${tag}${field} ${escapeText(finding.message)}`;
}

/** Formats a path the way Kubernetes error messages do. */
export function formatPath(path: Path): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(segment)) out += out ? `.${segment}` : segment;
    else out += `[${segment}]`;
  }
  return out;
}

const FIELD_REFS = /^(metadata\.(name|namespace|uid|labels|annotations)|metadata\.(labels|annotations)\['[^']+'\]|spec\.(nodeName|serviceAccountName)|status\.(hostIP|hostIPs|podIP|podIPs))$/;
const RESOURCE_REFS = new Set(['limits.cpu', 'limits.memory', 'requests.cpu', 'requests.memory', 'limits.ephemeral-storage', 'requests.ephemeral-storage']);
// A loose image reference: [host[:port]/]path[:tag][@digest], lower-case path components.
const IMAGE_REFERENCE = /^(?:[a-zA-Z0-9.-]+(?::\d+)?\/)?[a-z0-9]+(?:[._-]+[a-z0-9]+|__)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@[a-z0-9]+:[a-f0-9]{32,})?$/;

/** Words a person reads, instead of zod's defaults, for the issues manifests commonly have. */
function issueMessage(issue: z.core.$ZodRawIssue): string | undefined {
  if (issue.code === 'invalid_type') {
    if (issue.input === undefined) return 'Required';
    const got = issue.input === null ? 'null' : Array.isArray(issue.input) ? 'a list' : typeof issue.input;
    return `must be ${issue.expected === 'object' ? 'a mapping' : issue.expected === 'array' ? 'a list' : `a ${issue.expected}`}, got ${got}`;
  }
  if (issue.code === 'invalid_value') {
    return `must be one of ${issue.values.map((value) => JSON.stringify(value)).join(', ')}, got ${JSON.stringify(issue.input)}`;
  }
  return undefined;
}

/** Validates one document of a manifest file. */
export function validateDocument(file: string, document: ParsedDocument): DocumentResult {
  const findings: Finding[] = [];
  const add = (severity: Finding['severity'], path: Path, message: string, position?: Position) => {
    const where = position ?? document.locate(path);
    findings.push({ file, line: where.line, column: where.column, field: formatPath(path), severity, message });
  };
  for (const error of document.syntaxErrors) add('error', [], `YAML: ${error.message}`, error.position);
  for (const warning of document.syntaxWarnings) add('warning', [], `YAML: ${warning.message} (accepted, as the kubelet's YAML parser does)`, warning.position);
  if (document.syntaxErrors.length > 0) return { index: document.index, findings };

  const value = document.value;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    add('error', [], 'a manifest document must be a mapping (a Pod object)');
    return { index: document.index, findings };
  }
  const { kind, apiVersion } = value as Record<string, unknown>;
  if (kind !== 'Pod') {
    add('error', ['kind'], kind === undefined ? 'Required: only kind Pod is supported' : `only kind Pod is supported, got ${JSON.stringify(kind)}`);
    return { index: document.index, findings };
  }
  if (apiVersion !== 'v1') {
    add('error', ['apiVersion'], apiVersion === undefined ? 'Required' : `must be "v1" for a Pod, got ${JSON.stringify(apiVersion)}`);
    return { index: document.index, findings };
  }

  const parsed = podSchema.safeParse(value, { error: issueMessage });
  if (!parsed.success) {
    for (const issue of parsed.error.issues) add('error', issue.path as Path, issue.message);
  }
  for (const finding of policyFindings(value)) add(finding.severity, finding.path, finding.message);
  for (const unknown of unknownFields(podSchema, value)) {
    add('warning', unknown.path, unknown.suggestion ? `ignored: unknown field (field names are case-sensitive: did you mean "${unknown.suggestion}"?)` : 'ignored: unknown field');
  }
  if (parsed.success) for (const [path, message, severity] of semanticFindings(parsed.data)) add(severity ?? 'error', path, message);

  // In file order, as a person reads them (sort is stable for findings at one position).
  findings.sort((a, b) => a.line - b.line || a.column - b.column);
  const failed = findings.some((finding) => finding.severity === 'error');
  return failed || !parsed.success ? { index: document.index, findings } : { index: document.index, pod: parsed.data, findings };
}

type Semantic = [Path, string, Finding['severity']?];

/** The cross-field rules a schema cannot say: uniqueness, references, ranges between fields. */
function semanticFindings(pod: PodManifest): Semantic[] {
  const out: Semantic[] = [];
  const spec = pod.spec;
  const volumes = new Map((spec.volumes ?? []).map((volume) => [volume.name, volume]));
  const volumeNames = new Set<string>();
  (spec.volumes ?? []).forEach((volume, index) => {
    if (volumeNames.has(volume.name)) out.push([['spec', 'volumes', index, 'name'], `duplicate volume name "${volume.name}"`]);
    volumeNames.add(volume.name);
    if (volume.emptyDir?.sizeLimit !== undefined && volume.emptyDir.medium !== 'Memory') {
      out.push([['spec', 'volumes', index, 'emptyDir', 'sizeLimit'], 'ignored: the size of a disk-backed emptyDir is not enforced (medium: Memory is)', 'warning']);
    }
  });

  const seenNames = new Map<string, string>();
  const hostPorts = new Map<string, string>();
  const lists = [['initContainers', spec.initContainers ?? []], ['containers', spec.containers]] as const;
  for (const [list, containers] of lists) {
    containers.forEach((container, index) => {
      const at: Path = ['spec', list, index];
      const first = seenNames.get(container.name);
      if (first) out.push([[...at, 'name'], `duplicate container name "${container.name}" (first used by ${first})`]);
      else seenNames.set(container.name, formatPath(at));
      if (list === 'containers' && container.restartPolicy !== undefined) {
        out.push([[...at, 'restartPolicy'], 'only init containers (sidecars) may set restartPolicy']);
      }
      if (!IMAGE_REFERENCE.test(container.image)) {
        out.push([[...at, 'image'], `"${container.image}" is not a valid image reference: the container will wait with InvalidImageName`, 'warning']);
      }
      out.push(...containerFindings(container, at, volumes, spec.hostNetwork === true));
      (container.ports ?? []).forEach((port, portIndex) => {
        if (port.hostPort === undefined) return;
        const key = `${port.hostIP ?? ''}:${port.hostPort}/${port.protocol ?? 'TCP'}`;
        const owner = hostPorts.get(key);
        if (owner) out.push([[...at, 'ports', portIndex, 'hostPort'], `host port ${port.hostPort}/${port.protocol ?? 'TCP'} is already published by ${owner}`]);
        else hostPorts.set(key, formatPath([...at, 'ports', portIndex]));
      });
    });
  }
  if (!isDns1123Subdomain(pod.metadata.name)) out.push([['metadata', 'name'], 'must be a DNS-1123 subdomain']);
  return out;
}

function containerFindings(container: Container, at: Path, volumes: Map<string, unknown>, hostNetwork: boolean): Semantic[] {
  const out: Semantic[] = [];
  const mountPaths = new Set<string>();
  (container.volumeMounts ?? []).forEach((mount, index) => {
    const where: Path = [...at, 'volumeMounts', index];
    if (!volumes.has(mount.name)) out.push([[...where, 'name'], `no volume named "${mount.name}" in spec.volumes`]);
    if (mountPaths.has(mount.mountPath)) out.push([[...where, 'mountPath'], `"${mount.mountPath}" is mounted twice`]);
    mountPaths.add(mount.mountPath);
    if (mount.subPath !== undefined && (mount.subPath.startsWith('/') || mount.subPath.split('/').includes('..'))) {
      out.push([[...where, 'subPath'], 'must be a relative path without ".."']);
    }
    if (mount.mountPath.includes(',') || (mount.subPath ?? '').includes(',')) out.push([[...where, 'mountPath'], 'must not contain ","']);
  });
  (container.env ?? []).forEach((variable, index) => {
    const where: Path = [...at, 'env', index];
    const from = variable.valueFrom;
    if (!from) return;
    if (variable.value !== undefined) out.push([[...where, 'valueFrom'], 'may not be set together with value']);
    const sources = Object.entries(from).filter(([, source]) => source !== undefined);
    if (sources.length !== 1) out.push([[...where, 'valueFrom'], 'must have exactly one source (fieldRef or resourceFieldRef)']);
    if (from.fieldRef && !FIELD_REFS.test(from.fieldRef.fieldPath)) {
      out.push([[...where, 'valueFrom', 'fieldRef', 'fieldPath'], `unsupported field "${from.fieldRef.fieldPath}": metadata.name, metadata.namespace, metadata.uid, metadata.labels['KEY'], metadata.annotations['KEY'], spec.nodeName, spec.serviceAccountName, status.hostIP(s), status.podIP(s)`]);
    }
    if (from.resourceFieldRef && !RESOURCE_REFS.has(from.resourceFieldRef.resource)) {
      out.push([[...where, 'valueFrom', 'resourceFieldRef', 'resource'], `unsupported resource "${from.resourceFieldRef.resource}": limits.cpu, limits.memory, requests.cpu, requests.memory`]);
    }
  });
  for (const resource of ['cpu', 'memory'] as const) {
    const request = container.resources?.requests?.[resource];
    const limit = container.resources?.limits?.[resource];
    if (request !== undefined && limit !== undefined && (parseQuantity(request) ?? 0) > (parseQuantity(limit) ?? 0)) {
      out.push([[...at, 'resources', 'requests', resource], `must be less than or equal to the ${resource} limit`]);
    }
  }
  (container.ports ?? []).forEach((port, index) => {
    if (hostNetwork && port.hostPort !== undefined && port.hostPort !== port.containerPort) {
      out.push([[...at, 'ports', index, 'hostPort'], 'must equal containerPort when hostNetwork is true']);
    }
  });
  for (const probeName of ['livenessProbe', 'readinessProbe', 'startupProbe'] as const) {
    const probe = container[probeName];
    if (!probe) continue;
    const handlers = ['exec', 'httpGet', 'tcpSocket', 'grpc'].filter((key) => probe[key as keyof typeof probe] !== undefined);
    if (handlers.length !== 1) out.push([[...at, probeName], 'must have exactly one handler: exec, httpGet, tcpSocket or grpc']);
  }
  return out;
}
