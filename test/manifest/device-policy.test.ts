// The device's policy on what a pod may ask for: each rule refuses at the field that asks (file,
// line, column, field path), the pod is then not run, and what the rule allows passes. Without a
// policy everything is allowed, as before.
import t from 'tap';
import { imageRepository, OPEN_POLICY, type DevicePolicy } from '../../src/manifest/device-policy.js';
import { validateManifestText } from '../../src/manifest/load-file.js';
import { formatFinding } from '../../src/manifest/validate.js';

/** Joins lines into a manifest (line numbers in the tests are easy to count). */
const yaml = (...lines: string[]) => `${lines.join('\n')}\n`;

/** The errors of `text` as web.yaml under `policy` (in addition to no restriction), and its pods. */
function check(text: string, policy: Partial<DevicePolicy>) {
  const result = validateManifestText(text, '/etc/pods.d/web.yaml', { nodeName: 'node1', displayName: 'web.yaml', devicePolicy: { ...OPEN_POLICY, ...policy } });
  return {
    errors: result.findings.filter((finding) => finding.severity === 'error').map(formatFinding),
    pods: result.pods.map((pod) => pod.key),
  };
}

const EVERYTHING = yaml(
  'apiVersion: v1', //                                   1
  'kind: Pod', //                                        2
  'metadata:', //                                        3
  '  name: web', //                                      4
  'spec:', //                                            5
  '  hostNetwork: true', //                              6
  '  hostPID: true', //                                  7
  '  hostIPC: true', //                                  8
  '  volumes:', //                                       9
  '    - name: data', //                                 10
  '      hostPath: { path: /srv/data/web }', //          11
  '    - name: etc', //                                  12
  '      hostPath:', //                                  13
  '        path: /srv/data/../../etc/', //               14
  '  initContainers:', //                                15
  '    - name: setup', //                                16
  '      image: quay.io/acme/setup:1', //                17
  '  containers:', //                                    18
  '    - name: app', //                                  19
  '      image: registry.example.com/web@sha256:' + 'a'.repeat(64), // 20
  '      securityContext:', //                           21
  '        privileged: true', //                         22
  '        capabilities:', //                            23
  '          add: [NET_BIND_SERVICE, CAP_SYS_ADMIN]', // 24
);

t.test('no policy (the default): everything allowed, as before', async (t) => {
  t.same(check(EVERYTHING, {}), { errors: [], pods: ['default/web-node1'] });
});

t.test('host namespaces: each refused at its field when forbidden', async (t) => {
  t.same(check(EVERYTHING, { hostNetwork: false }).errors, ["web.yaml:6:3: spec.hostNetwork: refused by policy: pods may not share the host's network namespace on this device (policy.host-network: false)"]);
  t.same(check(EVERYTHING, { hostPID: false }).errors, ["web.yaml:7:3: spec.hostPID: refused by policy: pods may not share the host's process namespace on this device (policy.host-pid: false)"]);
  t.same(check(EVERYTHING, { hostIPC: false }).errors, ["web.yaml:8:3: spec.hostIPC: refused by policy: pods may not share the host's IPC namespace on this device (policy.host-ipc: false)"]);
  t.same(check(EVERYTHING, { hostNetwork: false }).pods, [], 'the pod is not run');
  const off = yaml('apiVersion: v1', 'kind: Pod', 'metadata: { name: web }', 'spec:', '  hostNetwork: false', '  containers: [{ name: app, image: nginx }]');
  t.same(check(off, { hostNetwork: false, hostPID: false, hostIPC: false }), { errors: [], pods: ['default/web-node1'] }, 'false, or absent, passes');
});

t.test('privileged containers', async (t) => {
  t.same(check(EVERYTHING, { privileged: false }).errors, ['web.yaml:22:9: spec.containers[0].securityContext.privileged: refused by policy: privileged containers are not allowed on this device (policy.privileged: false)']);
  const init = yaml('apiVersion: v1', 'kind: Pod', 'metadata: { name: web }', 'spec:', '  initContainers:', '    - name: setup', '      image: nginx', '      securityContext: { privileged: true }', '  containers: [{ name: app, image: nginx, securityContext: { privileged: false } }]');
  t.same(check(init, { privileged: false }).errors, ['web.yaml:8:26: spec.initContainers[0].securityContext.privileged: refused by policy: privileged containers are not allowed on this device (policy.privileged: false)'], 'init containers too; privileged: false passes');
});

t.test('added capabilities outside the allowed list, compared without CAP_ and case', async (t) => {
  t.same(check(EVERYTHING, { capabilities: ['NET_BIND_SERVICE'] }).errors, ['web.yaml:24:35: spec.containers[0].securityContext.capabilities.add[1]: refused by policy: capability CAP_SYS_ADMIN may not be added on this device (policy.capabilities: NET_BIND_SERVICE)']);
  t.same(check(EVERYTHING, { capabilities: ['NET_BIND_SERVICE', 'SYS_ADMIN'] }).errors, [], 'both allowed');
  t.same(check(EVERYTHING, { capabilities: [] }).errors.length, 2, 'an empty list allows none');
  t.match(check(EVERYTHING, { capabilities: [] }).errors[0], /capability NET_BIND_SERVICE may not be added on this device \(policy\.capabilities: none\)/);
  const lower = yaml('apiVersion: v1', 'kind: Pod', 'metadata: { name: web }', 'spec:', '  containers:', '    - name: app', '      image: nginx', '      securityContext: { capabilities: { add: [net_bind_service], drop: [ALL] } }');
  t.same(check(lower, { capabilities: ['NET_BIND_SERVICE'] }).errors, [], 'lower case is the same capability; drop is never refused');
});

t.test('hostPath outside the allowed prefixes, after normalising the path', async (t) => {
  t.same(check(EVERYTHING, { hostPathPrefixes: ['/srv/data'] }).errors, ['web.yaml:14:9: spec.volumes[1].hostPath.path: refused by policy: host path /etc is outside the allowed prefixes (policy.host-path-prefixes: /srv/data)'], '.. cannot climb out');
  t.same(check(EVERYTHING, { hostPathPrefixes: ['/srv/data', '/etc'] }).errors, []);
  t.equal(check(EVERYTHING, { hostPathPrefixes: ['/srv/dat'] }).errors.length, 2, 'a prefix matches whole path elements only');
  t.equal(check(EVERYTHING, { hostPathPrefixes: [] }).errors.length, 2, 'an empty list allows no hostPath');
  t.same(check(EVERYTHING, { hostPathPrefixes: ['/'] }).errors, [], '/ allows all');
});

t.test('images: allowed registries, short names, digests', async (t) => {
  t.same(check(EVERYTHING, { registries: ['registry.example.com'] }).errors, ['web.yaml:17:7: spec.initContainers[0].image: refused by policy: quay.io/acme/setup is not from an allowed registry (policy.registries: registry.example.com)']);
  t.same(check(EVERYTHING, { registries: ['registry.example.com', 'quay.io/acme'] }).errors, [], 'a registry with a path prefix');
  t.equal(check(EVERYTHING, { registries: ['quay.io/acm'] }).errors.length, 2, 'a path prefix matches whole elements');
  const short = yaml('apiVersion: v1', 'kind: Pod', 'metadata: { name: web }', 'spec:', '  containers:', '    - name: app', '      image: busybox:1.36');
  t.same(check(short, { registries: ['docker.io'] }).errors, ['web.yaml:7:7: spec.containers[0].image: refused by policy: "busybox:1.36" is a short name, which podman may resolve through any registry it searches; name the registry (policy.registries: docker.io)']);
  t.same(check(short.replace('busybox:1.36', 'docker.io/busybox:1.36'), { registries: ['docker.io/library'] }).errors, [], 'docker.io/busybox is docker.io/library/busybox');
  t.same(check(short.replace('busybox:1.36', 'localhost/busybox:podvisor'), { registries: ['localhost'] }).errors, [], 'localhost: images made on the device');
  t.same(check(short.replace('busybox:1.36', 'localhost:5000/busybox'), { registries: ['localhost'] }).errors.length, 1, 'localhost:5000 is another registry');

  t.same(check(EVERYTHING, { requireDigest: true }).errors, ['web.yaml:17:7: spec.initContainers[0].image: refused by policy: the image is not pinned by digest (policy.require-digest: true): write it as NAME@sha256:DIGEST'], 'the tag-only image refused, the pinned one passes');
  t.same(check(short, { requireDigest: true, registries: ['docker.io'] }).errors.length, 2, 'two refusals of one field, each its own line');
});

t.test('imageRepository', async (t) => {
  t.equal(imageRepository('nginx'), undefined);
  t.equal(imageRepository('library/nginx:1'), undefined, 'no registry host: a short name');
  t.equal(imageRepository('docker.io/nginx'), 'docker.io/library/nginx');
  t.equal(imageRepository('Registry.Example.com:5000/a/b:tag@sha256:' + 'b'.repeat(64)), 'registry.example.com:5000/a/b');
  t.equal(imageRepository('localhost/busybox:podvisor'), 'localhost/busybox');
});

t.test('values of the wrong type are the schema\'s to report, not the policy\'s', async (t) => {
  const odd = yaml('apiVersion: v1', 'kind: Pod', 'metadata: { name: web }', 'spec:', '  hostNetwork: "yes"', '  containers: [{ name: app, image: 5, securityContext: { capabilities: { add: [5] } } }]');
  const errors = check(odd, { hostNetwork: false, capabilities: [], registries: ['x.io'], requireDigest: true }).errors;
  t.notOk(errors.some((line) => line.includes('refused by policy')), errors.join('\n'));
  t.ok(errors.length > 0, 'the schema still refuses them');
});
