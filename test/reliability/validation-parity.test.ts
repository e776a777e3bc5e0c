// podvisor's verdict against Kubernetes' on the values fuzzing and reading the API server's
// validation (k8s.io/apimachinery's label and qualified-name rules, pkg/apis/core/validation's
// quantities, downwardAPI paths and file modes) and the kubelet's YAML reader (sigs.k8s.io/yaml on
// go-yaml v2: YAML 1.1 scalars, only %YAML 1.1, no control characters) single out. Each row says
// what Kubernetes does: accept, or refuse with the finding podvisor must give at that field.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { loadManifestFile, validateManifestText } from '../../src/manifest/load-file.js';
import { formatFinding } from '../../src/manifest/validate.js';

interface Parts {
  metadata?: string;
  spec?: string;
  container?: string;
  volumes?: string;
}

/** A pod with extra lines in its metadata, spec, first container and volumes (indented already). */
function pod(parts: Parts = {}): string {
  return [
    'apiVersion: v1',
    'kind: Pod',
    'metadata:',
    '  name: web',
    parts.metadata,
    'spec:',
    parts.spec,
    '  containers:',
    '  - name: app',
    '    image: nginx:1.25',
    parts.container,
    parts.volumes === undefined ? undefined : `  volumes:\n${parts.volumes}`,
  ].filter((line) => line !== undefined).join('\n') + '\n';
}

/** The findings of a text, as `podvisor validate` prints them, and whether it makes a pod. */
function verdict(text: string) {
  const result = validateManifestText(text, 'x.yaml', { nodeName: 'n1' });
  return { errors: result.findings.filter((finding) => finding.severity === 'error').map(formatFinding), warnings: result.findings.filter((finding) => finding.severity === 'warning').map(formatFinding), pods: result.pods };
}

type Row = [name: string, text: string, expected: 'accept' | RegExp];

/** Runs a table: each row is accepted with no error, or refused with exactly one error matching. */
function table(t: { same(a: unknown, b: unknown, m: string): void; equal(a: unknown, b: unknown, m: string): void; match(a: unknown, b: RegExp, m: string): void }, rows: Row[]): void {
  for (const [name, text, expected] of rows) {
    const { errors, pods } = verdict(text);
    if (expected === 'accept') {
      t.same(errors, [], `${name}: accepted`);
      t.equal(pods.length, 1, `${name}: makes a pod`);
    } else {
      t.equal(pods.length, 0, `${name}: no pod`);
      t.equal(errors.length, 1, `${name}: one error (${errors.join(' | ')})`);
      t.match(errors[0] ?? '', expected, name);
    }
  }
}

const limits = (value: string) => pod({ container: `    resources:\n      limits:\n        cpu: ${value}` });

t.test('quantities: negative, infinite, NaN and malformed are refused; huge ones are capped, as the API server does', async (t) => {
  table(t, [
    ['"500m"', limits('"500m"'), 'accept'],
    ['a number', limits('0.5'), 'accept'],
    ['1e400 (capped at the int64 maximum)', limits('"1e400"'), 'accept'],
    ['zero', limits('0'), 'accept'],
    ['"-1"', limits('"-1"'), /^x\.yaml:11:9: spec\.containers\[0\]\.resources\.limits\.cpu: must be greater than or equal to 0$/],
    ['-1 as a number', limits('-1'), /limits\.cpu: must be greater than or equal to 0$/],
    ['"-500m"', limits('"-500m"'), /limits\.cpu: must be greater than or equal to 0$/],
    ['.inf', limits('.inf'), /limits\.cpu: Infinity is not a number JSON can carry: the kubelet refuses the file$/],
    ['-.inf', limits('-.inf'), /limits\.cpu: -Infinity is not a number JSON can carry/],
    ['.nan', limits('.nan'), /limits\.cpu: NaN is not a number JSON can carry/],
    ['"12XB"', limits('"12XB"'), /limits\.cpu: must be a Kubernetes quantity such as 500m, 2, 128Mi or 1G$/],
    ['"1 "', limits('"1 "'), /must be a Kubernetes quantity/],
    ['"0x10"', limits('"0x10"'), /must be a Kubernetes quantity/],
    ['a list', limits('[1]'), /limits\.cpu: Invalid input|must be/],
    ['a negative request', pod({ container: '    resources:\n      requests:\n        memory: "-1Gi"' }), /requests\.memory: must be greater than or equal to 0$/],
    ['a negative emptyDir sizeLimit', pod({ volumes: '  - name: v\n    emptyDir:\n      medium: Memory\n      sizeLimit: "-1Mi"' }), /emptyDir\.sizeLimit: must be greater than or equal to 0$/],
  ]);
});

const labels = (key: string, value: string) => pod({ metadata: `  labels:\n    ${JSON.stringify(key)}: ${JSON.stringify(value)}` });
const annotations = (key: string, value: string) => pod({ metadata: `  annotations:\n    ${JSON.stringify(key)}: ${JSON.stringify(value)}` });

t.test('label and annotation keys and values, as ValidateLabels and ValidateAnnotations', async (t) => {
  table(t, [
    ['a plain label', labels('app', 'web'), 'accept'],
    ['a prefixed label', labels('example.com/app', 'web-1.2_3'), 'accept'],
    ['an empty label value', labels('app', ''), 'accept'],
    ['a 63-character name and value', labels('a'.repeat(63), 'b'.repeat(63)), 'accept'],
    ['a 253-character prefix', labels(`${'a'.repeat(61)}.${'b'.repeat(61)}.${'c'.repeat(61)}.${'d'.repeat(67)}/x`, 'v'), 'accept'],
    ['a 64-character name', labels('a'.repeat(64), 'v'), /metadata\.labels\.a{64}: invalid label key: name part must be no more than 63 characters$/],
    ['a 64-character value', labels('app', 'v'.repeat(64)), /metadata\.labels\.app: invalid value: a label value must be no more than 63 characters$/],
    ['a 254-character prefix', labels(`${'a'.repeat(254)}/x`, 'v'), /prefix part must be no more than 253 characters$/],
    ['an upper-case prefix', labels('Example.com/app', 'v'), /prefix part must be a lowercase RFC 1123 subdomain/],
    ['an empty prefix', labels('/app', 'v'), /prefix part must be non-empty$/],
    ['two slashes', labels('a/b/c', 'v'), /a qualified name must consist of/],
    ['a key starting with "-"', labels('-app', 'v'), /name part must consist of alphanumeric characters/],
    ['a value with a space', labels('app', 'a b'), /invalid value: a label value must be empty or consist of/],
    ['a value ending with "."', labels('app', 'a.'), /invalid value/],
    ['a label value that is a number', pod({ metadata: '  labels:\n    app: 1' }), /metadata\.labels\.app: must be a string, got number$/],
    ['an annotation with any value', annotations('example.com/note', 'any text: with spaces, and "quotes"\n'), 'accept'],
    ['an annotation key with an upper-case prefix', annotations('Example.COM/Note', 'v'), 'accept'],
    ['an annotation key with a space', annotations('a b', 'v'), /metadata\.annotations\[a b\]: invalid annotation key: name part must consist/],
    ['annotations of 256 KiB in all', pod({ metadata: `  annotations:\n    a: "${'x'.repeat(256 * 1024 - 1)}"` }), 'accept'],
    ['annotations over 256 KiB', pod({ metadata: `  annotations:\n    a: "${'x'.repeat(200 * 1024)}"\n    b: "${'x'.repeat(60 * 1024)}"` }), /metadata\.annotations: Too long: may not be more than 262144 bytes/],
  ]);
});

const downward = (item: string, defaultMode = '') => pod({
  container: '    volumeMounts:\n    - {name: info, mountPath: /info}',
  volumes: `  - name: info\n    downwardAPI:\n${defaultMode}      items:\n      - ${item}`,
});

t.test('downwardAPI item paths stay inside the volume; file modes are 0 to 0777, and YAML 1.1 octal as the kubelet reads it', async (t) => {
  table(t, [
    ['a plain path', downward('{path: labels, fieldRef: {fieldPath: metadata.labels}}'), 'accept'],
    ['a nested path', downward('{path: a/b/labels, fieldRef: {fieldPath: metadata.labels}}'), 'accept'],
    ['a name with dots', downward('{path: ..data, fieldRef: {fieldPath: metadata.labels}}'), /items\[0\]\.path: must not start with '\.\.'$/],
    ['..', downward('{path: "..", fieldRef: {fieldPath: metadata.labels}}'), /items\[0\]\.path: must not contain '\.\.'$/],
    ['../escape', downward('{path: ../../etc/cron.d/x, fieldRef: {fieldPath: metadata.labels}}'), /items\[0\]\.path: must not contain '\.\.'$/],
    ['a/../../escape', downward('{path: a/../../x, fieldRef: {fieldPath: metadata.labels}}'), /must not contain '\.\.'$/],
    ['an absolute path', downward('{path: /etc/passwd, fieldRef: {fieldPath: metadata.labels}}'), /items\[0\]\.path: must be a relative path$/],
    ['no source', downward('{path: x}'), /items\[0\]: must have one source: fieldRef or resourceFieldRef$/],
    ['mode 0644 (YAML 1.1 octal: 420)', downward('{path: x, mode: 0644, fieldRef: {fieldPath: metadata.name}}'), 'accept'],
    ['mode 0o644 (Go reads it as octal too)', downward('{path: x, mode: 0o644, fieldRef: {fieldPath: metadata.name}}'), 'accept'],
    ['mode 0777', downward('{path: x, mode: 0777, fieldRef: {fieldPath: metadata.name}}'), 'accept'],
    ['mode 01000', downward('{path: x, mode: 01000, fieldRef: {fieldPath: metadata.name}}'), /items\[0\]\.mode: must be a number between 0 and 0777 \(octal\), both inclusive$/],
    ['mode 644 (decimal: 01204)', downward('{path: x, mode: 644, fieldRef: {fieldPath: metadata.name}}'), /mode: must be a number between 0 and 0777/],
    ['mode -1', downward('{path: x, mode: -1, fieldRef: {fieldPath: metadata.name}}'), /mode: must be a number between 0 and 0777/],
    ['defaultMode 0600', downward('{path: x, fieldRef: {fieldPath: metadata.name}}', '      defaultMode: 0600\n'), 'accept'],
    ['defaultMode 0999 (not octal: 999)', downward('{path: x, fieldRef: {fieldPath: metadata.name}}', '      defaultMode: 0999\n'), /downwardAPI\.defaultMode: must be a number between 0 and 0777/],
  ]);
  const value = verdict(downward('{path: x, mode: 0644, fieldRef: {fieldPath: metadata.name}}', '      defaultMode: 0o440\n')).pods[0]?.pod.spec.volumes?.[0]?.downwardAPI;
  t.equal(value?.items?.[0]?.mode, 0o644, 'mode 0644 is 420');
  t.equal(value?.defaultMode, 0o440, 'defaultMode 0o440 is 288');
});

t.test('keys such as __proto__, constructor and toString are ordinary unknown fields, and pollute nothing', async (t) => {
  for (const key of ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__']) {
    for (const [where, parts] of [['metadata', { metadata: `  ${key}: {polluted: 1}` }], ['spec', { spec: `  ${key}: {polluted: 1}` }], ['spec.containers[0]', { container: `    ${key}: {polluted: 1}` }]] as const) {
      const { errors, warnings, pods } = verdict(pod(parts));
      t.same(errors, [], `${where}.${key}: no error`);
      t.match(warnings, [new RegExp(`${where.replace(/[[\]]/g, '\\$&')}\\.${key}: ignored: unknown field$`)], `${where}.${key}: an unknown field`);
      t.equal(pods.length, 1, `${where}.${key}: the pod runs`);
    }
  }
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype untouched');
  // As label keys they are refused or kept, never turned into a prototype.
  t.match(verdict(labels('__proto__', 'v')).errors, [/invalid label key: name part must consist/]);
  const kept = verdict(labels('constructor', 'v')).pods[0]?.pod.metadata.labels;
  t.equal(Object.hasOwn(kept ?? {}, 'constructor') && kept?.constructor, 'v', 'a label named constructor is an ordinary label');
});

t.test('wrong types in fields podvisor ignores are errors (the kubelet cannot decode them); null is unset', async (t) => {
  table(t, [
    ['nodeSelector: 5', pod({ spec: '  nodeSelector: 5' }), /spec\.nodeSelector: must be a mapping, got number$/],
    ['tolerations: "x"', pod({ spec: '  tolerations: "x"' }), /spec\.tolerations: must be a list, got string$/],
    ['priority: "high"', pod({ spec: '  priority: high' }), /spec\.priority: must be a number, got string$/],
    ['nodeName: [a]', pod({ spec: '  nodeName: [a]' }), /spec\.nodeName: must be a string, got a list$/],
    ['affinity: []', pod({ spec: '  affinity: []' }), /spec\.affinity: must be a mapping, got a list$/],
    ['securityContext.fsGroup: "x"', pod({ spec: '  securityContext:\n    fsGroup: x' }), /spec\.securityContext\.fsGroup: must be a number, got string$/],
    ['stdin: "yes please"', pod({ container: '    stdin: yes please' }), /stdin: must be a boolean, got string$/],
    ['status: 1', `${pod()}status: 1\n`, /^x\.yaml:\d+:1: status: must be a mapping, got number$/],
    ['nodeSelector: null', pod({ spec: '  nodeSelector: null' }), 'accept'],
    ['hostNetwork: null', pod({ spec: '  hostNetwork: null' }), 'accept'],
    ['command: ~', pod({ container: '    command: ~' }), 'accept'],
    ['creationTimestamp: null', pod({ metadata: '  creationTimestamp: null' }), 'accept'],
    ['creationTimestamp: 2024-01-01T00:00:00Z (a string, as go-yaml v2 keeps it)', pod({ metadata: '  creationTimestamp: 2024-01-01T00:00:00Z' }), 'accept'],
  ]);
});

t.test('NUL characters, control characters and invalid UTF-8', async (t) => {
  table(t, [
    ['an escaped NUL in an env value', pod({ container: '    env:\n    - {name: A, value: "a\\0b"}' }), /env\[0\]\.value: must not contain a NUL character \(\\0\): no container runtime can pass it on$/],
    ['an escaped ESC in an env value (allowed; printed escaped)', pod({ container: '    env:\n    - {name: A, value: "\\e[31m"}' }), 'accept'],
    ['a raw NUL', pod({ container: '    args: ["a\u0000b"]' }), /^x\.yaml:9:14: YAML: control character U\+0000 is not allowed in YAML/],
    ['a raw ESC', pod({ container: '    args: ["\u001b[2J"]' }), /^x\.yaml:9:13: YAML: control character U\+001B is not allowed/],
    ['a raw DEL', pod({ container: '    args: ["\u007f"]' }), /control character U\+007F/],
    ['a raw C1 control', pod({ container: '    args: ["\u0090"]' }), /control character U\+0090/],
    ['a raw NEL (allowed by YAML)', pod({ container: '    args: ["a\u0085b"]' }), 'accept'],
    ['a tab inside a value', pod({ container: '    args: ["a\tb"]' }), 'accept'],
  ]);
  const dir = t.testdir({});
  const load = async (bytes: Buffer) => {
    await writeFile(join(dir, 'x.yaml'), bytes);
    return loadManifestFile(join(dir, 'x.yaml'), { nodeName: 'n1', displayName: 'x.yaml' });
  };
  const text = pod();
  const invalid = await load(Buffer.concat([Buffer.from(text.slice(0, 60)), Buffer.from([0xff]), Buffer.from(text.slice(60))]));
  t.same(invalid.findings.map(formatFinding), [`x.yaml:${text.slice(0, 60).split('\n').length}:${60 - text.lastIndexOf('\n', 59)}: invalid UTF-8 (byte 0xff at offset 60): a manifest must be UTF-8 or UTF-16 text`]);
  t.same(invalid.pods, []);
  t.match((await load(Buffer.concat([Buffer.from(text), Buffer.from([0xed, 0xa0, 0x80])]))).findings.map(formatFinding), [/invalid UTF-8 \(byte 0xed/], 'an encoded surrogate is not UTF-8');
  t.equal((await load(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)]))).pods.length, 1, 'a UTF-8 BOM is read');
  t.equal((await load(Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]))).pods.length, 1, 'UTF-16LE with its BOM is read, as go-yaml does');
  t.equal((await load(Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from(text, 'utf16le').swap16()]))).pods.length, 1, 'UTF-16BE with its BOM is read');
  t.equal(verdict(`\ufeff${text}---\n\ufeff${text.replace('name: web', 'name: two')}`).pods.length, 2, 'a BOM at the start of a later document is skipped, as go-yaml does');
});

t.test('YAML 1.1 as the kubelet reads it, and %YAML directives', async (t) => {
  table(t, [
    ['%YAML 1.1', `%YAML 1.1\n---\n${pod()}`, 'accept'],
    ['%YAML 1.2', `%YAML 1.2\n---\n${pod()}`, /YAML: %YAML 1\.2: the kubelet's YAML parser reads only YAML 1\.1 documents/],
    ['hostNetwork: yes', pod({ spec: '  hostNetwork: yes' }), 'accept'],
    ['hostNetwork: on', pod({ spec: '  hostNetwork: on' }), 'accept'],
    ['a hex number where a string is due (YAML 1.1 reads 0x1F as 31)', pod({ container: '    args: [0x1F]' }), /args\[0\]: must be a string, got number$/],
    ['a container name "on" (a boolean in YAML 1.1)', pod().replace('- name: app', '- name: on'), /spec\.containers\[0\]\.name: must be a string, got boolean$/],
    ['a timestamp-like annotation stays a string', pod({ metadata: '  annotations:\n    built: 2024-01-01' }), 'accept'],
    ['a sexagesimal-like annotation stays a string', pod({ metadata: '  annotations:\n    at: 12:30' }), 'accept'],
    ['a collection as a key', pod({ metadata: '  annotations:\n    ? [a, b]\n    : v' }), /YAML: a mapping key must be a scalar, not a collection$/],
  ]);
  t.equal(verdict(pod({ metadata: '  annotations:\n    at: 12:30' })).pods[0]?.pod.metadata.annotations?.at, '12:30');
  t.equal(verdict(pod({ metadata: '  annotations:\n    built: 2024-01-01' })).pods[0]?.pod.metadata.annotations?.built, '2024-01-01');
  t.match(verdict(pod({ metadata: '  annotations:\n    a: !foo bar' })).warnings, [/YAML: Unresolved tag: !foo.*accepted, as the kubelet's YAML parser does/]);
});

t.test('cross-field checks run even when another field has a type error', async (t) => {
  const broken = '    ports: "80"'; // a type error in an unrelated field
  const rows: [string, string, RegExp][] = [
    ['two probe handlers', '    livenessProbe: {exec: {command: [a]}, httpGet: {port: 80}}', /livenessProbe: must have exactly one handler/],
    ['no probe handler', '    readinessProbe: {periodSeconds: 5}', /readinessProbe: must have exactly one handler/],
    ['two hook handlers', '    lifecycle: {preStop: {exec: {command: [a]}, sleep: {seconds: 1}}}', /lifecycle\.preStop: must have exactly one handler/],
    ['a request above its limit', '    resources: {requests: {cpu: "2"}, limits: {cpu: "1"}}', /resources\.requests\.cpu: must be less than or equal to the cpu limit/],
    ['a mount of no volume', '    volumeMounts: [{name: nowhere, mountPath: /x}]', /volumeMounts\[0\]\.name: no volume named "nowhere" in spec\.volumes/],
  ];
  for (const [name, line, expected] of rows) {
    const { errors } = verdict(pod({ container: `${broken}\n${line}` }));
    t.match(errors, [/ports: must be a list, got string$/, expected], `${name}, beside a type error`);
    t.equal(verdict(pod({ container: line })).errors.length, 1, `${name}, alone`);
  }
});
