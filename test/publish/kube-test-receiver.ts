// A Kubernetes API test receiver: an HTTP(S) server on 127.0.0.1 that answers the calls the
// Kubernetes publisher makes as the API server does. Pods, nodes and coordination.k8s.io/v1
// Leases are kept in memory with server-assigned uids and resourceVersions; errors are v1 Status
// bodies with the API's codes and reasons (404 NotFound, 409 AlreadyExists, 409 Conflict for a
// uid precondition or a stale resourceVersion, 400, 401, 415); a pod's status is dropped on
// create and changed only through the status subresource, and a deletion honours its uid
// precondition. A Lease is updated (PUT) only from the resourceVersion it has, never created by
// a PUT, and its renewTime must be a MicroTime. Every request is recorded. Tests play "someone
// else" through the methods that change the objects directly, and can hold the Lease answers.
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { closeNow, listenOnLoopback } from './loopback-server.js';

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

export interface LeaseObj {
  apiVersion: string;
  kind: string;
  metadata: Omit<Obj['metadata'], 'finalizers' | 'deletionTimestamp'>;
  spec: { holderIdentity?: string; leaseDurationSeconds?: number; renewTime?: string; [field: string]: unknown };
}

/** RFC 3339 with exactly six fractional digits: what metav1.MicroTime decodes. */
export const MICRO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}(Z|[+-]\d{2}:\d{2})$/;

const LEASES = /^\/apis\/coordination\.k8s\.io\/v1\/namespaces\/([^/]+)\/leases(?:\/([^/]+))?$/;

export interface RecordedRequest {
  method: string;
  path: string;
  query: string;
  contentType: string | undefined;
  authorization: string | undefined;
  body: unknown;
  /** The answer's status code; 0 while it is not answered. */
  code: number;
  /** The answer's body. */
  answer?: unknown;
}

export interface KubeTestReceiverOptions {
  /** Requests must carry `Authorization: Bearer <token>`. */
  token?: string;
  /** Serve HTTPS with this key and certificate; `clientCa` asks for and checks a client certificate. */
  tls?: { key: string; cert: string; clientCa?: string };
}

/** A v1 Status, as the API server answers a failure. */
export function kubeStatus(code: number, reason: string, message: string, details?: { name: string; kind: string }): Record<string, unknown> {
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
  /** Leases by `namespace/name`. */
  readonly leases = new Map<string, LeaseObj>();
  readonly requests: RecordedRequest[] = [];
  /**
   * Runs before a pod create is answered: a test's way to be another writer racing podvisor. An
   * answer it returns ([code, body]) is given instead of the create's.
   */
  beforeCreate: ((pod: Obj) => void | [number, unknown]) | undefined;
  /** Runs before a Lease update is answered, with the Lease as stored: another writer racing podvisor. */
  beforeLeaseUpdate: ((lease: LeaseObj) => void) | undefined;
  /** Sent as Retry-After with every 429 and 503 answer, when set: an API server shedding load. */
  retryAfter: string | undefined;
  /** While set, Lease requests are answered only once it settles: an API server slow on Leases alone. */
  holdLeases: Promise<void> | undefined;
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
    this.#port = await listenOnLoopback(server, this.#port);
    this.#server = server;
  }

  /** Stops listening and drops every connection: the API server is down. */
  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    await closeNow(server);
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

  /** The node's Lease, in kube-node-lease unless told. */
  lease(name: string, namespace = 'kube-node-lease'): LeaseObj | undefined {
    return this.leases.get(`${namespace}/${name}`);
  }

  /** Writes a Lease as another client would (a new resourceVersion); `change` edits a copy first. */
  touchLease(name: string, change: (lease: LeaseObj) => void = () => undefined, namespace = 'kube-node-lease'): LeaseObj {
    const key = `${namespace}/${name}`;
    const lease = this.leases.get(key);
    if (!lease) throw new Error(`no lease ${key} on the test receiver`);
    const copy: LeaseObj = structuredClone(lease);
    change(copy);
    copy.metadata.resourceVersion = String(++this.#version);
    this.leases.set(key, copy);
    return copy;
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
      void this.#respond(record, url, res);
    });
  }

  async #respond(record: RecordedRequest, url: URL, res: http.ServerResponse): Promise<void> {
    const held = this.holdLeases;
    if (held && LEASES.test(record.path)) {
      await held;
      if (res.destroyed) return; // the client gave up, or the receiver stopped
    }
    const [code, answer] = this.#answer(record, url);
    record.code = code;
    record.answer = structuredClone(answer);
    const retryAfter = (code === 429 || code === 503) && this.retryAfter !== undefined ? { 'Retry-After': this.retryAfter } : {};
    res.writeHead(code, { 'Content-Type': 'application/json', ...retryAfter }).end(JSON.stringify(answer));
  }

  #answer(request: RecordedRequest, url: URL): [number, unknown] {
    if (this.#options.token !== undefined && request.authorization !== `Bearer ${this.#options.token}`) {
      return [401, kubeStatus(401, 'Unauthorized', 'Unauthorized')];
    }
    const { method, path, body } = request;
    let match: RegExpExecArray | null;
    if (method === 'GET' && (match = /^\/api\/v1\/nodes\/([^/]+)$/.exec(path))) {
      const node = this.nodes.get(decodeURIComponent(match[1] ?? ''));
      return node ? [200, node] : [404, kubeStatus(404, 'NotFound', `nodes "${match[1]}" not found`, { name: match[1] ?? '', kind: 'nodes' })];
    }
    if (method === 'POST' && path === '/api/v1/nodes') {
      const node = body as Obj;
      if (this.nodes.has(node.metadata.name)) return [409, kubeStatus(409, 'AlreadyExists', `nodes "${node.metadata.name}" already exists`, { name: node.metadata.name, kind: 'nodes' })];
      // Nodes keep the status they are created with (the kubelet registers with one).
      const stored = this.#stamp(node, true);
      this.nodes.set(node.metadata.name, stored);
      return [201, stored];
    }
    if (method === 'PATCH' && (match = /^\/api\/v1\/nodes\/([^/]+)\/status$/.exec(path))) {
      const name = decodeURIComponent(match[1] ?? '');
      const node = this.nodes.get(name);
      if (!node) return [404, kubeStatus(404, 'NotFound', `nodes "${name}" not found`, { name, kind: 'nodes' })];
      if (request.contentType !== 'application/merge-patch+json') return [415, kubeStatus(415, 'UnsupportedMediaType', `the body of the request was in an unknown format`)];
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
      if ((pod.metadata.namespace ?? namespace) !== namespace) return [400, kubeStatus(400, 'BadRequest', 'the namespace of the provided object does not match the namespace sent on the request')];
      const instead = this.beforeCreate?.(pod);
      if (instead) return instead;
      const key = `${namespace}/${pod.metadata.name}`;
      if (this.pods.has(key)) return [409, kubeStatus(409, 'AlreadyExists', `pods "${pod.metadata.name}" already exists`, { name: pod.metadata.name, kind: 'pods' })];
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
      const notFound: [number, unknown] = [404, kubeStatus(404, 'NotFound', `pods "${name}" not found`, { name, kind: 'pods' })];
      if (!pod) return notFound;
      const subresource = match[3];
      if (method === 'GET' && !subresource) return [200, pod];
      if (method === 'PATCH' && subresource) {
        if (request.contentType !== 'application/merge-patch+json') return [415, kubeStatus(415, 'UnsupportedMediaType', 'the body of the request was in an unknown format')];
        const patch = body as { metadata?: { uid?: string }; status?: unknown };
        const uid = patch.metadata?.uid;
        if (uid !== undefined && uid !== pod.metadata.uid) {
          return [409, kubeStatus(409, 'Conflict', `Operation cannot be fulfilled on pods "${name}": the UID in the precondition (${uid}) does not match the UID in record (${pod.metadata.uid}). The object might have been deleted and then recreated`, { name, kind: 'pods' })];
        }
        const updated = this.#stamp({ ...pod, status: applyMergePatch(pod.status, patch.status) as Obj['status'] }, false);
        this.pods.set(key, updated);
        return [200, updated];
      }
      if (method === 'DELETE' && !subresource) {
        const options = (body ?? {}) as { preconditions?: { uid?: string }; gracePeriodSeconds?: number };
        const uid = options.preconditions?.uid;
        if (uid !== undefined && uid !== pod.metadata.uid) {
          return [409, kubeStatus(409, 'Conflict', `Precondition failed: UID in precondition: ${uid}, UID in object meta: ${pod.metadata.uid}`, { name, kind: 'pods' })];
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
    if ((match = LEASES.exec(path))) {
      const answer = this.#leaseAnswer(request, decodeURIComponent(match[1] ?? ''), match[2] === undefined ? undefined : decodeURIComponent(match[2]));
      if (answer) return answer;
    }
    return [404, kubeStatus(404, 'NotFound', `the server could not find the requested resource (${method} ${path})`)];
  }

  /** GET, POST and PUT of coordination.k8s.io/v1 Leases; undefined for anything else. */
  #leaseAnswer(request: RecordedRequest, namespace: string, name: string | undefined): [number, unknown] | undefined {
    const { method } = request;
    const notFound = (name: string): [number, unknown] => [404, kubeStatus(404, 'NotFound', `leases.coordination.k8s.io "${name}" not found`, { name, kind: 'leases' })];
    if (method === 'GET' && name !== undefined) {
      const lease = this.leases.get(`${namespace}/${name}`);
      return lease ? [200, lease] : notFound(name);
    }
    if (method !== 'POST' && method !== 'PUT') return undefined;
    if ((method === 'POST') !== (name === undefined)) return undefined;
    const lease = request.body as LeaseObj | undefined;
    const invalid = leaseProblem(lease, namespace, name);
    if (invalid || !lease) return [400, kubeStatus(400, 'BadRequest', invalid ?? 'no body')];
    const key = `${namespace}/${lease.metadata.name}`;
    const stored = this.leases.get(key);
    if (method === 'POST') {
      if (stored) return [409, kubeStatus(409, 'AlreadyExists', `leases.coordination.k8s.io "${lease.metadata.name}" already exists`, { name: lease.metadata.name, kind: 'leases' })];
      if (lease.metadata.resourceVersion) return [400, kubeStatus(400, 'BadRequest', 'resourceVersion should not be set on objects to be created')];
      const created: LeaseObj = {
        ...lease,
        metadata: { ...lease.metadata, namespace, uid: randomUUID(), resourceVersion: String(++this.#version), creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z') },
      };
      this.leases.set(key, created);
      return [201, created];
    }
    // A Lease is not created by an update (its strategy does not allow it).
    if (!stored) return notFound(lease.metadata.name);
    this.beforeLeaseUpdate?.(stored);
    const current = this.leases.get(key);
    if (!current) return notFound(lease.metadata.name);
    const conflict = (message: string): [number, unknown] => [409, kubeStatus(409, 'Conflict', message, { name: lease.metadata.name, kind: 'leases' })];
    if (lease.metadata.uid !== undefined && lease.metadata.uid !== current.metadata.uid) {
      return conflict(`Precondition failed: UID in precondition: ${lease.metadata.uid}, UID in object meta: ${current.metadata.uid}`);
    }
    // No resourceVersion: an unconditional update, as Leases allow; a stale one: Conflict.
    if (lease.metadata.resourceVersion && lease.metadata.resourceVersion !== current.metadata.resourceVersion) {
      return conflict(`Operation cannot be fulfilled on leases.coordination.k8s.io "${lease.metadata.name}": the object has been modified; please apply your changes to the latest version and try again`);
    }
    const updated: LeaseObj = {
      ...lease,
      metadata: { ...lease.metadata, namespace, uid: current.metadata.uid, creationTimestamp: current.metadata.creationTimestamp, resourceVersion: String(++this.#version) },
    };
    this.leases.set(key, updated);
    return [200, updated];
  }
}

/** Why the API server would refuse this Lease body; undefined when it would take it. */
function leaseProblem(lease: LeaseObj | undefined, namespace: string, name: string | undefined): string | undefined {
  if (typeof lease !== 'object' || lease === null || typeof lease.metadata !== 'object' || lease.metadata === null) return 'not a Lease object';
  if (lease.apiVersion !== 'coordination.k8s.io/v1' || lease.kind !== 'Lease') return `expected coordination.k8s.io/v1 Lease, got ${String(lease.apiVersion)} ${String(lease.kind)}`;
  if (!lease.metadata.name) return 'metadata.name is required';
  if (name !== undefined && lease.metadata.name !== name) return `the name of the object (${lease.metadata.name}) does not match the name on the URL (${name})`;
  if ((lease.metadata.namespace ?? namespace) !== namespace) return 'the namespace of the provided object does not match the namespace sent on the request';
  const spec = lease.spec ?? {};
  if (spec.renewTime !== undefined && (typeof spec.renewTime !== 'string' || !MICRO_TIME.test(spec.renewTime))) return `spec.renewTime: not a MicroTime: ${JSON.stringify(spec.renewTime)}`;
  if (spec.leaseDurationSeconds !== undefined && !Number.isInteger(spec.leaseDurationSeconds)) return 'spec.leaseDurationSeconds: must be an integer';
  return undefined;
}
