// The API server's defaults for the Pod fields podvisor acts on, applied before hashing so that
// a manifest that spells a default out and one that leaves it implicit are the same pod.
import type { Container, PodManifest, Probe } from './pod-schema.js';

/** The API server's rule: tag `latest`, or neither tag nor digest, means Always; otherwise IfNotPresent. */
export function defaultPullPolicy(image: string): 'Always' | 'IfNotPresent' {
  const [name = '', digest] = image.split('@');
  const lastPart = name.slice(name.lastIndexOf('/') + 1);
  const tag = lastPart.includes(':') ? lastPart.slice(lastPart.lastIndexOf(':') + 1) : '';
  if (tag === 'latest') return 'Always';
  return tag === '' && digest === undefined ? 'Always' : 'IfNotPresent';
}

function defaultProbe(probe: Probe | undefined): Probe | undefined {
  if (!probe) return undefined;
  return {
    timeoutSeconds: 1,
    periodSeconds: 10,
    successThreshold: 1,
    failureThreshold: 3,
    ...probe,
    ...(probe.httpGet ? { httpGet: { path: '/', scheme: 'HTTP' as const, ...probe.httpGet } } : {}),
  };
}

function defaultContainer(container: Container): Container {
  const limits = container.resources?.limits;
  const requests = container.resources?.requests;
  // As the API server does: a limit without a request makes the request equal to the limit.
  const defaultedRequests = limits ? { ...limits, ...requests } : requests;
  return {
    ...container,
    imagePullPolicy: container.imagePullPolicy ?? defaultPullPolicy(container.image),
    terminationMessagePath: container.terminationMessagePath ?? '/dev/termination-log',
    terminationMessagePolicy: container.terminationMessagePolicy ?? 'File',
    resources: {
      ...container.resources,
      ...(defaultedRequests ? { requests: defaultedRequests } : {}),
    },
    // The API server fills in the fieldRef's apiVersion; kubectl describe shows it as `(v1:field)`.
    ...(container.env
      ? { env: container.env.map((env) => (env.valueFrom?.fieldRef ? { ...env, valueFrom: { ...env.valueFrom, fieldRef: { apiVersion: 'v1', ...env.valueFrom.fieldRef } } } : env)) }
      : {}),
    ...(container.ports ? { ports: container.ports.map((port) => ({ protocol: 'TCP' as const, ...port })) } : {}),
    ...(container.livenessProbe ? { livenessProbe: defaultProbe(container.livenessProbe) } : {}),
    ...(container.readinessProbe ? { readinessProbe: defaultProbe(container.readinessProbe) } : {}),
    ...(container.startupProbe ? { startupProbe: defaultProbe(container.startupProbe) } : {}),
  };
}

/** Returns the pod with the API server's defaults filled in; the input is not changed. */
export function applyDefaults(pod: PodManifest): PodManifest {
  const spec = pod.spec;
  return {
    ...pod,
    metadata: { ...pod.metadata, namespace: pod.metadata.namespace ?? 'default' },
    spec: {
      ...spec,
      restartPolicy: spec.restartPolicy ?? 'Always',
      terminationGracePeriodSeconds: spec.terminationGracePeriodSeconds ?? 30,
      dnsPolicy: spec.dnsPolicy ?? 'ClusterFirst',
      securityContext: spec.securityContext ?? {},
      containers: spec.containers.map(defaultContainer),
      ...(spec.initContainers ? { initContainers: spec.initContainers.map(defaultContainer) } : {}),
      ...(spec.volumes
        ? {
            volumes: spec.volumes.map((volume) =>
              volume.hostPath ? { ...volume, hostPath: { type: '' as const, ...volume.hostPath } } : volume,
            ),
          }
        : {}),
    },
  };
}
