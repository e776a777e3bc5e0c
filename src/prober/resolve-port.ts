// A probe's port, by number or by the name of one of the container's ports, as the kubelet
// resolves it (pkg/probe/util.go): a name is looked up first, then tried as a number.
import type { ContainerPort } from '../manifest/pod-schema.js';

export type PortResolution = { port: number } | { error: string };

/** The port number `port` stands for in a container with `ports`, or why there is none. */
export function resolveContainerPort(port: number | string, ports: readonly ContainerPort[]): PortResolution {
  let number: number;
  if (typeof port === 'number') {
    number = port;
  } else {
    const named = ports.find((candidate) => candidate.name === port);
    if (named) {
      number = named.containerPort;
    } else if (/^[0-9]+$/.test(port)) {
      // A number written as a string: the kubelet's last resort too.
      number = Number(port);
    } else {
      return { error: `port ${port} not found` };
    }
  }
  if (Number.isInteger(number) && number > 0 && number < 65536) return { port: number };
  return { error: `invalid port number: ${number}` };
}
