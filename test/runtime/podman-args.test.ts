// How a desired pod becomes podman command lines: `pod create` for the shared namespaces, ports
// and labels, `run` for each container. Pure: whole argument lists compared exactly, so any
// change to the mapping shows here. Also the kubelet's $(VAR) expansion the arguments use.
import t from 'tap';
import { toDesiredPod, type DesiredPod } from '../../src/manifest/identity.js';
import type { Container, PodManifest, PodSpec } from '../../src/manifest/pod-schema.js';
import { expandVars } from '../../src/runtime/environment.js';
import { containerRunArgs, podCreateArgs, podHostname, type ContainerRunInput } from '../../src/runtime/podman-args.js';
import type { HostVolume } from '../../src/runtime/volumes.js';

const NODE = 'node1';
const IMAGE = 'localhost/busybox:podvisor';
const FACTS = { hostIP: '192.0.2.10', podIP: '198.51.100.7' };

function desiredPod(spec: Partial<PodSpec> = {}, metadata: Partial<PodManifest['metadata']> = {}): DesiredPod {
  const manifest: PodManifest = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'web', ...metadata },
    spec: { containers: [{ name: 'app', image: IMAGE }], ...spec },
  };
  return toDesiredPod(manifest, '/etc/podvisor/manifests.d/web.yaml', NODE, new Date(0));
}

/** The `--label` arguments every podvisor object carries. */
function baseLabels(pod: DesiredPod): string[] {
  return [
    '--label', 'io.podvisor.managed=true',
    '--label', `io.podvisor.node=${NODE}`,
    '--label', `io.podvisor.namespace=${pod.namespace}`,
    '--label', `io.podvisor.name=${pod.name}`,
    '--label', `io.podvisor.uid=${pod.uid}`,
    '--label', `io.podvisor.hash=${pod.hash}`,
  ];
}

/** The `run` arguments for the pod's first container (or the named one). */
function runArgs(pod: DesiredPod, options: Partial<ContainerRunInput> & { containerName?: string } = {}): string[] {
  const all = [...pod.pod.spec.containers, ...(pod.pod.spec.initContainers ?? [])];
  const container = options.container ?? all.find((one) => one.name === (options.containerName ?? all[0]?.name));
  if (!container) throw new Error('no such container');
  return containerRunArgs({
    pod,
    container,
    kind: options.kind ?? 'app',
    nodeName: NODE,
    volumes: options.volumes ?? new Map(),
    facts: options.facts ?? FACTS,
    logMaxBytes: options.logMaxBytes,
  });
}

/** The values that follow each occurrence of `flag`. */
function valuesOf(args: readonly string[], flag: string): string[] {
  return args.flatMap((arg, index) => (arg === flag ? [args[index + 1] ?? '<missing>'] : []));
}

t.test('pod create: the whole command for a plain pod', async (t) => {
  const pod = desiredPod();
  t.strictSame(podCreateArgs(pod, NODE), [
    'pod', 'create', '--name', 'default_web-node1',
    ...baseLabels(pod),
    '--label', 'io.podvisor.source=/etc/podvisor/manifests.d/web.yaml',
    '--label', 'io.podvisor.grace-period=30',
    '--share', 'ipc,net,uts',
    '--hostname', 'web-node1',
  ]);
});

t.test('pod create: labels carry identity, source and grace period', async (t) => {
  const pod = desiredPod({ terminationGracePeriodSeconds: 7 }, { namespace: 'edge' });
  const labels = valuesOf(podCreateArgs(pod, 'other-node'), '--label');
  t.strictSame(labels, [
    'io.podvisor.managed=true',
    'io.podvisor.node=other-node',
    'io.podvisor.namespace=edge',
    `io.podvisor.name=web-${NODE}`,
    `io.podvisor.uid=${pod.uid}`,
    `io.podvisor.hash=${pod.hash}`,
    'io.podvisor.source=/etc/podvisor/manifests.d/web.yaml',
    'io.podvisor.grace-period=7',
  ]);
  t.strictSame(valuesOf(podCreateArgs(pod, NODE), '--name'), ['edge_web-node1']);
});

t.test('pod create: shareProcessNamespace shares the pid namespace too', async (t) => {
  t.strictSame(valuesOf(podCreateArgs(desiredPod({ shareProcessNamespace: true }), NODE), '--share'), ['ipc,net,uts,pid']);
  t.strictSame(valuesOf(podCreateArgs(desiredPod({ shareProcessNamespace: false }), NODE), '--share'), ['ipc,net,uts']);
});

t.test('pod create: hostname is spec.hostname, else the name cut to 63 characters', async (t) => {
  t.equal(podHostname(desiredPod({ hostname: 'gateway' })), 'gateway');
  t.strictSame(valuesOf(podCreateArgs(desiredPod({ hostname: 'gateway' }), NODE), '--hostname'), ['gateway']);
  // 62 letters + "-node1": the cut falls just after the "-", which is trimmed as the kubelet does.
  const long = desiredPod({}, { name: 'a'.repeat(62) });
  t.equal(long.name.length, 68);
  t.equal(podHostname(long), 'a'.repeat(62));
  const cutInName = desiredPod({}, { name: `${'b'.repeat(60)}.c.d` });
  t.equal(podHostname(cutInName), `${'b'.repeat(60)}.c`);
  const exact = desiredPod({}, { name: 'c'.repeat(57) });
  t.equal(podHostname(exact), `${'c'.repeat(57)}-node1`, '63 characters exactly are kept');
});

t.test('pod create: hostNetwork uses the host network and hostname, and publishes nothing', async (t) => {
  const pod = desiredPod({
    hostNetwork: true,
    containers: [{ name: 'app', image: IMAGE, ports: [{ containerPort: 8080, hostPort: 8080 }] }],
  });
  const args = podCreateArgs(pod, NODE);
  t.strictSame(args.slice(args.indexOf('--share')), ['--share', 'ipc,net,uts', '--network', 'host', '--uts', 'host']);
  t.strictSame(valuesOf(args, '--publish'), []);
  t.strictSame(valuesOf(args, '--hostname'), []);
});

t.test('pod create: hostPorts are published, with hostIP and protocol', async (t) => {
  const pod = desiredPod({
    containers: [
      {
        name: 'app',
        image: IMAGE,
        ports: [
          { containerPort: 80, hostPort: 8080 },
          { containerPort: 81, hostPort: 8081, hostIP: '127.0.0.1' },
          { containerPort: 53, hostPort: 5353, protocol: 'UDP', hostIP: '::1' },
          { containerPort: 9090 },
        ],
      },
      { name: 'side', image: IMAGE, ports: [{ containerPort: 82, hostPort: 8082, protocol: 'SCTP' }] },
    ],
  });
  t.strictSame(valuesOf(podCreateArgs(pod, NODE), '--publish'), [
    '8080:80/tcp',
    '127.0.0.1:8081:81/tcp',
    '[::1]:5353:53/udp',
    '8082:82/sctp',
  ]);
});

t.test('pod create: hostAliases and hostPID', async (t) => {
  const pod = desiredPod({
    hostPID: true,
    hostAliases: [{ ip: '192.0.2.1', hostnames: ['db', 'db.local'] }, { ip: '192.0.2.2', hostnames: ['cache'] }, { ip: '192.0.2.3' }],
  });
  const args = podCreateArgs(pod, NODE);
  t.strictSame(valuesOf(args, '--add-host'), ['db:192.0.2.1', 'db.local:192.0.2.1', 'cache:192.0.2.2']);
  t.strictSame(valuesOf(args, '--pid'), ['host']);
});

t.test('run: the whole command for a plain container', async (t) => {
  const pod = desiredPod();
  t.strictSame(runArgs(pod), [
    'run', '--detach',
    '--pod', 'default_web-node1',
    '--name', 'default_web-node1_app',
    ...baseLabels(pod),
    '--label', 'io.podvisor.container=app',
    '--label', 'io.podvisor.container-kind=app',
    '--restart', 'no',
    '--pull', 'missing',
    '--stop-timeout', '30',
    IMAGE,
  ]);
});

t.test('run: the container log is bounded when a bound is given', async (t) => {
  const pod = desiredPod();
  t.strictSame(valuesOf(runArgs(pod, { logMaxBytes: 10_485_760 }), '--log-opt'), ['max-size=10485760']);
  t.strictSame(valuesOf(runArgs(pod), '--log-opt'), [], 'podman\'s own default otherwise');
});

t.test('run: an init container is labelled as one', async (t) => {
  const pod = desiredPod({ initContainers: [{ name: 'setup', image: IMAGE }] });
  const args = runArgs(pod, { containerName: 'setup', kind: 'init' });
  t.strictSame(valuesOf(args, '--label').slice(-2), ['io.podvisor.container=setup', 'io.podvisor.container-kind=init']);
  t.strictSame(valuesOf(args, '--name'), ['default_web-node1_setup']);
});

t.test('run: --pull follows imagePullPolicy (and its default), --restart is always no', async (t) => {
  const table: [Container, string][] = [
    [{ name: 'app', image: IMAGE, imagePullPolicy: 'Always' }, 'always'],
    [{ name: 'app', image: IMAGE, imagePullPolicy: 'IfNotPresent' }, 'missing'],
    [{ name: 'app', image: IMAGE, imagePullPolicy: 'Never' }, 'never'],
    [{ name: 'app', image: IMAGE }, 'missing'],
    [{ name: 'app', image: 'localhost/busybox' }, 'always'],
    [{ name: 'app', image: 'localhost/busybox:latest' }, 'always'],
  ];
  for (const [container, expected] of table) {
    const args = runArgs(desiredPod({ restartPolicy: 'Always', containers: [container] }));
    t.strictSame(valuesOf(args, '--pull'), [expected], `${container.image} ${container.imagePullPolicy ?? '(default)'}`);
    t.strictSame(valuesOf(args, '--restart'), ['no']);
  }
});

t.test('run: --stop-timeout is the grace period', async (t) => {
  t.strictSame(valuesOf(runArgs(desiredPod({ terminationGracePeriodSeconds: 3 })), '--stop-timeout'), ['3']);
  t.strictSame(valuesOf(runArgs(desiredPod({ terminationGracePeriodSeconds: 0 })), '--stop-timeout'), ['0']);
});

t.test('run: command becomes --entrypoint JSON and args follow the image, both $(VAR)-expanded', async (t) => {
  const pod = desiredPod({
    containers: [{
      name: 'app',
      image: IMAGE,
      env: [{ name: 'GREETING', value: 'hello world' }, { name: 'PORT', value: '8080' }],
      command: ['sh', '-c', 'echo $(GREETING) $$(GREETING) $(MISSING) "$HOME"'],
      args: ['--port=$(PORT)', '$$', '$(PORT', 'plain'],
    }],
  });
  const args = runArgs(pod);
  const image = args.indexOf(IMAGE);
  t.strictSame(args.slice(image - 2), [
    '--entrypoint', JSON.stringify(['sh', '-c', 'echo hello world $(GREETING) $(MISSING) "$HOME"']),
    IMAGE,
    '--port=8080', '$', '$(PORT', 'plain',
  ]);
});

t.test('run: args without a command keep the image entrypoint', async (t) => {
  const args = runArgs(desiredPod({ containers: [{ name: 'app', image: IMAGE, args: ['sleep', '5'] }] }));
  t.strictSame(valuesOf(args, '--entrypoint'), []);
  t.strictSame(args.slice(-3), [IMAGE, 'sleep', '5']);
});

t.test('run: --env in order, values from earlier variables and from the pod', async (t) => {
  const pod = desiredPod(
    {
      containers: [{
        name: 'app',
        image: IMAGE,
        resources: { limits: { cpu: '250m', memory: '64Mi' } },
        env: [
          { name: 'Z_FIRST', value: 'z' },
          { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
          { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
          { name: 'POD_UID', valueFrom: { fieldRef: { fieldPath: 'metadata.uid' } } },
          { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
          { name: 'HOST_IP', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } },
          { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
          { name: 'APP', valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
          { name: 'NO_LABEL', valueFrom: { fieldRef: { fieldPath: "metadata.labels['missing']" } } },
          { name: 'CPU_MILLIS', valueFrom: { resourceFieldRef: { resource: 'limits.cpu', divisor: '1m' } } },
          { name: 'MEM_MI', valueFrom: { resourceFieldRef: { resource: 'limits.memory', divisor: '1Mi' } } },
          { name: 'CPU_CORES', valueFrom: { resourceFieldRef: { resource: 'limits.cpu' } } },
          { name: 'URL', value: 'http://$(HOST_IP):$(PORT)/$(POD_NAME)' },
          { name: 'PORT', value: '80' },
          { name: 'EMPTY', value: '' },
          { name: 'A_LAST', value: '$(Z_FIRST)$(A_LAST)' },
        ],
      }],
    },
    { labels: { app: 'shop' } },
  );
  t.strictSame(valuesOf(runArgs(pod), '--env'), [
    'Z_FIRST=z',
    'POD_NAME=web-node1',
    'POD_NAMESPACE=default',
    `POD_UID=${pod.uid}`,
    'NODE_NAME=node1',
    'HOST_IP=192.0.2.10',
    'POD_IP=198.51.100.7',
    'APP=shop',
    'NO_LABEL=',
    'CPU_MILLIS=250',
    'MEM_MI=64',
    'CPU_CORES=1',
    // PORT is defined after URL, so it is not known yet and stays as written.
    'URL=http://192.0.2.10:$(PORT)/web-node1',
    'PORT=80',
    'EMPTY=',
    'A_LAST=z$(A_LAST)',
  ]);
});

t.test('run: resourceFieldRef divides exactly (1001m in millicores is 1001)', async (t) => {
  const env = (cpu: string) => valuesOf(runArgs(desiredPod({
    containers: [{ name: 'app', image: IMAGE, resources: { limits: { cpu } }, env: [{ name: 'CPU', valueFrom: { resourceFieldRef: { resource: 'limits.cpu', divisor: '1m' } } }] }],
  })), '--env');
  t.strictSame(env('1001m'), ['CPU=1001']);
  t.strictSame(env('1.5'), ['CPU=1500']);
});

t.test('run: --mount for each volumeMount, with subPath and read-only', async (t) => {
  const pod = desiredPod({
    volumes: [
      { name: 'data', hostPath: { path: '/srv/data', type: 'Directory' } },
      { name: 'cache', emptyDir: {} },
      { name: 'info', downwardAPI: { items: [{ path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } }] } },
    ],
    containers: [{
      name: 'app',
      image: IMAGE,
      volumeMounts: [
        { name: 'data', mountPath: '/data' },
        { name: 'data', mountPath: '/config', subPath: 'conf/app', readOnly: true },
        { name: 'cache', mountPath: '/cache', readOnly: false },
        { name: 'info', mountPath: '/etc/podinfo' },
        { name: 'not-prepared', mountPath: '/nowhere' },
      ],
    }],
  });
  const volumes = new Map<string, HostVolume>([
    ['data', { path: '/srv/data', readOnly: false }],
    ['cache', { path: '/var/lib/podvisor/pods/u/volumes/cache', readOnly: false }],
    ['info', { path: '/var/lib/podvisor/pods/u/volumes/info', readOnly: true }],
  ]);
  t.strictSame(valuesOf(runArgs(pod, { volumes }), '--mount'), [
    'type=bind,source=/srv/data,destination=/data',
    'type=bind,source=/srv/data/conf/app,destination=/config,ro=true',
    'type=bind,source=/var/lib/podvisor/pods/u/volumes/cache,destination=/cache',
    'type=bind,source=/var/lib/podvisor/pods/u/volumes/info,destination=/etc/podinfo,ro=true',
  ]);
});

t.test('run: cpu and memory', async (t) => {
  const resources = (resources: Container['resources']) => {
    const args = runArgs(desiredPod({ containers: [{ name: 'app', image: IMAGE, resources }] }));
    return { cpus: valuesOf(args, '--cpus'), shares: valuesOf(args, '--cpu-shares'), memory: valuesOf(args, '--memory') };
  };
  // A limit without a request makes the request equal to the limit (the API server's default).
  t.strictSame(resources({ limits: { cpu: '250m', memory: '64Mi' } }), { cpus: ['0.25'], shares: ['256'], memory: ['67108864'] });
  t.strictSame(resources({ limits: { cpu: '2' }, requests: { cpu: '100m' } }), { cpus: ['2'], shares: ['102'], memory: [] });
  t.strictSame(resources({ requests: { cpu: '1m', memory: '32Mi' } }), { cpus: [], shares: ['2'], memory: [] }, 'shares are at least 2; a memory request sets nothing');
  t.strictSame(resources({ limits: { cpu: '1.5', memory: '1G' } }), { cpus: ['1.5'], shares: ['1536'], memory: ['1000000000'] });
  t.strictSame(resources({}), { cpus: [], shares: [], memory: [] });
});

t.test('run: security context', async (t) => {
  const security = (spec: Partial<PodSpec>) => {
    const args = runArgs(desiredPod(spec));
    const image = args.indexOf(IMAGE);
    return args.slice(args.indexOf('--stop-timeout') + 2, image);
  };
  t.strictSame(security({ securityContext: { runAsUser: 1000, runAsGroup: 2000 } }), ['--user', '1000:2000']);
  t.strictSame(security({
    securityContext: { runAsUser: 1000, runAsGroup: 2000, supplementalGroups: [44, 45] },
    containers: [{ name: 'app', image: IMAGE, securityContext: { runAsUser: 1001 } }],
  }), ['--user', '1001:2000', '--group-add', '44', '--group-add', '45'], 'container over pod, field by field');
  t.strictSame(security({ containers: [{ name: 'app', image: IMAGE, securityContext: { runAsUser: 0 } }] }), ['--user', '0']);
  t.strictSame(security({ securityContext: { runAsGroup: 2000 } }), ['--user', ':2000'], 'runAsGroup alone: the image user, primary group 2000');
  t.strictSame(security({
    containers: [{
      name: 'app',
      image: IMAGE,
      securityContext: {
        privileged: true,
        capabilities: { add: ['NET_ADMIN', 'SYS_TIME'], drop: ['ALL'] },
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
      },
    }],
  }), [
    '--privileged',
    '--cap-add', 'NET_ADMIN', '--cap-add', 'SYS_TIME', '--cap-drop', 'ALL',
    '--read-only', '--read-only-tmpfs=false',
    '--security-opt', 'no-new-privileges',
  ]);
  t.strictSame(security({ containers: [{ name: 'app', image: IMAGE, securityContext: { allowPrivilegeEscalation: true, readOnlyRootFilesystem: false } }] }), []);
});

t.test('run: seccompProfile: Unconfined turns podman\'s profile off, container over pod; RuntimeDefault is podman\'s own', async (t) => {
  const seccomp = (spec: Partial<PodSpec>) => valuesOf(runArgs(desiredPod(spec)), '--security-opt');
  const app = (securityContext: Container['securityContext']): Container[] => [{ name: 'app', image: IMAGE, securityContext }];
  t.strictSame(seccomp({ securityContext: { seccompProfile: { type: 'RuntimeDefault' } } }), []);
  t.strictSame(seccomp({ securityContext: { seccompProfile: { type: 'Unconfined' } } }), ['seccomp=unconfined']);
  t.strictSame(seccomp({ securityContext: { seccompProfile: { type: 'Unconfined' } }, containers: app({ seccompProfile: { type: 'RuntimeDefault' } }) }), [], 'the container\'s own profile wins');
  t.strictSame(seccomp({ containers: app({ seccompProfile: { type: 'Unconfined' } }) }), ['seccomp=unconfined']);
  t.strictSame(seccomp({ containers: app({ privileged: true, seccompProfile: { type: 'Unconfined' } }) }), [], '--privileged has no profile already');
  t.strictSame(seccomp({ securityContext: { seccompProfile: { type: 'Localhost', localhostProfile: 'audit.json' } } }), [], 'Localhost: not loaded (a warning), podman\'s default');
});

t.test('run: workingDir', async (t) => {
  t.strictSame(valuesOf(runArgs(desiredPod({ containers: [{ name: 'app', image: IMAGE, workingDir: '/srv' }] })), '--workdir'), ['/srv']);
});

t.test('expandVars', async (t) => {
  const vars = new Map([['A', 'x'], ['B', '$(A)'], ['EMPTY', ''], ['WITH_DOLLAR', '$$']]);
  const table: [string, string][] = [
    ['$(A)', 'x'],
    ['pre-$(A)-post', 'pre-x-post'],
    ['$(A)$(A)', 'xx'],
    ['$(UNKNOWN)', '$(UNKNOWN)'],
    ['$(A) $(UNKNOWN) $(A)', 'x $(UNKNOWN) x'],
    ['$$(A)', '$(A)'],
    ['$$', '$'],
    ['$$$$', '$$'],
    ['$$$(A)', '$x'],
    ['a$b', 'a$b'],
    ['$', '$'],
    ['end$', 'end$'],
    ['$(A', '$(A'],
    ['$(A $(A)', '$(A $(A)'],
    ['x $(', 'x $('],
    ['$()', '$()'],
    ['$(B)', '$(A)'],
    ['$(EMPTY)', ''],
    ['$(WITH_DOLLAR)', '$$'],
    ['$A', '$A'],
    ['${A}', '${A}'],
    ['', ''],
  ];
  for (const [input, expected] of table) t.equal(expandVars(input, vars), expected, JSON.stringify(input));
});
