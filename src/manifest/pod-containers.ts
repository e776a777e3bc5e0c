// The questions every part asks of a pod spec's containers, answered in one place: all of them,
// one by name, and which init containers are sidecars.
import type { Container, PodSpec } from './pod-schema.js';

type Containers = Pick<PodSpec, 'containers' | 'initContainers'>;

/** Every container of a pod spec, init containers (sidecars among them) first. */
export function allContainers(spec: Containers): Container[] {
  return [...(spec.initContainers ?? []), ...spec.containers];
}

/** The container (init or app) called `name`. */
export function containerNamed(spec: Containers, name: string): Container | undefined {
  return (spec.initContainers ?? []).find((one) => one.name === name) ?? spec.containers.find((one) => one.name === name);
}

/** True for a sidecar: an init container with restartPolicy Always, which keeps running beside the app. */
export function isSidecar(container: Pick<Container, 'restartPolicy'>): boolean {
  return container.restartPolicy === 'Always';
}
