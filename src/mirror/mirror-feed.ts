// Feeds the mirror store from the status owner: after every status change it turns the pods
// into mirror pods, the recorded events into v1 Events and the device into a Node, and lets the
// store work out what changed. It only reads what the status owner computed.
import { INVALID_MANIFESTS_ANNOTATION, type InvalidManifest } from '../rollout/rollout-outcome.js';
import type { PodEvent } from '../status/event-recorder.js';
import type { StatusPod } from '../status/status-manager.js';
import { apiTime } from '../status/conditions.js';
import { CONFIG_MIRROR_ANNOTATION, mirrorPod, v1Event, type MirrorPod } from './mirror-pod.js';
import type { MirrorStore } from './mirror-store.js';
import { nodeObject, nodeUid, type HostFacts, type NodeHealth, type V1Node } from './node-object.js';

/** What the feed reads of the status owner. */
export interface StatusSource {
  pods(): StatusPod[];
  readonly events: { list(): PodEvent[] };
  /** The files with errors no pod runs from: on the node, as no pod can carry them. */
  invalidManifests?(): readonly InvalidManifest[];
}

export interface MirrorFeedOptions {
  store: MirrorStore;
  status: StatusSource;
  facts: HostFacts;
  /** The agent's health, for the node's Ready condition. */
  health: () => { ready: boolean; message: string };
  /** Serve the containers' env values (left out by default: see env-values.ts). */
  serveEnvValues?: boolean;
  now?: () => number;
}

/** How often the node's heartbeat time moves on even when nothing else changed. */
const HEARTBEAT_MS = 60_000;

export class MirrorFeed {
  readonly #options: MirrorFeedOptions;
  readonly #now: () => number;
  readonly #createdAt: string;
  #readiness: { ready: boolean; message: string; since: string } | undefined;
  #heartbeat = 0;

  constructor(options: MirrorFeedOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#createdAt = apiTime(new Date(this.#now()));
  }

  /** The node mirror pods are owned by. */
  get node(): { name: string; uid: string } {
    return { name: this.#options.facts.nodeName, uid: nodeUid(this.#options.facts) };
  }

  /** The mirror pods as they are now (without resource versions). */
  mirrorPods(): MirrorPod[] {
    const node = this.node;
    const serveEnvValues = this.#options.serveEnvValues ?? false;
    return this.#options.status.pods().map((pod) => mirrorPod(pod, node, { serveEnvValues }));
  }

  /** Brings the store up to date with the status owner. */
  sync(): void {
    const { store, status, facts } = this.#options;
    const pods = this.mirrorPods();
    store.replace('pods', pods);
    // The static pod's uid as the kubelet gives it is its config hash; events name the pod by it.
    const staticUid = new Map(pods.map((pod) => [pod.metadata.uid, pod.metadata.annotations[CONFIG_MIRROR_ANNOTATION]]));
    store.replace('events', status.events.list().map((event) => v1Event(event, facts.nodeName, staticUid.get(event.involvedObject.uid))));
    store.replace('nodes', [this.#node()]);
  }

  #node(): V1Node {
    const now = this.#now();
    const health = this.#options.health();
    const changed = this.#readiness?.ready !== health.ready || this.#readiness.message !== health.message;
    if (changed || now - this.#heartbeat >= HEARTBEAT_MS) this.#heartbeat = now;
    if (changed) this.#readiness = { ...health, since: apiTime(new Date(now)) };
    const readiness = this.#readiness ?? { ...health, since: this.#createdAt };
    const nodeHealth: NodeHealth = { ready: readiness.ready, message: readiness.message, since: readiness.since, heartbeat: apiTime(new Date(this.#heartbeat)) };
    const node = nodeObject(this.#options.facts, nodeHealth, this.#createdAt);
    const invalid = this.#options.status.invalidManifests?.() ?? [];
    if (invalid.length > 0) node.metadata.annotations[INVALID_MANIFESTS_ANNOTATION] = JSON.stringify(invalid);
    return node;
  }
}
