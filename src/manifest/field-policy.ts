// What podvisor does with each Pod field it knows but does not carry out: a warning that names
// the path and why (the pod still runs), or a refusal (the document is an error), as the kubelet
// refuses static pods that refer to API objects. Fields absent from both lists and from the
// schema are unknown (unknown-fields.ts).

export type Path = (string | number)[];

export interface PolicyFinding {
  path: Path;
  severity: 'error' | 'warning';
  message: string;
}

/** podvisor's own annotation: per pod, the seconds a replaced spec has to be proven Ready; 0 turns rollback off. */
export const ROLLBACK_AFTER_ANNOTATION = 'podvisor.io/rollback-after-seconds';

/** The seconds a rollback-after annotation says: a whole number, 0 or more; undefined when it is not one ("abc", "-5", "2m"). */
export function rollbackAfterSeconds(value: unknown): number | undefined {
  return typeof value === 'string' && /^[0-9]{1,9}$/.test(value) ? Number(value) : undefined;
}

const NO_API = 'a static pod cannot refer to API objects: there is no API server to read it from';
const NO_SCHEDULER = 'ignored: no scheduler on a static pod';

/** Pod-spec fields refused outright, with the reason. */
const REFUSED_SPEC: Record<string, string> = {
  serviceAccountName: `refused: ${NO_API} (ServiceAccount)`,
  serviceAccount: `refused: ${NO_API} (ServiceAccount)`,
  resourceClaims: `refused: ${NO_API} (ResourceClaim)`,
  ephemeralContainers: 'refused: ephemeral containers are added through the API, never in a manifest',
};

/** Pod-spec fields podvisor does not act on, with what the operator should know. */
const IGNORED_SPEC: Record<string, string> = {
  nodeName: 'ignored: a static pod always runs on this node',
  nodeSelector: NO_SCHEDULER,
  affinity: NO_SCHEDULER,
  tolerations: NO_SCHEDULER,
  topologySpreadConstraints: NO_SCHEDULER,
  schedulingGates: NO_SCHEDULER,
  schedulerName: NO_SCHEDULER,
  priorityClassName: 'ignored: no scheduler or eviction on a static pod',
  priority: 'ignored: no scheduler or eviction on a static pod',
  preemptionPolicy: NO_SCHEDULER,
  runtimeClassName: 'ignored: podman runs every container with its configured OCI runtime',
  overhead: 'ignored: no RuntimeClass overhead under podman',
  readinessGates: 'ignored: no controller sets custom readiness conditions on a static pod',
  os: 'ignored: containers run on this host\'s operating system',
  hostUsers: 'ignored: user namespaces are not set up by podvisor yet',
  subdomain: 'ignored: no cluster DNS on a static pod',
  setHostnameAsFQDN: 'ignored: no cluster DNS on a static pod',
  dnsPolicy: 'ignored: containers use podman\'s DNS set-up (the host\'s resolvers)',
  dnsConfig: 'ignored: containers use podman\'s DNS set-up (the host\'s resolvers)',
  automountServiceAccountToken: 'ignored: no service account token on a static pod',
  imagePullSecrets: 'ignored: no Secrets to read; podman\'s own registry credentials (auth.json) are used',
  enableServiceLinks: 'ignored: no Services, so no service environment variables',
  resources: 'ignored: pod-level resources are not enforced yet; set container resources',
  hostnameOverride: 'ignored: the pod\'s hostname is its name (or spec.hostname)',
  hostIPC: 'ignored: podman pods do not share the host IPC namespace yet',
};

const IGNORED_POD_SECURITY: Record<string, string> = {
  fsGroup: 'ignored: volume ownership is not changed by podvisor',
  fsGroupChangePolicy: 'ignored: volume ownership is not changed by podvisor',
  supplementalGroupsPolicy: 'ignored: podman merges supplemental groups with the image\'s',
  sysctls: 'ignored: sysctls are not set by podvisor yet',
  appArmorProfile: 'ignored: podman\'s default AppArmor profile applies',
  seLinuxOptions: 'ignored: podman\'s default SELinux labels apply',
  seLinuxChangePolicy: 'ignored: podman\'s default SELinux labels apply',
  windowsOptions: 'ignored: not a Windows node',
};

const IGNORED_CONTAINER: Record<string, string> = {
  resizePolicy: 'ignored: in-place resize needs the API server',
  volumeDevices: 'ignored: raw block volumes need a PersistentVolumeClaim',
  terminationMessagePath: 'ignored: termination messages are not collected yet',
  terminationMessagePolicy: 'ignored: termination messages are not collected yet',
  stdin: 'ignored: containers run detached, with no attached stdin',
  stdinOnce: 'ignored: containers run detached, with no attached stdin',
};

const IGNORED_CONTAINER_SECURITY: Record<string, string> = {
  appArmorProfile: 'ignored: podman\'s default AppArmor profile applies',
  seLinuxOptions: 'ignored: podman\'s default SELinux labels apply',
  procMount: 'ignored: podman\'s default /proc masking applies',
  windowsOptions: 'ignored: not a Windows node',
};

const REFUSED_VOLUME: Record<string, string> = {
  configMap: `refused: ${NO_API} (ConfigMap); use a hostPath volume`,
  secret: `refused: ${NO_API} (Secret); use a hostPath volume`,
  projected: `refused: ${NO_API} (projected sources); use hostPath or downwardAPI`,
  persistentVolumeClaim: `refused: ${NO_API} (PersistentVolumeClaim); use a hostPath volume`,
  ephemeral: `refused: ${NO_API} (generic ephemeral volumes create PersistentVolumeClaims)`,
  image: 'refused: image volumes are not supported by podvisor yet',
};

const ALL_KEYS_OF_VOLUME_SOURCES = ['hostPath', 'emptyDir', 'downwardAPI'];

/** Values of ignored fields that ask for nothing podvisor leaves undone: no warning for them. */
const HARMLESS: Record<string, readonly unknown[]> = {
  hostIPC: [false],
  enableServiceLinks: [true, false],
  automountServiceAccountToken: [false],
  dnsPolicy: ['ClusterFirst', 'ClusterFirstWithHostNet', 'Default'],
  hostUsers: [true],
  setHostnameAsFQDN: [false],
  stdin: [false],
  stdinOnce: [false],
  terminationMessagePath: ['/dev/termination-log'],
  terminationMessagePolicy: ['File'],
  // system-node-critical is carried out (the OOM score, podman-runtime.ts); podvisor evicts
  // nothing, so system-cluster-critical asks for nothing more of a static pod.
  priorityClassName: ['system-node-critical', 'system-cluster-critical'],
};

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);
const present = (object: Json, key: string) => object[key] !== undefined && object[key] !== null;

/** Applies one table to an object: a finding for each key present. */
function applyTable(object: unknown, at: Path, table: Record<string, string>, severity: PolicyFinding['severity']): PolicyFinding[] {
  if (!isObject(object)) return [];
  return Object.entries(table)
    .filter(([key]) => present(object, key) && !(HARMLESS[key] ?? []).includes(object[key]))
    .map(([key, message]) => ({ path: [...at, key], severity, message }));
}

/** A Localhost seccomp profile is not loaded: podman's default applies (RuntimeDefault and Unconfined are carried out). */
function seccompFindings(context: unknown, at: Path): PolicyFinding[] {
  const profile = isObject(context) && isObject(context.seccompProfile) ? context.seccompProfile : undefined;
  if (profile?.type !== 'Localhost') return [];
  return [{ path: [...at, 'seccompProfile'], severity: 'warning', message: 'ignored: Localhost seccomp profiles are not loaded by podvisor yet; podman\'s default profile applies' }];
}

/** The policy findings of one container (app or init). */
function containerFindings(container: unknown, at: Path): PolicyFinding[] {
  if (!isObject(container)) return [];
  const findings = [
    ...applyTable(container, at, IGNORED_CONTAINER, 'warning'),
    ...applyTable(container.securityContext, [...at, 'securityContext'], IGNORED_CONTAINER_SECURITY, 'warning'),
    ...seccompFindings(container.securityContext, [...at, 'securityContext']),
  ];
  if (present(container, 'envFrom')) {
    findings.push({ path: [...at, 'envFrom'], severity: 'error', message: `refused: ${NO_API} (ConfigMap or Secret); list env values instead` });
  }
  const lifecycle = isObject(container.lifecycle) ? container.lifecycle : {};
  if (present(lifecycle, 'stopSignal')) findings.push({ path: [...at, 'lifecycle', 'stopSignal'], severity: 'warning', message: 'ignored: the image\'s stop signal (or SIGTERM) is sent' });
  for (const hook of ['postStart', 'preStop']) {
    const handler = isObject(lifecycle[hook]) ? lifecycle[hook] : {};
    if (present(handler, 'tcpSocket')) findings.push({ path: [...at, 'lifecycle', hook, 'tcpSocket'], severity: 'warning', message: 'ignored: tcpSocket hooks are deprecated and never run, as in the kubelet' });
  }
  if (present(container, 'tty') && container.tty === true) {
    findings.push({ path: [...at, 'tty'], severity: 'warning', message: 'ignored: containers run detached, with no terminal' });
  }
  const env = Array.isArray(container.env) ? container.env : [];
  env.forEach((variable, index) => {
    const from = isObject(variable) && isObject(variable.valueFrom) ? variable.valueFrom : undefined;
    if (!from) return;
    const where = [...at, 'env', index, 'valueFrom'];
    if (present(from, 'configMapKeyRef')) findings.push({ path: [...where, 'configMapKeyRef'], severity: 'error', message: `refused: ${NO_API} (ConfigMap)` });
    if (present(from, 'secretKeyRef')) findings.push({ path: [...where, 'secretKeyRef'], severity: 'error', message: `refused: ${NO_API} (Secret)` });
    if (present(from, 'fileKeyRef')) findings.push({ path: [...where, 'fileKeyRef'], severity: 'error', message: 'refused: fileKeyRef (the alpha EnvFiles feature) is not supported by podvisor yet' });
  });
  const mounts = Array.isArray(container.volumeMounts) ? container.volumeMounts : [];
  mounts.forEach((mount, index) => {
    if (!isObject(mount)) return;
    const where = [...at, 'volumeMounts', index];
    if (present(mount, 'subPathExpr')) findings.push({ path: [...where, 'subPathExpr'], severity: 'error', message: 'refused: subPathExpr is not supported by podvisor yet; use subPath' });
    if (present(mount, 'mountPropagation') && mount.mountPropagation !== 'None') findings.push({ path: [...where, 'mountPropagation'], severity: 'warning', message: 'ignored: mounts are private' });
    if (present(mount, 'recursiveReadOnly')) findings.push({ path: [...where, 'recursiveReadOnly'], severity: 'warning', message: 'ignored: readOnly applies to the mount itself' });
  });
  const resources = isObject(container.resources) ? container.resources : undefined;
  for (const kind of ['limits', 'requests'] as const) {
    const list = resources && isObject(resources[kind]) ? resources[kind] : {};
    for (const name of Object.keys(list)) {
      if (name === 'cpu' || name === 'memory') continue;
      findings.push({ path: [...at, 'resources', kind, name], severity: 'warning', message: `ignored: only cpu and memory ${kind} are enforced` });
    }
  }
  if (resources && present(resources, 'claims')) findings.push({ path: [...at, 'resources', 'claims'], severity: 'error', message: `refused: ${NO_API} (ResourceClaim)` });
  return findings;
}

/** Every warning and refusal the policy gives a Pod document (already known to be an object). */
export function policyFindings(document: unknown): PolicyFinding[] {
  if (!isObject(document) || !isObject(document.spec)) return [];
  const spec = document.spec;
  const findings: PolicyFinding[] = [
    ...applyTable(spec, ['spec'], REFUSED_SPEC, 'error'),
    ...applyTable(spec, ['spec'], IGNORED_SPEC, 'warning'),
    ...applyTable(spec.securityContext, ['spec', 'securityContext'], IGNORED_POD_SECURITY, 'warning'),
    ...seccompFindings(spec.securityContext, ['spec', 'securityContext']),
  ];
  for (const list of ['initContainers', 'containers'] as const) {
    const containers = Array.isArray(spec[list]) ? spec[list] : [];
    containers.forEach((container, index) => findings.push(...containerFindings(container, ['spec', list, index])));
  }
  const volumes = Array.isArray(spec.volumes) ? spec.volumes : [];
  volumes.forEach((volume, index) => {
    if (!isObject(volume)) return;
    const at = ['spec', 'volumes', index];
    findings.push(...applyTable(volume, at, REFUSED_VOLUME, 'error'));
    const sources = Object.keys(volume).filter((key) => key !== 'name' && present(volume, key));
    const others = sources.filter((key) => !ALL_KEYS_OF_VOLUME_SOURCES.includes(key) && !(key in REFUSED_VOLUME));
    for (const key of others) {
      findings.push({ path: [...at, key], severity: 'error', message: `refused: ${key} volumes need a volume plugin that podvisor does not have; use hostPath` });
    }
    if (sources.length > 1) findings.push({ path: at, severity: 'error', message: `must have exactly one volume source, found ${sources.join(', ')}` });
    if (sources.length === 0) findings.push({ path: at, severity: 'error', message: 'must have a volume source (hostPath, emptyDir or downwardAPI)' });
  });
  const annotations = isObject(document.metadata) && isObject(document.metadata.annotations) ? document.metadata.annotations : {};
  for (const key of Object.keys(annotations)) {
    if (key.startsWith('seccomp.security.alpha.kubernetes.io/') || key.startsWith('container.apparmor.security.beta.kubernetes.io/')) {
      findings.push({ path: ['metadata', 'annotations', key], severity: 'warning', message: 'ignored: podman\'s default security profiles apply' });
    }
    // A warning, not an error: annotations are free-form to Kubernetes, and the pod runs as well with the default window.
    if (key === ROLLBACK_AFTER_ANNOTATION && rollbackAfterSeconds(annotations[key]) === undefined) {
      findings.push({ path: ['metadata', 'annotations', key], severity: 'warning', message: `ignored: must be a whole number of seconds, 0 or more (0 turns rollback off), got ${JSON.stringify(annotations[key])}; the agent's default (rollback-after) applies` });
    }
  }
  return findings;
}
