// podvisor's own podvisor.io/rollback-after-seconds annotation: a value that is not a whole number
// of seconds is a warning naming the file, line and field (the pod still runs, on the agent's
// default window), where it used to become 0 and silently turn rollback off.
import t from 'tap';
import { ROLLBACK_AFTER_ANNOTATION, rollbackAfterSeconds } from '../../src/manifest/field-policy.js';
import { validateManifestText } from '../../src/manifest/load-file.js';
import { formatFinding } from '../../src/manifest/validate.js';
import { windowMs } from '../../src/rollout/rollout-guard.js';

const manifest = (value: string) => [
  'apiVersion: v1', //                                   1
  'kind: Pod', //                                        2
  'metadata:', //                                        3
  '  name: web', //                                      4
  '  annotations:', //                                   5
  `    ${ROLLBACK_AFTER_ANNOTATION}: "${value}"`, //     6
  'spec:', //                                            7
  '  containers:', //                                    8
  '    - name: app', //                                  9
  '      image: nginx:1.25', //                          10
  '',
].join('\n');

const check = (value: string) => validateManifestText(manifest(value), '/etc/podvisor/manifests.d/web.yaml', { nodeName: 'node1', displayName: 'web.yaml' });

t.test('an invalid value is a warning at its line; the pod stays valid', async (t) => {
  for (const value of ['abc', '-5', '2m', '1.5', '', ' 30']) {
    const result = check(value);
    t.same(result.findings.map(formatFinding), [
      `web.yaml:6:5: warning: metadata.annotations[${ROLLBACK_AFTER_ANNOTATION}]: ignored: must be a whole number of seconds, 0 or more (0 turns rollback off), got ${JSON.stringify(value)}; the agent's default (rollback-after) applies`,
    ], `${JSON.stringify(value)} is named`);
    t.equal(result.hasErrors, false, 'a warning only');
    t.same(result.pods.map((pod) => pod.key), ['default/web-node1'], 'the pod still runs');
  }
});

t.test('a whole number of seconds, 0 included, is no finding', async (t) => {
  for (const value of ['0', '30', '600']) t.same(check(value).findings.map(formatFinding), [], value);
  t.equal(rollbackAfterSeconds('0'), 0);
  t.equal(rollbackAfterSeconds('120'), 120);
  t.equal(rollbackAfterSeconds('2m'), undefined);
});

t.test('the rollout guard takes the default for an invalid value, not 0 (which turns rollback off)', async (t) => {
  const pod = (value: string) => check(value).pods[0]!;
  t.equal(windowMs(pod('abc'), 120), 120_000, '"abc": the default');
  t.equal(windowMs(pod('-5'), 120), 120_000, '"-5": the default');
  t.equal(windowMs(pod('2m'), 120), 120_000, '"2m": the default');
  t.equal(windowMs(pod('30'), 120), 30_000, 'a valid value is the window');
  t.equal(windowMs(pod('0'), 120), 0, '0 turns it off for this pod');
});
