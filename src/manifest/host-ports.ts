// Host ports are one per node: two pods asking for the same one (same protocol, and the same host
// address or either on every address) cannot both run. As for two pods of one name, the first
// asked for, in lexical order of files and then document order, keeps it; the other is not run
// and is told who holds the port and where it is asked for.
import type { PodManifest } from './pod-schema.js';

type Json = Record<string, unknown>;
const asObject = (value: unknown): Json => (typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : {});

/** One host port a container asks for: its hostPort, or its containerPort in a hostNetwork pod. */
export interface HostPortClaim {
  /** `ip:port/protocol`, the empty ip standing for every address. */
  key: string;
  ip: string;
  port: number;
  protocol: string;
  /** The index of the port in the container's ports. */
  index: number;
  /** False when the port is a containerPort that hostNetwork puts on the host. */
  declared: boolean;
}

/** The host ports a container (raw or validated) asks for. */
export function hostPortClaims(container: unknown, hostNetwork: boolean): HostPortClaim[] {
  const claims: HostPortClaim[] = [];
  const ports = asObject(container).ports;
  (Array.isArray(ports) ? ports : []).forEach((raw: unknown, index) => {
    const port = asObject(raw);
    // hostPort 0 is no host port; a hostNetwork pod's containerPorts are on the host anyway.
    const declared = typeof port.hostPort === 'number' && port.hostPort !== 0;
    const number = declared ? port.hostPort : hostNetwork ? port.containerPort : undefined;
    if (typeof number !== 'number') return;
    const ip = typeof port.hostIP === 'string' ? port.hostIP : '';
    const protocol = typeof port.protocol === 'string' ? port.protocol : 'TCP';
    claims.push({ key: `${ip === '0.0.0.0' ? '' : ip}:${number}/${protocol}`, ip, port: number, protocol, index, declared });
  });
  return claims;
}

/** Where a pod asks for a host port, to name it in a conflict. */
export interface HostPortSite {
  /** namespace/name of the pod. */
  podKey: string;
  /** The claim's key (`ip:port/protocol`). */
  claim: string;
  line: number;
  column: number;
  /** Field path, e.g. spec.containers[0].ports[1].hostPort. */
  field: string;
}

/** Every host port a validated pod asks for, with its container and port index. */
export function podHostPorts(pod: PodManifest): { claim: HostPortClaim; list: 'initContainers' | 'containers'; index: number }[] {
  const hostNetwork = pod.spec.hostNetwork === true;
  const out: { claim: HostPortClaim; list: 'initContainers' | 'containers'; index: number }[] = [];
  for (const list of ['initContainers', 'containers'] as const) {
    (pod.spec[list] ?? []).forEach((container, index) => {
      for (const claim of hostPortClaims(container, hostNetwork)) out.push({ claim, list, index });
    });
  }
  return out;
}

/** Host ports taken so far, and by whom. */
export class HostPortTable<Owner> {
  readonly #byPort = new Map<string, { ip: string; owner: Owner }[]>();

  /** The owner of a port this claim collides with, if any (the empty address is every address). */
  holder(claim: HostPortClaim): Owner | undefined {
    const taken = this.#byPort.get(`${claim.port}/${claim.protocol}`) ?? [];
    const ip = claim.ip === '0.0.0.0' ? '' : claim.ip;
    return taken.find((entry) => entry.ip === '' || ip === '' || entry.ip === ip)?.owner;
  }

  /** Records the claims as `owner`'s. */
  take(claims: Iterable<HostPortClaim>, owner: Owner): void {
    for (const claim of claims) {
      const slot = `${claim.port}/${claim.protocol}`;
      const list = this.#byPort.get(slot) ?? [];
      list.push({ ip: claim.ip === '0.0.0.0' ? '' : claim.ip, owner });
      this.#byPort.set(slot, list);
    }
  }
}
