// The device as a v1 Node, the object every mirror pod is owned by: its name, addresses,
// capacity, what it runs (OS, kernel, podman as the container runtime) and a Ready condition that
// follows the agent's own health. Facts that do not change are read once, at start.
import { readFileSync } from 'node:fs';
import { arch, cpus, hostname, release, totalmem } from 'node:os';
import { stableUuid } from '../manifest/identity.js';

export interface NodeCondition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastHeartbeatTime: string;
  lastTransitionTime: string;
}

export interface V1Node {
  apiVersion: 'v1';
  kind: 'Node';
  metadata: {
    name: string;
    uid: string;
    resourceVersion?: string;
    creationTimestamp: string;
    labels: Record<string, string>;
    annotations: Record<string, string>;
  };
  spec: Record<string, never>;
  status: {
    capacity: Record<string, string>;
    allocatable: Record<string, string>;
    conditions: NodeCondition[];
    addresses: { type: 'InternalIP' | 'Hostname'; address: string }[];
    daemonEndpoints: { kubeletEndpoint: { Port: number } };
    nodeInfo: {
      machineID: string;
      systemUUID: string;
      bootID: string;
      kernelVersion: string;
      osImage: string;
      containerRuntimeVersion: string;
      kubeletVersion: string;
      kubeProxyVersion: string;
      operatingSystem: string;
      architecture: string;
    };
  };
}

/** What the node object is made of; read once by `hostFacts()`. */
export interface HostFacts {
  nodeName: string;
  hostIP: string;
  hostname: string;
  machineID: string;
  bootID: string;
  kernelVersion: string;
  osImage: string;
  architecture: string;
  cpus: number;
  memoryBytes: number;
  /** `podman://4.3.1` */
  containerRuntimeVersion: string;
  podvisorVersion: string;
  /** The port the read-only API listens on (0 when it is off). */
  apiPort: number;
}

/** How many pods a node of the kubelet's default takes; podvisor sets no limit of its own. */
const MAX_PODS = '110';

function readTrimmed(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return '';
  }
}

/** `PRETTY_NAME` of /etc/os-release, as the kubelet reports the OS image. */
function osImage(): string {
  const match = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readTrimmed('/etc/os-release'));
  return match?.[1] ?? 'Linux';
}

/** Go's GOARCH names for Node's `os.arch()`. */
function goArch(nodeArch: string): string {
  return ({ x64: 'amd64', ia32: '386', arm: 'arm', arm64: 'arm64', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' } as Record<string, string>)[nodeArch] ?? nodeArch;
}

/** Reads the host's facts that the node object shows. */
export function hostFacts(input: { nodeName: string; hostIP: string; podmanVersion: string; podvisorVersion: string; apiPort: number }): HostFacts {
  return {
    nodeName: input.nodeName,
    hostIP: input.hostIP,
    hostname: hostname(),
    machineID: readTrimmed('/etc/machine-id'),
    bootID: readTrimmed('/proc/sys/kernel/random/boot_id'),
    kernelVersion: release(),
    osImage: osImage(),
    architecture: goArch(arch()),
    cpus: cpus().length,
    memoryBytes: totalmem(),
    containerRuntimeVersion: `podman://${input.podmanVersion}`,
    podvisorVersion: input.podvisorVersion,
    apiPort: input.apiPort,
  };
}

/** A uid for the node, stable across agent restarts on the same machine. */
export function nodeUid(facts: Pick<HostFacts, 'nodeName' | 'machineID'>): string {
  return stableUuid('node', facts.nodeName, facts.machineID);
}

/** The agent's health as the node's Ready condition shows it. */
export interface NodeHealth {
  ready: boolean;
  message: string;
  /** Since when the readiness has been what it is (RFC 3339). */
  since: string;
  /** The last time the agent confirmed it (RFC 3339). */
  heartbeat: string;
}

/** The v1 Node for this device. */
export function nodeObject(facts: HostFacts, health: NodeHealth, createdAt: string): V1Node {
  const memoryKi = `${Math.floor(facts.memoryBytes / 1024)}Ki`;
  const capacity = { cpu: String(facts.cpus), memory: memoryKi, pods: MAX_PODS };
  const quiet = (type: string, reason: string, message: string): NodeCondition => ({
    type,
    status: 'False',
    reason,
    message,
    lastHeartbeatTime: health.heartbeat,
    lastTransitionTime: createdAt,
  });
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: facts.nodeName,
      uid: nodeUid(facts),
      creationTimestamp: createdAt,
      labels: {
        'kubernetes.io/hostname': facts.nodeName,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': facts.architecture,
        'beta.kubernetes.io/os': 'linux',
        'beta.kubernetes.io/arch': facts.architecture,
      },
      annotations: { 'podvisor.io/agent': `podvisor/${facts.podvisorVersion}` },
    },
    spec: {},
    status: {
      capacity,
      allocatable: { ...capacity },
      conditions: [
        quiet('MemoryPressure', 'KubeletHasSufficientMemory', 'podvisor does not evict pods for memory pressure'),
        quiet('DiskPressure', 'KubeletHasNoDiskPressure', 'podvisor does not evict pods for disk pressure'),
        quiet('PIDPressure', 'KubeletHasSufficientPID', 'podvisor does not evict pods for PID pressure'),
        {
          type: 'Ready',
          status: health.ready ? 'True' : 'False',
          reason: health.ready ? 'KubeletReady' : 'KubeletNotReady',
          message: health.message,
          lastHeartbeatTime: health.heartbeat,
          lastTransitionTime: health.since,
        },
      ],
      addresses: [
        { type: 'InternalIP', address: facts.hostIP },
        { type: 'Hostname', address: facts.hostname },
      ],
      daemonEndpoints: { kubeletEndpoint: { Port: facts.apiPort } },
      nodeInfo: {
        machineID: facts.machineID,
        systemUUID: facts.machineID,
        bootID: facts.bootID,
        kernelVersion: facts.kernelVersion,
        osImage: facts.osImage,
        containerRuntimeVersion: facts.containerRuntimeVersion,
        kubeletVersion: `v${facts.podvisorVersion}-podvisor`,
        kubeProxyVersion: '',
        operatingSystem: 'linux',
        architecture: facts.architecture,
      },
    },
  };
}
