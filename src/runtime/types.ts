// The seam between podvisor's planning and podman: what it observes of its pods, and the
// operations it asks for. The planner depends on these types only, never on podman itself.
import type { DesiredPod, PodIdentity } from '../manifest/identity.js';

export type ContainerState = 'created' | 'running' | 'exited' | 'paused' | 'unknown';

export interface ObservedContainer {
  id: string;
  /** The container's name in the manifest. */
  name: string;
  kind: 'init' | 'app';
  state: ContainerState;
  exitCode: number | undefined;
  startedAt: Date | undefined;
  finishedAt: Date | undefined;
  image: string;
  /** True when the kernel's OOM killer ended the container's last run (asked of podman for exit 137 only). */
  oomKilled?: boolean | undefined;
  /** podman's id of the image the container was made from. */
  imageId: string;
  /** The container's main process on the host, while it runs (it shares the pod's network namespace). */
  pid: number | undefined;
}

/** A pod podman runs for podvisor, its identity read back from its labels. */
export interface ObservedPod extends PodIdentity {
  /** podman's pod id. */
  id: string;
  podmanName: string;
  gracePeriodSeconds: number;
  /** podman's infra container of the pod. */
  infraId?: string | undefined;
  /** The pod's address on podman's network, once known (not for hostNetwork pods). */
  podIP?: string | undefined;
  /** True when the pod's infra container runs (its namespaces exist). */
  infraRunning: boolean;
  containers: ObservedContainer[];
}

/** What a listing found: podvisor's pods on this node, and how many it left alone. */
export interface Observation {
  pods: ObservedPod[];
  /** podvisor-labelled pods of another node name, which this agent leaves alone. */
  foreignPods: number;
}

export interface ListOptions {
  /**
   * Ask podman for the addresses of pods not seen before (one inspect); default true. False while
   * a burst of pods is starting: each pass would cost another podman process competing with the
   * starts, and the addresses are asked for on the first pass after it.
   */
  newAddresses?: boolean;
}

/** Everything podvisor asks of a container runtime. */
export interface PodRuntime {
  /** One listing of podvisor's pods and containers (a fixed number of podman calls). */
  list(signal?: AbortSignal, options?: ListOptions): Promise<Observation>;
  /**
   * Creates a pod and takes the first step of its start: its first init container, or (with none)
   * its sidecars and app containers. Never waits for a container to exit. Returns the names started.
   */
  createPod(pod: DesiredPod, signal?: AbortSignal): Promise<string[]>;
  /**
   * The next step of an existing pod's start: the next init container that has not completed
   * (one that failed is started again), or, all completed, the named app containers (missing ones,
   * including any removed behind podvisor's back). Returns the names started.
   */
  createContainers(observed: ObservedPod, pod: DesiredPod, names: string[], signal?: AbortSignal): Promise<string[]>;
  /**
   * Stops a pod (preStop hooks, the stop signal, SIGKILL after the grace period; sidecars after
   * the app containers) and removes it and its volumes. `spec` is what the pod runs, if known.
   */
  killPod(observed: ObservedPod, gracePeriodSeconds: number, signal?: AbortSignal, spec?: DesiredPod): Promise<void>;
  /** Stops one container (a failed liveness probe): preStop, the stop signal, SIGKILL after the grace period. */
  stopContainer(observed: ObservedPod, containerId: string, gracePeriodSeconds: number, spec?: DesiredPod, signal?: AbortSignal): Promise<void>;
  /** Stops a pod's containers as killPod does, but keeps the pod (activeDeadlineSeconds). */
  stopPod(observed: ObservedPod, gracePeriodSeconds: number, signal?: AbortSignal, spec?: DesiredPod): Promise<void>;
  /** Removes the volume directories of pods whose uid is not in `keep`. */
  removeOrphanVolumes(keep: ReadonlySet<string>): Promise<void>;
  /** Starts an exited or never-started container again. */
  startContainer(observed: ObservedPod, containerId: string, signal?: AbortSignal, spec?: DesiredPod, name?: string): Promise<void>;
}
