// What the device's owner forbids a manifest to ask for, whoever wrote it: privileged containers,
// the host's namespaces, host paths outside given prefixes, added capabilities outside a list,
// images from other registries or without a digest (the config file's `policy:` section). Each
// refusal is an error at the field that asks, so the pod is not run (a running pod keeps its last
// good spec, as for any invalid file). Without a policy everything is allowed, as the kubelet
// allows a static pod everything.
//
// The checks read the raw document, as field-policy.ts does, and skip values of the wrong type:
// the schema reports those.
import { posix } from 'node:path';
import type { Path, PolicyFinding } from './field-policy.js';

export interface DevicePolicy {
  /** securityContext.privileged: true allowed. */
  privileged: boolean;
  hostNetwork: boolean;
  hostPID: boolean;
  hostIPC: boolean;
  /** hostPath volumes only at or under these (absolute, normalised); undefined allows any. */
  hostPathPrefixes?: readonly string[] | undefined;
  /** Capabilities a container may add (upper case, without CAP_); undefined allows any. */
  capabilities?: readonly string[] | undefined;
  /** Registries (host[:port], optionally with a path prefix) images may come from; undefined allows any. */
  registries?: readonly string[] | undefined;
  /** Every image must be pinned by digest (NAME@sha256:...). */
  requireDigest: boolean;
}

/** No restriction: what a device without a `policy:` section gets. */
export const OPEN_POLICY: Readonly<DevicePolicy> = { privileged: true, hostNetwork: true, hostPID: true, hostIPC: true, requireDigest: false };

/** True when `policy` forbids nothing (no need to walk documents for it). */
export function isOpenPolicy(policy: DevicePolicy): boolean {
  return policy.privileged && policy.hostNetwork && policy.hostPID && policy.hostIPC && !policy.requireDigest
    && policy.hostPathPrefixes === undefined && policy.capabilities === undefined && policy.registries === undefined;
}

/** A capability as podman and the kubelet both accept it, compared upper-case and without CAP_. */
export function normalizeCapability(name: string): string {
  return name.toUpperCase().replace(/^CAP_/, '');
}

/** A host path as compared with the prefixes: normalised, no trailing slash (".." resolved lexically). */
export function normalizeHostPath(path: string): string {
  const normal = posix.normalize(path);
  return normal.length > 1 ? normal.replace(/\/+$/, '') : normal;
}

/** True when `path` is `prefix` or below it, by whole path elements (/srv/data is not under /srv/d). */
function underPrefix(path: string, prefix: string): boolean {
  return prefix === '/' || path === prefix || path.startsWith(`${prefix}/`);
}

const DIGEST = /@[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}$/;

/**
 * The repository an image reference names, with its registry (`docker.io/library/nginx` for
 * `docker.io/nginx`), or `undefined` for a short name (`nginx`): podman resolves those through
 * its own search list (registries.conf), so which registry serves one is not in the manifest.
 */
export function imageRepository(image: string): string | undefined {
  const name = image.replace(/@.*$/, '').replace(/:[\w][\w.-]*$/, '');
  const slash = name.indexOf('/');
  if (slash === -1) return undefined;
  const domain = name.slice(0, slash);
  if (!domain.includes('.') && !domain.includes(':') && domain !== 'localhost') return undefined;
  const path = name.slice(slash + 1);
  const host = domain.toLowerCase();
  // Docker Hub's official images live under library/, as podman reads docker.io/nginx.
  return host === 'docker.io' && !path.includes('/') ? `${host}/library/${path}` : `${host}/${path}`;
}

/** True when the repository comes from `registry` (a host, or a host and a path prefix). */
function fromRegistry(repository: string, registry: string): boolean {
  return repository === registry || repository.startsWith(`${registry}/`);
}

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);
const list = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);

/** The list as the message shows it. */
const shown = (values: readonly string[]) => (values.length === 0 ? 'none' : values.join(', '));

/** One container's refusals: privileged, capabilities, its image. */
function containerRefusals(container: unknown, at: Path, policy: DevicePolicy): PolicyFinding[] {
  if (!isObject(container)) return [];
  const out: PolicyFinding[] = [];
  const refuse = (path: Path, message: string) => out.push({ path, severity: 'error', message: `refused by policy: ${message}` });
  const security = isObject(container.securityContext) ? container.securityContext : {};
  if (!policy.privileged && security.privileged === true) {
    refuse([...at, 'securityContext', 'privileged'], 'privileged containers are not allowed on this device (policy.privileged: false)');
  }
  const allowed = policy.capabilities;
  if (allowed !== undefined) {
    const added = isObject(security.capabilities) ? list(security.capabilities.add) : [];
    added.forEach((name, index) => {
      if (typeof name !== 'string' || allowed.includes(normalizeCapability(name))) return;
      refuse([...at, 'securityContext', 'capabilities', 'add', index], `capability ${name} may not be added on this device (policy.capabilities: ${shown(allowed)})`);
    });
  }
  const image = container.image;
  if (typeof image === 'string' && image !== '') {
    const registries = policy.registries;
    if (registries !== undefined) {
      const repository = imageRepository(image);
      if (repository === undefined) {
        refuse([...at, 'image'], `"${image}" is a short name, which podman may resolve through any registry it searches; name the registry (policy.registries: ${shown(registries)})`);
      } else if (!registries.some((registry) => fromRegistry(repository, registry))) {
        refuse([...at, 'image'], `${repository} is not from an allowed registry (policy.registries: ${shown(registries)})`);
      }
    }
    if (policy.requireDigest && !DIGEST.test(image)) {
      refuse([...at, 'image'], 'the image is not pinned by digest (policy.require-digest: true): write it as NAME@sha256:DIGEST');
    }
  }
  return out;
}

/** Every refusal the device's policy gives a Pod document. */
export function devicePolicyFindings(document: unknown, policy: DevicePolicy): PolicyFinding[] {
  if (isOpenPolicy(policy) || !isObject(document) || !isObject(document.spec)) return [];
  const spec = document.spec;
  const out: PolicyFinding[] = [];
  const namespaces = [
    ['hostNetwork', policy.hostNetwork, 'host-network', "the host's network namespace"],
    ['hostPID', policy.hostPID, 'host-pid', "the host's process namespace"],
    ['hostIPC', policy.hostIPC, 'host-ipc', "the host's IPC namespace"],
  ] as const;
  for (const [field, allowed, key, what] of namespaces) {
    if (!allowed && spec[field] === true) out.push({ path: ['spec', field], severity: 'error', message: `refused by policy: pods may not share ${what} on this device (policy.${key}: false)` });
  }
  for (const kind of ['initContainers', 'containers'] as const) {
    list(spec[kind]).forEach((container, index) => out.push(...containerRefusals(container, ['spec', kind, index], policy)));
  }
  const prefixes = policy.hostPathPrefixes;
  if (prefixes !== undefined) {
    list(spec.volumes).forEach((volume, index) => {
      const hostPath = isObject(volume) && isObject(volume.hostPath) ? volume.hostPath.path : undefined;
      if (typeof hostPath !== 'string' || !hostPath.startsWith('/')) return;
      const path = normalizeHostPath(hostPath);
      if (prefixes.some((prefix) => underPrefix(path, prefix))) return;
      out.push({ path: ['spec', 'volumes', index, 'hostPath', 'path'], severity: 'error', message: `refused by policy: host path ${path} is outside the allowed prefixes (policy.host-path-prefixes: ${shown(prefixes)})` });
    });
  }
  return out;
}
