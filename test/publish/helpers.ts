// Small helpers for the publish tests: a metrics registry to read counters from, a temporary
// directory removed after the test, and a kubeconfig for a test receiver.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentMetrics } from '../../src/metrics/metrics.js';

export function testMetrics(): AgentMetrics {
  return new AgentMetrics({ pods: () => [], processMetrics: false });
}

/** The value of publishAttempts for `mode` and `result` (0 when never counted). */
export async function attempts(metrics: AgentMetrics, mode: string, result: string): Promise<number> {
  const { values } = await metrics.publishAttempts.get();
  return values.find((value) => value.labels['mode'] === mode && value.labels['result'] === result)?.value ?? 0;
}

export async function pendingGauge(metrics: AgentMetrics, mode: string): Promise<number | undefined> {
  const { values } = await metrics.publishPending.get();
  return values.find((value) => value.labels['mode'] === mode)?.value;
}

export function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'podvisor-publish-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A kubeconfig naming `server`, with `token` inline. */
export function kubeconfigFor(server: string, token: string): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: test',
    '  cluster:',
    `    server: ${server}`,
    'users:',
    '- name: podvisor',
    '  user:',
    `    token: ${token}`,
    'contexts:',
    '- name: test',
    '  context: {cluster: test, user: podvisor}',
    'current-context: test',
    '',
  ].join('\n');
}
