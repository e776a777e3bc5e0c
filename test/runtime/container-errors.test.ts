// What podman 4.3 prints when a container or its pod cannot start (its stderr as PodmanCli keeps
// it: log framing and "Error: " dropped, lines joined with '; '), and the kubelet's reason and
// message podvisor makes of it. The stderr texts are copied from podman 4.3.1 on Debian 12.
import t from 'tap';
import type { Container } from '../../src/manifest/pod-schema.js';
import { classifyStartFailure, podmanSaid, SandboxStartError } from '../../src/runtime/container-errors.js';
import { PodmanError } from '../../src/runtime/podman-cli.js';

const IMAGE = 'localhost/does-not-exist:1';

function failure(stderr: string): PodmanError {
  return new PodmanError(`podman run --detach: ${stderr}`, { args: ['run', '--detach'], exitCode: 125, stderr });
}

function container(imagePullPolicy: Container['imagePullPolicy']): Container {
  return { name: 'app', image: IMAGE, imagePullPolicy } as Container;
}

const PULL = 'Trying to pull localhost/does-not-exist:1...; '
  + 'Failed, retrying in 1s ... (1/3). Error: initializing source docker://localhost/does-not-exist:1: pinging container registry localhost: Get \\"https://localhost/v2/\\": dial tcp 127.0.0.1:443: connect: connection refused; '
  + 'initializing source docker://localhost/does-not-exist:1: pinging container registry localhost: Get "https://localhost/v2/": dial tcp 127.0.0.1:443: connect: connection refused';
const PORT = 'Starting some container dependencies; \\"cannot listen on the TCP port: listen tcp4 127.0.0.1:8080: bind: address already in use\\"; starting some containers: internal libpod error';
const NAME = 'creating container storage: the container name "default_web-n1_app" is already in use by d507. You have to remove that container to be able to reuse that name: that name is already in use';

t.test('podman\'s error, not its progress or retry lines', async (t) => {
  t.equal(podmanSaid(failure(PULL)), 'initializing source docker://localhost/does-not-exist:1: pinging container registry localhost: Get "https://localhost/v2/": dial tcp 127.0.0.1:443: connect: connection refused');
  t.equal(podmanSaid(failure(PORT)), 'cannot listen on the TCP port: listen tcp4 127.0.0.1:8080: bind: address already in use', 'the port, not "internal libpod error"');
  t.equal(podmanSaid(failure('unable to start container "d08e": cannot listen on the TCP port: listen tcp4 127.0.0.1:8080: bind: address already in use')), 'cannot listen on the TCP port: listen tcp4 127.0.0.1:8080: bind: address already in use', 'podman start of the infra');
  t.equal(podmanSaid(failure(NAME)), NAME);
  t.equal(podmanSaid(new Error('Error: plain')), 'plain');
});

t.test('the kubelet\'s reasons', async (t) => {
  const rows: [string, Container['imagePullPolicy'], string, string, string][] = [
    ['a pull with no registry', 'IfNotPresent', PULL, 'ErrImagePull', podmanSaid(failure(PULL))],
    ['Always with no registry', 'Always', PULL, 'ErrImagePull', podmanSaid(failure(PULL))],
    ['Never, image not here', 'Never', `${IMAGE}: image not known`, 'ErrImageNeverPull', `Container image "${IMAGE}" is not present with pull policy of Never`],
    ['a container name taken', 'IfNotPresent', NAME, 'CreateContainerError', NAME],
  ];
  for (const [rule, policy, stderr, reason, message] of rows) {
    const error = classifyStartFailure(failure(stderr), container(policy), false);
    t.same({ reason: error.reason, message: error.message }, { reason, message: `container "app": ${reason}: ${message}` }, rule);
  }
});

t.test('a sandbox that cannot start says so in the kubelet\'s FailedCreatePodSandBox words', async (t) => {
  const error = new SandboxStartError('app', failure(PORT));
  t.equal(error.reason, 'CreatePodSandboxError');
  t.equal(error.containerName, 'app');
  t.equal(error.message, 'container "app": CreatePodSandboxError: Failed to create pod sandbox: cannot listen on the TCP port: listen tcp4 127.0.0.1:8080: bind: address already in use');
  t.equal(classifyStartFailure(error, container('IfNotPresent'), false), error, 'kept as it is');
});
