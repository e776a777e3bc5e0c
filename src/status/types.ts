// The core/v1 status types podvisor serves, field for field as the API spells them, so that what a
// reader gets is a Pod status in the kubelet's own words. Only the fields podvisor fills are here.
// Times are RFC 3339 strings with whole seconds (metav1.Time on the wire). Optional fields are the
// API's `omitempty` ones: absent, never an empty string, until they are known.

export type PodPhase = 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';

export type PodQOSClass = 'Guaranteed' | 'Burstable' | 'BestEffort';

export type ConditionStatus = 'True' | 'False' | 'Unknown';

/** The pod conditions the kubelet owns, in the order it appends them. */
export type PodConditionType = 'PodReadyToStartContainers' | 'Initialized' | 'Ready' | 'ContainersReady' | 'PodScheduled';

export interface ContainerStateWaiting {
  /** Why the container is not running yet: ContainerCreating, PodInitializing, CrashLoopBackOff, ErrImagePull... */
  reason?: string;
  message?: string;
}

export interface ContainerStateRunning {
  startedAt?: string;
}

export interface ContainerStateTerminated {
  exitCode: number;
  signal?: number;
  /** Completed, Error, OOMKilled, ContainerCannotRun... */
  reason?: string;
  message?: string;
  startedAt?: string;
  finishedAt?: string;
  containerID?: string;
}

/** At most one of the three is set; none set is a state the kubelet treats as unknown. */
export interface ContainerState {
  waiting?: ContainerStateWaiting;
  running?: ContainerStateRunning;
  terminated?: ContainerStateTerminated;
}

export interface ContainerStatus {
  name: string;
  state: ContainerState;
  /** The previous run's end (`terminated`), kept while the container waits to be started again. */
  lastState: ContainerState;
  /**
   * Passes its readiness probe (or runs and has none). For a regular init container the kubelet
   * sets it once the container has exited 0: that is what "initialized" reads.
   */
  ready: boolean;
  /** Passed its startup probe (or runs and has none); the API's `*bool`, absent when not known. */
  started?: boolean;
  restartCount: number;
  image: string;
  imageID: string;
  /** `<runtime>://<id>`; absent until the container is created. */
  containerID?: string;
}

export interface PodCondition {
  type: PodConditionType;
  status: ConditionStatus;
  /** A CamelCase word for the last transition (ContainersNotReady, PodCompleted...). */
  reason?: string;
  /** A sentence for people. */
  message?: string;
  lastTransitionTime: string;
  /** The kubelet never sets it on the conditions it owns. */
  lastProbeTime: null;
}

export interface HostIP {
  ip: string;
}

export interface PodIP {
  ip: string;
}

export interface PodStatus {
  phase: PodPhase;
  conditions: PodCondition[];
  message?: string;
  reason?: string;
  hostIP?: string;
  hostIPs?: HostIP[];
  podIP?: string;
  podIPs?: PodIP[];
  /** When the kubelet first acknowledged the pod (before any image is pulled). */
  startTime?: string;
  qosClass: PodQOSClass;
  initContainerStatuses: ContainerStatus[];
  containerStatuses: ContainerStatus[];
}
