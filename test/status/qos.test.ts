// The QoS class, one table row per rule of GetPodQOS: container resources in, the exact class out.
import t from 'tap';
import type { Container } from '../../src/manifest/pod-schema.js';
import { qosClass } from '../../src/status/qos.js';
import type { PodQOSClass } from '../../src/status/types.js';

type Resources = NonNullable<Container['resources']>;

/** A container with the given resources. */
function container(name: string, resources?: Resources, fields: Partial<Container> = {}): Container {
  return { name, image: 'localhost/busybox:podvisor', ...(resources ? { resources } : {}), ...fields };
}

const both = (cpu: string | number, memory: string | number): Record<string, string | number> => ({ cpu, memory });

interface Row {
  rule: string;
  containers: Container[];
  initContainers?: Container[];
  expected: PodQOSClass;
}

const rows: Row[] = [
  { rule: 'no requests or limits anywhere: BestEffort', containers: [container('app'), container('log', {})], expected: 'BestEffort' },
  { rule: 'only other resources (ephemeral-storage, devices) do not count: BestEffort', containers: [container('app', { requests: { 'ephemeral-storage': '1Gi' }, limits: { 'example.com/gpu': '1' } })], expected: 'BestEffort' },
  { rule: 'zero quantities do not count: BestEffort', containers: [container('app', { requests: both('0', 0), limits: both('0m', '0Mi') })], expected: 'BestEffort' },
  { rule: 'requests equal to limits for cpu and memory: Guaranteed', containers: [container('app', { requests: both('500m', '128Mi'), limits: both('500m', '128Mi') })], expected: 'Guaranteed' },
  { rule: 'limits imply requests: limits alone are Guaranteed', containers: [container('app', { limits: both('1', '1Gi') })], expected: 'Guaranteed' },
  { rule: 'a limit implies only its own request: an explicit lower request stays Burstable', containers: [container('app', { requests: { cpu: '250m' }, limits: both('500m', '128Mi') })], expected: 'Burstable' },
  { rule: 'an explicit zero request is no request, even under a limit: Burstable', containers: [container('app', { requests: { cpu: '0' }, limits: both('1', '1Gi') })], expected: 'Burstable' },
  { rule: 'limits with every request explicitly zero are still not BestEffort: Burstable', containers: [container('app', { requests: both('0', '0'), limits: both('1', '1Gi') })], expected: 'Burstable' },
  { rule: 'requests without limits: Burstable', containers: [container('app', { requests: both('500m', '128Mi') })], expected: 'Burstable' },
  { rule: 'a request lower than its limit: Burstable', containers: [container('app', { requests: both('250m', '128Mi'), limits: both('500m', '128Mi') })], expected: 'Burstable' },
  { rule: 'a cpu limit without a memory limit: Burstable', containers: [container('app', { limits: { cpu: '1' } })], expected: 'Burstable' },
  { rule: 'a memory limit without a cpu limit: Burstable', containers: [container('app', { limits: { memory: '1Gi' } })], expected: 'Burstable' },
  { rule: 'a zero cpu limit is no limit: Burstable', containers: [container('app', { limits: both('0', '1Gi') })], expected: 'Burstable' },
  { rule: 'every container must limit both: one without resources makes the pod Burstable', containers: [container('app', { limits: both('1', '1Gi') }), container('log')], expected: 'Burstable' },
  { rule: 'every container limiting both with equal requests: Guaranteed', containers: [container('app', { limits: both('1', '1Gi') }), container('log', { requests: both('100m', '64Mi'), limits: both('100m', '64Mi') })], expected: 'Guaranteed' },
  { rule: 'init containers count: one without limits makes the pod Burstable', containers: [container('app', { limits: both('1', '1Gi') })], initContainers: [container('setup')], expected: 'Burstable' },
  { rule: 'init containers count: an init container with requests alone makes a pod Burstable', containers: [container('app')], initContainers: [container('setup', { requests: { memory: '64Mi' } })], expected: 'Burstable' },
  { rule: 'init containers and sidecars limiting both: Guaranteed', containers: [container('app', { limits: both('1', '1Gi') })], initContainers: [container('setup', { limits: both('200m', '64Mi') }), container('proxy', { limits: both('100m', '32Mi') }, { restartPolicy: 'Always' })], expected: 'Guaranteed' },
  { rule: 'equal quantities spelled differently are equal (exactly: 3e-1 is 300m)', containers: [container('app', { requests: both('3e-1', '1073741824'), limits: both('300m', '1Gi') })], expected: 'Guaranteed' },
  { rule: 'numbers are quantities: cpu 1 equals 1000m', containers: [container('app', { requests: both(1, '1G'), limits: both('1000m', '1000M') })], expected: 'Guaranteed' },
  { rule: 'nearly equal is not equal: 1G is not 1Gi', containers: [container('app', { requests: both('1', '1G'), limits: both('1', '1Gi') })], expected: 'Burstable' },
];

t.test('qosClass', async (t) => {
  t.equal(new Set(rows.map((row) => row.rule)).size, rows.length, 'every rule is named once');
  for (const row of rows) {
    const spec = { containers: row.containers, ...(row.initContainers ? { initContainers: row.initContainers } : {}) };
    t.equal(qosClass(spec), row.expected, row.rule);
  }
});
