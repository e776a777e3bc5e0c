// The identity the kubelet gives a static pod, reproduced: the pod is named
// `<metadata.name>-<node name>`, carries a hash of its defaulted content (not of the file path,
// the host name, comments or whitespace), a stable uid, and the config.* annotations.
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { canonicalJson } from '../canonical-json.js';
import { applyDefaults } from './defaults.js';
import type { PodManifest } from './pod-schema.js';

export const CONFIG_HASH_ANNOTATION = 'kubernetes.io/config.hash';
export const CONFIG_SOURCE_ANNOTATION = 'kubernetes.io/config.source';
export const CONFIG_SEEN_ANNOTATION = 'kubernetes.io/config.seen';

/** Who a static pod is: shared by the pod the files ask for and the pod podman runs. */
export interface PodIdentity {
  /** `namespace/name`, the key every other part of podvisor uses. */
  key: string;
  /** The static pod's name: `<metadata.name>-<node name>`. */
  name: string;
  namespace: string;
  uid: string;
  /** The config hash of the content it was made from. */
  hash: string;
  /** The manifest file it came from. */
  source: string;
}

/** A pod as the files ask for it: defaulted, named for this node, hashed. */
export interface DesiredPod extends PodIdentity {
  /** The defaulted pod, with the static pod's name, node name and config annotations. */
  pod: PodManifest;
}

/** The node name the kubelet would use by default: the host name, lower-cased. */
export function defaultNodeName(): string {
  return hostname().toLowerCase();
}

/** The config hash of a pod's defaulted content. */
export function configHash(defaulted: PodManifest): string {
  return createHash('sha256').update(canonicalJson(defaulted)).digest('hex').slice(0, 16);
}

/** A uid in UUID form made from `parts`: the same parts always give the same uid. */
export function stableUuid(...parts: string[]): string {
  const hex = createHash('sha256').update(parts.join('\0')).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** Turns a validated manifest into the desired pod for this node. */
export function toDesiredPod(manifest: PodManifest, source: string, nodeName: string, seen: Date = new Date()): DesiredPod {
  const defaulted = applyDefaults(manifest);
  const hash = configHash(defaulted);
  const namespace = defaulted.metadata.namespace ?? 'default';
  const name = `${manifest.metadata.name}-${nodeName}`;
  const key = `${namespace}/${name}`;
  // Stable for the same content on the same node.
  const uid = stableUuid(hash, nodeName, key);
  return {
    key,
    name,
    namespace,
    uid,
    hash,
    source,
    pod: {
      ...defaulted,
      metadata: {
        ...defaulted.metadata,
        name,
        namespace,
        uid,
        annotations: {
          ...defaulted.metadata.annotations,
          [CONFIG_HASH_ANNOTATION]: hash,
          [CONFIG_SEEN_ANNOTATION]: seen.toISOString(),
          [CONFIG_SOURCE_ANNOTATION]: 'file',
        },
      },
      spec: { ...defaulted.spec, nodeName },
    },
  };
}
