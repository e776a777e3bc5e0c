// The identity of a static pod: its name `<name>-<node>`, a hash of its defaulted content that
// nothing but the content changes, a uid stable per content and node, and the config.*
// annotations; plus the API server defaults the hash is taken over.
import t from 'tap';
import { applyDefaults, defaultPullPolicy } from '../../src/manifest/defaults.js';
import {
  CONFIG_HASH_ANNOTATION,
  CONFIG_SEEN_ANNOTATION,
  CONFIG_SOURCE_ANNOTATION,
  configHash,
  toDesiredPod,
  type DesiredPod,
} from '../../src/manifest/identity.js';
import { validateManifestText } from '../../src/manifest/load-file.js';
import type { PodManifest } from '../../src/manifest/pod-schema.js';

/** The one pod a valid manifest text asks for (fails the test if there is not exactly one). */
function podOf(text: string, { path = '/etc/podvisor/manifests.d/web.yaml', nodeName = 'node1' } = {}): DesiredPod {
  const result = validateManifestText(text, path, { nodeName });
  if (result.hasErrors || result.pods.length !== 1 || !result.pods[0]) {
    throw new Error(`expected one valid pod, got ${result.pods.length}: ${JSON.stringify(result.findings)}`);
  }
  return result.pods[0];
}

const BASE = `apiVersion: v1
kind: Pod
metadata:
  name: web
  labels:
    app: web
spec:
  containers:
    - name: app
      image: nginx:1.25
      args: ["-g", "daemon off;"]
      ports:
        - containerPort: 80
`;

const manifest = (): PodManifest => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'web' },
  spec: { containers: [{ name: 'app', image: 'nginx:1.25' }] },
});

t.test('name, namespace and key', async (t) => {
  const pod = podOf(BASE);
  t.equal(pod.name, 'web-node1');
  t.equal(pod.namespace, 'default');
  t.equal(pod.key, 'default/web-node1');
  t.equal(pod.source, '/etc/podvisor/manifests.d/web.yaml');
  t.equal(pod.pod.metadata.name, 'web-node1');
  t.equal(pod.pod.metadata.namespace, 'default');
  t.equal(pod.pod.spec.nodeName, 'node1');
  t.match(pod.hash, /^[0-9a-f]{16}$/);
  t.match(pod.uid, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);

  const other = podOf(BASE.replace('  name: web\n', '  name: web\n  namespace: edge\n'));
  t.equal(other.namespace, 'edge');
  t.equal(other.key, 'edge/web-node1');
  t.equal(other.name, 'web-node1');
});

t.test('the hash ignores everything but the content', async (t) => {
  const reference = podOf(BASE).hash;
  const variants: [string, string][] = [
    ['comments', `# the web server\n${BASE.replace('spec:', 'spec: # what runs')}`],
    ['whitespace and flow style', `apiVersion:   v1\n\nkind: Pod\nmetadata: {name: web, labels: {app: web}}\nspec:\n  containers:\n  - name: app\n    image: "nginx:1.25"\n    args:\n    - -g\n    - daemon off;\n    ports: [{containerPort: 80}]\n`],
    ['key order', `spec:\n  containers:\n    - ports:\n        - containerPort: 80\n      args: ["-g", "daemon off;"]\n      image: nginx:1.25\n      name: app\nmetadata:\n  labels:\n    app: web\n  name: web\nkind: Pod\napiVersion: v1\n`],
    ['JSON', JSON.stringify({ kind: 'Pod', apiVersion: 'v1', metadata: { labels: { app: 'web' }, name: 'web' }, spec: { containers: [{ name: 'app', image: 'nginx:1.25', args: ['-g', 'daemon off;'], ports: [{ containerPort: 80 }] }] } })],
    ['explicit defaults', BASE
      .replace('spec:\n', 'spec:\n  restartPolicy: Always\n  terminationGracePeriodSeconds: 30\n  dnsPolicy: ClusterFirst\n  securityContext: {}\n')
      .replace('  labels:', '  namespace: default\n  labels:')
      .replace('image: nginx:1.25\n', 'image: nginx:1.25\n      imagePullPolicy: IfNotPresent\n      terminationMessagePath: /dev/termination-log\n      terminationMessagePolicy: File\n      resources: {}\n')
      .replace('containerPort: 80', 'containerPort: 80\n          protocol: TCP')],
  ];
  for (const [what, text] of variants) t.equal(podOf(text).hash, reference, what);
  t.equal(podOf(BASE, { path: '/srv/other/elsewhere.yml' }).hash, reference, 'file path');
  t.equal(podOf(BASE, { nodeName: 'node2' }).hash, reference, 'node name');
});

t.test('the hash changes with the content', async (t) => {
  const reference = podOf(BASE).hash;
  const changes: [string, string][] = [
    ['image', BASE.replace('nginx:1.25', 'nginx:1.26')],
    ['args', BASE.replace('daemon off;', 'daemon on;')],
    ['port', BASE.replace('containerPort: 80', 'containerPort: 8080')],
    ['label', BASE.replace('app: web', 'app: www')],
    ['pull policy other than the default', BASE.replace('image: nginx:1.25\n', 'image: nginx:1.25\n      imagePullPolicy: Always\n')],
    ['restart policy other than the default', BASE.replace('spec:\n', 'spec:\n  restartPolicy: Never\n')],
    ['grace period other than the default', BASE.replace('spec:\n', 'spec:\n  terminationGracePeriodSeconds: 5\n')],
    ['namespace', BASE.replace('  name: web\n', '  name: web\n  namespace: edge\n')],
  ];
  const seen = new Set([reference]);
  for (const [what, text] of changes) {
    const hash = podOf(text).hash;
    t.not(hash, reference, what);
    seen.add(hash);
  }
  t.equal(seen.size, changes.length + 1, 'every change gives its own hash');
});

t.test('the uid is stable for the same content, and per node', async (t) => {
  const a = podOf(BASE);
  t.equal(podOf(BASE).uid, a.uid, 'same content, same node');
  t.equal(podOf(`# a comment\n${BASE}`, { path: '/elsewhere/web.json' }).uid, a.uid, 'cosmetic change, other path');
  t.not(podOf(BASE, { nodeName: 'node2' }).uid, a.uid, 'other node');
  t.not(podOf(BASE.replace('nginx:1.25', 'nginx:1.26')).uid, a.uid, 'other content');
  t.equal(a.pod.metadata.uid, a.uid);
});

t.test('config annotations', async (t) => {
  const seen = new Date('2024-05-06T07:08:09.010Z');
  const pod = toDesiredPod({ ...manifest(), metadata: { name: 'web', annotations: { owner: 'ops' } } }, '/m/web.yaml', 'node1', seen);
  t.same(pod.pod.metadata.annotations, {
    owner: 'ops',
    [CONFIG_HASH_ANNOTATION]: pod.hash,
    [CONFIG_SEEN_ANNOTATION]: '2024-05-06T07:08:09.010Z',
    [CONFIG_SOURCE_ANNOTATION]: 'file',
  });
  t.equal(CONFIG_HASH_ANNOTATION, 'kubernetes.io/config.hash');
  t.equal(CONFIG_SOURCE_ANNOTATION, 'kubernetes.io/config.source');
  t.equal(CONFIG_SEEN_ANNOTATION, 'kubernetes.io/config.seen');
  // When it was seen is not content.
  t.equal(toDesiredPod(manifest(), '/m/web.yaml', 'node1', new Date(0)).hash, toDesiredPod(manifest(), '/m/web.yaml', 'node1', seen).hash);
});

t.test('toDesiredPod does not change its input', async (t) => {
  const input = manifest();
  const copy = structuredClone(input);
  toDesiredPod(input, '/m/web.yaml', 'node1');
  t.same(input, copy);
});

t.test('applyDefaults fills in the API server defaults', async (t) => {
  const defaulted = applyDefaults({
    ...manifest(),
    spec: {
      containers: [{
        name: 'app',
        image: 'nginx',
        ports: [{ containerPort: 80 }],
        resources: { limits: { cpu: '1', memory: '128Mi' }, requests: { cpu: '500m' } },
        livenessProbe: { httpGet: { port: 80 } },
      }],
      initContainers: [{ name: 'init', image: 'busybox:1.36' }],
      volumes: [{ name: 'data', hostPath: { path: '/srv/data' } }],
    },
  });
  t.equal(defaulted.metadata.namespace, 'default');
  t.equal(defaulted.spec.restartPolicy, 'Always');
  t.equal(defaulted.spec.terminationGracePeriodSeconds, 30);
  t.equal(defaulted.spec.dnsPolicy, 'ClusterFirst');
  t.same(defaulted.spec.securityContext, {});
  t.same(defaulted.spec.containers[0], {
    name: 'app',
    image: 'nginx',
    imagePullPolicy: 'Always',
    terminationMessagePath: '/dev/termination-log',
    terminationMessagePolicy: 'File',
    ports: [{ protocol: 'TCP', containerPort: 80 }],
    // A limit without a request makes the request equal to the limit.
    resources: { limits: { cpu: '1', memory: '128Mi' }, requests: { cpu: '500m', memory: '128Mi' } },
    livenessProbe: { timeoutSeconds: 1, periodSeconds: 10, successThreshold: 1, failureThreshold: 3, httpGet: { path: '/', scheme: 'HTTP', port: 80 } },
  });
  t.equal(defaulted.spec.initContainers?.[0]?.imagePullPolicy, 'IfNotPresent');
  t.same(defaulted.spec.volumes, [{ name: 'data', hostPath: { type: '', path: '/srv/data' } }]);
});

t.test('defaultPullPolicy follows the kubelet', async (t) => {
  const cases: [string, 'Always' | 'IfNotPresent'][] = [
    ['nginx', 'Always'],
    ['nginx:latest', 'Always'],
    ['docker.io/library/nginx', 'Always'],
    ['nginx:1.25', 'IfNotPresent'],
    ['quay.io/org/app:v2', 'IfNotPresent'],
    ['nginx@sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31', 'IfNotPresent'],
    ['nginx:latest@sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31', 'Always'],
    ['nginx:1.25@sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31', 'IfNotPresent'],
    ['host:5000/img', 'Always'],
    ['host:5000/img:latest', 'Always'],
    ['host:5000/img:1.0', 'IfNotPresent'],
    ['localhost:5000/team/img', 'Always'],
  ];
  for (const [image, policy] of cases) t.equal(defaultPullPolicy(image), policy, image);
});

t.test('configHash is a pure function of content', async (t) => {
  const a = applyDefaults(manifest());
  const b = applyDefaults(JSON.parse(JSON.stringify(manifest())) as PodManifest);
  t.equal(configHash(a), configHash(b));
  t.equal(configHash(a), toDesiredPod(manifest(), '/x.yaml', 'n').hash);
});
