// The one zod schema for the Pod fields podvisor knows. A field is here either because podvisor
// acts on it (typed precisely) or because it knows why it does not (typed loosely, and named in
// field-policy.ts with the warning or refusal it earns). Anything else is an unknown field: a
// warning, never silently dropped (see unknown-fields.ts).
import { z } from 'zod';
import { parseQuantity } from './quantity.js';

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const IANA_SVC_NAME = /^(?=.*[a-z])[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;

/** True when `name` is a DNS-1123 subdomain (pod names, namespaces' cousins). */
export function isDns1123Subdomain(name: string): boolean {
  return name.length <= 253 && DNS1123_SUBDOMAIN.test(name);
}

/** True when `name` is a DNS-1123 label (container, volume and namespace names). */
export function isDns1123Label(name: string): boolean {
  return name.length <= 63 && DNS1123_LABEL.test(name);
}

const dnsLabel = z.string().refine(isDns1123Label, {
  message: 'must be a DNS-1123 label: at most 63 lower-case letters, digits or "-", starting and ending with a letter or digit',
});
const dnsSubdomain = z.string().refine(isDns1123Subdomain, {
  message: 'must be a DNS-1123 subdomain: at most 253 lower-case letters, digits, "-" or ".", starting and ending with a letter or digit',
});
const port = z.number().int().min(1, 'must be between 1 and 65535').max(65535, 'must be between 1 and 65535');
const nonNegativeInt = z.number().int().min(0);
/** A port by number or by the name of a containerPort (probes and hooks). */
const intOrString = z.union([port, z.string().regex(IANA_SVC_NAME, 'must be a port number or an IANA service name')]);

export const quantity = z.union([z.string(), z.number()]).refine((value) => parseQuantity(value) !== undefined, {
  message: 'must be a Kubernetes quantity such as 500m, 2, 128Mi or 1G',
});
const loose = z.unknown();
const stringMap = z.record(z.string(), z.string());

const objectFieldSelector = z.object({ apiVersion: z.string().optional(), fieldPath: z.string() });
const resourceFieldSelector = z.object({
  containerName: z.string().optional(),
  resource: z.string(),
  divisor: quantity.optional(),
});

const envVar = z.object({
  name: z.string().min(1).regex(ENV_NAME, 'must be a valid environment variable name'),
  value: z.string().optional(),
  valueFrom: z
    .object({
      fieldRef: objectFieldSelector.optional(),
      resourceFieldRef: resourceFieldSelector.optional(),
      configMapKeyRef: loose.optional(),
      secretKeyRef: loose.optional(),
      fileKeyRef: loose.optional(),
    })
    .optional(),
});

const containerPort = z.object({
  name: z.string().regex(IANA_SVC_NAME, 'must be an IANA service name (at most 15 characters)').max(15).optional(),
  containerPort: port,
  hostPort: port.optional(),
  hostIP: z.string().optional(),
  protocol: z.enum(['TCP', 'UDP', 'SCTP']).optional(),
});

const volumeMount = z.object({
  name: z.string().min(1),
  mountPath: z.string().min(1).startsWith('/', 'must be an absolute path'),
  readOnly: z.boolean().optional(),
  subPath: z.string().optional(),
  subPathExpr: loose.optional(),
  mountPropagation: loose.optional(),
  recursiveReadOnly: loose.optional(),
});

const resources = z.object({
  limits: z.record(z.string(), quantity).optional(),
  requests: z.record(z.string(), quantity).optional(),
  claims: loose.optional(),
});

const capabilities = z.object({ add: z.array(z.string()).optional(), drop: z.array(z.string()).optional() });

const containerSecurityContext = z.object({
  privileged: z.boolean().optional(),
  runAsUser: nonNegativeInt.optional(),
  runAsGroup: nonNegativeInt.optional(),
  runAsNonRoot: z.boolean().optional(),
  capabilities: capabilities.optional(),
  readOnlyRootFilesystem: z.boolean().optional(),
  allowPrivilegeEscalation: z.boolean().optional(),
  seccompProfile: loose.optional(),
  appArmorProfile: loose.optional(),
  seLinuxOptions: loose.optional(),
  procMount: loose.optional(),
  windowsOptions: loose.optional(),
});

const podSecurityContext = z.object({
  runAsUser: nonNegativeInt.optional(),
  runAsGroup: nonNegativeInt.optional(),
  runAsNonRoot: z.boolean().optional(),
  supplementalGroups: z.array(nonNegativeInt).optional(),
  fsGroup: loose.optional(),
  fsGroupChangePolicy: loose.optional(),
  supplementalGroupsPolicy: loose.optional(),
  sysctls: loose.optional(),
  seccompProfile: loose.optional(),
  appArmorProfile: loose.optional(),
  seLinuxOptions: loose.optional(),
  seLinuxChangePolicy: loose.optional(),
  windowsOptions: loose.optional(),
});

// Probes and lifecycle hooks are typed now so a bad one is an error at the right line; they are
// carried out by the prober (see field-policy.ts for what is acted on today).
const httpGet = z.object({
  path: z.string().optional(),
  port: intOrString,
  host: z.string().optional(),
  scheme: z.enum(['HTTP', 'HTTPS']).optional(),
  httpHeaders: z.array(z.object({ name: z.string(), value: z.string() })).optional(),
});
const execAction = z.object({ command: z.array(z.string()).min(1) });
const tcpSocket = z.object({ port: intOrString, host: z.string().optional() });
const probe = z.object({
  exec: execAction.optional(),
  httpGet: httpGet.optional(),
  tcpSocket: tcpSocket.optional(),
  grpc: z.object({ port, service: z.string().optional() }).optional(),
  initialDelaySeconds: nonNegativeInt.optional(),
  timeoutSeconds: z.number().int().min(1).optional(),
  periodSeconds: z.number().int().min(1).optional(),
  successThreshold: z.number().int().min(1).optional(),
  failureThreshold: z.number().int().min(1).optional(),
  terminationGracePeriodSeconds: nonNegativeInt.optional(),
});
const lifecycleHandler = z.object({
  exec: execAction.optional(),
  httpGet: httpGet.optional(),
  tcpSocket: tcpSocket.optional(),
  sleep: z.object({ seconds: nonNegativeInt }).optional(),
});

const container = z.object({
  name: dnsLabel,
  image: z.string().min(1),
  imagePullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']).optional(),
  command: z.array(z.string()).optional(),
  args: z.array(z.string()).optional(),
  workingDir: z.string().optional(),
  env: z.array(envVar).optional(),
  envFrom: loose.optional(),
  ports: z.array(containerPort).optional(),
  volumeMounts: z.array(volumeMount).optional(),
  volumeDevices: loose.optional(),
  resources: resources.optional(),
  resizePolicy: loose.optional(),
  securityContext: containerSecurityContext.optional(),
  restartPolicy: z.enum(['Always']).optional(),
  livenessProbe: probe.optional(),
  readinessProbe: probe.optional(),
  startupProbe: probe.optional(),
  lifecycle: z
    .object({ postStart: lifecycleHandler.optional(), preStop: lifecycleHandler.optional(), stopSignal: loose.optional() })
    .optional(),
  terminationMessagePath: z.string().optional(),
  terminationMessagePolicy: z.enum(['File', 'FallbackToLogsOnError']).optional(),
  stdin: z.boolean().optional(),
  stdinOnce: z.boolean().optional(),
  tty: z.boolean().optional(),
});

const hostPathType = z.enum(['', 'DirectoryOrCreate', 'Directory', 'FileOrCreate', 'File', 'Socket', 'CharDevice', 'BlockDevice']);

const downwardApiFile = z.object({
  path: z.string().min(1),
  fieldRef: objectFieldSelector.optional(),
  resourceFieldRef: resourceFieldSelector.optional(),
  mode: z.number().int().min(0).max(0o777).optional(),
});

const volume = z.object({
  name: dnsLabel,
  hostPath: z.object({ path: z.string().min(1).startsWith('/', 'must be an absolute path'), type: hostPathType.optional() }).optional(),
  emptyDir: z.object({ medium: z.enum(['', 'Memory']).optional(), sizeLimit: quantity.optional() }).optional(),
  downwardAPI: z.object({ items: z.array(downwardApiFile).optional(), defaultMode: z.number().int().optional() }).optional(),
  configMap: loose.optional(),
  secret: loose.optional(),
  projected: loose.optional(),
  persistentVolumeClaim: loose.optional(),
  ephemeral: loose.optional(),
  image: loose.optional(),
  csi: loose.optional(),
  nfs: loose.optional(),
  iscsi: loose.optional(),
  awsElasticBlockStore: loose.optional(),
  gcePersistentDisk: loose.optional(),
  azureDisk: loose.optional(),
  azureFile: loose.optional(),
  cephfs: loose.optional(),
  cinder: loose.optional(),
  fc: loose.optional(),
  flexVolume: loose.optional(),
  flocker: loose.optional(),
  gitRepo: loose.optional(),
  glusterfs: loose.optional(),
  photonPersistentDisk: loose.optional(),
  portworxVolume: loose.optional(),
  quobyte: loose.optional(),
  rbd: loose.optional(),
  scaleIO: loose.optional(),
  storageos: loose.optional(),
  vsphereVolume: loose.optional(),
});

const metadata = z.object({
  name: dnsSubdomain,
  namespace: dnsLabel.optional(),
  labels: stringMap.optional(),
  annotations: stringMap.optional(),
  uid: loose.optional(),
  generateName: loose.optional(),
  creationTimestamp: loose.optional(),
  resourceVersion: loose.optional(),
  generation: loose.optional(),
  ownerReferences: loose.optional(),
  finalizers: loose.optional(),
  managedFields: loose.optional(),
  selfLink: loose.optional(),
  deletionTimestamp: loose.optional(),
  deletionGracePeriodSeconds: loose.optional(),
});

export const podSpecSchema = z.object({
  containers: z.array(container).min(1, 'a pod needs at least one container'),
  initContainers: z.array(container).optional(),
  ephemeralContainers: loose.optional(),
  volumes: z.array(volume).optional(),
  restartPolicy: z.enum(['Always', 'OnFailure', 'Never']).optional(),
  terminationGracePeriodSeconds: nonNegativeInt.optional(),
  activeDeadlineSeconds: z.number().int().min(1).optional(),
  hostNetwork: z.boolean().optional(),
  hostPID: z.boolean().optional(),
  hostIPC: z.boolean().optional(),
  shareProcessNamespace: z.boolean().optional(),
  hostname: dnsLabel.optional(),
  subdomain: loose.optional(),
  setHostnameAsFQDN: loose.optional(),
  hostAliases: z.array(z.object({ ip: z.string(), hostnames: z.array(z.string()).optional() })).optional(),
  securityContext: podSecurityContext.optional(),
  dnsPolicy: z.enum(['ClusterFirst', 'ClusterFirstWithHostNet', 'Default', 'None']).optional(),
  dnsConfig: loose.optional(),
  nodeName: loose.optional(),
  nodeSelector: loose.optional(),
  affinity: loose.optional(),
  tolerations: loose.optional(),
  topologySpreadConstraints: loose.optional(),
  schedulingGates: loose.optional(),
  schedulerName: loose.optional(),
  priorityClassName: loose.optional(),
  priority: loose.optional(),
  preemptionPolicy: loose.optional(),
  runtimeClassName: loose.optional(),
  overhead: loose.optional(),
  readinessGates: loose.optional(),
  os: loose.optional(),
  hostUsers: loose.optional(),
  serviceAccountName: loose.optional(),
  serviceAccount: loose.optional(),
  automountServiceAccountToken: loose.optional(),
  imagePullSecrets: loose.optional(),
  enableServiceLinks: loose.optional(),
  resources: loose.optional(),
  resourceClaims: loose.optional(),
  hostnameOverride: loose.optional(),
});

export const podSchema = z.object({
  apiVersion: z.literal('v1', { message: 'must be "v1" for a Pod' }),
  kind: z.literal('Pod'),
  metadata,
  spec: podSpecSchema,
  status: loose.optional(),
});

export type PodManifest = z.infer<typeof podSchema>;
export type PodSpec = PodManifest['spec'];
export type Container = z.infer<typeof container>;
export type Volume = z.infer<typeof volume>;
export type VolumeMount = z.infer<typeof volumeMount>;
export type EnvVar = z.infer<typeof envVar>;
export type ContainerPort = z.infer<typeof containerPort>;
export type Probe = z.infer<typeof probe>;
export type HostPathType = z.infer<typeof hostPathType>;
