// Validation of manifest text: every finding is one line, `file:line:col: field: message`, at the
// position of the field (or of its nearest existing parent), and errors keep a document from
// becoming a pod while warnings do not.
import t from 'tap';
import { validateManifestText } from '../../src/manifest/load-file.js';
import { formatFinding, formatPath } from '../../src/manifest/validate.js';

/** Validates `text` as the file `web.yaml` (or `file`) and returns the outcome as plain data. */
function check(text: string, file = 'web.yaml') {
  const result = validateManifestText(text, `/etc/podvisor/manifests.d/${file}`, { nodeName: 'node1', displayName: file });
  return {
    lines: result.findings.map(formatFinding),
    errors: result.findings.filter((finding) => finding.severity === 'error').map(formatFinding),
    warnings: result.findings.filter((finding) => finding.severity === 'warning').map(formatFinding),
    keys: result.pods.map((pod) => pod.key),
    hasErrors: result.hasErrors,
    findings: result.findings,
  };
}

/** Joins lines into a manifest (so that line numbers in the tests are easy to count). */
const yaml = (...lines: string[]) => `${lines.join('\n')}\n`;

const GOOD = yaml(
  'apiVersion: v1', //          1
  'kind: Pod', //               2
  'metadata:', //               3
  '  name: web', //             4
  'spec:', //                   5
  '  containers:', //           6
  '    - name: app', //         7
  '      image: nginx:1.25', // 8
);

t.test('a valid pod has no findings and becomes one pod', async (t) => {
  const result = check(GOOD);
  t.same(result.lines, []);
  t.same(result.keys, ['default/web-node1']);
  t.equal(result.hasErrors, false);
});

t.test('a missing field is reported at its nearest existing parent', async (t) => {
  const result = check(yaml(
    'apiVersion: v1',
    'kind: Pod',
    'metadata:',
    '  name: web',
    'spec:',
    '  containers:',
    '    - name: web', // 7: the container item starts at column 7
  ));
  t.same(result.lines, ['web.yaml:7:7: spec.containers[0].image: Required']);
  t.same(result.keys, []);
  t.equal(result.hasErrors, true);
  t.match(result.findings[0], { file: 'web.yaml', line: 7, column: 7, field: 'spec.containers[0].image', severity: 'error', message: 'Required' });
});

t.test('a missing spec is reported at the document', async (t) => {
  const result = check(yaml('apiVersion: v1', 'kind: Pod', 'metadata:', '  name: web'));
  t.same(result.lines, ['web.yaml:1:1: spec: Required']);
});

t.test('a value outside an enum names the allowed values', async (t) => {
  const result = check(yaml(
    'apiVersion: v1',
    'kind: Pod',
    'metadata:',
    '  name: web',
    'spec:',
    '  restartPolicy: Sometimes',
    '  containers:',
    '    - name: app',
    '      image: nginx:1.25',
    '      imagePullPolicy: always',
  ));
  t.same(result.errors.slice().sort(), [
    'web.yaml:10:7: spec.containers[0].imagePullPolicy: must be one of "Always", "IfNotPresent", "Never", got "always"',
    'web.yaml:6:3: spec.restartPolicy: must be one of "Always", "OnFailure", "Never", got "Sometimes"',
  ]);
  t.same(result.keys, []);
});

t.test('a port out of range', async (t) => {
  const result = check(yaml(
    'apiVersion: v1',
    'kind: Pod',
    'metadata:',
    '  name: web',
    'spec:',
    '  containers:',
    '    - name: app',
    '      image: nginx:1.25',
    '      ports:',
    '        - containerPort: 70000',
    '        - containerPort: 0',
    '        - containerPort: 80',
    '          hostPort: 65536',
  ));
  t.same(result.errors, [
    'web.yaml:10:11: spec.containers[0].ports[0].containerPort: must be between 1 and 65535',
    'web.yaml:11:11: spec.containers[0].ports[1].containerPort: must be between 1 and 65535',
    'web.yaml:13:11: spec.containers[0].ports[2].hostPort: must be between 1 and 65535',
  ]);
});

t.test('container names are unique across initContainers and containers', async (t) => {
  const result = check(yaml(
    'apiVersion: v1',
    'kind: Pod',
    'metadata:',
    '  name: web',
    'spec:',
    '  initContainers:',
    '    - name: setup',
    '      image: busybox:1.36',
    '  containers:',
    '    - name: setup',
    '      image: nginx:1.25',
  ));
  t.same(result.lines, ['web.yaml:10:7: spec.containers[0].name: duplicate container name "setup" (first used by spec.initContainers[0])']);
  t.same(result.keys, []);
});

t.test('a volumeMount must name a volume of the pod', async (t) => {
  const result = check(yaml(
    'apiVersion: v1',
    'kind: Pod',
    'metadata:',
    '  name: web',
    'spec:',
    '  containers:',
    '    - name: app',
    '      image: nginx:1.25',
    '      volumeMounts:',
    '        - name: data',
    '          mountPath: /data',
    '        - name: cache',
    '          mountPath: /cache',
    '  volumes:',
    '    - name: data',
    '      emptyDir: {}',
  ));
  t.same(result.lines, ['web.yaml:12:11: spec.containers[0].volumeMounts[1].name: no volume named "cache" in spec.volumes']);
});

t.test('pod and container names must be DNS-1123 names', async (t) => {
  const result = check(yaml(
    'apiVersion: v1',
    'kind: Pod',
    'metadata:',
    '  name: Web',
    'spec:',
    '  containers:',
    '    - name: Bad_Name',
    '      image: nginx:1.25',
  ));
  t.same(result.errors, [
    'web.yaml:4:3: metadata.name: must be a DNS-1123 subdomain: at most 253 lower-case letters, digits, "-" or ".", starting and ending with a letter or digit',
    'web.yaml:7:7: spec.containers[0].name: must be a DNS-1123 label: at most 63 lower-case letters, digits or "-", starting and ending with a letter or digit',
  ]);
  t.same(result.keys, []);
});

t.test('the static pod name <name>-<node> must fit a DNS-1123 subdomain', async (t) => {
  const name = 'a'.repeat(250);
  const result = check(GOOD.replace('name: web', `name: ${name}`));
  t.same(result.lines, [`web.yaml:4:3: metadata.name: the static pod name "${name}-node1" (name-node) must be a DNS-1123 subdomain of at most 253 characters`]);
  t.same(result.keys, []);
});

t.test('only kind Pod of apiVersion v1 is accepted', async (t) => {
  const deployment = check(yaml('apiVersion: apps/v1', 'kind: Deployment', 'metadata:', '  name: web', 'spec: {}'));
  t.same(deployment.lines, ['web.yaml:2:1: kind: only kind Pod is supported, got "Deployment"']);
  t.same(deployment.keys, []);

  const appsPod = check(GOOD.replace('apiVersion: v1', 'apiVersion: apps/v1'));
  t.same(appsPod.lines, ['web.yaml:1:1: apiVersion: must be "v1" for a Pod, got "apps/v1"']);
  t.same(appsPod.keys, []);

  const noKind = check(GOOD.replace('kind: Pod\n', ''));
  t.same(noKind.lines, ['web.yaml:1:1: kind: Required: only kind Pod is supported']);

  const noVersion = check(yaml('kind: Pod', 'metadata:', '  name: web'));
  t.same(noVersion.lines, ['web.yaml:1:1: apiVersion: Required']);

  const list = check(yaml('- a', '- b'));
  t.same(list.lines, ['web.yaml:1:1: a manifest document must be a mapping (a Pod object)']);
});

t.test('fields that refer to API objects are refused', async (t) => {
  const result = check(yaml(
    'apiVersion: v1', //                 1
    'kind: Pod', //                      2
    'metadata:', //                      3
    '  name: web', //                    4
    'spec:', //                          5
    '  serviceAccountName: builder', //  6
    '  containers:', //                  7
    '    - name: app', //                8
    '      image: nginx:1.25', //        9
    '      envFrom:', //                 10
    '        - configMapRef:', //        11
    '            name: settings', //     12
    '      env:', //                     13
    '        - name: PASSWORD', //       14
    '          valueFrom:', //           15
    '            secretKeyRef:', //      16
    '              name: db', //         17
    '              key: password', //    18
    '      volumeMounts:', //            19
    '        - name: settings', //       20
    '          mountPath: /etc/app', //  21
    '        - name: data', //           22
    '          mountPath: /data', //     23
    '  volumes:', //                     24
    '    - name: settings', //           25
    '      configMap:', //               26
    '        name: settings', //         27
    '    - name: data', //               28
    '      persistentVolumeClaim:', //   29
    '        claimName: data', //        30
  ));
  const noApi = 'refused: a static pod cannot refer to API objects: there is no API server to read it from';
  t.same(result.errors, [
    `web.yaml:6:3: spec.serviceAccountName: ${noApi} (ServiceAccount)`,
    `web.yaml:10:7: spec.containers[0].envFrom: ${noApi} (ConfigMap or Secret); list env values instead`,
    `web.yaml:16:13: spec.containers[0].env[0].valueFrom.secretKeyRef: ${noApi} (Secret)`,
    `web.yaml:26:7: spec.volumes[0].configMap: ${noApi} (ConfigMap); use a hostPath volume`,
    `web.yaml:29:7: spec.volumes[1].persistentVolumeClaim: ${noApi} (PersistentVolumeClaim); use a hostPath volume`,
  ]);
  for (const finding of result.findings) t.match(finding.message, /refused/, finding.field);
  t.same(result.keys, []);
});

t.test('each refusal stands on its own', async (t) => {
  const base = (extra: string[]) => check(yaml(
    'apiVersion: v1', 'kind: Pod', 'metadata:', '  name: web', 'spec:',
    '  containers:', '    - name: app', '      image: nginx:1.25', ...extra,
  ));
  const cases: [string[], string][] = [
    [['  serviceAccountName: default'], 'spec.serviceAccountName'],
    [['      envFrom:', '        - secretRef:', '            name: s'], 'spec.containers[0].envFrom'],
    [['      env:', '        - name: A', '          valueFrom:', '            configMapKeyRef: {name: c, key: k}'], 'spec.containers[0].env[0].valueFrom.configMapKeyRef'],
    [['      env:', '        - name: A', '          valueFrom:', '            secretKeyRef: {name: s, key: k}'], 'spec.containers[0].env[0].valueFrom.secretKeyRef'],
    [['  volumes:', '    - name: c', '      configMap: {name: c}'], 'spec.volumes[0].configMap'],
    [['  volumes:', '    - name: s', '      secret: {secretName: s}'], 'spec.volumes[0].secret'],
    [['  volumes:', '    - name: p', '      persistentVolumeClaim: {claimName: p}'], 'spec.volumes[0].persistentVolumeClaim'],
  ];
  for (const [extra, field] of cases) {
    const result = base(extra);
    t.same(result.findings.filter((finding) => finding.severity === 'error').map((finding) => finding.field), [field], field);
    t.match(result.errors[0], /: refused: /, field);
    t.same(result.keys, [], `${field}: no pod`);
  }
});

t.test('scheduling fields are warnings and the pod still runs', async (t) => {
  const result = check(yaml(
    'apiVersion: v1',
    'kind: Pod',
    'metadata:',
    '  name: web',
    'spec:',
    '  affinity:',
    '    nodeAffinity: {}',
    '  containers:',
    '    - name: app',
    '      image: nginx:1.25',
  ));
  t.same(result.lines, ['web.yaml:6:3: warning: spec.affinity: ignored: no scheduler on a static pod']);
  t.match(result.findings[0], { field: 'spec.affinity', severity: 'warning', message: 'ignored: no scheduler on a static pod' });
  t.same(result.keys, ['default/web-node1']);
  t.equal(result.hasErrors, false);
});

t.test('ignored fields set to values that ask for nothing are not warned about', async (t) => {
  const harmless = check(yaml(
    'apiVersion: v1',
    'kind: Pod',
    'metadata:',
    '  name: web',
    'spec:',
    '  hostIPC: false',
    '  enableServiceLinks: false',
    '  automountServiceAccountToken: false',
    '  dnsPolicy: ClusterFirst',
    '  containers:',
    '    - name: app',
    '      image: nginx:1.25',
    '      stdin: false',
    '      terminationMessagePolicy: File',
  ));
  t.same(harmless.lines, []);
  const asking = check(yaml(
    'apiVersion: v1',
    'kind: Pod',
    'metadata:',
    '  name: web',
    'spec:',
    '  hostIPC: true',
    '  dnsPolicy: None',
    '  containers:',
    '    - name: app',
    '      image: nginx:1.25',
  ));
  t.same(asking.warnings, [
    "web.yaml:6:3: warning: spec.hostIPC: ignored: podman pods do not share the host IPC namespace yet",
    "web.yaml:7:3: warning: spec.dnsPolicy: ignored: containers use podman's DNS set-up (the host's resolvers)",
  ]);
});

t.test('an unknown field is a warning that names its path', async (t) => {
  const result = check(yaml(
    'apiVersion: v1',
    'kind: Pod',
    'metadata:',
    '  name: web',
    'spec:',
    '  containers:',
    '    - name: app',
    '      image: nginx:1.25',
    '      imagePullPolcy: Always',
  ));
  t.same(result.lines, ['web.yaml:9:7: warning: spec.containers[0].imagePullPolcy: ignored: unknown field']);
  t.same(result.keys, ['default/web-node1']);
  // The typo is dropped, not taken for the field it resembles: the default applies.
  const pod = validateManifestText(GOOD.replace('image: nginx:1.25', 'image: nginx:1.25\n      imagePullPolcy: Always'), 'web.yaml', { nodeName: 'node1' }).pods[0];
  t.equal(pod?.pod.spec.containers[0]?.imagePullPolicy, 'IfNotPresent');
});

t.test('a field that differs only in case gets a suggestion', async (t) => {
  const result = check(yaml(
    'apiVersion: v1', //             1
    'kind: Pod', //                  2
    'metadata:', //                  3
    '  name: web', //                4
    'spec:', //                      5
    '  containers:', //              6
    '    - name: app', //            7
    '      image: nginx:1.25', //    8
    '      livenessProbe:', //       9
    '        gRPC:', //              10
    '          port: 2379', //       11
    '        periodSeconds: 5', //   12
  ));
  t.same(result.warnings, [
    'web.yaml:10:9: warning: spec.containers[0].livenessProbe.gRPC: ignored: unknown field (field names are case-sensitive: did you mean "grpc"?)',
  ]);
  // Without its handler the probe is an error.
  t.same(result.errors, ['web.yaml:9:7: spec.containers[0].livenessProbe: must have exactly one handler: exec, httpGet, tcpSocket or grpc']);
});

t.test('quantities must parse', async (t) => {
  const result = check(yaml(
    'apiVersion: v1',
    'kind: Pod',
    'metadata:',
    '  name: web',
    'spec:',
    '  containers:',
    '    - name: app',
    '      image: nginx:1.25',
    '      resources:',
    '        limits:',
    '          cpu: abc',
    '          memory: 12XB',
    '        requests:',
    '          cpu: 100m',
  ));
  t.same(result.errors, [
    'web.yaml:11:11: spec.containers[0].resources.limits.cpu: must be a Kubernetes quantity such as 500m, 2, 128Mi or 1G',
    'web.yaml:12:11: spec.containers[0].resources.limits.memory: must be a Kubernetes quantity such as 500m, 2, 128Mi or 1G',
  ]);
});

t.test('a request above its limit is an error', async (t) => {
  const result = check(yaml(
    'apiVersion: v1',
    'kind: Pod',
    'metadata:',
    '  name: web',
    'spec:',
    '  containers:',
    '    - name: app',
    '      image: nginx:1.25',
    '      resources:',
    '        requests:',
    '          cpu: 1500m',
    '        limits:',
    '          cpu: 1',
  ));
  t.same(result.lines, ['web.yaml:11:11: spec.containers[0].resources.requests.cpu: must be less than or equal to the cpu limit']);
});

t.test('multi-document file: each document stands alone', async (t) => {
  const result = check(yaml(
    'apiVersion: v1', //      1
    'kind: Pod', //           2
    'metadata:', //           3
    '  name: web', //         4
    'spec:', //               5
    '  containers:', //       6
    '    - name: app', //     7
    '      image: nginx:1', // 8
    '---', //                 9
    'apiVersion: v1', //      10
    'kind: Pod', //           11
    'metadata:', //           12
    '  name: worker', //      13
    'spec:', //               14
    '  containers:', //       15
    '    - name: app', //     16
  ));
  t.same(result.keys, ['default/web-node1']);
  t.same(result.lines, ['web.yaml:16:7: spec.containers[0].image: Required']);
  t.equal(result.hasErrors, true);
});

t.test('two documents naming the same pod: the second is an error', async (t) => {
  const result = check(`${GOOD}---\n${GOOD}`);
  t.same(result.keys, ['default/web-node1']);
  t.same(result.lines, ['web.yaml:13:3: metadata.name: pod default/web-node1 is already defined earlier in this file']);
});

t.test('JSON input works, with positions', async (t) => {
  const good = check(JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'web' },
    spec: { containers: [{ name: 'app', image: 'nginx:1.25' }] },
  }, null, 2), 'web.json');
  t.same(good.lines, []);
  t.same(good.keys, ['default/web-node1']);

  const bad = check([
    '{', //                                                1
    '  "apiVersion": "v1",', //                            2
    '  "kind": "Pod",', //                                 3
    '  "metadata": {"name": "web"},', //                   4
    '  "spec": {', //                                      5
    '    "containers": [', //                              6
    '      {"name": "app",', //                            7
    '       "image": "nginx:1.25",', //                    8
    '       "ports": [{"containerPort": 70000}]}', //      9
    '    ]', //                                            10
    '  }', //                                              11
    '}', //                                                12
  ].join('\n'), 'web.json');
  t.same(bad.lines, ['web.json:9:19: spec.containers[0].ports[0].containerPort: must be between 1 and 65535']);
  t.same(bad.keys, []);

  const broken = check('{"apiVersion": "v1",\n "kind": "Pod",\n "metadata": {"name": "web"\n', 'web.json');
  t.equal(broken.hasErrors, true);
  t.match(broken.errors[0], /^web\.json:4:1: YAML: /);
});

t.test('a YAML syntax error names its line and makes no pod', async (t) => {
  const result = check(yaml(
    'apiVersion: v1',
    'kind: Pod',
    'metadata:',
    '  name: web',
    'spec:',
    '  containers:',
    '    - name: app',
    '      image: nginx:1.25',
    '      command: [sh, -c', // 9: never closed
    '    - name: b', //         10: where the parser notices
  ));
  t.same(result.keys, []);
  t.equal(result.hasErrors, true);
  t.ok(result.errors.length > 0);
  for (const line of result.errors) t.match(line, /^web\.yaml:10:5: YAML: /);

  const tab = check('apiVersion: v1\nkind: Pod\nmetadata:\n\tname: web\n');
  t.match(tab.errors[0], /^web\.yaml:4:1: YAML: /);
});

t.test('a duplicate key is a syntax error', async (t) => {
  const result = check(yaml('apiVersion: v1', 'kind: Pod', 'metadata:', '  name: web', '  name: web2'));
  t.same(result.lines, ['web.yaml:5:3: YAML: Map keys must be unique']);
});

t.test("\\' inside double quotes is a warning, as the kubelet's parser accepts it", async (t) => {
  const text = yaml(
    'apiVersion: v1',
    'kind: Pod',
    'metadata:',
    '  name: web',
    'spec:',
    '  containers:',
    '    - name: app',
    '      image: nginx:1.25',
    `      command: ["sh", "-c", "echo \\'hi\\'"]`,
  );
  const result = check(text);
  t.same(result.errors, []);
  t.same(result.warnings, [
    "web.yaml:9:35: warning: YAML: Invalid escape sequence \\' (accepted, as the kubelet's YAML parser does)",
    "web.yaml:9:39: warning: YAML: Invalid escape sequence \\' (accepted, as the kubelet's YAML parser does)",
  ]);
  t.same(result.keys, ['default/web-node1']);
  // Go's YAML parser (sigs.k8s.io/yaml, gopkg.in/yaml.v2 scannerc.go) decodes \' to ': the
  // kubelet would run `echo 'hi'`. The yaml package leaves the backslash in the value.
  const pod = validateManifestText(text, 'web.yaml', { nodeName: 'node1' }).pods[0];
  t.same(pod?.pod.spec.containers[0]?.command, ['sh', '-c', "echo 'hi'"], 'the value is what the kubelet would run');
});

t.test('an empty file is an error, so its pods keep their last good spec', async (t) => {
  const message = 'web.yaml:1:1: the file holds no Pod documents (delete the file to remove its pods)';
  t.same(check('').lines, [message]);
  t.same(check('# nothing yet\n').lines, [message]);
  t.equal(check('').hasErrors, true);
});

t.test('formatPath prints paths as Kubernetes does', async (t) => {
  t.equal(formatPath([]), '');
  t.equal(formatPath(['spec', 'containers', 0, 'image']), 'spec.containers[0].image');
  t.equal(formatPath(['metadata', 'annotations', 'seccomp.security.alpha.kubernetes.io/pod']), 'metadata.annotations[seccomp.security.alpha.kubernetes.io/pod]');
  t.equal(formatPath(['spec', 'containers', 1, 'resources', 'limits', 'example.com/dongle']), 'spec.containers[1].resources.limits[example.com/dongle]');
});

t.test('formatFinding: `file:line:col: field: message`, warnings tagged', async (t) => {
  t.equal(formatFinding({ file: 'web.yaml', line: 14, column: 9, field: 'spec.containers[0].image', severity: 'error', message: 'Required' }), 'web.yaml:14:9: spec.containers[0].image: Required');
  t.equal(formatFinding({ file: 'web.yaml', line: 1, column: 1, field: '', severity: 'error', message: 'bad' }), 'web.yaml:1:1: bad');
  t.equal(formatFinding({ file: 'web.yaml', line: 6, column: 3, field: 'spec.affinity', severity: 'warning', message: 'ignored: no scheduler on a static pod' }), 'web.yaml:6:3: warning: spec.affinity: ignored: no scheduler on a static pod');
});

t.test("kubeadm's priorityClassName and seccompProfile are carried out, so not warned about", async (t) => {
  // system-node-critical: the OOM score the kubelet gives (podman-runtime.ts); RuntimeDefault:
  // podman's own profile. Other priority classes would need the API's PriorityClass objects.
  const pod = (...specLines: string[]) => check(yaml('apiVersion: v1', 'kind: Pod', 'metadata:', '  name: web', 'spec:', ...specLines, '  containers:', '    - name: app', '      image: nginx:1.25'));
  const kubeadm = pod(
    '  priorityClassName: system-node-critical', // 6
    '  securityContext:',
    '    seccompProfile:',
    '      type: RuntimeDefault',
  );
  t.same(kubeadm.lines, []);
  t.same(pod('  priorityClassName: high-priority').warnings, ['web.yaml:6:3: warning: spec.priorityClassName: ignored: no scheduler or eviction on a static pod']);
  t.same(pod('  securityContext: { seccompProfile: { type: Unconfined } }').lines, [], 'Unconfined is carried out');
  const localhost = pod('  securityContext:', '    seccompProfile: { type: Localhost, localhostProfile: profiles/audit.json }');
  t.same(localhost.warnings, ["web.yaml:7:5: warning: spec.securityContext.seccompProfile: ignored: Localhost seccomp profiles are not loaded by podvisor yet; podman's default profile applies"]);
  const wrong = pod('  securityContext: { seccompProfile: { type: Default } }');
  t.equal(wrong.hasErrors, true, 'a seccompProfile type the API does not know is an error');
  t.match(wrong.errors[0], /^web\.yaml:6:\d+: spec\.securityContext\.seccompProfile\.type: /);
});
