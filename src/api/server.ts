// The local read-only API: the kubelet's read-only port (`/pods`, `/healthz`, `/metrics`) and
// enough of the Kubernetes API (discovery; list, get and watch of pods, events and nodes, with
// selectors and Tables) that a real kubectl pointed at it works. Nothing here changes anything:
// every write is a 405 Status, and request bodies are never read. Requests and connections are
// bounded in size, time and number.
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer as createHttpServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { PodvisorError, errorMessage } from '../errors.js';
import { healthText, type HealthChecks } from '../health/health.js';
import type { Logger } from '../log/logger.js';
import type { AgentMetrics } from '../metrics/metrics.js';
import { KIND_OF, type MirrorStore, type ResourceName, type StoredObject } from '../mirror/mirror-store.js';
import type { V1Node } from '../mirror/node-object.js';
import { badRequest, failure, notAcceptable, notFound, readOnly, unauthorized, unknownPath, type V1Status } from './api-status.js';
import { API_GROUPS, API_RESOURCES, apiVersions, versionInfo } from './discovery.js';
import { rolloutReport } from './rollout-report.js';
import { parseFieldSelector, parseLabelSelector, SelectorError, type Matcher } from './selectors.js';
import { LoopBudget, type LoopBudgetOptions } from './loop-budget.js';
import { toTable, type IncludeObject } from './tables.js';
import { serveWatch } from './watch.js';

export interface ApiServerOptions {
  host: string;
  port: number;
  store: MirrorStore;
  health: HealthChecks;
  metrics: AgentMetrics;
  logger: Logger;
  nodeName: string;
  podvisorVersion: string;
  /** A file holding the bearer token every request (but the health checks) must carry. */
  tokenFile?: string | undefined;
  /** PEM files: serve HTTPS. */
  tls?: { certFile: string; keyFile: string } | undefined;
  /** Upper bound of a watch's life when the client sets none (the API server's is 30-60 min). */
  maxWatchSeconds?: number;
  /** The bounds below, other than their defaults (tests use short ones). */
  limits?: Partial<ApiLimits>;
  /** The API's share of the event loop, other than its default (a quarter, in 5 ms slices). */
  loopBudget?: Omit<LoopBudgetOptions, 'maxWaiting'>;
}

/** What bounds the API's connections and requests; DEFAULT_LIMITS are what the agent runs with. */
export interface ApiLimits {
  /** Connections at once; node:http closes any beyond without an answer. */
  maxConnections: number;
  /** Watches at once; one more is a 429 Status (so plain requests keep some of the connections). */
  maxWatches: number;
  /** The request line and headers together; more is a 431. */
  maxHeaderBytes: number;
  /** Time to send the headers, and the whole request; then a 408 and the connection closed. */
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  /** An idle kept-alive connection is closed after this long. */
  keepAliveTimeoutMs: number;
  /** How often node:http looks for connections over their time (its default is 30 s, which would let a slow client keep one 40 s). */
  checkIntervalMs: number;
}

/**
 * A device's API is for a few clients: 128 connections, of which 100 may be watches; kubectl's
 * headers are ~1 KiB, 16 KiB are allowed; 10 s to send them and 30 s for a request; an idle
 * connection kept 5 s; timeouts looked for every 2 s.
 */
export const DEFAULT_LIMITS: ApiLimits = {
  maxConnections: 128,
  maxWatches: 100,
  maxHeaderBytes: 16 * 1024,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  checkIntervalMs: 2_000,
};
/** The methods served, on every path: the reads, and OPTIONS to ask which they are. */
export const ALLOWED_METHODS = 'GET, HEAD, OPTIONS';

/** The parts of a /api/v1 path: which resource, in which namespace, which one, which subresource. */
interface ResourcePath {
  resource: ResourceName;
  namespace?: string;
  name?: string;
  subresource?: string;
}

const NAMESPACED = new Set<ResourceName>(['pods', 'events']);
/** Served without the token, and without waiting for the API's share of the loop. */
const HEALTH_PATHS = new Set(['/healthz', '/livez', '/readyz']);

/** Distinct list answers kept at once, and their bytes (a client can make every query distinct: the cache stays bounded). */
const MAX_CACHED_ANSWERS = 64;
const MAX_CACHED_BYTES = 4 * 1024 * 1024;
/** How long a Table answer is reused at most: its AGE column is computed when it is made. */
const TABLE_ANSWER_MS = 1000;

/** A list answer, serialised once and sent to every request for it until the store changes. */
interface CachedAnswer {
  version: number;
  madeAt: number;
  expires: boolean;
  body: Buffer;
}

/** Reads `/api/v1/...` into its parts; undefined for any other path. */
export function parseResourcePath(path: string): ResourcePath | undefined {
  const parts = path.split('/').filter((part) => part !== '');
  if (parts[0] !== 'api' || parts[1] !== 'v1') return undefined;
  let rest = parts.slice(2);
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    namespace = decodeURIComponent(rest[1]!);
    rest = rest.slice(2);
  }
  const resource = rest[0] as ResourceName | undefined;
  if (resource !== 'pods' && resource !== 'events' && resource !== 'nodes') return undefined;
  if (namespace !== undefined && !NAMESPACED.has(resource)) return undefined;
  if (rest.length > 3) return undefined;
  const out: ResourcePath = { resource };
  if (namespace !== undefined) out.namespace = namespace;
  if (rest[1] !== undefined) out.name = decodeURIComponent(rest[1]);
  if (rest[2] !== undefined) out.subresource = rest[2];
  return out;
}

/** Whether the client asks for a meta.k8s.io Table (kubectl get does), and whether it takes JSON at all. */
export function negotiate(accept: string | undefined): { table: boolean; acceptable: boolean } {
  if (!accept) return { table: false, acceptable: true };
  const types = accept.split(',').map((entry) => entry.trim().toLowerCase());
  let acceptable = false;
  for (const entry of types) {
    const [media, ...params] = entry.split(';').map((part) => part.trim());
    const isJson = media === 'application/json' || media === '*/*' || media === 'application/*';
    if (!isJson) continue;
    const parameters = new Map(params.map((param) => param.split('=', 2) as [string, string]));
    if (parameters.get('as') === 'table' && parameters.get('g') === 'meta.k8s.io') return { table: true, acceptable: true };
    if (!parameters.has('as')) acceptable = true;
  }
  return { table: false, acceptable };
}

export class ApiServer {
  readonly #options: ApiServerOptions;
  #server: Server | undefined;
  #token: Buffer | undefined;
  readonly #watches = new Set<() => void>();
  /**
   * Lists serialised once per change of the store, not once per request: the event loop that
   * serves them also acts on container exits, and a hundred clients polling `/api/v1/pods`
   * would otherwise hold it for a second at a time.
   */
  readonly #answers = new Map<string, CachedAnswer>();
  #answerBytes = 0;
  readonly #budget: LoopBudget;

  readonly #limits: ApiLimits;

  constructor(options: ApiServerOptions) {
    this.#options = options;
    this.#limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.#budget = new LoopBudget({ ...options.loopBudget, maxWaiting: this.#limits.maxConnections * 4 });
  }

  /** Listens; resolves with the bound address. Bad TLS or token files are a PodvisorError naming the flag. */
  async start(): Promise<{ host: string; port: number }> {
    const { tokenFile, tls } = this.#options;
    if (tokenFile) {
      const token = (await readOption(tokenFile, '--api-token-file')).trim();
      if (token === '') throw new PodvisorError('E_CONFIG', `--api-token-file ${tokenFile}: the file is empty`);
      this.#token = createHash('sha256').update(token).digest();
    }
    const handler = (request: IncomingMessage, response: ServerResponse) => this.#handle(request, response);
    const limits = this.#limits;
    const serverOptions = {
      maxHeaderSize: limits.maxHeaderBytes,
      requestTimeout: limits.requestTimeoutMs,
      headersTimeout: limits.headersTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      connectionsCheckingInterval: limits.checkIntervalMs,
    };
    if (tls) {
      const [cert, key] = await Promise.all([readOption(tls.certFile, '--api-tls-cert'), readOption(tls.keyFile, '--api-tls-key')]);
      try {
        this.#server = createHttpsServer({ ...serverOptions, cert, key }, handler);
      } catch (error) {
        throw new PodvisorError('E_CONFIG', `--api-tls-cert ${tls.certFile} / --api-tls-key ${tls.keyFile}: ${errorMessage(error)}`, { cause: error });
      }
    } else {
      this.#server = createHttpServer(serverOptions, handler);
    }
    const server = this.#server;
    server.maxConnections = limits.maxConnections;
    // CONNECT is not handed to the request handler, and a method node:http does not know is a parse
    // error: without these, both would lose their connection without an answer.
    server.on('connect', (request: IncomingMessage, socket: Duplex) => this.#refuseConnect(request, socket));
    server.on('clientError', (error: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Duplex) => this.#clientError(error, socket));
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error) => reject(new PodvisorError('E_CONFIG', `--api-address ${this.#options.host}:${this.#options.port}: ${errorMessage(error)}`, { cause: error }));
      server.once('error', onError);
      server.listen(this.#options.port, this.#options.host, () => {
        server.off('error', onError);
        resolve();
      });
    });
    server.on('error', (error) => this.#options.logger.error(`API server: ${errorMessage(error)}`));
    const address = server.address() as AddressInfo;
    return { host: address.address, port: address.port };
  }

  /** Ends the watches and closes every connection. */
  async stop(): Promise<void> {
    this.#budget.clear();
    for (const end of this.#watches) end();
    const server = this.#server;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  #handle(request: IncomingMessage, response: ServerResponse): void {
    const url = new URL(request.url ?? '/', 'http://localhost');
    // The health checks are answered at once: they are cheap, and what watches the agent must not
    // be kept waiting by other clients' load.
    if (HEALTH_PATHS.has(url.pathname)) {
      this.#serve(request, response, url);
      return;
    }
    const accepted = this.#budget.run(() => {
      if (response.destroyed || request.socket.destroyed) return;
      this.#serve(request, response, url);
    });
    if (!accepted) {
      response.setHeader('Retry-After', '1');
      this.#send(response, 429, failure(429, 'TooManyRequests', 'too many requests, please try again later', { retryAfterSeconds: 1 }));
    }
  }

  #serve(request: IncomingMessage, response: ServerResponse, url: URL): void {
    const path = url.pathname;
    const method = request.method ?? 'GET';
    // A body is never read: the connection is not reused after a request that came with one.
    if (request.headers['content-length'] && request.headers['content-length'] !== '0') response.shouldKeepAlive = false;
    if (request.headers['transfer-encoding']) response.shouldKeepAlive = false;
    const refusal = this.#refusal(request, method, path);
    if (refusal) {
      if (refusal.code === 405) {
        response.setHeader('Allow', ALLOWED_METHODS);
        response.shouldKeepAlive = false;
      }
      this.#send(response, refusal.code, refusal.status);
      return;
    }
    if (method === 'OPTIONS') {
      // The same methods on every path; no CORS: a browser's preflight gets no Access-Control-* answer.
      response.writeHead(204, { Allow: ALLOWED_METHODS, 'Cache-Control': 'no-cache, private' });
      response.end();
      return;
    }
    try {
      this.#route(path, url.searchParams, request, response);
    } catch (error) {
      if (error instanceof SelectorError) this.#send(response, 400, badRequest(error.message));
      else {
        this.#options.logger.error(`API request failed: ${errorMessage(error)}`, { path });
        this.#send(response, 500, failure(500, 'InternalError', `an error on the server ("${errorMessage(error)}") has prevented the request from succeeding`));
      }
    }
  }

  /** Why a request is not served (401 before 405, as the API server authenticates first), or undefined. */
  #refusal(request: IncomingMessage, method: string, path: string): { code: 401 | 405; status: V1Status } | undefined {
    const open = HEALTH_PATHS.has(path);
    if (!open && this.#token && !this.#authorized(request)) return { code: 401, status: unauthorized() };
    if (method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS') return { code: 405, status: readOnly(method, path, this.#options.nodeName) };
    return undefined;
  }

  /** CONNECT: refused like any other write (401 without the token), and the connection closed. */
  #refuseConnect(request: IncomingMessage, socket: Duplex): void {
    const target = request.url ?? '';
    const path = target.startsWith('/') ? new URL(target, 'http://localhost').pathname : target;
    const refusal = this.#refusal(request, 'CONNECT', path) ?? { code: 405 as const, status: readOnly('CONNECT', path, this.#options.nodeName) };
    writeRaw(socket, refusal.code, refusal.status);
  }

  /**
   * A request node:http could not parse. A method it does not know is a 405 as any other write;
   * the rest is answered as node:http does by default (431, 413, 408, 400), and the connection closed.
   */
  #clientError(error: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Duplex): void {
    if (error.code === 'ECONNRESET' || !socket.writable || (socket as Socket).bytesWritten > 0) {
      socket.destroy();
      return;
    }
    if (error.code === 'HPE_INVALID_METHOD') {
      const [method = '?', target = ''] = (error.rawPacket?.subarray(0, 256).toString('latin1').split('\r\n', 1)[0] ?? '').split(' ');
      writeRaw(socket, 405, readOnly(method, target, this.#options.nodeName));
      return;
    }
    const code = error.code === 'HPE_HEADER_OVERFLOW' ? 431 : error.code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW' ? 413 : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    socket.end(`HTTP/1.1 ${code} ${STATUS_CODES[code]}\r\nConnection: close\r\n\r\n`, () => socket.destroy());
  }

  #authorized(request: IncomingMessage): boolean {
    const header = request.headers.authorization ?? '';
    const match = /^Bearer\s+(.+)$/i.exec(header);
    if (!match || !this.#token) return false;
    // Hashes of equal length, compared in constant time: neither the token nor its length leaks.
    return timingSafeEqual(createHash('sha256').update(match[1]!.trim()).digest(), this.#token);
  }

  #route(path: string, query: URLSearchParams, request: IncomingMessage, response: ServerResponse): void {
    const { store, health, metrics, podvisorVersion } = this.#options;
    switch (path) {
      case '/healthz':
      case '/livez':
      case '/readyz': {
        const report = health.report();
        this.#sendText(response, report.healthy ? 200 : 503, healthText(report, query.has('verbose')));
        return;
      }
      case '/metrics':
        void metrics.text().then(
          (text) => this.#sendText(response, 200, text, metrics.contentType),
          (error: unknown) => this.#send(response, 500, failure(500, 'InternalError', errorMessage(error))),
        );
        return;
      case '/pods':
        this.#sendBody(response, 200, this.#answer('/pods', false, () => ({ kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: String(store.version) }, items: store.list('pods') })));
        return;
      case '/rollout':
        // The outcome of each pod's last change, and whether the node has settled (a fleet tool's gate).
        this.#sendBody(response, 200, this.#answer('/rollout', false, () => rolloutReport(store.list('pods') as Parameters<typeof rolloutReport>[0], this.#options.nodeName, String(store.version), store.get('nodes', undefined, this.#options.nodeName) as Parameters<typeof rolloutReport>[3])));
        return;
      case '/version':
        // no-store: kubectl's dispatcher (gcloud's) would otherwise keep it for two hours.
        this.#send(response, 200, versionInfo(podvisorVersion), 'no-store');
        return;
      case '/api':
        this.#send(response, 200, apiVersions(request.headers.host ?? `${this.#options.host}:${this.#options.port}`));
        return;
      case '/api/v1':
        this.#send(response, 200, API_RESOURCES);
        return;
      case '/apis':
        this.#send(response, 200, API_GROUPS);
        return;
    }
    const lease = /^\/apis\/coordination\.k8s\.io\/v1\/namespaces\/kube-node-lease\/leases\/([^/]+)$/.exec(path);
    if (lease) {
      this.#sendLease(response, decodeURIComponent(lease[1]!));
      return;
    }
    let target: ResourcePath | undefined;
    try {
      target = parseResourcePath(path);
    } catch (error) {
      if (!(error instanceof URIError)) throw error;
      this.#send(response, 400, badRequest(`malformed path: ${path}`));
      return;
    }
    if (!target) {
      this.#send(response, 404, unknownPath());
      return;
    }
    const { table, acceptable } = negotiate(request.headers.accept);
    if (!acceptable) {
      this.#send(response, 406, notAcceptable(request.headers.accept ?? ''));
      return;
    }
    const includeObject = (query.get('includeObject') ?? 'Metadata') as IncludeObject;
    if (!['None', 'Metadata', 'Object'].includes(includeObject)) {
      this.#send(response, 400, badRequest(`includeObject must be None, Metadata or Object, not "${includeObject}"`));
      return;
    }
    if (target.name !== undefined) {
      if (target.subresource !== undefined && target.subresource !== 'status') {
        this.#send(response, 404, unknownPath());
        return;
      }
      const object = store.get(target.resource, target.namespace, target.name);
      if (!object) {
        this.#send(response, 404, notFound(target.resource, target.name));
        return;
      }
      this.#send(response, 200, table ? toTable(target.resource, [object], { resourceVersion: String(store.version), includeObject }) : object);
      return;
    }
    const matches = this.#matcher(target, query);
    const watching = query.get('watch') === 'true' || query.get('watch') === '1';
    if (watching && request.method === 'HEAD') {
      // What a watch would answer with, and no watch: a HEAD has no body to stream.
      response.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private' });
      response.end();
      return;
    }
    if (watching && this.#watches.size >= this.#limits.maxWatches) {
      // As the API server's max-in-flight limit answers: the client retries after a second.
      response.setHeader('Retry-After', '1');
      this.#send(response, 429, failure(429, 'TooManyRequests', `too many watches (${this.#limits.maxWatches}), please try again later`, { retryAfterSeconds: 1 }));
      return;
    }
    if (watching) {
      serveWatch({
        request,
        response,
        store,
        resource: target.resource,
        matches,
        resourceVersion: query.get('resourceVersion') ?? '',
        timeoutSeconds: Math.min(Number(query.get('timeoutSeconds') ?? '') || Infinity, this.#options.maxWatchSeconds ?? 1800 + Math.floor(Math.random() * 1800)),
        bookmarks: query.get('allowWatchBookmarks') === 'true',
        table: table ? { includeObject } : undefined,
        register: (end) => this.#watches.add(end),
        onEnd: (end) => this.#watches.delete(end),
      });
      return;
    }
    // The key holds everything the answer depends on besides the store: the path (resource and
    // namespace), the selectors as given, and the representation.
    const key = [path, table ? `table:${includeObject}` : 'list', query.get('labelSelector') ?? '', query.get('fieldSelector') ?? ''].join('\n');
    const body = this.#answer(key, table, () => {
      const items = store.list(target.resource).filter(matches);
      const resourceVersion = String(store.version);
      if (table) return toTable(target.resource, items, { resourceVersion, includeObject });
      return { kind: `${KIND_OF[target.resource]}List`, apiVersion: 'v1', metadata: { resourceVersion }, items };
    });
    this.#sendBody(response, 200, body);
  }

  /** The serialised answer for `key`: the cached one while the store has not changed (and a Table's ages are fresh), else made now. */
  #answer(key: string, expires: boolean, make: () => unknown): Buffer {
    const version = this.#options.store.version;
    const now = Date.now();
    const cached = this.#answers.get(key);
    if (cached && cached.version === version && (!cached.expires || now - cached.madeAt < TABLE_ANSWER_MS)) return cached.body;
    const body = Buffer.from(JSON.stringify(make()));
    if (cached) this.#forget(key, cached);
    if (body.length > MAX_CACHED_BYTES / 4) return body;
    if (this.#answers.size >= MAX_CACHED_ANSWERS || this.#answerBytes + body.length > MAX_CACHED_BYTES) {
      // Answers of older versions first, then the oldest made: the map keeps insertion order.
      for (const [other, answer] of this.#answers) if (answer.version !== version) this.#forget(other, answer);
      for (const [other, answer] of this.#answers) {
        if (this.#answers.size < MAX_CACHED_ANSWERS && this.#answerBytes + body.length <= MAX_CACHED_BYTES) break;
        this.#forget(other, answer);
      }
    }
    this.#answers.set(key, { version, madeAt: now, expires, body });
    this.#answerBytes += body.length;
    return body;
  }

  #forget(key: string, answer: CachedAnswer): void {
    this.#answers.delete(key);
    this.#answerBytes -= answer.body.length;
  }

  /**
   * The node's Lease, which `kubectl describe node` shows as the node's heartbeat: podvisor holds
   * it for as long as it runs. Read-only like the rest; not listed in discovery.
   */
  #sendLease(response: ServerResponse, name: string): void {
    const node = this.#options.store.get('nodes', undefined, name) as V1Node | undefined;
    if (!node) {
      this.#send(response, 404, failure(404, 'NotFound', `leases.coordination.k8s.io "${name}" not found`, { name, group: 'coordination.k8s.io', kind: 'leases' }));
      return;
    }
    const renewTime = node.status.conditions.find((condition) => condition.type === 'Ready')?.lastHeartbeatTime ?? node.metadata.creationTimestamp;
    this.#send(response, 200, {
      kind: 'Lease',
      apiVersion: 'coordination.k8s.io/v1',
      metadata: { name, namespace: 'kube-node-lease', uid: node.metadata.uid, creationTimestamp: node.metadata.creationTimestamp, ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name, uid: node.metadata.uid }] },
      spec: { holderIdentity: name, leaseDurationSeconds: 40, renewTime: renewTime.replace(/Z$/, '.000000Z') },
    });
  }

  /** The namespace, label and field selectors of a list or watch, as one predicate. */
  #matcher(target: ResourcePath, query: URLSearchParams): Matcher {
    const labels = parseLabelSelector(query.get('labelSelector') ?? '');
    const fields = parseFieldSelector(query.get('fieldSelector') ?? '', target.resource);
    return (object) => {
      const stored = object as StoredObject;
      if (target.namespace !== undefined && stored.metadata.namespace !== target.namespace) return false;
      return labels(object) && fields(object);
    };
  }

  #send(response: ServerResponse, code: number, body: unknown, cacheControl = 'no-cache, private'): void {
    const text = JSON.stringify(body);
    response.writeHead(code, { 'Content-Type': 'application/json', 'Cache-Control': cacheControl, 'Content-Length': Buffer.byteLength(text) });
    response.end(text);
  }

  #sendBody(response: ServerResponse, code: number, body: Buffer): void {
    response.writeHead(code, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private', 'Content-Length': body.length });
    response.end(body);
  }

  #sendText(response: ServerResponse, code: number, text: string, contentType = 'text/plain; charset=utf-8'): void {
    response.writeHead(code, { 'Content-Type': contentType, 'Cache-Control': 'no-cache, private', 'Content-Length': Buffer.byteLength(text) });
    response.end(text);
  }
}

/** A whole answer written on a socket node:http no longer serves (CONNECT, a parse error); then the socket is closed. */
function writeRaw(socket: Duplex, code: 401 | 405, status: V1Status): void {
  const text = JSON.stringify(status);
  const allow = code === 405 ? `Allow: ${ALLOWED_METHODS}\r\n` : '';
  socket.end(`HTTP/1.1 ${code} ${STATUS_CODES[code]}\r\n${allow}Content-Type: application/json\r\nCache-Control: no-cache, private\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`, () => socket.destroy());
}

/** Reads a file named by a flag; a failure names the flag and the file. */
async function readOption(path: string, flag: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw new PodvisorError('E_CONFIG', `${flag} ${path}: ${errorMessage(error)}`, { cause: error });
  }
}

export type { V1Status };
