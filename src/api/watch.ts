// One watch: a chunked stream of `{"type":..., "object":...}` lines, as the API server sends
// them. It starts with the objects that exist (no resourceVersion, or "0") or with the changes
// after the version given, then follows the store. An object that stops matching the selectors
// is sent as DELETED, one that starts matching as ADDED. A version older than the store's history
// ends the watch with a 410 Expired Status, so the client lists afresh.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ExpiredVersionError, KIND_OF, objectKey, type MirrorStore, type ResourceName, type StoreChange, type StoredObject, type WatchEventType } from '../mirror/mirror-store.js';
import { badRequest, expired } from './api-status.js';
import type { Matcher } from './selectors.js';
import { toTable, type IncludeObject } from './tables.js';

export interface WatchRequest {
  request: IncomingMessage;
  response: ServerResponse;
  store: MirrorStore;
  resource: ResourceName;
  matches: Matcher;
  resourceVersion: string;
  timeoutSeconds: number;
  bookmarks: boolean;
  /** Send each object as a one-row Table (the client asked for `as=Table`). */
  table: { includeObject: IncludeObject } | undefined;
  /** Told of the function that ends this watch, before anything can end it. */
  register: (end: () => void) => void;
  /** Called once when the watch has ended, however it ended. */
  onEnd: (end: () => void) => void;
}

/** How often a quiet watch that allows bookmarks gets one. */
const BOOKMARK_MS = 60_000;
/** A watch whose client reads too slowly is ended rather than buffered without bound. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

/**
 * Each stored object's watch lines by event type, made once however many watches send it: the
 * store's objects are never changed once stored, so a line stays right for as long as its object lives.
 */
const watchLines = new WeakMap<StoredObject, Partial<Record<WatchEventType, string>>>();

function watchLine(type: WatchEventType, object: StoredObject): string {
  let lines = watchLines.get(object);
  if (!lines) watchLines.set(object, (lines = {}));
  return (lines[type] ??= `${JSON.stringify({ type, object })}\n`);
}

/** Serves the watch; returns the function that ends it. */
export function serveWatch(watch: WatchRequest): () => void {
  const { response, store, resource, matches } = watch;
  const inside = new Set<string>();
  let ended = false;
  let bookmarkTimer: NodeJS.Timeout | undefined;
  let lastVersion = store.version;

  const end = () => {
    if (ended) return;
    ended = true;
    unsubscribe();
    clearTimeout(lifeTimer);
    clearInterval(bookmarkTimer);
    // The connection may carry further requests: leave no listener of this watch on it.
    watch.request.socket.off('close', end);
    response.off('error', end);
    response.end();
    watch.onEnd(end);
  };
  watch.register(end);
  const write = (line: string) => {
    if (ended) return;
    response.write(line);
    if (response.writableLength > MAX_BUFFERED_BYTES) end();
  };
  const send = (type: WatchEventType | 'BOOKMARK' | 'ERROR', object: unknown) => write(`${JSON.stringify({ type, object })}\n`);
  const sendObject = (type: WatchEventType, object: StoredObject, version: number) => {
    lastVersion = version;
    if (!watch.table) {
      write(watchLine(type, object));
      return;
    }
    send(type, toTable(resource, [object], { resourceVersion: String(version), includeObject: watch.table.includeObject }));
  };
  const apply = (change: StoreChange) => {
    if (change.resource !== resource) return;
    const key = objectKey(change.object);
    const was = inside.has(key);
    const is = change.type !== 'DELETED' && matches(change.object);
    if (is) inside.add(key);
    else inside.delete(key);
    if (is) sendObject(was ? 'MODIFIED' : 'ADDED', change.object, change.resourceVersion);
    else if (was) sendObject('DELETED', change.object, change.resourceVersion);
  };

  // Subscribe before reading the start, holding changes until it is sent, so none falls between.
  let pending: StoreChange[] | undefined = [];
  const unsubscribe = store.subscribe((change) => {
    if (pending) pending.push(change);
    else apply(change);
  });
  const lifeTimer = setTimeout(end, Math.max(1, watch.timeoutSeconds) * 1000);
  lifeTimer.unref();
  watch.request.socket.on('close', end);
  response.on('error', end);

  response.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private', 'Transfer-Encoding': 'chunked' });
  // Headers now, not with the first event: a quiet watch must still look started to the client.
  response.flushHeaders();
  const startVersion = store.version;
  const from = watch.resourceVersion;
  if (from === '' || from === '0') {
    for (const object of store.list(resource)) {
      if (!matches(object)) continue;
      inside.add(objectKey(object));
      sendObject('ADDED', object, Number(object.metadata.resourceVersion ?? startVersion));
    }
  } else {
    const version = Number(from);
    try {
      if (!Number.isInteger(version) || version < 0) throw new RangeError(`invalid resourceVersion: "${from}"`);
      // What matched at that version: objects unchanged since, as they are now; objects changed
      // since, as they were before their first change after it.
      const changes = store.changesSince(version).filter((change) => change.resource === resource && change.resourceVersion <= startVersion);
      const firstChange = new Map<string, StoreChange>();
      for (const change of changes) if (!firstChange.has(objectKey(change.object))) firstChange.set(objectKey(change.object), change);
      for (const object of store.list(resource)) if (!firstChange.has(objectKey(object)) && matches(object)) inside.add(objectKey(object));
      for (const [key, change] of firstChange) if (change.previous && matches(change.previous)) inside.add(key);
      for (const change of changes) apply(change);
    } catch (error) {
      const status = error instanceof ExpiredVersionError ? expired(`too old resource version: ${from} (${store.version})`) : badRequest(error instanceof Error ? error.message : String(error));
      send('ERROR', status);
      end();
      return end;
    }
  }
  const held = pending;
  pending = undefined;
  for (const change of held) if (change.resourceVersion > startVersion) apply(change);
  if (watch.bookmarks) {
    bookmarkTimer = setInterval(() => {
      send('BOOKMARK', { kind: KIND_OF[resource], apiVersion: 'v1', metadata: { resourceVersion: String(Math.max(lastVersion, store.version)) } });
    }, BOOKMARK_MS);
    bookmarkTimer.unref();
  }
  return end;
}
