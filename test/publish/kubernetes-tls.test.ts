// The Kubernetes publisher over HTTPS, with what a kubeconfig says: a CA file (named relative to
// the kubeconfig) and a token file, a client certificate inline, a CA that did not sign the
// server's certificate (a failure, reported), and insecure-skip-tls-verify (only when asked).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { KubernetesPublisher } from '../../src/publish/kubernetes.js';
import { loadKubeconfig } from '../../src/publish/kubeconfig.js';
import { recordingLogger, untilWithin } from '../support/recording.js';
import { NODE, pod, storeInput } from './fixtures.js';
import { attempts, tempDir, testMetrics } from './helpers.js';
import { KubeTestReceiver, type KubeTestReceiverOptions } from './kube-test-receiver.js';
import { makeTestTls, type TestTls } from './tls-fixture.js';

const until = untilWithin(15_000);
const TOKEN = 'token-over-tls';
const WEB = `default/web-${NODE}`;

const b64 = (text: string) => Buffer.from(text).toString('base64');

async function run(t: Test, tls: TestTls, receiverOptions: KubeTestReceiverOptions, cluster: string[], user: string[]) {
  const receiver = new KubeTestReceiver({ tls: { key: tls.pem('serverKey'), cert: tls.pem('server') }, ...receiverOptions });
  await receiver.start();
  t.teardown(() => receiver.stop());
  const path = join(tls.dir, `kubeconfig-${Math.random().toString(36).slice(2)}`);
  writeFileSync(
    path,
    ['apiVersion: v1', 'kind: Config', 'clusters:', '- name: edge', '  cluster:', `    server: ${receiver.url}`, ...cluster.map((line) => `    ${line}`),
      'users:', '- name: node', '  user:', ...(user.length ? user.map((line) => `    ${line}`) : ['    {}']),
      'contexts:', '- name: edge', '  context: {cluster: edge, user: node}', 'current-context: edge', ''].join('\n'),
  );
  const { input } = storeInput([pod('web')]);
  const { logger, lines } = recordingLogger();
  const metrics = testMetrics();
  const publisher = new KubernetesPublisher({ input, logger, metrics, connection: loadKubeconfig(path), retry: { initialMs: 20, maxMs: 100 }, stopTimeoutSeconds: 0.2 });
  t.teardown(() => publisher.stop());
  publisher.start();
  return { receiver, publisher, lines, metrics };
}

t.test('https', async (t) => {
  const tls = makeTestTls(tempDir(t));
  writeFileSync(join(tls.dir, 'token'), `${TOKEN}\n`);

  t.test('a CA file relative to the kubeconfig, and a token file', async (t) => {
    const { receiver, publisher } = await run(t, tls, { token: TOKEN }, [`certificate-authority: ${tls.files.ca}`], ['tokenFile: token']);
    await until(() => receiver.pod(WEB)?.status['phase'] === 'Running' && publisher.pending === 0, 'the mirror pod published');
    await until(() => publisher.health().ok && publisher.health().message === undefined, 'the pass finished');
    await until(() => receiver.lease(NODE) !== undefined, 'the node lease created over the same connection');
    t.ok(receiver.requests.every((request) => request.authorization === `Bearer ${TOKEN}`));
  });

  t.test('a client certificate and key given inline, checked by the server', async (t) => {
    const { receiver, publisher } = await run(
      t,
      tls,
      { tls: { key: tls.pem('serverKey'), cert: tls.pem('server'), clientCa: tls.pem('ca') } },
      [`certificate-authority-data: ${b64(tls.pem('ca'))}`],
      [`client-certificate-data: ${b64(tls.pem('client'))}`, `client-key-data: ${b64(tls.pem('clientKey'))}`],
    );
    await until(() => receiver.pod(WEB)?.status['phase'] === 'Running' && publisher.pending === 0, 'the mirror pod published');
    await until(() => publisher.health().ok && publisher.health().message === undefined, 'the pass finished');
  });

  t.test('a CA that did not sign the server certificate is a failure, reported', async (t) => {
    const { receiver, publisher, lines, metrics } = await run(t, tls, { token: TOKEN }, [`certificate-authority: ${tls.files.otherCa}`], ['tokenFile: token']);
    await until(() => !publisher.health().ok, 'the failure in health');
    t.match(publisher.health().message, /TLS verification of 127\.0\.0\.1:\d+ failed/);
    await until(() => publisher.health().message?.includes('2 attempt') === true, 'a retry');
    t.equal(receiver.requests.length, 0, 'nothing reached the server');
    t.ok((await attempts(metrics, 'kubernetes', 'tls')) >= 2);
    t.equal(lines.filter((line) => line.startsWith('warn') && line.includes('TLS verification')).length, 1);
  });

  t.test('without a CA, the system roots do not know the test CA', async (t) => {
    const { receiver, publisher } = await run(t, tls, { token: TOKEN }, [], ['tokenFile: token']);
    await until(() => !publisher.health().ok, 'the failure in health');
    t.match(publisher.health().message, /TLS verification/);
    t.equal(receiver.requests.length, 0);
  });

  t.test('insecure-skip-tls-verify is obeyed, and warned about', async (t) => {
    const { receiver, publisher, lines } = await run(t, tls, { token: TOKEN }, ['insecure-skip-tls-verify: true'], ['tokenFile: token']);
    await until(() => receiver.pod(WEB)?.status['phase'] === 'Running' && publisher.pending === 0, 'the mirror pod published');
    await until(() => publisher.health().ok && publisher.health().message === undefined, 'the pass finished');
    t.ok(lines.some((line) => line.startsWith('warn') && line.includes('insecure-skip-tls-verify')));
  });
});
