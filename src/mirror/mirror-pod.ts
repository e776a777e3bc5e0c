// Mirror pods: the read-only copies of static pods that the kubelet shows an API server, made
// from what the status owner computed. A mirror pod carries the config hash as
// `kubernetes.io/config.mirror` and is owned by its Node; a pod whose manifest is invalid right
// now still shows, on its last good spec, with the error as an annotation and a condition.
import type { PodEvent } from '../status/event-recorder.js';
import type { StatusPod } from '../status/status-manager.js';
import { CONFIG_HASH_ANNOTATION, CONFIG_SEEN_ANNOTATION, stableUuid } from '../manifest/identity.js';
import { apiTime } from '../status/conditions.js';
import { withoutEnvValues } from './env-values.js';

export { MANIFEST_ERROR_ANNOTATION, MANIFEST_VALID_CONDITION, type ManifestCondition, type ManifestProblem } from '../status/manifest-problem.js';

export const CONFIG_MIRROR_ANNOTATION = 'kubernetes.io/config.mirror';

export interface OwnerReference {
  apiVersion: 'v1';
  kind: 'Node';
  name: string;
  uid: string;
  controller: true;
}

/** A v1 Pod as podvisor serves and publishes it. */
export interface MirrorPod extends Omit<StatusPod, 'metadata' | 'status'> {
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    resourceVersion?: string;
    creationTimestamp?: string;
    labels?: Record<string, string>;
    annotations: Record<string, string>;
    ownerReferences: OwnerReference[];
  };
  status: StatusPod['status'];
}


/** A core/v1 Event about a pod. */
export interface V1Event {
  apiVersion: 'v1';
  kind: 'Event';
  metadata: { name: string; namespace: string; uid: string; resourceVersion?: string; creationTimestamp: string };
  involvedObject: PodEvent['involvedObject'] & { apiVersion: 'v1' };
  reason: string;
  message: string;
  source: { component: 'podvisor'; host: string };
  firstTimestamp: string;
  lastTimestamp: string;
  count: number;
  type: PodEvent['type'];
  eventTime: null;
  reportingComponent: 'podvisor';
  reportingInstance: string;
}

/** The node a mirror pod belongs to. */
export interface MirrorNode {
  name: string;
  uid: string;
}


/**
 * The mirror pod for one static pod's status (a manifest problem, if any, is in the status already).
 * Env values are left out unless `serveEnvValues`: every reader of mirror pods gets them from here.
 */
export function mirrorPod(status: StatusPod, node: MirrorNode, options: { serveEnvValues?: boolean } = {}): MirrorPod {
  const pod = options.serveEnvValues ? status : withoutEnvValues(status);
  const metadata = pod.metadata;
  const annotations: Record<string, string> = { ...(metadata.annotations ?? {}) };
  const hash = annotations[CONFIG_HASH_ANNOTATION];
  if (hash !== undefined) annotations[CONFIG_MIRROR_ANNOTATION] = hash;
  // Until the pod has started, it exists since podvisor first saw its manifest.
  const seen = Date.parse(annotations[CONFIG_SEEN_ANNOTATION] ?? '');
  const creationTimestamp = metadata.creationTimestamp ?? (Number.isNaN(seen) ? undefined : apiTime(new Date(seen)));
  return {
    ...pod,
    // Only what a mirror pod's metadata holds: the file's own resourceVersion, finalizers and the like mean nothing here.
    metadata: {
      name: metadata.name,
      namespace: metadata.namespace ?? 'default',
      uid: typeof metadata.uid === 'string' ? metadata.uid : '',
      ...(creationTimestamp ? { creationTimestamp } : {}),
      ...(metadata.labels ? { labels: metadata.labels } : {}),
      annotations,
      ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: node.name, uid: node.uid, controller: true }],
    },
    status: pod.status,
  };
}

/**
 * The core/v1 Event for one recorded pod event. As the kubelet's, it names the static pod by the
 * uid the kubelet gives it, its config hash (`staticUid`): that is the `kubernetes.io/config.mirror`
 * annotation, which `kubectl describe` looks events up by for a mirror pod.
 */
export function v1Event(event: PodEvent, nodeName: string, staticUid?: string): V1Event {
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name: event.name, namespace: event.involvedObject.namespace, uid: stableUuid('event', event.name), creationTimestamp: event.firstTimestamp },
    involvedObject: { apiVersion: 'v1', ...event.involvedObject, ...(staticUid ? { uid: staticUid } : {}) },
    reason: event.reason,
    message: event.message,
    source: { component: 'podvisor', host: nodeName },
    firstTimestamp: event.firstTimestamp,
    lastTimestamp: event.lastTimestamp,
    count: event.count,
    type: event.type,
    eventTime: null,
    reportingComponent: 'podvisor',
    reportingInstance: nodeName,
  };
}

