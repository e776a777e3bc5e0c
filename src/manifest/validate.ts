// Turns one parsed YAML document into a Pod podvisor can run, or into findings that each name
// the file, line, column and field path: `web.yaml:14:9: spec.containers[0].image: Required`.
// Errors make the document unusable; warnings name what will not be acted on.
import { z } from 'zod';
import { devicePolicyFindings, OPEN_POLICY, type DevicePolicy } from './device-policy.js';
import { policyFindings, type Path } from './field-policy.js';
import type { ParsedDocument, Position } from './parse.js';
import { isDns1123Subdomain, podSchema, type Container, type PodManifest } from './pod-schema.js';
import { parseQuantity } from './quantity.js';
import { unknownFields } from './unknown-fields.js';
import { escapeText } from '../log/escape.js';
import { hostPortClaims, HostPortTable } from './host-ports.js';

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
    return `must be ${issue.expected === 'object' || issue.expected === 'record' ? 'a mapping' : issue.expected === 'array' ? 'a list' : `a ${issue.expected}`}, got ${got}`;
  }
  if (issue.code === 'invalid_value') {
    return `must be one of ${issue.values.map((value) => JSON.stringify(value)).join(', ')}, got ${JSON.stringify(issue.input)}`;
  }
  return undefined;
}

/** Validates one document of a manifest file, refusing what the device's `policy` forbids. */
export function validateDocument(file: string, document: ParsedDocument, policy: DevicePolicy = OPEN_POLICY): DocumentResult {
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

  // Go's JSON decoding takes null for unset: so does the schema (the raw value keeps them for the rest).
  const parsed = podSchema.safeParse(withoutNulls(value), { error: issueMessage });
  const values = valueFindings(value);
  // An infinite number is said once, by valueFindings, not again as the schema's type error.
  const nonFinite = new Set(values.filter(([, message]) => message.includes(NOT_JSON)).map(([path]) => formatPath(path)));
  if (!parsed.success) {
    for (const issue of parsed.error.issues) if (!nonFinite.has(formatPath(issue.path as Path))) add('error', issue.path as Path, issue.message);
  }
  for (const finding of policyFindings(value)) add(finding.severity, finding.path, finding.message);
  for (const finding of devicePolicyFindings(value, policy)) add(finding.severity, finding.path, finding.message);
  for (const unknown of unknownFields(podSchema, value)) {
    add('warning', unknown.path, unknown.suggestion ? `ignored: unknown field (field names are case-sensitive: did you mean "${unknown.suggestion}"?)` : 'ignored: unknown field');
  }
  // The rules between fields run on the raw document, so a type error elsewhere hides none of them.
  for (const [path, message, severity] of [...values, ...metadataFindings(value), ...semanticFindings(value as Json)]) add(severity ?? 'error', path, message);

  // In file order, as a person reads them (sort is stable for findings at one position).
  findings.sort((a, b) => a.line - b.line || a.column - b.column);
  const failed = findings.some((finding) => finding.severity === 'error');
  return failed || !parsed.success ? { index: document.index, findings } : { index: document.index, pod: parsed.data, findings };
}

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);
const asObject = (value: unknown): Json => (isObject(value) ? value : {});
const asList = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);
const asString = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);
const isSet = (value: unknown): boolean => value !== undefined && value !== null;

/** A copy without the null-valued keys of mappings (items of lists are kept: null there is an item). */
function withoutNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutNulls);
  if (!isObject(value)) return value;
  const out: Json = {};
  for (const [key, child] of Object.entries(value)) {
    // defineProperty: a key named __proto__ stays an ordinary key.
    if (child !== null) Object.defineProperty(out, key, { value: withoutNulls(child), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

const NOT_JSON = 'is not a number JSON can carry: the kubelet refuses the file';

/**
 * What no field may hold: a NUL character (no container runtime can pass it on, and the API
 * server's text formats cannot carry it faithfully) or an infinite or NaN number (`.inf`, `.nan`:
 * the kubelet's YAML-to-JSON step cannot represent them and refuses the file). Walked without
 * recursion: the parser bounds the nodes, not the stack.
 */
function valueFindings(root: unknown): Semantic[] {
  const out: Semantic[] = [];
  const stack: { value: unknown; path: Path }[] = [{ value: root, path: [] }];
  while (stack.length > 0 && out.length < 100) {
    const { value, path } = stack.pop()!;
    if (typeof value === 'string' && value.includes('\0')) out.push([path, 'must not contain a NUL character (\\0): no container runtime can pass it on']);
    else if (typeof value === 'number' && !Number.isFinite(value)) out.push([path, `${String(value)} ${NOT_JSON}`]);
    else if (Array.isArray(value)) value.forEach((item, index) => stack.push({ value: item, path: [...path, index] }));
    else if (isObject(value)) {
      for (const [key, child] of Object.entries(value)) {
        if (key.includes('\0')) out.push([[...path, key], 'a key must not contain a NUL character (\\0)']);
        stack.push({ value: child, path: [...path, key] });
      }
    }
  }
  return out;
}

const QUALIFIED_NAME_PART = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
/** The API server's limit on all annotations of an object together (keys and values, in bytes). */
export const MAX_ANNOTATIONS_BYTES = 256 * 1024;

/** Why `key` is not a qualified name (`[prefix/]name`), in the API server's words; empty when it is one. */
export function qualifiedNameErrors(key: string): string[] {
  const parts = key.split('/');
  let name = key;
  const errors: string[] = [];
  if (parts.length === 2) {
    const [prefix = '', rest = ''] = parts;
    name = rest;
    if (prefix.length === 0) errors.push('prefix part must be non-empty');
    else if (prefix.length > 253) errors.push('prefix part must be no more than 253 characters');
    else if (!isDns1123Subdomain(prefix)) errors.push("prefix part must be a lowercase RFC 1123 subdomain: lower-case letters, digits, '-' or '.', starting and ending with a letter or digit");
  } else if (parts.length > 2) {
    return ["a qualified name must consist of alphanumeric characters, '-', '_' or '.', with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"];
  }
  if (name.length === 0) errors.push('name part must be non-empty');
  else if (name.length > 63) errors.push('name part must be no more than 63 characters');
  else if (!QUALIFIED_NAME_PART.test(name)) errors.push("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character");
  return errors;
}

/** Why `value` is not a label value; empty when it is one. */
export function labelValueErrors(value: string): string[] {
  if (value.length > 63) return ['a label value must be no more than 63 characters'];
  if (!LABEL_VALUE.test(value)) return ["a label value must be empty or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"];
  return [];
}

/** Label and annotation syntax, as the API server's ValidateLabels and ValidateAnnotations. */
function metadataFindings(document: unknown): Semantic[] {
  const out: Semantic[] = [];
  const metadata = asObject(asObject(document).metadata);
  const labels = asObject(metadata.labels);
  for (const [key, value] of Object.entries(labels)) {
    for (const message of qualifiedNameErrors(key)) out.push([['metadata', 'labels', key], `invalid label key: ${message}`]);
    if (typeof value === 'string') for (const message of labelValueErrors(value)) out.push([['metadata', 'labels', key], `invalid value: ${message}`]);
  }
  const annotations = asObject(metadata.annotations);
  let bytes = 0;
  for (const [key, value] of Object.entries(annotations)) {
    // Annotation keys may have an upper-case prefix: the API server checks them lower-cased.
    for (const message of qualifiedNameErrors(key.toLowerCase())) out.push([['metadata', 'annotations', key], `invalid annotation key: ${message}`]);
    bytes += Buffer.byteLength(key) + (typeof value === 'string' ? Buffer.byteLength(value) : 0);
  }
  if (bytes > MAX_ANNOTATIONS_BYTES) out.push([['metadata', 'annotations'], `Too long: may not be more than ${MAX_ANNOTATIONS_BYTES} bytes, all keys and values together (${bytes} here)`]);
  return out;
}

type Semantic = [Path, string, Finding['severity']?];

/**
 * The cross-field rules a schema cannot say: uniqueness, references, ranges between fields. They
 * read the raw document and skip what is not of the right type (the schema reports that).
 */
function semanticFindings(pod: Json): Semantic[] {
  const out: Semantic[] = [];
  const spec = asObject(pod.spec);
  const volumeNames = new Set<string>();
  asList(spec.volumes).forEach((raw, index) => {
    const volume = asObject(raw);
    const name = asString(volume.name);
    if (name !== undefined && volumeNames.has(name)) out.push([['spec', 'volumes', index, 'name'], `duplicate volume name "${name}"`]);
    if (name !== undefined) volumeNames.add(name);
    const emptyDir = asObject(volume.emptyDir);
    if (isSet(emptyDir.sizeLimit) && emptyDir.medium !== 'Memory') {
      out.push([['spec', 'volumes', index, 'emptyDir', 'sizeLimit'], 'ignored: the size of a disk-backed emptyDir is not enforced (medium: Memory is)', 'warning']);
    }
    asList(asObject(volume.downwardAPI).items).forEach((item, itemIndex) => {
      const sources = ['fieldRef', 'resourceFieldRef'].filter((key) => isSet(asObject(item)[key]));
      if (isObject(item) && sources.length !== 1) {
        out.push([['spec', 'volumes', index, 'downwardAPI', 'items', itemIndex], sources.length === 0 ? 'must have one source: fieldRef or resourceFieldRef' : 'fieldRef and resourceFieldRef can not be specified simultaneously']);
      }
    });
  });

  const seenNames = new Map<string, string>();
  const hostPorts = new HostPortTable<string>();
  const hostNetwork = spec.hostNetwork === true;
  for (const list of ['initContainers', 'containers'] as const) {
    asList(spec[list]).forEach((raw, index) => {
      if (!isObject(raw)) return;
      const container = raw;
      const at: Path = ['spec', list, index];
      const name = asString(container.name);
      const first = name === undefined ? undefined : seenNames.get(name);
      if (first) out.push([[...at, 'name'], `duplicate container name "${name}" (first used by ${first})`]);
      else if (name !== undefined) seenNames.set(name, formatPath(at));
      if (list === 'containers' && isSet(container.restartPolicy)) {
        out.push([[...at, 'restartPolicy'], 'only init containers (sidecars) may set restartPolicy']);
      }
      const image = asString(container.image);
      if (image && !IMAGE_REFERENCE.test(image)) {
        out.push([[...at, 'image'], `"${image}" is not a valid image reference: the container will wait with InvalidImageName`, 'warning']);
      }
      out.push(...containerFindings(container, at, volumeNames, hostNetwork));
      for (const claim of hostPortClaims(container, hostNetwork)) {
        const owner = hostPorts.holder(claim);
        const where: Path = [...at, 'ports', claim.index, claim.declared ? 'hostPort' : 'containerPort'];
        if (owner) out.push([where, `host port ${claim.port}/${claim.protocol} is already published by ${owner}`]);
        else hostPorts.take([claim], formatPath([...at, 'ports', claim.index]));
      }
    });
  }
  return out;
}

function containerFindings(container: Json, at: Path, volumes: Set<string>, hostNetwork: boolean): Semantic[] {
  const out: Semantic[] = [];
  const mountPaths = new Set<string>();
  asList(container.volumeMounts).forEach((raw, index) => {
    const mount = asObject(raw);
    const where: Path = [...at, 'volumeMounts', index];
    const name = asString(mount.name);
    const mountPath = asString(mount.mountPath);
    const subPath = asString(mount.subPath);
    if (name && !volumes.has(name)) out.push([[...where, 'name'], `no volume named "${name}" in spec.volumes`]);
    if (mountPath !== undefined && mountPaths.has(mountPath)) out.push([[...where, 'mountPath'], `"${mountPath}" is mounted twice`]);
    if (mountPath !== undefined) mountPaths.add(mountPath);
    if (subPath !== undefined && (subPath.startsWith('/') || subPath.split('/').includes('..'))) {
      out.push([[...where, 'subPath'], 'must be a relative path without ".."']);
    }
    if ((mountPath ?? '').includes(',') || (subPath ?? '').includes(',')) out.push([[...where, 'mountPath'], 'must not contain ","']);
  });
  asList(container.env).forEach((raw, index) => {
    const variable = asObject(raw);
    const where: Path = [...at, 'env', index];
    if (!isObject(variable.valueFrom)) return;
    const from = variable.valueFrom;
    if (isSet(variable.value)) out.push([[...where, 'valueFrom'], 'may not be set together with value']);
    const sources = Object.entries(from).filter(([, source]) => isSet(source));
    if (sources.length !== 1) out.push([[...where, 'valueFrom'], 'must have exactly one source (fieldRef or resourceFieldRef)']);
    const fieldPath = asString(asObject(from.fieldRef).fieldPath);
    if (fieldPath !== undefined && !FIELD_REFS.test(fieldPath)) {
      out.push([[...where, 'valueFrom', 'fieldRef', 'fieldPath'], `unsupported field "${fieldPath}": metadata.name, metadata.namespace, metadata.uid, metadata.labels['KEY'], metadata.annotations['KEY'], spec.nodeName, spec.serviceAccountName, status.hostIP(s), status.podIP(s)`]);
    }
    const resource = asString(asObject(from.resourceFieldRef).resource);
    if (resource !== undefined && !RESOURCE_REFS.has(resource)) {
      out.push([[...where, 'valueFrom', 'resourceFieldRef', 'resource'], `unsupported resource "${resource}": limits.cpu, limits.memory, requests.cpu, requests.memory`]);
    }
  });
  const resources = asObject(container.resources);
  for (const resource of ['cpu', 'memory'] as const) {
    const request = quantityOf(asObject(resources.requests)[resource]);
    const limit = quantityOf(asObject(resources.limits)[resource]);
    if (request !== undefined && limit !== undefined && request > limit) {
      out.push([[...at, 'resources', 'requests', resource], `must be less than or equal to the ${resource} limit`]);
    }
  }
  asList(container.ports).forEach((raw, index) => {
    const port = asObject(raw);
    if (hostNetwork && typeof port.hostPort === 'number' && port.hostPort !== 0 && port.hostPort !== port.containerPort) {
      out.push([[...at, 'ports', index, 'hostPort'], 'must equal containerPort when hostNetwork is true']);
    }
  });
  for (const probeName of ['livenessProbe', 'readinessProbe', 'startupProbe'] as const) {
    const probe = container[probeName];
    if (!isObject(probe)) continue;
    const handlers = ['exec', 'httpGet', 'tcpSocket', 'grpc'].filter((key) => isSet(probe[key]));
    if (handlers.length !== 1) out.push([[...at, probeName], 'must have exactly one handler: exec, httpGet, tcpSocket or grpc']);
  }
  const lifecycle = asObject(container.lifecycle);
  for (const hook of ['postStart', 'preStop'] as const) {
    const handler = lifecycle[hook];
    if (!isObject(handler)) continue;
    const handlers = ['exec', 'httpGet', 'tcpSocket', 'sleep'].filter((key) => isSet(handler[key]));
    if (handlers.length !== 1) out.push([[...at, 'lifecycle', hook], 'must have exactly one handler: exec, httpGet or sleep']);
  }
  return out;
}

/** The value of a quantity field, or undefined when it is absent or not a quantity. */
function quantityOf(value: unknown): number | undefined {
  return typeof value === 'string' || typeof value === 'number' ? parseQuantity(value) : undefined;
}
