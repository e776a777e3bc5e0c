// Scenario 1, adding a file: the pod podman runs has the containers, labels, hostname,
// environment and mounts the manifest asks for, and its published host port answers real HTTP
// on 127.0.0.1.
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { validateManifestText } from '../../src/manifest/load-file.js';
import { containersOf, exec, freePort, IMAGE, podman, podsOf, putManifest, setup, waitFor } from './harness.js';

t.test('a new manifest becomes a running pod', async (t) => {
  const world = await setup(t, 'add');
  const { node } = world;
  const port = await freePort();
  const token = randomBytes(6).toString('hex');
  const hostFile = join(world.root, 'host.txt');
  await writeFile(hostFile, `host-${token}\n`);

  const manifest = `apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: edge
spec:
  terminationGracePeriodSeconds: 2
  volumes:
    - name: www
      emptyDir: {}
    - name: host
      hostPath: { path: ${hostFile}, type: File }
  initContainers:
    - name: render
      image: ${IMAGE}
      command: ["sh", "-c", "echo \\"page $(POD_NAME) ${token}\\" > /www/index.html"]
      env:
        - name: POD_NAME
          valueFrom: { fieldRef: { fieldPath: metadata.name } }
      volumeMounts:
        - { name: www, mountPath: /www }
  containers:
    - name: httpd
      image: ${IMAGE}
      command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
      env:
        - { name: GREETING, value: hello }
        - { name: COMBINED, value: "$(GREETING)-world" }
        - name: POD_NAME
          valueFrom: { fieldRef: { fieldPath: metadata.name } }
        - name: POD_NAMESPACE
          valueFrom: { fieldRef: { fieldPath: metadata.namespace } }
        - name: NODE_NAME
          valueFrom: { fieldRef: { fieldPath: spec.nodeName } }
      ports:
        - { containerPort: 8080, hostPort: ${port}, hostIP: 127.0.0.1 }
      volumeMounts:
        - { name: www, mountPath: /www, readOnly: true }
        - { name: host, mountPath: /etc/e2e/host.txt, readOnly: true }
    - name: helper
      image: ${IMAGE}
      command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
`;
  const path = await putManifest(world.manifestDir, 'web.yaml', manifest);
  // What podvisor's identity rules say this file is, to compare the labels against.
  const expected = validateManifestText(manifest, path, { nodeName: node }).pods[0];
  if (!expected) throw new Error('the test manifest is not valid');

  const agent = await world.startAgent();
  const podName = `web-${node}`;
  const podmanName = `edge_${podName}`;
  await agent.waitForLog({ event: 'PodStarted' }, { pod: `edge/${podName}`, timeoutMs: 60_000 });

  const pods = await podsOf(node);
  t.equal(pods.length, 1, 'exactly one pod');
  const pod = pods[0];
  if (!pod) return;
  t.equal(pod.Name, podmanName);
  t.same(pod.Labels, {
    'io.podvisor.managed': 'true',
    'io.podvisor.node': node,
    'io.podvisor.namespace': 'edge',
    'io.podvisor.name': podName,
    'io.podvisor.hash': expected.hash,
    'io.podvisor.uid': expected.uid,
    'io.podvisor.source': path,
    'io.podvisor.grace-period': '2',
  }, 'pod labels');
  t.match(pod.Labels?.['io.podvisor.hash'], /^[0-9a-f]{16}$/);
  t.match(pod.Labels?.['io.podvisor.uid'], /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);

  const containers = await containersOf(node);
  t.same(containers.map((container) => [container.Names[0], container.State, container.Pod]), [
    [`${podmanName}_helper`, 'running', pod.Id],
    [`${podmanName}_httpd`, 'running', pod.Id],
    [`${podmanName}_render`, 'exited', pod.Id],
  ], 'containers: two app containers running, the init container done');
  const render = containers.find((container) => container.Names[0] === `${podmanName}_render`);
  t.equal(render?.ExitCode, 0, 'the init container exited 0');
  for (const container of containers) {
    const name = container.Labels?.['io.podvisor.container'];
    t.same(container.Labels, {
      'io.podvisor.managed': 'true',
      'io.podvisor.node': node,
      'io.podvisor.namespace': 'edge',
      'io.podvisor.name': podName,
      'io.podvisor.hash': expected.hash,
      'io.podvisor.uid': expected.uid,
      'io.podvisor.container': name,
      'io.podvisor.container-kind': name === 'render' ? 'init' : 'app',
    }, `labels of container ${String(name)}`);
  }

  const httpd = `${podmanName}_httpd`;
  t.equal(await exec(httpd, 'hostname'), podName, 'hostname is <name>-<node>');
  t.equal(await exec(`${podmanName}_helper`, 'hostname'), podName, 'containers share the pod hostname');

  const env = new Map((await exec(httpd, 'env')).split('\n').map((line) => {
    const at = line.indexOf('=');
    return [line.slice(0, at), line.slice(at + 1)] as const;
  }));
  t.equal(env.get('GREETING'), 'hello', 'literal value');
  t.equal(env.get('COMBINED'), 'hello-world', '$(VAR) expansion');
  t.equal(env.get('POD_NAME'), podName, 'fieldRef metadata.name');
  t.equal(env.get('POD_NAMESPACE'), 'edge', 'fieldRef metadata.namespace');
  t.equal(env.get('NODE_NAME'), node, 'fieldRef spec.nodeName');

  t.equal(await exec(httpd, 'cat', '/etc/e2e/host.txt'), `host-${token}`, 'hostPath file visible in the container');
  const page = `page ${podName} ${token}`;
  t.equal(await exec(httpd, 'cat', '/www/index.html'), page, 'the app container reads what the init container wrote');
  t.equal(await readFile(join(world.stateDir, 'pods', expected.uid, 'volumes', 'www', 'index.html'), 'utf8'), `${page}\n`,
    'the emptyDir lives under <state-dir>/pods/<uid>');

  // Real HTTP to the published port on loopback only. httpd may take a moment to listen.
  const body = await waitFor('HTTP answer on the published port', async () => {
    const response = await fetch(`http://127.0.0.1:${port}/index.html`, { signal: AbortSignal.timeout(2000) });
    return response.status === 200 ? await response.text() : undefined;
  }, { timeoutMs: 15_000 });
  t.equal(body, `${page}\n`, 'httpd serves the emptyDir over the published host port');

  // Published on 127.0.0.1 only, as hostIP says.
  const ports = await podman('port', httpd);
  t.equal(ports.trim(), `8080/tcp -> 127.0.0.1:${port}`, 'published on 127.0.0.1 only');

  t.equal(agent.find({ event: 'PodCreating' }, `edge/${podName}`).length, 1, 'created once');
  t.equal(agent.find({ event: 'ActionFailed' }).length, 0, 'no failed actions');
});
