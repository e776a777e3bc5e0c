// The one zod schema for the Pod fields podvisor knows. A field is here either because podvisor
// acts on it (typed precisely) or because it knows why it does not (typed only as the API types
// it, and named in field-policy.ts with the warning or refusal it earns). Anything else is an
// unknown field: a warning, never silently dropped (see unknown-fields.ts).
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

const QUANTITY_EXAMPLE = 'must be a Kubernetes quantity such as 500m, 2, 128Mi or 1G';
/** A quantity, by string or number (an infinite one is refused by validate.ts's walk of all values). */
export const quantity = z.union([z.string(), z.number()]).check((context) => {
  if (parseQuantity(context.value) === undefined) context.issues.push({ code: 'custom', input: context.value, message: QUANTITY_EXAMPLE });
});
/** Resource amounts (limits, requests, sizeLimit): as the API server, never negative. */
const nonNegativeQuantity = quantity.check((context) => {
  const parsed = parseQuantity(context.value);
  if (parsed !== undefined && parsed < 0) context.issues.push({ code: 'custom', input: context.value, message: 'must be greater than or equal to 0' });
});
const FILE_MODE = 'must be a number between 0 and 0777 (octal), both inclusive';
/** A file mode: YAML 1.1 reads `0644` as octal (420), as the kubelet's parser does. */
const fileMode = z.number().int(FILE_MODE).min(0, FILE_MODE).max(0o777, FILE_MODE);
/** A path inside a volume: relative, without `..` elements, not starting with `..` (ValidateLocalNonReservedPath). */
const volumeRelativePath = z.string().min(1).check((context) => {
  const path = context.value;
  if (path.startsWith('/')) context.issues.push({ code: 'custom', input: path, message: 'must be a relative path' });
  else if (path.split('/').includes('..')) context.issues.push({ code: 'custom', input: path, message: "must not contain '..'" });
  else if (path.startsWith('..')) context.issues.push({ code: 'custom', input: path, message: "must not start with '..'" });
});
const stringMap = z.record(z.string(), z.string());
// Fields podvisor does not act on still have the API's types: a wrong type there is refused by
// the kubelet's decoder, so it is an error here too (null is unset, as in Go's JSON decoding).
const anyString = z.string().nullable();
const anyBoolean = z.boolean().nullable();
const anyInteger = z.number().int().nullable();
const anyList = z.array(z.unknown()).nullable();
const anyObject = z.record(z.string(), z.unknown()).nullable();
const anyStringMap = z.record(z.string(), z.string()).nullable();

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
      configMapKeyRef: anyObject.optional(),
      secretKeyRef: anyObject.optional(),
      fileKeyRef: anyObject.optional(),
    })
    .optional(),
});

const containerPort = z.object({
  name: z.string().regex(IANA_SVC_NAME, 'must be an IANA service name (at most 15 characters)').max(15).optional(),
  containerPort: port,
  // hostPort 0 is no host port to the API server: it reads as unset, not as an error.
  hostPort: z.number().int('must be an integer').min(0, 'must be between 1 and 65535').max(65535, 'must be between 1 and 65535').transform((value) => (value === 0 ? undefined : value)).optional(),
  hostIP: z.string().optional(),
  protocol: z.enum(['TCP', 'UDP', 'SCTP']).optional(),
});

const volumeMount = z.object({
  name: z.string().min(1),
  mountPath: z.string().min(1).startsWith('/', 'must be an absolute path'),
  readOnly: z.boolean().optional(),
  subPath: z.string().optional(),
  subPathExpr: anyString.optional(),
  mountPropagation: anyString.optional(),
  recursiveReadOnly: anyString.optional(),
});

const resources = z.object({
  limits: z.record(z.string(), nonNegativeQuantity).optional(),
  requests: z.record(z.string(), nonNegativeQuantity).optional(),
  claims: anyList.optional(),
});

const capabilities = z.object({ add: z.array(z.string()).optional(), drop: z.array(z.string()).optional() });

// Typed because podvisor carries it out (RuntimeDefault, Unconfined); the API requires `type`.
const seccompProfile = z.object({ type: z.enum(['RuntimeDefault', 'Unconfined', 'Localhost']), localhostProfile: z.string().optional() });

const containerSecurityContext = z.object({
  privileged: z.boolean().optional(),
  runAsUser: nonNegativeInt.optional(),
  runAsGroup: nonNegativeInt.optional(),
  runAsNonRoot: z.boolean().optional(),
  capabilities: capabilities.optional(),
  readOnlyRootFilesystem: z.boolean().optional(),
  allowPrivilegeEscalation: z.boolean().optional(),
  seccompProfile: seccompProfile.optional(),
  appArmorProfile: anyObject.optional(),
  seLinuxOptions: anyObject.optional(),
  procMount: anyString.optional(),
  windowsOptions: anyObject.optional(),
});

const podSecurityContext = z.object({
  runAsUser: nonNegativeInt.optional(),
  runAsGroup: nonNegativeInt.optional(),
  runAsNonRoot: z.boolean().optional(),
  supplementalGroups: z.array(nonNegativeInt).optional(),
  fsGroup: anyInteger.optional(),
  fsGroupChangePolicy: anyString.optional(),
  supplementalGroupsPolicy: anyString.optional(),
  sysctls: anyList.optional(),
  seccompProfile: seccompProfile.optional(),
  appArmorProfile: anyObject.optional(),
  seLinuxOptions: anyObject.optional(),
  seLinuxChangePolicy: anyString.optional(),
  windowsOptions: anyObject.optional(),
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
  envFrom: anyList.optional(),
  ports: z.array(containerPort).optional(),
  volumeMounts: z.array(volumeMount).optional(),
  volumeDevices: anyList.optional(),
  resources: resources.optional(),
  resizePolicy: anyList.optional(),
  securityContext: containerSecurityContext.optional(),
  restartPolicy: z.enum(['Always']).optional(),
  livenessProbe: probe.optional(),
  readinessProbe: probe.optional(),
  startupProbe: probe.optional(),
  lifecycle: z
    .object({ postStart: lifecycleHandler.optional(), preStop: lifecycleHandler.optional(), stopSignal: anyString.optional() })
    .optional(),
  terminationMessagePath: z.string().optional(),
  terminationMessagePolicy: z.enum(['File', 'FallbackToLogsOnError']).optional(),
  stdin: z.boolean().optional(),
  stdinOnce: z.boolean().optional(),
  tty: z.boolean().optional(),
});

const hostPathType = z.enum(['', 'DirectoryOrCreate', 'Directory', 'FileOrCreate', 'File', 'Socket', 'CharDevice', 'BlockDevice']);

const downwardApiFile = z.object({
  path: volumeRelativePath,
  fieldRef: objectFieldSelector.optional(),
  resourceFieldRef: resourceFieldSelector.optional(),
  mode: fileMode.optional(),
});

const volume = z.object({
  name: dnsLabel,
  hostPath: z.object({ path: z.string().min(1).startsWith('/', 'must be an absolute path'), type: hostPathType.optional() }).optional(),
  emptyDir: z.object({ medium: z.enum(['', 'Memory']).optional(), sizeLimit: nonNegativeQuantity.optional() }).optional(),
  downwardAPI: z.object({ items: z.array(downwardApiFile).optional(), defaultMode: fileMode.optional() }).optional(),
  configMap: anyObject.optional(),
  secret: anyObject.optional(),
  projected: anyObject.optional(),
  persistentVolumeClaim: anyObject.optional(),
  ephemeral: anyObject.optional(),
  image: anyObject.optional(),
  csi: anyObject.optional(),
  nfs: anyObject.optional(),
  iscsi: anyObject.optional(),
  awsElasticBlockStore: anyObject.optional(),
  gcePersistentDisk: anyObject.optional(),
  azureDisk: anyObject.optional(),
  azureFile: anyObject.optional(),
  cephfs: anyObject.optional(),
  cinder: anyObject.optional(),
  fc: anyObject.optional(),
  flexVolume: anyObject.optional(),
  flocker: anyObject.optional(),
  gitRepo: anyObject.optional(),
  glusterfs: anyObject.optional(),
  photonPersistentDisk: anyObject.optional(),
  portworxVolume: anyObject.optional(),
  quobyte: anyObject.optional(),
  rbd: anyObject.optional(),
  scaleIO: anyObject.optional(),
  storageos: anyObject.optional(),
  vsphereVolume: anyObject.optional(),
});

const metadata = z.object({
  name: dnsSubdomain,
  namespace: dnsLabel.optional(),
  labels: stringMap.optional(),
  annotations: stringMap.optional(),
  uid: anyString.optional(),
  generateName: anyString.optional(),
  creationTimestamp: anyString.optional(),
  resourceVersion: anyString.optional(),
  generation: anyInteger.optional(),
  ownerReferences: anyList.optional(),
  finalizers: z.array(z.string()).nullable().optional(),
  managedFields: anyList.optional(),
  selfLink: anyString.optional(),
  deletionTimestamp: anyString.optional(),
  deletionGracePeriodSeconds: anyInteger.optional(),
});

export const podSpecSchema = z.object({
  containers: z.array(container).min(1, 'a pod needs at least one container'),
  initContainers: z.array(container).optional(),
  ephemeralContainers: anyList.optional(),
  volumes: z.array(volume).optional(),
  restartPolicy: z.enum(['Always', 'OnFailure', 'Never']).optional(),
  terminationGracePeriodSeconds: nonNegativeInt.optional(),
  activeDeadlineSeconds: z.number().int().min(1).optional(),
  hostNetwork: z.boolean().optional(),
  hostPID: z.boolean().optional(),
  hostIPC: z.boolean().optional(),
  shareProcessNamespace: z.boolean().optional(),
  hostname: dnsLabel.optional(),
  subdomain: anyString.optional(),
  setHostnameAsFQDN: anyBoolean.optional(),
  hostAliases: z.array(z.object({ ip: z.string(), hostnames: z.array(z.string()).optional() })).optional(),
  securityContext: podSecurityContext.optional(),
  dnsPolicy: z.enum(['ClusterFirst', 'ClusterFirstWithHostNet', 'Default', 'None']).optional(),
  dnsConfig: anyObject.optional(),
  nodeName: anyString.optional(),
  nodeSelector: anyStringMap.optional(),
  affinity: anyObject.optional(),
  tolerations: anyList.optional(),
  topologySpreadConstraints: anyList.optional(),
  schedulingGates: anyList.optional(),
  schedulerName: anyString.optional(),
  priorityClassName: anyString.optional(),
  priority: anyInteger.optional(),
  preemptionPolicy: anyString.optional(),
  runtimeClassName: anyString.optional(),
  overhead: z.record(z.string(), quantity).nullable().optional(),
  readinessGates: anyList.optional(),
  os: anyObject.optional(),
  hostUsers: anyBoolean.optional(),
  serviceAccountName: anyString.optional(),
  serviceAccount: anyString.optional(),
  automountServiceAccountToken: anyBoolean.optional(),
  imagePullSecrets: anyList.optional(),
  enableServiceLinks: anyBoolean.optional(),
  resources: anyObject.optional(),
  resourceClaims: anyList.optional(),
  hostnameOverride: anyString.optional(),
});

export const podSchema = z.object({
  apiVersion: z.literal('v1', { message: 'must be "v1" for a Pod' }),
  kind: z.literal('Pod'),
  metadata,
  spec: podSpecSchema,
  status: anyObject.optional(),
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
