// Kubernetes-style events for what happened to pods (Created, Started, Killing, BackOff,
// Unhealthy, Failed, and podvisor's own for manifests), kept in a bounded ring. A repeat of the
// same event (object, reason, message) counts up instead of taking a new slot, as the kubelet's
// event aggregation does.
import type { PodIdentity } from '../manifest/identity.js';
import { apiTime } from './conditions.js';

export interface PodEvent {
  /** Stable within this agent's life: `<pod uid>.<sequence>`. */
  name: string;
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
  count: number;
  firstTimestamp: string;
  lastTimestamp: string;
  involvedObject: { kind: 'Pod'; name: string; namespace: string; uid: string; fieldPath?: string };
}

export class EventRecorder {
  readonly #capacity: number;
  readonly #now: () => number;
  readonly #events: PodEvent[] = [];
  #sequence = 0;

  constructor(options: { capacity?: number; now?: () => number } = {}) {
    this.#capacity = options.capacity ?? 1000;
    this.#now = options.now ?? Date.now;
  }

  /** Records an event about a pod (and, with `container`, one of its containers). */
  record(pod: Pick<PodIdentity, 'name' | 'namespace' | 'uid'>, type: PodEvent['type'], reason: string, message: string, container?: { name: string; kind: 'init' | 'app' }): PodEvent {
    const now = apiTime(new Date(this.#now()));
    const fieldPath = container ? `spec.${container.kind === 'init' ? 'initContainers' : 'containers'}{${container.name}}` : undefined;
    const same = this.#events.find((event) =>
      event.involvedObject.uid === pod.uid && event.reason === reason && event.message === message && event.involvedObject.fieldPath === fieldPath);
    if (same) {
      same.count++;
      same.lastTimestamp = now;
      // Most recent last, so the ring drops the stalest first.
      this.#events.splice(this.#events.indexOf(same), 1);
      this.#events.push(same);
      return same;
    }
    const event: PodEvent = {
      name: `${pod.name}.${pod.uid.slice(0, 8)}${(++this.#sequence).toString(16).padStart(8, '0')}`,
      type,
      reason,
      message,
      count: 1,
      firstTimestamp: now,
      lastTimestamp: now,
      involvedObject: { kind: 'Pod', name: pod.name, namespace: pod.namespace, uid: pod.uid, ...(fieldPath ? { fieldPath } : {}) },
    };
    this.#events.push(event);
    if (this.#events.length > this.#capacity) this.#events.splice(0, this.#events.length - this.#capacity);
    return event;
  }

  /** All events, oldest first; with `uid`, only that pod's. */
  list(uid?: string): PodEvent[] {
    return this.#events.filter((event) => uid === undefined || event.involvedObject.uid === uid).map((event) => ({ ...event, involvedObject: { ...event.involvedObject } }));
  }

  /** Restores events saved by an earlier agent (oldest first). */
  restore(events: readonly PodEvent[]): void {
    this.#events.push(...events.slice(-this.#capacity));
    // Go on numbering after the restored events, so no new event takes a restored one's name.
    for (const event of events) {
      const sequence = Number.parseInt(event.name.slice(-8), 16);
      if (Number.isFinite(sequence)) this.#sequence = Math.max(this.#sequence, sequence);
    }
  }
}
