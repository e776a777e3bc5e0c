// What the readers of podvisor's status see: the mirror pods, their events and the node, each
// with a resourceVersion, and a bounded history of changes so that a watch can start at a version
// it was given by a list. Writers replace a whole kind at once; the store works out what was
// added, modified and deleted. One store, many readers (the API, the publishers).
import { compareText } from '../order.js';

/** The kinds of object the store keeps, by their API resource names. */
export type ResourceName = 'pods' | 'events' | 'nodes';

/** The kind of each resource's objects. */
export const KIND_OF: Record<ResourceName, 'Pod' | 'Event' | 'Node'> = { pods: 'Pod', events: 'Event', nodes: 'Node' };

export interface StoredObject {
  metadata: { name: string; namespace?: string; resourceVersion?: string };
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoreChange {
  type: WatchEventType;
  resource: ResourceName;
  /** The object as it is now (for DELETED: as it was last, with the deletion's version). */
  object: StoredObject;
  /** What the object was before this change (MODIFIED, DELETED): a watch from an older version needs it. */
  previous?: StoredObject;
  resourceVersion: number;
}

export interface MirrorStoreOptions {
  /** Changes kept for watches that start at an older version (default 300: a reconnect after a short break). */
  historySize?: number;
  /** The first version: the clock by default, so that versions grow across agent restarts too. */
  initialVersion?: number;
}

interface Entry {
  object: StoredObject;
  /** The object's JSON without its version: what decides whether it changed. */
  json: string;
}

/** The key of an object within its kind. */
export function objectKey(object: StoredObject): string {
  return `${object.metadata.namespace ?? ''}/${object.metadata.name}`;
}

/** Asked for a version older than the history holds (the API answers 410 Gone). */
export class ExpiredVersionError extends Error {
  constructor(readonly requested: number, readonly oldest: number) {
    super(`too old resource version: ${requested} (${oldest})`);
    this.name = 'ExpiredVersionError';
  }
}

export class MirrorStore {
  readonly #objects = new Map<ResourceName, Map<string, Entry>>([
    ['pods', new Map()],
    ['events', new Map()],
    ['nodes', new Map()],
  ]);
  readonly #history: StoreChange[] = [];
  readonly #historySize: number;
  readonly #listeners = new Set<(change: StoreChange) => void>();
  /** Each kind's sorted list, kept until that kind changes: many readers list far more often than it changes. */
  readonly #lists = new Map<ResourceName, readonly StoredObject[]>();
  #version: number;
  /** The version before the oldest change in the history: a watch from here on misses nothing. */
  #oldest: number;

  constructor(options: MirrorStoreOptions = {}) {
    this.#historySize = options.historySize ?? 300;
    this.#version = options.initialVersion ?? Date.now();
    this.#oldest = this.#version;
  }

  /** The newest version of anything in the store. */
  get version(): number {
    return this.#version;
  }

  /** Makes `objects` the whole content of `resource`, recording what changed. */
  replace(resource: ResourceName, objects: readonly StoredObject[]): void {
    const current = this.#objects.get(resource) ?? new Map<string, Entry>();
    const seen = new Set<string>();
    for (const incoming of objects) {
      const key = objectKey(incoming);
      seen.add(key);
      const { resourceVersion: _ignored, ...metadata } = incoming.metadata;
      const bare = { ...incoming, metadata };
      const json = JSON.stringify(bare);
      const before = current.get(key);
      if (before?.json === json) continue;
      const version = ++this.#version;
      const object = { ...bare, metadata: { ...metadata, resourceVersion: String(version) } };
      current.set(key, { object, json });
      this.#record({ type: before ? 'MODIFIED' : 'ADDED', resource, object, ...(before ? { previous: before.object } : {}), resourceVersion: version });
    }
    for (const [key, entry] of current) {
      if (seen.has(key)) continue;
      current.delete(key);
      const version = ++this.#version;
      const object = { ...entry.object, metadata: { ...entry.object.metadata, resourceVersion: String(version) } };
      this.#record({ type: 'DELETED', resource, object, previous: entry.object, resourceVersion: version });
    }
  }

  /** Every object of `resource`, sorted by namespace and name. The array is shared: do not change it. */
  list(resource: ResourceName): readonly StoredObject[] {
    let list = this.#lists.get(resource);
    if (!list) {
      list = [...(this.#objects.get(resource)?.values() ?? [])]
        .map((entry) => entry.object)
        .sort((a, b) => compareText(objectKey(a), objectKey(b)));
      this.#lists.set(resource, list);
    }
    return list;
  }

  /** One object, if the store has it. */
  get(resource: ResourceName, namespace: string | undefined, name: string): StoredObject | undefined {
    return this.#objects.get(resource)?.get(`${namespace ?? ''}/${name}`)?.object;
  }

  /** The changes after `version`, oldest first; throws ExpiredVersionError when they are gone. */
  changesSince(version: number): StoreChange[] {
    if (version < this.#oldest) throw new ExpiredVersionError(version, this.#oldest);
    return this.#history.filter((change) => change.resourceVersion > version);
  }

  /** Calls `listener` with every change from now on; returns the function that stops it. */
  subscribe(listener: (change: StoreChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #record(change: StoreChange): void {
    this.#lists.delete(change.resource);
    this.#history.push(change);
    if (this.#history.length > this.#historySize) {
      const dropped = this.#history.splice(0, this.#history.length - this.#historySize);
      this.#oldest = dropped.at(-1)?.resourceVersion ?? this.#oldest;
    }
    for (const listener of this.#listeners) listener(change);
  }
}
