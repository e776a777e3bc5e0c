// A container's environment as the kubelet computes it: values in order, each able to refer to
// the ones before it with $(NAME); fieldRef and resourceFieldRef from the pod itself; then the
// same $(NAME) expansion in command and args.
import type { DesiredPod } from '../manifest/identity.js';
import type { Container, EnvVar } from '../manifest/pod-schema.js';
import { parseQuantity } from '../manifest/quantity.js';
import { allContainers } from '../manifest/pod-containers.js';

/** Facts about the running pod that env fieldRefs can ask for. */
export interface PodFacts {
  hostIP: string;
  podIP: string;
}

/** Expands $(NAME) from `vars`; $$ is a literal $; unknown names are left as written. */
export function expandVars(input: string, vars: ReadonlyMap<string, string>): string {
  let out = '';
  for (let index = 0; index < input.length; index++) {
    const char = input[index];
    if (char === '$' && input[index + 1] === '$') {
      out += '$';
      index++;
    } else if (char === '$' && input[index + 1] === '(') {
      const end = input.indexOf(')', index + 2);
      if (end === -1) {
        out += input.slice(index);
        break;
      }
      const name = input.slice(index + 2, end);
      const value = vars.get(name);
      out += value ?? `$(${name})`;
      index = end;
    } else {
      out += char;
    }
  }
  return out;
}

/** The value of a fieldRef such as metadata.name or metadata.labels['app']. */
export function fieldRefValue(fieldPath: string, pod: DesiredPod, facts: PodFacts): string {
  const metadata = pod.pod.metadata;
  const keyed = /^metadata\.(labels|annotations)\['([^']+)'\]$/.exec(fieldPath);
  if (keyed) return (keyed[1] === 'labels' ? metadata.labels : metadata.annotations)?.[keyed[2] ?? ''] ?? '';
  switch (fieldPath) {
    case 'metadata.name': return pod.name;
    case 'metadata.namespace': return pod.namespace;
    case 'metadata.uid': return pod.uid;
    case 'metadata.labels': return formatMap(metadata.labels);
    case 'metadata.annotations': return formatMap(metadata.annotations);
    case 'spec.nodeName': return String(pod.pod.spec.nodeName ?? '');
    case 'spec.serviceAccountName': return '';
    case 'status.hostIP': case 'status.hostIPs': return facts.hostIP;
    case 'status.podIP': case 'status.podIPs': return facts.podIP;
    default: return '';
  }
}

/** key="value" lines, sorted, as the downward API writes labels and annotations. */
function formatMap(map: Record<string, string> | undefined): string {
  return Object.keys(map ?? {}).sort().map((key) => `${key}=${JSON.stringify(map?.[key] ?? '')}`).join('\n');
}

/** The value of a resourceFieldRef, divided and rounded up as the kubelet does. */
export function resourceFieldValue(resource: string, divisor: string | number | undefined, container: Container | undefined): string {
  const [kind, name] = resource.split('.') as ['limits' | 'requests', string];
  const raw = container?.resources?.[kind]?.[name];
  const divide = parseQuantity(divisor ?? 1) || 1;
  // Without a limit the kubelet reports the node's allocatable; podvisor reports 0 (no limit).
  const value = raw === undefined ? 0 : parseQuantity(raw) ?? 0;
  // Rounded to a millionth first, so that 1001m / 1m is 1001 and not 1002 from float error.
  return String(Math.ceil(Math.round((value / divide) * 1e6) / 1e6));
}

/** The container's environment, in order, fully resolved. */
export function containerEnvironment(pod: DesiredPod, container: Container, facts: PodFacts): Map<string, string> {
  const vars = new Map<string, string>();
  const all = allContainers(pod.pod.spec);
  for (const variable of container.env ?? []) vars.set(variable.name, envValue(variable, pod, container, all, facts, vars));
  return vars;
}

function envValue(variable: EnvVar, pod: DesiredPod, container: Container, all: Container[], facts: PodFacts, vars: Map<string, string>): string {
  const from = variable.valueFrom;
  if (from?.fieldRef) return fieldRefValue(from.fieldRef.fieldPath, pod, facts);
  if (from?.resourceFieldRef) {
    const target = from.resourceFieldRef.containerName ? all.find((other) => other.name === from.resourceFieldRef?.containerName) : container;
    return resourceFieldValue(from.resourceFieldRef.resource, from.resourceFieldRef.divisor, target);
  }
  return expandVars(variable.value ?? '', vars);
}

/** True when some container asks for the pod's IP, which is only known once the pod runs. */
export function needsPodIP(pod: DesiredPod): boolean {
  return allContainers(pod.pod.spec).some((container) => (container.env ?? []).some((variable) => /^status\.podIPs?$/.test(variable.valueFrom?.fieldRef?.fieldPath ?? '')));
}
