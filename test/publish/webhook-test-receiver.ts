// A webhook test receiver: an HTTP server on 127.0.0.1 that records each POST, checks its bearer
// token and recomputes its content hash by the documented rule (sha256 of the items' JSON with
// keys sorted and metadata.resourceVersion removed), written here again on purpose so that the
// publisher's hash is checked against the rule and not against itself. It can answer with an
// error, hold requests without answering, and stop and start again on the same port.
import { createHash } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { closeNow, listenOnLoopback } from './loopback-server.js';

export interface ReceivedPost {
  authorization: string | undefined;
  contentType: string | undefined;
  node: string | undefined;
  hashHeader: string | undefined;
  /** The hash this receiver computes from the body. */
  hash: string;
  body: { apiVersion: string; kind: string; metadata: { resourceVersion: string }; items: { metadata: { name: string; resourceVersion?: string }; status: { phase: string } }[] };
}

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
  /** Held requests whose connection the client closed. */
  abandoned = 0;
  readonly held: http.ServerResponse[] = [];
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
          res.writeHead(503).end('test receiver: unavailable');
          return;
        }
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as ReceivedPost['body'];
        this.posts.push({
          authorization: req.headers['authorization'],
          contentType: req.headers['content-type'],
          node: req.headers['x-podvisor-node'] as string | undefined,
          hashHeader: req.headers['x-podvisor-content-hash'] as string | undefined,
          hash: receiverHash(body.items),
          body,
        });
        res.writeHead(204).end();
      });
    };
    const server: http.Server = this.#tls ? https.createServer(this.#tls, handler) : http.createServer(handler);
    this.#port = await listenOnLoopback(server, this.#port);
    this.#server = server;
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
