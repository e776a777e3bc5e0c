// A Kubernetes API test receiver: an HTTP(S) server on 127.0.0.1 that answers the calls the
// Kubernetes publisher makes as the API server does. Pods and nodes are kept in memory with
// server-assigned uids and resourceVersions; errors are v1 Status bodies with the API's codes
// and reasons (404 NotFound, 409 AlreadyExists, 409 Conflict for a uid precondition, 401, 415);
// a pod's status is dropped on create and changed only through the status subresource, and a
// deletion honours its uid precondition. Every request is recorded. Tests play "someone else"
// through the methods that change the objects directly.
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';

export interface Obj {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid: string;
    resourceVersion: string;
    creationTimestamp: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean }[];
    deletionTimestamp?: string;
    finalizers?: string[];
  };
  spec: Record<string, unknown> & { nodeName?: string; taints?: unknown[] };
  status: Record<string, unknown>;
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: string;
  contentType: string | undefined;
  authorization: string | undefined;
  body: unknown;
  /** The answer's status code. */
  code: number;
}

export interface KubeTestReceiverOptions {
  /** Requests must carry `Authorization: Bearer <token>`. */
  token?: string;
  /** Serve HTTPS with this key and certificate; `clientCa` asks for and checks a client certificate. */
  tls?: { key: string; cert: string; clientCa?: string };
}

function status(code: number, reason: string, message: string, details?: { name: string; kind: string }): Record<string, unknown> {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code };
}

function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
  const base: Record<string, unknown> = typeof target === 'object' && target !== null && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete base[key];
    else base[key] = applyMergePatch(base[key], value);
  }
  return base;
}

export class KubeTestReceiver {
  readonly pods = new Map<string, Obj>();
  readonly nodes = new Map<string, Obj>();
  readonly requests: RecordedRequest[] = [];
  /** Runs before a pod create is answered: a test's way to be another writer racing podvisor. */
  beforeCreate: ((pod: Obj) => void) | undefined;
  readonly #options: KubeTestReceiverOptions;
  #server: http.Server | undefined;
  #port = 0;
  #version = 100;

  constructor(options: KubeTestReceiverOptions = {}) {
    this.#options = options;
  }

  get url(): string {
    return `${this.#options.tls ? 'https' : 'http'}://127.0.0.1:${this.#port}`;
  }

  /** Starts listening (on the same port again after a stop). */
  async start(): Promise<void> {
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => this.#handle(req, res);
    const tls = this.#options.tls;
    const server: http.Server = tls
      ? https.createServer({ key: tls.key, cert: tls.cert, ...(tls.clientCa ? { ca: tls.clientCa, requestCert: true, rejectUnauthorized: true } : {}) }, handler)
      : http.createServer(handler);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#port, '127.0.0.1', () => resolve());
    });
    this.#port = (server.address() as AddressInfo).port;
    this.#server = server;
  }

  /** Stops listening and drops every connection: the API server is down. */
  async stop(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
  }

  // --- someone else's writes ---

  /** Stores a pod as if another client created it; returns it. */
  putPod(pod: Omit<Obj, 'metadata'> & { metadata: Partial<Obj['metadata']> & { name: string; namespace: string } }): Obj {
    const stored = this.#stamp(pod as Obj, true);
    this.pods.set(`${stored.metadata.namespace}/${stored.metadata.name}`, stored);
    return stored;
  }

  putNode(name: string): Obj {
    const stored = this.#stamp({ apiVersion: 'v1', kind: 'Node', metadata: { name } as Obj['metadata'], spec: {}, status: {} }, true);
    this.nodes.set(name, stored);
    return stored;
  }

  /** The pod by `namespace/name`. */
  pod(key: string): Obj | undefined {
    return this.pods.get(key);
  }

  /** Requests matching a method and a path pattern. */
  calls(method: string, path: RegExp | string): RecordedRequest[] {
    return this.requests.filter((request) => request.method === method && (typeof path === 'string' ? request.path === path : path.test(request.path)));
  }

  #stamp(object: Obj, fresh: boolean): Obj {
    const metadata = { ...object.metadata };
    if (fresh || !metadata.uid) metadata.uid = randomUUID();
    metadata.resourceVersion = String(++this.#version);
    metadata.creationTimestamp ??= new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    return { ...object, metadata, spec: object.spec ?? {}, status: object.status ?? {} };
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://test');
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        body = text;
      }
      const record: RecordedRequest = {
        method: req.method ?? 'GET',
        path: url.pathname,
        query: url.search,
        contentType: req.headers['content-type'],
        authorization: req.headers['authorization'],
        body,
        code: 0,
      };
      this.requests.push(record);
      const [code, answer] = this.#answer(record, url);
      record.code = code;
      res.writeHead(code, { 'Content-Type': 'application/json' }).end(JSON.stringify(answer));
    });
  }

  #answer(request: RecordedRequest, url: URL): [number, unknown] {
    if (this.#options.token !== undefined && request.authorization !== `Bearer ${this.#options.token}`) {
      return [401, status(401, 'Unauthorized', 'Unauthorized')];
    }
    const { method, path, body } = request;
    let match: RegExpExecArray | null;
    if (method === 'GET' && (match = /^\/api\/v1\/nodes\/([^/]+)$/.exec(path))) {
      const node = this.nodes.get(decodeURIComponent(match[1] ?? ''));
      return node ? [200, node] : [404, status(404, 'NotFound', `nodes "${match[1]}" not found`, { name: match[1] ?? '', kind: 'nodes' })];
    }
    if (method === 'POST' && path === '/api/v1/nodes') {
      const node = body as Obj;
      if (this.nodes.has(node.metadata.name)) return [409, status(409, 'AlreadyExists', `nodes "${node.metadata.name}" already exists`, { name: node.metadata.name, kind: 'nodes' })];
      // Nodes keep the status they are created with (the kubelet registers with one).
      const stored = this.#stamp(node, true);
      this.nodes.set(node.metadata.name, stored);
      return [201, stored];
    }
    if (method === 'PATCH' && (match = /^\/api\/v1\/nodes\/([^/]+)\/status$/.exec(path))) {
      const name = decodeURIComponent(match[1] ?? '');
      const node = this.nodes.get(name);
      if (!node) return [404, status(404, 'NotFound', `nodes "${name}" not found`, { name, kind: 'nodes' })];
      if (request.contentType !== 'application/merge-patch+json') return [415, status(415, 'UnsupportedMediaType', `the body of the request was in an unknown format`)];
      const patch = body as { status?: unknown };
      const updated = this.#stamp({ ...node, status: applyMergePatch(node.status, patch.status) as Obj['status'] }, false);
      this.nodes.set(name, updated);
      return [200, updated];
    }
    if (method === 'GET' && path === '/api/v1/pods') {
      const selector = url.searchParams.get('fieldSelector') ?? '';
      const nodeName = /^spec\.nodeName=(.*)$/.exec(selector)?.[1];
      const items = [...this.pods.values()].filter((pod) => nodeName === undefined || pod.spec.nodeName === nodeName);
      return [200, { kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: String(this.#version) }, items }];
    }
    if (method === 'POST' && (match = /^\/api\/v1\/namespaces\/([^/]+)\/pods$/.exec(path))) {
      const namespace = decodeURIComponent(match[1] ?? '');
      const pod = body as Obj;
      if ((pod.metadata.namespace ?? namespace) !== namespace) return [400, status(400, 'BadRequest', 'the namespace of the provided object does not match the namespace sent on the request')];
      this.beforeCreate?.(pod);
      const key = `${namespace}/${pod.metadata.name}`;
      if (this.pods.has(key)) return [409, status(409, 'AlreadyExists', `pods "${pod.metadata.name}" already exists`, { name: pod.metadata.name, kind: 'pods' })];
      // As the API server's pod strategy: a new pod's status is reset; it changes through /status only.
      const stored = this.#stamp({ ...pod, metadata: { ...pod.metadata, namespace }, status: { phase: 'Pending' } }, true);
      this.pods.set(key, stored);
      return [201, stored];
    }
    if ((match = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)(\/status)?$/.exec(path))) {
      const namespace = decodeURIComponent(match[1] ?? '');
      const name = decodeURIComponent(match[2] ?? '');
      const key = `${namespace}/${name}`;
      const pod = this.pods.get(key);
      const notFound: [number, unknown] = [404, status(404, 'NotFound', `pods "${name}" not found`, { name, kind: 'pods' })];
      if (!pod) return notFound;
      const subresource = match[3];
      if (method === 'GET' && !subresource) return [200, pod];
      if (method === 'PATCH' && subresource) {
        if (request.contentType !== 'application/merge-patch+json') return [415, status(415, 'UnsupportedMediaType', 'the body of the request was in an unknown format')];
        const patch = body as { metadata?: { uid?: string }; status?: unknown };
        const uid = patch.metadata?.uid;
        if (uid !== undefined && uid !== pod.metadata.uid) {
          return [409, status(409, 'Conflict', `Operation cannot be fulfilled on pods "${name}": the UID in the precondition (${uid}) does not match the UID in record (${pod.metadata.uid}). The object might have been deleted and then recreated`, { name, kind: 'pods' })];
        }
        const updated = this.#stamp({ ...pod, status: applyMergePatch(pod.status, patch.status) as Obj['status'] }, false);
        this.pods.set(key, updated);
        return [200, updated];
      }
      if (method === 'DELETE' && !subresource) {
        const options = (body ?? {}) as { preconditions?: { uid?: string }; gracePeriodSeconds?: number };
        const uid = options.preconditions?.uid;
        if (uid !== undefined && uid !== pod.metadata.uid) {
          return [409, status(409, 'Conflict', `Precondition failed: UID in precondition: ${uid}, UID in object meta: ${pod.metadata.uid}`, { name, kind: 'pods' })];
        }
        if (pod.metadata.finalizers?.length) {
          const deleting = this.#stamp({ ...pod, metadata: { ...pod.metadata, deletionTimestamp: new Date().toISOString() } }, false);
          this.pods.set(key, deleting);
          return [200, deleting];
        }
        this.pods.delete(key);
        return [200, pod];
      }
    }
    return [404, status(404, 'NotFound', `the server could not find the requested resource (${method} ${path})`)];
  }
}
