// The webhook publisher: POSTs the node's mirror pods as a v1 PodList to a URL on change and on a
// heartbeat schedule.
//
// - Changes are coalesced: a POST at most once per `intervalSeconds`, counted from the previous
//   attempt. The first change after a quiet interval goes out at once; changes within the
//   interval go out together at its end, as the state is then.
// - The heartbeat (a node-cron expression, every minute by default) POSTs the state even when
//   it did not change, so the receiver can tell a quiet node from a dead one.
// - A change whose content hash equals the last delivered one is not sent (the heartbeat is).
// - While the receiver fails, attempts are spaced by back-off and only the latest state is sent
//   (the snapshot is made when a POST starts, never queued).
//
// Body: {"apiVersion":"v1","kind":"PodList","metadata":{"resourceVersion":<store version>},"items":[...]}
// with the mirror pods sorted by namespace/name. The node object is not in the body (a PodList
// holds pods; a receiver that decodes one strictly keeps working); the node is named in a header.
// Headers:
//   Authorization: Bearer <the token file's content, trimmed; read for each POST>
//   Content-Type: application/json
//   X-Podvisor-Node: <node name>
//   X-Podvisor-Content-Hash: sha256=<hex>, over the canonical JSON (keys sorted at every level)
//     of the items with metadata.resourceVersion removed: the versions count changes in the
//     store and restart from the clock, while the content is what a receiver wants to compare.
//   X-Podvisor-Deltas: offered (on a full PodList: this agent can send deltas, see below)
// Invalid files (issue 12): a manifest with errors, or refused by policy, that no pod runs from (a
// bad new file) has no mirror pod to carry its outcome; while there are any, the PodList has a
// top-level "invalidManifests": [{"source","outcome":"Invalid","reason":"ManifestInvalid",
// "message":<first error, file:line:col>,"since"}] (as GET /rollout's `invalid`). Absent when there
// are none, so a node without bad files sends the PodList it always did. Outside the content hash
// (its rule is unchanged), but a change of them alone is sent.
//
// Deltas (issue 12): between full states, only what changed since the last acknowledged (2xx)
// POST, so that a steady node's heartbeat costs a few hundred bytes instead of the whole list.
// - Opt-in by the receiver: it answers a full PodList with `X-Podvisor-Deltas: accept`. A
//   receiver that does not (every receiver written before deltas) keeps getting full PodLists
//   and nothing else, so none has to change; the answer to each full POST decides again, so a
//   receiver replaced by an older one falls back by itself. `--publish-full-interval 0` never
//   sends deltas at all. Opt-in by answer rather than by a setting alone: only the receiver
//   knows whether it keeps the base a delta is applied to.
// - A delta's body: {"apiVersion":"podvisor.io/v1","kind":"PodListDelta","metadata":
//   {"resourceVersion":<store version>,"baseResourceVersion":<the acknowledged POST's>},
//   "items":[mirror pods added or changed],"removed":["<namespace>/<name>",...],
//   "invalidManifests":[the invalid files, all of them, [] when none]}, with the
//   header X-Podvisor-Base-Version: <base> and X-Podvisor-Content-Hash of the whole state after
//   it (the same rule as above), so the receiver can check what it applied it to.
// - A heartbeat with nothing changed is an empty delta: the content hash says "still this".
// - A full PodList goes instead: at start, every `--publish-full-interval` seconds (3600), after
//   any failed POST (on any doubt the base may be gone), and when the receiver asks: a 409 answer
//   to a delta (it lacks the base, or the hash does not match what it computed) is not a failure,
//   the full state goes at once; a 2xx answer with `X-Podvisor-Deltas: full` has the next POST,
//   at once, be full.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createTask, validate, validateDetailed, type ScheduledTask } from 'node-cron';
import { PodvisorError } from '../errors.js';
import type { MirrorPod } from '../mirror/mirror-pod.js';
import { askedWait, HttpClient, PublishError, resultLabel, retryAfterOf, type HttpResponse } from './http-client.js';
import { canonicalJson } from '../canonical-json.js';
import { DEFAULT_TIMEOUT_SECONDS, DeliveryHealth, podKey, Wakeup, type Publisher, type PublisherOptions, type PublishInput } from './publisher.js';
import { RetryBackoff } from './retry.js';
import { compareText } from '../order.js';
import { INVALID_MANIFESTS_ANNOTATION, parseInvalidManifests, type InvalidManifest } from '../rollout/rollout-outcome.js';

export const CONTENT_HASH_HEADER = 'X-Podvisor-Content-Hash';
export const NODE_HEADER = 'X-Podvisor-Node';
export const DEFAULT_HEARTBEAT = '* * * * *';
/** On a full PodList: the agent offers deltas. In an answer: `accept` (send deltas) or `full` (send the full state next). */
export const DELTAS_HEADER = 'X-Podvisor-Deltas';
export const BASE_VERSION_HEADER = 'X-Podvisor-Base-Version';
/** Deltas between full states at most this long (seconds): a receiver that lost count recovers by then at worst. */
export const DEFAULT_FULL_INTERVAL_SECONDS = 3600;

export interface WebhookPublisherOptions extends PublisherOptions {
  /** Where to POST: an http:// or https:// URL. */
  url: string;
  /** A file holding the bearer token; without it no Authorization header is sent. */
  tokenFile?: string;
  /** At most one POST for changes per this many seconds (default 10). */
  intervalSeconds?: number;
  /** A node-cron expression (5 fields, or 6 with seconds) for the heartbeat POST; null: none. */
  heartbeat?: string | null;
  /** PEM certificates to verify an https receiver with, instead of the system's roots. */
  ca?: string | Buffer;
  /** A full PodList at least this often (seconds) when the receiver takes deltas (default 3600); 0: never deltas. */
  fullIntervalSeconds?: number;
}

/** The state a POST is made from: the sorted items, their version and content hash. */
export interface WebhookState {
  items: MirrorPod[];
  version: string;
  hash: string;
  /** The files with errors that no pod runs from (from the node object): no item can carry them. */
  invalid: InvalidManifest[];
}

/** What the receiver acknowledged last: the base of the next delta (each pod's content without its version). */
interface Acknowledged {
  version: string;
  pods: Map<string, string>;
}

/** The input's state now. */
export function webhookState(input: Pick<PublishInput, 'pods' | 'resourceVersion'> & Partial<Pick<PublishInput, 'node'>>): WebhookState {
  const items = [...input.pods()].sort((a, b) => compareText(podKey(a), podKey(b)));
  const invalid = parseInvalidManifests(input.node?.()?.metadata.annotations?.[INVALID_MANIFESTS_ANNOTATION]);
  return { items, version: input.resourceVersion(), hash: contentHash(items), invalid };
}

/** What decides whether a change is news: the items' content hash and the invalid files (outside the hash, whose rule receivers compute). */
function deliveryKey(state: WebhookState): string {
  return `${state.hash} ${JSON.stringify(state.invalid)}`;
}

/** A pod's content without its resourceVersion: what decides whether a delta carries it. */
function bareJson(pod: MirrorPod): string {
  const { resourceVersion: _version, ...metadata } = pod.metadata;
  return canonicalJson({ ...pod, metadata });
}

/** The delta body from `base` to `state`. */
export function deltaBody(state: WebhookState, base: { version: string; pods: ReadonlyMap<string, string> }): string {
  const items = state.items.filter((pod) => base.pods.get(podKey(pod)) !== bareJson(pod));
  const present = new Set(state.items.map(podKey));
  const removed = [...base.pods.keys()].filter((key) => !present.has(key));
  // The invalid files whole, every time (a few lines at most): an empty list is how they end.
  return JSON.stringify({ apiVersion: 'podvisor.io/v1', kind: 'PodListDelta', metadata: { resourceVersion: state.version, baseResourceVersion: base.version }, items, removed, invalidManifests: state.invalid });
}

/** The PodList a POST carries and the hash of its content. */
export interface WebhookSnapshot {
  body: string;
  hash: string;
}

/** The body and content hash for the input's state now. */
export function webhookSnapshot(input: Pick<PublishInput, 'pods' | 'resourceVersion'> & Partial<Pick<PublishInput, 'node'>>): WebhookSnapshot {
  const state = webhookState(input);
  return { body: fullBody(state), hash: state.hash };
}

function fullBody(state: WebhookState): string {
  // Only when there are some: a node with none sends the very PodList it always did.
  return JSON.stringify({ apiVersion: 'v1', kind: 'PodList', metadata: { resourceVersion: state.version }, items: state.items, ...(state.invalid.length > 0 ? { invalidManifests: state.invalid } : {}) });
}

/** `sha256=<hex>` of the items' canonical JSON without their resourceVersions. */
export function contentHash(items: readonly MirrorPod[]): string {
  const bare = items.map((pod) => {
    const { resourceVersion: _version, ...metadata } = pod.metadata;
    return { ...pod, metadata };
  });
  return `sha256=${createHash('sha256').update(canonicalJson(bare)).digest('hex')}`;
}

function parseUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch (error) {
    throw new PodvisorError('E_CONFIG', `--publish-webhook: not a URL: ${JSON.stringify(raw)}`, { cause: error });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new PodvisorError('E_CONFIG', `--publish-webhook: must be an http:// or https:// URL, got ${url.protocol}`);
  if (url.username || url.password) throw new PodvisorError('E_CONFIG', '--publish-webhook: put credentials in --publish-token-file, not in the URL');
  return url;
}

export class WebhookPublisher implements Publisher {
  readonly mode = 'webhook' as const;
  readonly #options: WebhookPublisherOptions;
  readonly #url: URL;
  readonly #intervalMs: number;
  readonly #stopTimeoutMs: number;
  readonly #now: () => number;
  readonly #client: HttpClient;
  readonly #backoff: RetryBackoff;
  readonly #health: DeliveryHealth;
  readonly #wakeup = new Wakeup();
  readonly #heartbeat: string | null;
  #cron: ScheduledTask | undefined;
  #unsubscribe: (() => void) | undefined;
  #loop: Promise<void> | undefined;
  #inFlight: AbortController | undefined;
  #stopping = false;
  /** Changes seen, and how many of them the last delivered (or skipped) snapshot covered. */
  #changes = 0;
  #covered = -1;
  #heartbeatDue = false;
  #lastAttemptAt = Number.NEGATIVE_INFINITY;
  #retryAt: number | undefined;
  /** The deliveryKey of the last delivered state. */
  #delivered: string | undefined;
  readonly #fullIntervalMs: number;
  /** The receiver answered the last full PodList with `accept`. */
  #deltasAccepted = false;
  #acknowledged: Acknowledged | undefined;
  #lastFullAt = Number.NEGATIVE_INFINITY;
  /** The receiver asked for the full state (a 409 to a delta, or `X-Podvisor-Deltas: full`). */
  #fullAsked = false;

  /** Throws PodvisorError('E_CONFIG') for a bad URL, interval or heartbeat; never after. */
  constructor(options: WebhookPublisherOptions) {
    this.#options = options;
    this.#url = parseUrl(options.url);
    const interval = options.intervalSeconds ?? 10;
    if (!Number.isFinite(interval) || interval < 0) throw new PodvisorError('E_CONFIG', `--publish-interval must be a number of seconds of at least 0, got ${interval}`);
    this.#intervalMs = interval * 1000;
    const heartbeat = options.heartbeat === undefined ? DEFAULT_HEARTBEAT : options.heartbeat;
    if (heartbeat !== null && !validate(heartbeat)) {
      const why = validateDetailed(heartbeat).errors.map((error) => error.message).join('; ');
      throw new PodvisorError('E_CONFIG', `--publish-heartbeat: not a cron expression: ${JSON.stringify(heartbeat)}${why ? ` (${why})` : ''}`);
    }
    const full = options.fullIntervalSeconds ?? DEFAULT_FULL_INTERVAL_SECONDS;
    if (!Number.isFinite(full) || full < 0) throw new PodvisorError('E_CONFIG', `--publish-full-interval must be a number of seconds of at least 0 (0: never deltas), got ${full}`);
    this.#fullIntervalMs = full * 1000;
    this.#stopTimeoutMs = (options.stopTimeoutSeconds ?? 2) * 1000;
    this.#now = options.now ?? Date.now;
    const tokenFile = options.tokenFile;
    this.#client = new HttpClient({
      timeoutMs: (options.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS) * 1000,
      ...(options.ca !== undefined ? { tls: { ca: options.ca } } : {}),
      ...(tokenFile !== undefined ? { token: async () => readToken(tokenFile) } : {}),
    });
    this.#backoff = new RetryBackoff(options.retry);
    this.#health = new DeliveryHealth('webhook', options.logger, this.#now);
    this.#heartbeat = heartbeat;
  }

  get pending(): number {
    return this.#changes !== this.#covered || this.#retryAt !== undefined ? 1 : 0;
  }

  start(): void {
    if (this.#loop || this.#stopping) return;
    if (this.#url.protocol === 'http:' && this.#options.tokenFile !== undefined && !isLoopback(this.#url.hostname)) {
      this.#options.logger.warn(`publish (webhook): the bearer token goes to ${this.#url.host} over plain http`);
    }
    this.#unsubscribe = this.#options.input.subscribe(() => this.#onChange());
    if (this.#heartbeat !== null) {
      const logger = this.#options.logger;
      this.#cron = createTask(this.#heartbeat, () => this.#onHeartbeat(), {
        // node-cron's own words (a missed run, say) go to podvisor's log, at debug.
        logger: {
          info: (message) => logger.debug(`publish heartbeat: ${message}`),
          warn: (message) => logger.debug(`publish heartbeat: ${message}`),
          error: (message) => logger.debug(`publish heartbeat: ${String(message)}`),
          debug: () => undefined,
        },
      });
      void this.#cron.start();
    }
    this.#loop = this.#run();
    this.#setPendingMetric();
  }

  async stop(): Promise<void> {
    if (this.#stopping) return this.#loop;
    this.#stopping = true;
    this.#unsubscribe?.();
    void this.#cron?.destroy();
    this.#wakeup.kick();
    const loop = this.#loop ?? Promise.resolve();
    // A POST in flight may be the last state: it gets a short while, then it is cancelled.
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.#stopTimeoutMs);
    });
    await Promise.race([loop, deadline]);
    clearTimeout(timer);
    this.#inFlight?.abort();
    await loop;
    this.#client.close();
  }

  health() {
    return this.#health.health();
  }

  #onChange(): void {
    this.#changes++;
    this.#setPendingMetric();
    this.#wakeup.kick();
  }

  #onHeartbeat(): void {
    this.#heartbeatDue = true;
    this.#wakeup.kick();
  }

  /** How long until the next POST is due (Infinity: nothing to do). */
  #delay(): number {
    const now = this.#now();
    if (this.#retryAt !== undefined) return this.#retryAt - now;
    if (this.#heartbeatDue || this.#fullAsked) return 0;
    if (this.#changes !== this.#covered) return this.#lastAttemptAt + this.#intervalMs - now;
    return Number.POSITIVE_INFINITY;
  }

  async #run(): Promise<void> {
    while (!this.#stopping) {
      const delay = this.#delay();
      if (delay > 0) {
        await this.#wakeup.wait(delay);
        continue;
      }
      try {
        await this.#attempt();
      } catch (error) {
        // #attempt handles delivery failures; this is a bug, and the loop must outlive it.
        this.#options.logger.error(`publish (webhook): unexpected error: ${String(error)}`);
        this.#retryAt = this.#now() + this.#backoff.next();
      }
    }
  }

  async #attempt(): Promise<void> {
    const retrying = this.#retryAt !== undefined;
    const heartbeat = this.#heartbeatDue || this.#fullAsked;
    const changes = this.#changes;
    this.#heartbeatDue = false;
    this.#lastAttemptAt = this.#now();
    const state = webhookState(this.#options.input);
    if (!retrying && !heartbeat && deliveryKey(state) === this.#delivered) {
      this.#covered = changes;
      this.#setPendingMetric();
      return;
    }
    const base = this.#deltaBase();
    const post: OutgoingPost = base ? { kind: 'delta', body: deltaBody(state, base), hash: state.hash, base: base.version } : { kind: 'full', body: fullBody(state), hash: state.hash };
    const controller = new AbortController();
    this.#inFlight = controller;
    try {
      const answer = await this.#post(post, controller.signal);
      this.#options.metrics?.publishAttempts.inc({ mode: 'webhook', result: 'success' });
      this.#delivered = deliveryKey(state);
      this.#covered = changes;
      this.#retryAt = undefined;
      this.#backoff.reset();
      this.#health.succeeded();
      this.#acknowledged = { version: state.version, pods: new Map(state.items.map((pod) => [podKey(pod), bareJson(pod)])) };
      this.#fullAsked = false;
      const asked = headerValue(answer.headers[DELTAS_HEADER.toLowerCase()]);
      if (post.kind === 'full') {
        this.#lastFullAt = this.#now();
        // Each full answer decides again: a receiver replaced by one that knows no deltas falls back.
        this.#deltasAccepted = asked === 'accept';
      } else if (asked === 'full') {
        this.#fullAsked = true;
      }
    } catch (error) {
      if (this.#stopping && error instanceof PublishError && error.kind === 'aborted') return;
      // On any doubt the receiver's base may be gone: the next POST is full.
      this.#acknowledged = undefined;
      this.#options.metrics?.publishAttempts.inc({ mode: 'webhook', result: resultLabel(error) });
      if (post.kind === 'delta' && error instanceof PublishError && error.status === 409) {
        // The receiver lacks the base or computed another hash: it asks for the full state, now.
        this.#options.logger.debug(`publish (webhook): the receiver refused a delta from version ${post.base} (409): sending the full state`);
        this.#fullAsked = true;
        return;
      }
      this.#retryAt = this.#now() + this.#backoff.next(askedWait(error));
      this.#health.failed(error);
    } finally {
      this.#inFlight = undefined;
      this.#setPendingMetric();
    }
  }

  /** The base of a delta, or undefined when this POST must be a full PodList. */
  #deltaBase(): Acknowledged | undefined {
    if (this.#fullIntervalMs === 0 || !this.#deltasAccepted || this.#fullAsked) return undefined;
    if (this.#now() - this.#lastFullAt >= this.#fullIntervalMs) return undefined;
    return this.#acknowledged;
  }

  async #post(post: OutgoingPost, signal: AbortSignal): Promise<HttpResponse> {
    const response = await this.#client.request({
      method: 'POST',
      url: this.#url,
      headers: {
        'Content-Type': 'application/json',
        [NODE_HEADER]: this.#options.input.nodeName,
        [CONTENT_HASH_HEADER]: post.hash,
        ...(post.kind === 'delta' ? { [BASE_VERSION_HEADER]: post.base } : this.#fullIntervalMs > 0 ? { [DELTAS_HEADER]: 'offered' } : {}),
      },
      body: post.body,
      signal,
    });
    if (response.status < 200 || response.status > 299) {
      const detail = response.body.trim().slice(0, 200);
      throw new PublishError('http', `POST ${this.#url.origin}${this.#url.pathname}: HTTP ${response.status}${detail ? `: ${detail}` : ''}`, { status: response.status, retryAfterMs: retryAfterOf(response, Date.now()) });
    }
    return response;
  }

  #setPendingMetric(): void {
    this.#options.metrics?.publishPending.set({ mode: 'webhook' }, this.pending);
  }
}

/** One POST: a full PodList, or a delta from the acknowledged `base` version. */
type OutgoingPost = { kind: 'full'; body: string; hash: string } | { kind: 'delta'; body: string; hash: string; base: string };

/** A header's value, lower-cased and trimmed (the first, when repeated). */
function headerValue(value: string | string[] | undefined): string | undefined {
  const one = Array.isArray(value) ? value[0] : value;
  return one?.trim().toLowerCase();
}

async function readToken(path: string): Promise<string> {
  const token = (await readFile(path, 'utf8')).trim();
  if (!token) throw new Error(`${path} is empty`);
  return token;
}

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || hostname.startsWith('127.');
}
