// Mirror pods and a node for the publish tests, made by the agent's own functions (mirrorPod,
// nodeObject) from small hand-written inputs, in a real MirrorStore read through
// publishInputFrom: the publishers see what the agent will give them.
import { CONFIG_HASH_ANNOTATION } from '../../src/manifest/identity.js';
import { mirrorPod, type MirrorPod } from '../../src/mirror/mirror-pod.js';
import { MirrorStore } from '../../src/mirror/mirror-store.js';
import { nodeObject, type HostFacts, type V1Node } from '../../src/mirror/node-object.js';
import { publishInputFrom, type PublishInput } from '../../src/publish/publisher.js';
import type { StatusPod } from '../../src/status/status-manager.js';
import type { PodPhase } from '../../src/status/types.js';

export const NODE = 'edge-1';
/** The uid the agent gives its node; the server gives its own on registration. */
export const LOCAL_NODE_UID = '00000000-0000-4000-8000-000000000001';

export interface PodSpecOptions {
  /** The config hash (kubernetes.io/config.hash, hence config.mirror). */
  hash?: string;
  phase?: PodPhase;
  namespace?: string;
  image?: string;
}

/** A mirror pod named `<name>-edge-1`. */
export function pod(name: string, options: PodSpecOptions = {}): MirrorPod {
  const status: StatusPod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: `${name}-${NODE}`,
      namespace: options.namespace ?? 'default',
      uid: `static-uid-${name}`,
      labels: { app: name },
      annotations: {
        [CONFIG_HASH_ANNOTATION]: options.hash ?? 'hash-1',
        'kubernetes.io/config.source': 'file',
      },
    },
    spec: { containers: [{ name: 'app', image: options.image ?? 'busybox:1.36' }], nodeName: NODE },
    status: {
      phase: options.phase ?? 'Running',
      conditions: [{ type: 'Ready', status: options.phase === 'Running' || options.phase === undefined ? 'True' : 'False', lastProbeTime: null, lastTransitionTime: '2024-05-01T10:00:00Z' }],
      hostIP: '127.0.0.1',
      startTime: '2024-05-01T10:00:00Z',
      qosClass: 'BestEffort',
      initContainerStatuses: [],
      containerStatuses: [],
    },
  };
  return mirrorPod(status, { name: NODE, uid: LOCAL_NODE_UID });
}

const FACTS: HostFacts = {
  nodeName: NODE,
  hostIP: '127.0.0.1',
  hostname: NODE,
  machineID: 'machine-1',
  bootID: 'boot-1',
  kernelVersion: '6.1.0',
  osImage: 'Test Linux',
  architecture: 'amd64',
  cpus: 2,
  memoryBytes: 2 * 1024 * 1024 * 1024,
  containerRuntimeVersion: 'podman://4.3.1',
  podvisorVersion: '0.1.0',
  apiPort: 0,
};

/** The agent's node object; `heartbeat` moves its Ready condition's heartbeat time. */
export function node(heartbeat = '2024-05-01T10:00:00Z', ready = true): V1Node {
  return nodeObject(FACTS, { ready, message: ready ? 'podvisor is supervising its pods' : 'not ready', since: '2024-05-01T10:00:00Z', heartbeat }, '2024-05-01T09:00:00Z');
}

/** A mirror store and the publish input read from it, with one call to set its content. */
export function storeInput(pods: MirrorPod[] = [], withNode = true): { store: MirrorStore; input: PublishInput; set(pods: MirrorPod[], nodeObject?: V1Node): void } {
  const store = new MirrorStore({ initialVersion: 1000 });
  const set = (next: MirrorPod[], nodeObject?: V1Node) => {
    store.replace('pods', next);
    if (nodeObject) store.replace('nodes', [nodeObject]);
  };
  set(pods, withNode ? node() : undefined);
  return { store, input: publishInputFrom(store, NODE), set };
}
