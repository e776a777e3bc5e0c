// Label and field selectors as the API server reads them from `labelSelector` and
// `fieldSelector`: the same grammar, the same fields per resource, and a BadRequest for anything
// else, so a client learns at once that its selector was not understood.
import type { ResourceName } from '../mirror/mirror-store.js';

export class SelectorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SelectorError';
  }
}

type Requirement =
  | { key: string; op: 'exists' | 'notexists' }
  | { key: string; op: 'in' | 'notin'; values: string[] };

export type Matcher = (object: unknown) => boolean;

const LABEL_KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;

/** Splits on commas that are not inside parentheses. */
function splitTop(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const char of text) {
    if (char === '(') depth++;
    if (char === ')') depth--;
    if (char === ',' && depth === 0) {
      parts.push(current);
      current = '';
    } else current += char;
  }
  parts.push(current);
  return parts.map((part) => part.trim());
}

function checkKey(key: string, whole: string): string {
  if (!LABEL_KEY.test(key)) throw new SelectorError(`unable to parse requirement: invalid label key "${key}" in "${whole}"`);
  return key;
}

function checkValue(value: string, whole: string): string {
  if (!LABEL_VALUE.test(value)) throw new SelectorError(`unable to parse requirement: invalid label value "${value}" in "${whole}"`);
  return value;
}

/** Parses a label selector; an empty one selects everything. */
export function parseLabelSelector(text: string): Matcher {
  const requirements: Requirement[] = [];
  if (text.trim() !== '') {
    for (const part of splitTop(text)) {
      if (part === '') throw new SelectorError(`unable to parse requirement: empty requirement in "${text}"`);
      const set = /^(\S+)\s+(in|notin)\s*\(([^)]*)\)$/.exec(part);
      if (set) {
        const values = set[3]!.split(',').map((value) => checkValue(value.trim(), text));
        requirements.push({ key: checkKey(set[1]!, text), op: set[2] as 'in' | 'notin', values });
        continue;
      }
      const compare = /^([^!=\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(part);
      if (compare) {
        const key = checkKey(compare[1]!, text);
        const value = checkValue(compare[3]!, text);
        requirements.push({ key, op: compare[2] === '!=' ? 'notin' : 'in', values: [value] });
        continue;
      }
      const exists = /^(!?)\s*([^!=\s()]+)$/.exec(part);
      if (exists) {
        requirements.push({ key: checkKey(exists[2]!, text), op: exists[1] === '!' ? 'notexists' : 'exists' });
        continue;
      }
      throw new SelectorError(`unable to parse requirement: "${part}"`);
    }
  }
  return (object) => {
    const labels = ((object as { metadata?: { labels?: Record<string, string> } }).metadata?.labels ?? {}) as Record<string, string>;
    return requirements.every((requirement) => {
      const has = Object.hasOwn(labels, requirement.key);
      switch (requirement.op) {
        case 'exists':
          return has;
        case 'notexists':
          return !has;
        case 'in':
          return has && requirement.values.includes(labels[requirement.key]!);
        case 'notin':
          return !has || !requirement.values.includes(labels[requirement.key]!);
      }
    });
  };
}

/** The fields each resource can be selected by, and how to read them. */
const FIELDS: Record<ResourceName, Record<string, (object: any) => unknown>> = {
  pods: {
    'metadata.name': (pod) => pod.metadata?.name,
    'metadata.namespace': (pod) => pod.metadata?.namespace,
    'spec.nodeName': (pod) => pod.spec?.nodeName ?? '',
    'spec.restartPolicy': (pod) => pod.spec?.restartPolicy,
    'spec.schedulerName': (pod) => pod.spec?.schedulerName ?? 'default-scheduler',
    'spec.serviceAccountName': (pod) => pod.spec?.serviceAccountName ?? '',
    'spec.hostNetwork': (pod) => String(pod.spec?.hostNetwork ?? false),
    'status.phase': (pod) => pod.status?.phase,
    'status.podIP': (pod) => pod.status?.podIP ?? '',
    'status.nominatedNodeName': () => '',
  },
  events: {
    'metadata.name': (event) => event.metadata?.name,
    'metadata.namespace': (event) => event.metadata?.namespace,
    'involvedObject.kind': (event) => event.involvedObject?.kind,
    'involvedObject.namespace': (event) => event.involvedObject?.namespace,
    'involvedObject.name': (event) => event.involvedObject?.name,
    'involvedObject.uid': (event) => event.involvedObject?.uid,
    'involvedObject.apiVersion': (event) => event.involvedObject?.apiVersion,
    'involvedObject.resourceVersion': (event) => event.involvedObject?.resourceVersion ?? '',
    'involvedObject.fieldPath': (event) => event.involvedObject?.fieldPath ?? '',
    reason: (event) => event.reason,
    reportingComponent: (event) => event.reportingComponent,
    source: (event) => event.source?.component,
    type: (event) => event.type,
  },
  nodes: {
    'metadata.name': (node) => node.metadata?.name,
    'spec.unschedulable': () => 'false',
  },
};

/** Splits `text` at unescaped `separator`s, keeping escapes for the next step. */
function splitEscaped(text: string, separator: string): string[] {
  const parts: string[] = [];
  let current = '';
  for (let index = 0; index < text.length; index++) {
    const char = text[index]!;
    if (char === '\\' && index + 1 < text.length) {
      current += char + text[index + 1]!;
      index++;
    } else if (char === separator) {
      parts.push(current);
      current = '';
    } else current += char;
  }
  parts.push(current);
  return parts;
}

function unescape(text: string): string {
  return text.replace(/\\(.)/g, '$1');
}

/** Parses a field selector for `resource`; an unknown field is a SelectorError as the API words it. */
export function parseFieldSelector(text: string, resource: ResourceName): Matcher {
  const terms: { read: (object: unknown) => unknown; value: string; equal: boolean }[] = [];
  if (text.trim() !== '') {
    for (const part of splitEscaped(text, ',')) {
      const match = /^((?:[^\\=!]|\\.)+?)\s*(==|=|!=)\s*(.*)$/.exec(part.trim());
      if (!match) throw new SelectorError(`invalid selector: '${text}'; can't understand '${part}'`);
      const field = match[1]!;
      const read = FIELDS[resource][field];
      if (!read) throw new SelectorError(`field label not supported: ${field}`);
      terms.push({ read, value: unescape(match[3]!), equal: match[2] !== '!=' });
    }
  }
  return (object) => terms.every((term) => (String(term.read(object) ?? '') === term.value) === term.equal);
}
