// A webhook test receiver: an HTTP server on 127.0.0.1 that records each POST, checks its bearer
// token and recomputes its content hash by the documented rule (sha256 of the items' JSON with
// keys sorted and metadata.resourceVersion removed), written here again on purpose so that the
// publisher's hash is checked against the rule and not against itself. It can answer with an
// error, hold requests without answering, and stop and start again on the same port. With
// `deltas` set it opts in to deltas (issue 12) and keeps the state they are applied to, refusing
// with 409 a delta whose base it does not hold or whose hash differs from what it computed.
import { createHash } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { closeNow, listenOnLoopback } from './loopback-server.js';

export interface ReceivedPost {
  authorization: string | undefined;
  contentType: string | undefined;
  node: string | undefined;
  hashHeader: string | undefined;
  /** The hash this receiver computes from the body (for a delta: of its state after applying it). */
  hash: string;
  /** X-Podvisor-Deltas and X-Podvisor-Base-Version as sent. */
  deltasHeader: string | undefined;
  baseHeader: string | undefined;
  /** The request's size: its body's bytes. */
  bytes: number;
  /** For a delta: 204 (applied) or 409 (refused). */
  answer: number;
  /** For a delta: the keys of items it carried that were the same as the state already held. */
  unchanged: string[];
  body: {
    apiVersion: string;
    kind: string;
    metadata: { resourceVersion: string; baseResourceVersion?: string };
    items: ReceivedItem[];
    removed?: string[];
  };
}

export type ReceivedItem = { metadata: { name: string; namespace?: string; resourceVersion?: string; annotations?: Record<string, string> }; status: { phase: string; conditions?: { type: string; status: string; reason?: string }[] } };

function sorted(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sorted);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) out[key] = sorted((value as Record<string, unknown>)[key]);
    return out;
  }
  return value;
}

export function receiverHash(items: ReceivedPost['body']['items']): string {
  const bare = items.map((item) => {
    const metadata: Record<string, unknown> = { ...item.metadata };
    delete metadata['resourceVersion'];
    return { ...item, metadata };
  });
  return `sha256=${createHash('sha256').update(JSON.stringify(sorted(bare))).digest('hex')}`;
}

export class WebhookTestReceiver {
  readonly posts: ReceivedPost[] = [];
  /** What to do with a POST: answer 204, answer 503, or hold it unanswered. */
  behaviour: 'accept' | 'fail' | 'hold' = 'accept';
  /** Sent as Retry-After with each 503 while failing, when set. */
  retryAfter: string | undefined;
  /** When each POST answered 503 came (Date.now()). */
  readonly refusedAt: number[] = [];
  /** Held requests whose connection the client closed. */
  abandoned = 0;
  readonly held: http.ServerResponse[] = [];
  /** Opt in to deltas (answer full PodLists with X-Podvisor-Deltas: accept). */
  deltas = false;
  /** Answer the next accepted delta with X-Podvisor-Deltas: full. */
  askFullOnce = false;
  /** The state deltas apply to: the last full PodList's version and items, as changed by deltas since. */
  version: string | undefined;
  readonly state = new Map<string, ReceivedItem>();
  readonly #tls: { key: string; cert: string } | undefined;
  #server: http.Server | undefined;
  #port = 0;

  /** With `tls`, an HTTPS receiver. */
  constructor(tls?: { key: string; cert: string }) {
    this.#tls = tls;
  }

  get port(): number {
    return this.#port;
  }

  get url(): string {
    return `${this.#tls ? 'https' : 'http'}://127.0.0.1:${this.#port}/hook`;
  }

  /** Starts listening (again on the same port after a stop). */
  async start(): Promise<void> {
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        if (this.behaviour === 'hold') {
          this.held.push(res);
          res.on('close', () => {
            if (!res.writableEnded) this.abandoned++;
          });
          return;
        }
        if (this.behaviour === 'fail') {
          this.refusedAt.push(Date.now());
          res.writeHead(503, this.retryAfter === undefined ? {} : { 'Retry-After': this.retryAfter }).end('test receiver: unavailable');
          return;
        }
        const raw = Buffer.concat(chunks);
        const body = JSON.parse(raw.toString('utf8')) as ReceivedPost['body'];
        const hashHeader = req.headers['x-podvisor-content-hash'] as string | undefined;
        const { answer, hash, unchanged } = this.#take(body, hashHeader);
        this.posts.push({
          authorization: req.headers['authorization'],
          contentType: req.headers['content-type'],
          node: req.headers['x-podvisor-node'] as string | undefined,
          hashHeader,
          hash,
          deltasHeader: req.headers['x-podvisor-deltas'] as string | undefined,
          baseHeader: req.headers['x-podvisor-base-version'] as string | undefined,
          bytes: raw.length,
          answer,
          unchanged,
          body,
        });
        const headers: Record<string, string> = {};
        if (body.kind === 'PodList' && this.deltas) headers['X-Podvisor-Deltas'] = 'accept';
        if (body.kind === 'PodListDelta' && answer === 204 && this.askFullOnce) {
          this.askFullOnce = false;
          headers['X-Podvisor-Deltas'] = 'full';
        }
        res.writeHead(answer, headers).end(answer === 409 ? 'test receiver: no such base' : undefined);
      });
    };
    const server: http.Server = this.#tls ? https.createServer(this.#tls, handler) : http.createServer(handler);
    this.#port = await listenOnLoopback(server, this.#port);
    this.#server = server;
  }

  /** Applies a full PodList or a delta to the state; a delta on another base, or whose hash differs, is refused. */
  #take(body: ReceivedPost['body'], hashHeader: string | undefined): { answer: number; hash: string; unchanged: string[] } {
    const key = (item: ReceivedItem) => `${item.metadata.namespace ?? 'default'}/${item.metadata.name}`;
    if (body.kind === 'PodList') {
      this.state.clear();
      for (const item of body.items) this.state.set(key(item), item);
      this.version = body.metadata.resourceVersion;
      return { answer: 204, hash: receiverHash(body.items), unchanged: [] };
    }
    if (body.metadata.baseResourceVersion !== this.version) return { answer: 409, hash: '', unchanged: [] };
    const unchanged = body.items.filter((item) => {
      const held = this.state.get(key(item));
      return held !== undefined && receiverHash([held]) === receiverHash([item]);
    }).map(key);
    const next = new Map(this.state);
    for (const removed of body.removed ?? []) next.delete(removed);
    for (const item of body.items) next.set(key(item), item);
    const items = [...next.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, item]) => item);
    const hash = receiverHash(items);
    if (hash !== hashHeader) return { answer: 409, hash, unchanged };
    this.state.clear();
    for (const [name, item] of next) this.state.set(name, item);
    this.version = body.metadata.resourceVersion;
    return { answer: 204, hash, unchanged };
  }

  /** Stops listening and drops every connection, as a receiver that went away. */
  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    await closeNow(server);
  }

  /** The last POST's pod phases by name. */
  lastPhases(): Record<string, string> {
    const last = this.posts.at(-1);
    return Object.fromEntries((last?.body.items ?? []).map((item) => [item.metadata.name, item.status.phase]));
  }
}
