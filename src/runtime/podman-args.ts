// Translates a desired pod into podman command lines: `podman pod create` for the pod's shared
// namespaces, ports and labels, and `podman run` for each container. Pure functions, so the
// mapping is tested without podman.
import type { DesiredPod } from '../manifest/identity.js';
import type { Container } from '../manifest/pod-schema.js';
import { milliCpu, parseQuantity } from '../manifest/quantity.js';
import { containerEnvironment, expandVars, type PodFacts } from './environment.js';
import { LABEL, podmanContainerName, podmanPodName } from './labels.js';
import type { HostVolume } from './volumes.js';

/** Labels shared by a pod and its containers. */
export function podLabels(pod: DesiredPod, nodeName: string): Record<string, string> {
  return {
    [LABEL.MANAGED]: 'true',
    [LABEL.NODE]: nodeName,
    [LABEL.NAMESPACE]: pod.namespace,
    [LABEL.NAME]: pod.name,
    [LABEL.UID]: pod.uid,
    [LABEL.HASH]: pod.hash,
  };
}

function labelArgs(labels: Record<string, string>): string[] {
  return Object.entries(labels).flatMap(([key, value]) => ['--label', `${key}=${value}`]);
}

/** The pod's hostname: spec.hostname, else its name cut to 63 characters, as the kubelet does. */
export function podHostname(pod: DesiredPod): string {
  if (pod.pod.spec.hostname) return pod.pod.spec.hostname;
  return pod.name.slice(0, 63).replace(/[-.]+$/, '');
}

/** `podman pod create` arguments. */
export function podCreateArgs(pod: DesiredPod, nodeName: string): string[] {
  const spec = pod.pod.spec;
  const args = ['pod', 'create', '--name', podmanPodName(pod.namespace, pod.name)];
  args.push(...labelArgs({
    ...podLabels(pod, nodeName),
    [LABEL.SOURCE]: pod.source,
    [LABEL.GRACE]: String(spec.terminationGracePeriodSeconds ?? 30),
  }));
  args.push('--share', spec.shareProcessNamespace ? 'ipc,net,uts,pid' : 'ipc,net,uts');
  if (spec.hostNetwork) {
    // A hostNetwork pod sees the node's network and, as under the kubelet, its hostname.
    args.push('--network', 'host', '--uts', 'host');
  } else {
    args.push('--hostname', podHostname(pod));
    for (const container of spec.containers) {
      for (const port of container.ports ?? []) {
        if (port.hostPort === undefined) continue;
        const protocol = (port.protocol ?? 'TCP').toLowerCase();
        const host = port.hostIP ? (port.hostIP.includes(':') ? `[${port.hostIP}]:` : `${port.hostIP}:`) : '';
        args.push('--publish', `${host}${port.hostPort}:${port.containerPort}/${protocol}`);
      }
    }
  }
  if (spec.hostPID) args.push('--pid', 'host');
  for (const alias of spec.hostAliases ?? []) {
    for (const hostname of alias.hostnames ?? []) args.push('--add-host', `${hostname}:${alias.ip}`);
  }
  return args;
}

export interface ContainerRunInput {
  pod: DesiredPod;
  container: Container;
  kind: 'init' | 'app';
  nodeName: string;
  volumes: ReadonlyMap<string, HostVolume>;
  facts: PodFacts;
  /** The bound on the container's log file; podman's default is none. */
  logMaxBytes?: number | undefined;
}

/** `podman run --detach` arguments for one container. */
export function containerRunArgs(input: ContainerRunInput): string[] {
  const { pod, container, kind } = input;
  const spec = pod.pod.spec;
  const args = ['run', '--detach'];
  args.push('--pod', podmanPodName(pod.namespace, pod.name));
  args.push('--name', podmanContainerName(pod.namespace, pod.name, container.name));
  args.push(...labelArgs({ ...podLabels(pod, input.nodeName), [LABEL.CONTAINER]: container.name, [LABEL.CONTAINER_KIND]: kind }));
  // podvisor supervises restarts itself; podman's own policy stays off.
  args.push('--restart', 'no');
  args.push('--pull', { Always: 'always', IfNotPresent: 'missing', Never: 'never' }[container.imagePullPolicy ?? 'IfNotPresent']);
  args.push('--stop-timeout', String(spec.terminationGracePeriodSeconds ?? 30));
  // A container that logs for years must not fill the device: conmon starts the file over at the bound.
  if (input.logMaxBytes !== undefined) args.push('--log-opt', `max-size=${input.logMaxBytes}`);

  const env = containerEnvironment(pod, container, input.facts);
  for (const [name, value] of env) args.push('--env', `${name}=${value}`);
  if (container.workingDir) args.push('--workdir', container.workingDir);

  for (const mount of container.volumeMounts ?? []) {
    const volume = input.volumes.get(mount.name);
    if (!volume) continue;
    const source = mount.subPath ? `${volume.path}/${mount.subPath}` : volume.path;
    const readOnly = mount.readOnly === true || volume.readOnly;
    args.push('--mount', `type=bind,source=${source},destination=${mount.mountPath}${readOnly ? ',ro=true' : ''}`);
  }

  const limits = container.resources?.limits ?? {};
  const requests = container.resources?.requests ?? {};
  if (limits.cpu !== undefined) args.push('--cpus', String((milliCpu(limits.cpu) ?? 0) / 1000));
  if (requests.cpu !== undefined) {
    // The kubelet's conversion of a cpu request to a relative weight (minimum 2).
    args.push('--cpu-shares', String(Math.max(2, Math.floor(((milliCpu(requests.cpu) ?? 0) * 1024) / 1000))));
  }
  if (limits.memory !== undefined) args.push('--memory', String(Math.floor(parseQuantity(limits.memory) ?? 0)));

  args.push(...securityArgs(pod, container));

  if (container.command) args.push('--entrypoint', JSON.stringify(container.command.map((part) => expandVars(part, env))));
  args.push(container.image);
  if (container.args) args.push(...container.args.map((part) => expandVars(part, env)));
  return args;
}

function securityArgs(pod: DesiredPod, container: Container): string[] {
  const podContext = pod.pod.spec.securityContext ?? {};
  const context = container.securityContext ?? {};
  const args: string[] = [];
  const user = context.runAsUser ?? podContext.runAsUser;
  const group = context.runAsGroup ?? podContext.runAsGroup;
  // `--user :GID` keeps the image's user and makes GID its primary group, as runAsGroup does.
  if (user !== undefined || group !== undefined) args.push('--user', `${user ?? ''}${group !== undefined ? `:${group}` : ''}`);
  for (const supplemental of podContext.supplementalGroups ?? []) args.push('--group-add', String(supplemental));
  if (context.privileged) args.push('--privileged');
  for (const capability of context.capabilities?.add ?? []) args.push('--cap-add', capability);
  for (const capability of context.capabilities?.drop ?? []) args.push('--cap-drop', capability);
  if (context.readOnlyRootFilesystem) args.push('--read-only', '--read-only-tmpfs=false');
  if (context.allowPrivilegeEscalation === false) args.push('--security-opt', 'no-new-privileges');
  // RuntimeDefault is podman's own profile, which applies anyway; a privileged container has none.
  const seccomp = context.seccompProfile ?? podContext.seccompProfile;
  if (seccomp?.type === 'Unconfined' && !context.privileged) args.push('--security-opt', 'seccomp=unconfined');
  return args;
}

/** The user a container will run as when the manifest says, or undefined to use the image's. */
export function effectiveRunAsUser(pod: DesiredPod, container: Container): number | undefined {
  return container.securityContext?.runAsUser ?? pod.pod.spec.securityContext?.runAsUser;
}

/** Whether the container must not run as root (container setting over pod setting). */
export function requiresNonRoot(pod: DesiredPod, container: Container): boolean {
  return container.securityContext?.runAsNonRoot ?? pod.pod.spec.securityContext?.runAsNonRoot ?? false;
}
