// The labels podvisor puts on everything it creates, and the names it gives podman objects.
// podvisor never touches a pod or container that lacks MANAGED and this node's NODE label.

export const LABEL = {
  MANAGED: 'io.podvisor.managed',
  NODE: 'io.podvisor.node',
  NAMESPACE: 'io.podvisor.namespace',
  NAME: 'io.podvisor.name',
  UID: 'io.podvisor.uid',
  HASH: 'io.podvisor.hash',
  SOURCE: 'io.podvisor.source',
  GRACE: 'io.podvisor.grace-period',
  CONTAINER: 'io.podvisor.container',
  CONTAINER_KIND: 'io.podvisor.container-kind',
} as const;

/** podman's pod name for a static pod: unique per namespace and name. */
export function podmanPodName(namespace: string, name: string): string {
  return `${namespace}_${name}`;
}

/** podman's container name for a container of a static pod. */
export function podmanContainerName(namespace: string, name: string, container: string): string {
  return `${namespace}_${name}_${container}`;
}
