// The Kubernetes publisher: keeps an API server's mirror pods for this node as the kubelet does.
//
// - The node: read (GET /api/v1/nodes/NAME); registered when it is missing (POST, with the
//   agent's node object and a NoSchedule taint, since nothing scheduled there would run); its
//   uid is what every mirror pod's ownerReference names. Its status follows the agent's node
//   object (PATCH .../nodes/NAME/status).
// - The node's Lease in kube-node-lease is renewed every `leaseRenewSeconds` (10) by a loop of
//   its own (node-lease.ts), so that the cluster sees the node alive between status changes,
//   whatever the pods' loop is doing or waiting for. health() reports both.
// - The mirror pods on the server are listed (fieldSelector spec.nodeName=NODE) at start, after
//   the server was unreachable, and every `resyncSeconds`: that is how podvisor learns of mirror
//   pods someone deleted or changed, and of orphans.
// - Per pod, one pass at a time, the latest desired state only:
//   missing → POST (201); AlreadyExists → GET and go on with what is there;
//   a mirror pod of another config hash (kubernetes.io/config.mirror) → DELETE (grace 0, uid
//   precondition), then POST; status differs from what was delivered → PATCH .../status
//   (merge patch, metadata.uid as precondition); NotFound on the PATCH → POST again; Conflict
//   (another uid) → GET and go on; a pod that is not a mirror pod holds the name → left alone,
//   reported; a static pod removed, or a mirror pod no static pod backs → DELETE (uid
//   precondition; NotFound is fine).
// - The server unreachable (or 5xx, 429, 401): the pass stops, the next waits out the back-off.
//   One pod's own failure (422, 403...) backs off that pod only.
// Nothing is queued: a pass reads the mirror pods as they are when it runs.
import { errorMessage, PodvisorError } from '../errors.js';
import type { CheckResult } from '../health/health.js';
import { CONFIG_MIRROR_ANNOTATION, type MirrorPod } from '../mirror/mirror-pod.js';
import type { V1Node } from '../mirror/node-object.js';
import { askedWait, isEndpointFailure, PublishError } from './http-client.js';
import { hasStatus, KubeApi, type ApiList, type ApiObject } from './kube-api.js';
import type { KubeConnection } from './kubeconfig.js';
import { mergePatch } from './merge-patch.js';
import { DEFAULT_LEASE_RENEW_SECONDS, NODE_LEASE_DURATION_SECONDS, NodeLease } from './node-lease.js';
import { DEFAULT_TIMEOUT_SECONDS, DeliveryHealth, podKey, stopWithin, Wakeup, type Publisher, type PublisherOptions } from './publisher.js';
import { RetryBackoff } from './retry.js';
import { INVALID_MANIFESTS_ANNOTATION } from '../rollout/rollout-outcome.js';

export interface Taint {
  key: string;
  value?: string;
  effect: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
}

/** The taint a node podvisor registers carries: the scheduler must not place pods there. */
export const STATIC_PODS_ONLY_TAINT: Taint = { key: 'podvisor.io/static-pods-only', effect: 'NoSchedule' };

export interface KubernetesPublisherOptions extends PublisherOptions {
  /** The API server and credentials, from loadKubeconfig(). */
  connection: KubeConnection;
  /** How often the node's pods are listed again, to find mirror pods others deleted or changed (default 60). */
  resyncSeconds?: number;
  /** The taints of a node podvisor registers (default: podvisor.io/static-pods-only:NoSchedule). */
  registerTaints?: Taint[];
  /** How often the node's Lease is renewed (default 10, as the kubelet; below its 40 s duration). */
  leaseRenewSeconds?: number;
}

/** A pod on the server under a name podvisor cares about. */
interface RemotePod {
  uid: string;
  /** kubernetes.io/config.mirror; undefined for a pod that is not a mirror pod. */
  hash: string | undefined;
  deleting: boolean;
  /** The status as the server holds it: what a status patch is computed from. */
  status: unknown;
  /** The JSON of the status last delivered to this pod (this uid). */
  sent: string | undefined;
}

interface RemoteNode {
  uid: string;
  status: unknown;
  sent: string | undefined;
}

interface ItemRetry {
  backoff: RetryBackoff;
  at: number;
  message: string;
}

/** How many steps (create, delete, patch, re-read) one pod gets in one pass. */
const MAX_STEPS = 6;
const NODE_ITEM = '\0node';

const DELETE_OPTIONS = (uid: string) => ({ kind: 'DeleteOptions', apiVersion: 'v1', gracePeriodSeconds: 0, preconditions: { uid } });

function mirrorHash(pod: { metadata: { annotations?: Record<string, string> } }): string | undefined {
  return pod.metadata.annotations?.[CONFIG_MIRROR_ANNOTATION];
}

function podPath(key: string): string {
  const [namespace = 'default', name = ''] = key.split('/');
  return `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}`;
}

export class KubernetesPublisher implements Publisher {
  readonly mode = 'kubernetes' as const;
  readonly #options: KubernetesPublisherOptions;
  readonly #api: KubeApi;
  readonly #now: () => number;
  readonly #resyncMs: number;
  readonly #stopTimeoutMs: number;
  readonly #backoff: RetryBackoff;
  readonly #health: DeliveryHealth;
  readonly #wakeup = new Wakeup();
  readonly #lease: NodeLease;
  #unsubscribe: (() => void) | undefined;
  #loop: Promise<void> | undefined;
  #stopped: Promise<void> | undefined;
  #inFlight: AbortController | undefined;
  #stopping = false;
  #changes = 0;
  #covered = -1;
  #retryAt: number | undefined;
  #node: RemoteNode | undefined;
  #remote = new Map<string, RemotePod>();
  #listedAt: number | undefined;
  #needList = true;
  readonly #retries = new Map<string, ItemRetry>();

  /** Throws PodvisorError('E_CONFIG') for a bad resync or lease renew interval; never after. */
  constructor(options: KubernetesPublisherOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    const resync = options.resyncSeconds ?? 60;
    if (!Number.isFinite(resync) || resync <= 0) throw new PodvisorError('E_CONFIG', `--publish-resync must be a number of seconds above 0, got ${resync}`);
    this.#resyncMs = resync * 1000;
    this.#stopTimeoutMs = (options.stopTimeoutSeconds ?? 2) * 1000;
    this.#backoff = new RetryBackoff(options.retry);
    this.#health = new DeliveryHealth('kubernetes', options.logger, this.#now);
    this.#api = new KubeApi(options.connection, {
      timeoutMs: (options.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS) * 1000,
      onResult: (result) => options.metrics?.publishAttempts.inc({ mode: 'kubernetes', result }),
    });
    const renew = options.leaseRenewSeconds ?? DEFAULT_LEASE_RENEW_SECONDS;
    if (!Number.isFinite(renew) || renew <= 0 || renew >= NODE_LEASE_DURATION_SECONDS) {
      throw new PodvisorError('E_CONFIG', `the lease renew interval must be a number of seconds above 0 and below the lease's ${NODE_LEASE_DURATION_SECONDS}, got ${renew}`);
    }
    this.#lease = new NodeLease({
      api: this.#api,
      nodeName: options.input.nodeName,
      nodeUid: () => this.#node?.uid,
      logger: options.logger,
      renewMs: renew * 1000,
      ...(options.retry ? { retry: options.retry } : {}),
      now: this.#now,
    });
  }

  /** Counted when asked, so that it is right at once after a change. */
  get pending(): number {
    return this.#countPending();
  }

  start(): void {
    if (this.#loop || this.#stopping) return;
    const { connection, logger } = this.#options;
    if (connection.tls.insecureSkipTLSVerify) logger.warn(`publish (kubernetes): ${connection.source} turns TLS verification off (insecure-skip-tls-verify)`);
    this.#unsubscribe = this.#options.input.subscribe(() => {
      this.#changes++;
      this.#wakeup.kick();
    });
    this.#loop = this.#run();
    this.#lease.start();
  }

  async stop(): Promise<void> {
    if (this.#stopping) return this.#stopped;
    this.#stopping = true;
    this.#unsubscribe?.();
    this.#wakeup.kick();
    this.#stopped = Promise.all([stopWithin(this.#loop, this.#stopTimeoutMs, () => this.#inFlight?.abort()), this.#lease.stop(this.#stopTimeoutMs)]).then(() => this.#api.close());
    return this.#stopped;
  }

  /** The pods' and node's delivery; a failing lease renewal added to it. */
  health(): CheckResult {
    const delivery = this.#health.health();
    const lease = this.#lease.health();
    if (lease.ok) return delivery;
    const detail = `node lease: ${lease.message ?? 'failing'}`;
    return { ok: false, message: delivery.ok ? detail : `${delivery.message ?? 'failing'}; ${detail}` };
  }

  /** How long until the next pass is due. */
  #delay(): number {
    const now = this.#now();
    if (this.#retryAt !== undefined) return this.#retryAt - now;
    let due = this.#changes !== this.#covered || this.#needList ? now : Number.POSITIVE_INFINITY;
    if (this.#listedAt !== undefined) due = Math.min(due, this.#listedAt + this.#resyncMs);
    for (const retry of this.#retries.values()) due = Math.min(due, retry.at);
    return due - now;
  }

  async #run(): Promise<void> {
    while (!this.#stopping) {
      this.#setPendingMetric();
      const delay = this.#delay();
      if (delay > 0) {
        await this.#wakeup.wait(delay);
        continue;
      }
      const changes = this.#changes;
      const controller = new AbortController();
      this.#inFlight = controller;
      try {
        const failures = await this.#pass(controller.signal);
        if (this.#stopping) break;
        this.#covered = changes;
        this.#retryAt = undefined;
        this.#backoff.reset();
        if (failures.length === 0) this.#health.succeeded();
        else this.#health.failed(new PublishError('state', `${failures.length} not published: ${failures.slice(0, 3).join('; ')}${failures.length > 3 ? '; …' : ''}`));
      } catch (error) {
        if (this.#stopping) break;
        this.#retryAt = this.#now() + this.#backoff.next(askedWait(error));
        // Anything may have changed while the server was away: look again before acting.
        this.#needList = true;
        this.#health.failed(error);
      } finally {
        this.#inFlight = undefined;
      }
    }
    this.#setPendingMetric();
  }

  /** One pass over the node and every pod; throws when the server itself fails. */
  async #pass(signal: AbortSignal): Promise<string[]> {
    const input = this.#options.input;
    if (!this.#node) await this.#registerNode(signal);
    if (this.#needList || this.#listedAt === undefined || this.#now() >= this.#listedAt + this.#resyncMs) await this.#list(signal);
    const failures: string[] = [];
    await this.#guarded(NODE_ITEM, `node ${input.nodeName}`, failures, () => this.#syncNodeStatus(signal));
    const desired = new Map(input.pods().map((pod) => [podKey(pod), pod] as const));
    const keys = new Set(desired.keys());
    for (const [key, remote] of this.#remote) if (remote.hash !== undefined) keys.add(key);
    for (const key of this.#retries.keys()) if (key !== NODE_ITEM && !keys.has(key)) this.#retries.delete(key);
    for (const key of [...keys].sort()) {
      if (this.#stopping) break;
      await this.#guarded(key, key, failures, () => this.#syncPod(key, desired.get(key), signal));
    }
    return failures;
  }

  /** Runs one item's work unless it is backing off; its own failure backs off that item only. */
  async #guarded(key: string, label: string, failures: string[], work: () => Promise<void>): Promise<void> {
    const retry = this.#retries.get(key);
    if (retry && retry.at > this.#now()) {
      failures.push(`${label}: ${retry.message}`);
      return;
    }
    try {
      await work();
      this.#retries.delete(key);
    } catch (error) {
      if (isEndpointFailure(error)) throw error;
      const backoff = retry?.backoff ?? new RetryBackoff(this.#options.retry);
      const message = errorMessage(error);
      this.#retries.set(key, { backoff, at: this.#now() + backoff.next(askedWait(error)), message });
      failures.push(`${label}: ${message}`);
    }
  }

  async #registerNode(signal: AbortSignal): Promise<void> {
    const name = this.#options.input.nodeName;
    const path = `/api/v1/nodes/${encodeURIComponent(name)}`;
    let node = await this.#get(path, signal);
    let sent: string | undefined;
    if (!node) {
      const local = this.#options.input.node();
      if (!local) throw new PublishError('state', `node ${name} is not registered, and the agent has no node object to register yet`);
      try {
        const created = await this.#api.request('POST', '/api/v1/nodes', { body: this.#nodeToRegister(local), signal });
        sent = JSON.stringify(local.status);
        this.#options.logger.info(`publish (kubernetes): registered node ${name}`, { node: name, uid: created.metadata.uid });
        node = created;
      } catch (error) {
        // Registered by someone else meanwhile: use theirs, as the kubelet does.
        if (!(hasStatus(error, 409) && error.reason === 'AlreadyExists')) throw error;
        node = await this.#get(path, signal);
      }
    }
    if (!node) throw new PublishError('state', `node ${name} was registered and is gone again; trying once more`);
    this.#node = { uid: node.metadata.uid, status: node.status ?? {}, sent };
    this.#lease.nodeChanged();
  }

  #nodeToRegister(local: V1Node): unknown {
    const { name, labels, annotations: { [INVALID_MANIFESTS_ANNOTATION]: _invalid, ...annotations } } = local.metadata;
    return {
      apiVersion: 'v1',
      kind: 'Node',
      // Not the invalid files: annotations go only at registration, and that list changes.
      metadata: { name, labels, annotations },
      spec: { taints: this.#options.registerTaints ?? [STATIC_PODS_ONLY_TAINT] },
      status: local.status,
    };
  }

  async #syncNodeStatus(signal: AbortSignal): Promise<void> {
    const local = this.#options.input.node();
    const node = this.#node;
    if (!local || !node) return;
    const json = JSON.stringify(local.status);
    if (json === node.sent) return;
    const patch = mergePatch(node.status, local.status);
    if (patch !== undefined) {
      try {
        const updated = await this.#api.request('PATCH', `/api/v1/nodes/${encodeURIComponent(local.metadata.name)}/status`, {
          body: { status: patch },
          contentType: 'application/merge-patch+json',
          signal,
        });
        node.status = updated.status ?? {};
      } catch (error) {
        if (!hasStatus(error, 404)) throw error;
        // Deleted by someone: register it again. Its mirror pods go with the old node (garbage
        // collection), so the next pass, due at once, lists them again.
        this.#options.logger.info(`publish (kubernetes): node ${local.metadata.name} was deleted on the server; registering it again`);
        this.#node = undefined;
        this.#needList = true;
        await this.#registerNode(signal);
        return;
      }
    }
    node.sent = json;
  }

  async #list(signal: AbortSignal): Promise<void> {
    const input = this.#options.input;
    const selector = encodeURIComponent(`spec.nodeName=${input.nodeName}`);
    const list = await this.#api.request<ApiList>('GET', `/api/v1/pods?fieldSelector=${selector}`, { signal });
    const desired = new Map(input.pods().map((pod) => [podKey(pod), pod] as const));
    const next = new Map<string, RemotePod>();
    for (const pod of list.items ?? []) {
      const key = podKey(pod);
      // Pods the scheduler put here are none of podvisor's business, unless one holds a static pod's name.
      if (mirrorHash(pod) === undefined && !desired.has(key)) continue;
      const remote = this.#remoteFrom(pod, this.#remote.get(key));
      // The periodic look at the server is also when a status that differs from ours is sent again.
      const want = desired.get(key);
      if (want && remote.sent !== undefined && mergePatch(remote.status, want.status) !== undefined) remote.sent = undefined;
      next.set(key, remote);
    }
    this.#remote = next;
    this.#listedAt = this.#now();
    this.#needList = false;
  }

  #remoteFrom(pod: ApiObject, prior: RemotePod | undefined): RemotePod {
    const uid = pod.metadata.uid;
    return {
      uid,
      hash: mirrorHash(pod),
      deleting: Boolean(pod.metadata.deletionTimestamp),
      status: pod.status ?? {},
      sent: prior?.uid === uid ? prior.sent : undefined,
    };
  }

  /** GET, with NotFound as undefined. */
  async #get(path: string, signal: AbortSignal): Promise<ApiObject | undefined> {
    try {
      return await this.#api.request('GET', path, { signal });
    } catch (error) {
      if (hasStatus(error, 404)) return undefined;
      throw error;
    }
  }

  async #refresh(key: string, signal: AbortSignal): Promise<void> {
    const pod = await this.#get(podPath(key), signal);
    if (pod) this.#remote.set(key, this.#remoteFrom(pod, this.#remote.get(key)));
    else this.#remote.delete(key);
  }

  /** Brings one pod's mirror on the server in step with `desired` (absent: removed). */
  async #syncPod(key: string, desired: MirrorPod | undefined, signal: AbortSignal): Promise<void> {
    const logger = this.#options.logger;
    let reread = false;
    for (let step = 0; step < MAX_STEPS; step++) {
      if (this.#stopping) return;
      const remote = this.#remote.get(key);
      if (!desired) {
        if (!remote || remote.hash === undefined) {
          this.#remote.delete(key);
          return;
        }
        if (await this.#delete(key, remote.uid, signal)) {
          logger.info(`publish (kubernetes): deleted mirror pod ${key}: no static pod backs it`, { pod: key });
          this.#remote.delete(key);
          return;
        }
        await this.#refresh(key, signal);
        continue;
      }
      if (!remote) {
        const created = await this.#create(desired, signal);
        if (created) {
          logger.debug(`publish (kubernetes): created mirror pod ${key}`, { pod: key });
          this.#remote.set(key, this.#remoteFrom(created, undefined));
        } else {
          await this.#refresh(key, signal);
        }
        continue;
      }
      if (remote.hash === undefined) {
        throw new PublishError('state', `a pod that is not a mirror pod holds the name; podvisor leaves it alone`);
      }
      if (remote.deleting) {
        if (reread) throw new PublishError('state', 'the mirror pod is being deleted; it is created again once it is gone');
        reread = true;
        await this.#refresh(key, signal);
        continue;
      }
      const hash = mirrorHash(desired) ?? '';
      if (remote.hash !== hash) {
        // The kubelet's rule: a mirror pod of another spec goes, and one of this spec is made.
        if (await this.#delete(key, remote.uid, signal)) {
          logger.info(`publish (kubernetes): replacing mirror pod ${key}: its config hash ${remote.hash} is not ${hash}`, { pod: key });
          this.#remote.delete(key);
        } else {
          await this.#refresh(key, signal);
        }
        continue;
      }
      const json = JSON.stringify(desired.status);
      if (remote.sent === json) return;
      const outcome = await this.#patchStatus(key, remote, desired, signal);
      if (outcome === 'patched') {
        remote.sent = json;
        return;
      }
      if (outcome === 'gone') {
        logger.info(`publish (kubernetes): mirror pod ${key} was deleted on the server; creating it again`, { pod: key });
        this.#remote.delete(key);
      } else {
        await this.#refresh(key, signal);
      }
    }
    throw new PublishError('state', `not in step with the server after ${MAX_STEPS} steps; trying again later`);
  }

  /** POST; the created pod, or undefined when one of that name exists (AlreadyExists). */
  async #create(desired: MirrorPod, signal: AbortSignal): Promise<ApiObject | undefined> {
    const node = this.#node;
    if (!node) throw new PublishError('state', 'the node is not registered');
    const { name, namespace, labels, annotations } = desired.metadata;
    const body = {
      apiVersion: 'v1',
      kind: 'Pod',
      // The server gives the mirror pod its own uid; the owner is the node as the server knows it.
      metadata: {
        name,
        namespace,
        ...(labels ? { labels } : {}),
        annotations,
        ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: this.#options.input.nodeName, uid: node.uid, controller: true }],
      },
      spec: desired.spec,
    };
    try {
      return await this.#api.request('POST', `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`, { body, signal });
    } catch (error) {
      if (hasStatus(error, 409) && error.reason === 'AlreadyExists') return undefined;
      throw error;
    }
  }

  /** DELETE with grace 0 and the uid as precondition: true when it is gone or going, false on Conflict (another uid). */
  async #delete(key: string, uid: string, signal: AbortSignal): Promise<boolean> {
    try {
      await this.#api.request('DELETE', podPath(key), { body: DELETE_OPTIONS(uid), signal });
      return true;
    } catch (error) {
      if (hasStatus(error, 404)) return true;
      if (hasStatus(error, 409)) return false;
      throw error;
    }
  }

  async #patchStatus(key: string, remote: RemotePod, desired: MirrorPod, signal: AbortSignal): Promise<'patched' | 'gone' | 'conflict'> {
    const patch = mergePatch(remote.status, desired.status);
    if (patch === undefined) return 'patched';
    try {
      const updated = await this.#api.request('PATCH', `${podPath(key)}/status`, {
        // metadata.uid: the server refuses the patch (Conflict) when the pod is another one of the same name.
        body: { metadata: { uid: remote.uid }, status: patch },
        contentType: 'application/merge-patch+json',
        signal,
      });
      remote.status = updated.status ?? {};
      return 'patched';
    } catch (error) {
      if (hasStatus(error, 404)) return 'gone';
      if (hasStatus(error, 409)) return 'conflict';
      throw error;
    }
  }

  /** Pod states (and the node's) not yet delivered. */
  #countPending(): number {
    let count = 0;
    try {
      const input = this.#options.input;
      const keys = new Set<string>();
      for (const pod of input.pods()) {
        const key = podKey(pod);
        keys.add(key);
        const remote = this.#remote.get(key);
        if (!this.#node || !remote || remote.hash !== mirrorHash(pod) || remote.sent !== JSON.stringify(pod.status)) count++;
      }
      for (const [key, remote] of this.#remote) if (!keys.has(key) && remote.hash !== undefined) count++;
      const node = input.node();
      if (node && this.#node?.sent !== JSON.stringify(node.status)) count++;
    } catch (error) {
      this.#options.logger.debug(`publish (kubernetes): cannot count pending states: ${errorMessage(error)}`);
    }
    return count;
  }

  #setPendingMetric(): void {
    this.#options.metrics?.publishPending.set({ mode: 'kubernetes' }, this.#countPending());
  }
}
