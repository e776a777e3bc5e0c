// The node's Lease, kept as the kubelet keeps it: without it, or with a status older than
// node-monitor-grace-period (40 s by default), a cluster's node lifecycle controller marks the
// node unreachable, and the node status alone changes about once a minute.
//
// - coordination.k8s.io/v1 Lease NAME in kube-node-lease: spec.holderIdentity NAME,
//   leaseDurationSeconds 40, renewTime (a MicroTime) renewed every `renewMs` (10 s by default).
// - Read (GET) when podvisor holds no copy; created (POST) when missing, owned by the Node (so
//   that it goes when the node is deleted), and only once the node's uid is known.
// - Renewed with PUT of the copy read last, its resourceVersion included: a Conflict (someone
//   wrote it since) → GET and PUT once more; NotFound (someone deleted it) → POST.
// - Its own loop, beside the pods' and never waiting for them (nor they for it), on the same
//   KubeApi: the same connection, TLS and token. A failure is retried with back-off capped at the
//   renew interval, shown in its own DeliveryHealth and logged once per transition.
import type { CheckResult } from '../health/health.js';
import type { Logger } from '../log/logger.js';
import { PublishError } from './http-client.js';
import { hasStatus, type KubeApi } from './kube-api.js';
import { DeliveryHealth, stopWithin, Wakeup } from './publisher.js';
import { DEFAULT_RETRY_INITIAL_MS, DEFAULT_RETRY_MAX_MS, RetryBackoff, type RetryOptions } from './retry.js';

export const NODE_LEASE_NAMESPACE = 'kube-node-lease';
/** The kubelet's: node-monitor-grace-period is 40 s by default. */
export const NODE_LEASE_DURATION_SECONDS = 40;
/** The kubelet's: a quarter of the lease's duration. */
export const DEFAULT_LEASE_RENEW_SECONDS = 10;

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

/** A Lease as the server returns it; what podvisor does not set is sent back as it came. */
export interface V1Lease {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    ownerReferences?: OwnerReference[];
    [field: string]: unknown;
  };
  spec?: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    renewTime?: string;
    [field: string]: unknown;
  };
  [field: string]: unknown;
}

/** A MicroTime: RFC 3339 in UTC with six fractional digits, as the API server reads renewTime. */
export function microTime(ms: number): string {
  // toISOString has milliseconds; the clock has nothing finer to add.
  return new Date(ms).toISOString().replace(/Z$/, '000Z');
}

export interface NodeLeaseOptions {
  api: KubeApi;
  nodeName: string;
  /** The node's uid as the server knows it, once it does: the Lease's owner. */
  nodeUid: () => string | undefined;
  logger: Logger;
  /** How often renewTime is renewed (ms). */
  renewMs: number;
  /** The back-off after a failure; capped at `renewMs` whatever it says. */
  retry?: RetryOptions;
  now: () => number;
}

export class NodeLease {
  readonly #options: NodeLeaseOptions;
  readonly #path: string;
  readonly #backoff: RetryBackoff;
  readonly #health: DeliveryHealth;
  readonly #wakeup = new Wakeup();
  #loop: Promise<void> | undefined;
  #inFlight: AbortController | undefined;
  #stopping = false;
  /** The Lease as the server last returned it; undefined until read, and after NotFound. */
  #lease: V1Lease | undefined;
  #dueAt = Number.NEGATIVE_INFINITY;

  constructor(options: NodeLeaseOptions) {
    this.#options = options;
    this.#path = `/apis/coordination.k8s.io/v1/namespaces/${NODE_LEASE_NAMESPACE}/leases/${encodeURIComponent(options.nodeName)}`;
    const retry = options.retry ?? {};
    // A failed renewal is tried again within the renew interval: 40 s go by fast.
    this.#backoff = new RetryBackoff({
      ...retry,
      initialMs: Math.min(retry.initialMs ?? DEFAULT_RETRY_INITIAL_MS, options.renewMs),
      maxMs: Math.min(retry.maxMs ?? DEFAULT_RETRY_MAX_MS, options.renewMs),
    });
    this.#health = new DeliveryHealth('kubernetes', options.logger, options.now, { failed: 'renewing the node lease failed', recovered: 'renewing the node lease again' });
  }

  start(): void {
    if (this.#loop || this.#stopping) return;
    this.#loop = this.#run();
  }

  /** The node's uid may have changed (registered, registered again): look again at once. */
  nodeChanged(): void {
    this.#wakeup.kick();
  }

  /** Stops renewing: a request in flight gets `graceMs`, then it is cancelled. */
  async stop(graceMs: number): Promise<void> {
    if (this.#stopping) return this.#loop;
    this.#stopping = true;
    this.#wakeup.kick();
    await stopWithin(this.#loop, graceMs, () => this.#inFlight?.abort());
  }

  health(): CheckResult {
    return this.#health.health();
  }

  #delay(): number {
    // A Lease is created owned by its node only: until the server has the node, there is nothing to do.
    if (!this.#lease && this.#options.nodeUid() === undefined) return Number.POSITIVE_INFINITY;
    return this.#dueAt - this.#options.now();
  }

  async #run(): Promise<void> {
    while (!this.#stopping) {
      const delay = this.#delay();
      if (delay > 0) {
        await this.#wakeup.wait(delay);
        continue;
      }
      const startedAt = this.#options.now();
      const controller = new AbortController();
      this.#inFlight = controller;
      try {
        await this.#renew(controller.signal);
        // Every renew interval from the start of the last renewal, however long that took.
        this.#dueAt = startedAt + this.#options.renewMs;
        this.#backoff.reset();
        this.#health.succeeded();
      } catch (error) {
        if (this.#stopping) break;
        this.#dueAt = this.#options.now() + this.#backoff.next();
        this.#health.failed(error);
      } finally {
        this.#inFlight = undefined;
      }
    }
  }

  async #renew(signal: AbortSignal): Promise<void> {
    const known = this.#lease ?? (await this.#get(signal));
    if (!known) {
      await this.#create(signal);
      return;
    }
    try {
      this.#lease = await this.#update(known, signal);
    } catch (error) {
      if (hasStatus(error, 404)) {
        this.#options.logger.info(`publish (kubernetes): the node lease ${NODE_LEASE_NAMESPACE}/${this.#options.nodeName} was deleted on the server; creating it again`);
        this.#lease = undefined;
        await this.#create(signal);
        return;
      }
      if (!hasStatus(error, 409)) throw error;
      // Written by someone since podvisor read it (or a renewal whose answer was lost went
      // through): read it again and try once more; another Conflict waits for the back-off.
      const fresh = await this.#get(signal);
      if (!fresh) {
        await this.#create(signal);
        return;
      }
      this.#lease = await this.#update(fresh, signal);
    }
  }

  /** GET, with NotFound as undefined. */
  async #get(signal: AbortSignal): Promise<V1Lease | undefined> {
    try {
      return await this.#options.api.request<V1Lease>('GET', this.#path, { signal });
    } catch (error) {
      if (hasStatus(error, 404)) return undefined;
      throw error;
    }
  }

  async #create(signal: AbortSignal): Promise<void> {
    const { api, nodeName, logger } = this.#options;
    const uid = this.#options.nodeUid();
    if (uid === undefined) throw new PublishError('state', `node ${nodeName} is not registered: its lease is created once it is`);
    const body: V1Lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: nodeName, namespace: NODE_LEASE_NAMESPACE, ownerReferences: [nodeOwner(nodeName, uid)] },
      spec: this.#spec(undefined),
    };
    try {
      this.#lease = await api.request<V1Lease>('POST', `/apis/coordination.k8s.io/v1/namespaces/${NODE_LEASE_NAMESPACE}/leases`, { body, signal });
      logger.info(`publish (kubernetes): created the node lease ${NODE_LEASE_NAMESPACE}/${nodeName}`, { node: nodeName });
    } catch (error) {
      if (!(hasStatus(error, 409) && error.reason === 'AlreadyExists')) throw error;
      // Created by someone else meanwhile: renew theirs.
      const existing = await this.#get(signal);
      if (!existing) throw new PublishError('state', 'the node lease was created and is gone again; trying once more');
      this.#lease = await this.#update(existing, signal);
    }
  }

  /** PUT of `lease` as read, resourceVersion and all, renewed now and held by this node. */
  async #update(lease: V1Lease, signal: AbortSignal): Promise<V1Lease> {
    const body: V1Lease = {
      ...lease,
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { ...lease.metadata, ...this.#owners(lease.metadata.ownerReferences) },
      spec: this.#spec(lease.spec),
    };
    return this.#options.api.request<V1Lease>('PUT', this.#path, { body, signal });
  }

  #spec(spec: V1Lease['spec']): NonNullable<V1Lease['spec']> {
    return { ...spec, holderIdentity: this.#options.nodeName, leaseDurationSeconds: NODE_LEASE_DURATION_SECONDS, renewTime: microTime(this.#options.now()) };
  }

  /** The owner references with the node as the server knows it now (a node registered again has another uid). */
  #owners(references: OwnerReference[] | undefined): { ownerReferences?: OwnerReference[] } {
    const { nodeName } = this.#options;
    const uid = this.#options.nodeUid();
    const current = references ?? [];
    if (uid === undefined || current.some((ref) => ref.kind === 'Node' && ref.name === nodeName && ref.uid === uid)) return references ? { ownerReferences: references } : {};
    return { ownerReferences: [...current.filter((ref) => !(ref.kind === 'Node' && ref.name === nodeName)), nodeOwner(nodeName, uid)] };
  }
}

function nodeOwner(name: string, uid: string): OwnerReference {
  return { apiVersion: 'v1', kind: 'Node', name, uid };
}
