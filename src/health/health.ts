// Whether the agent's loops are alive, as named checks in the style of the Kubernetes
// components' /healthz: each check says ok or why not. Required checks decide health (503 when
// one fails); informational ones (a publish endpoint that is down) show in the detail only,
// since they never hold up supervision.

export interface CheckResult {
  ok: boolean;
  /** Why not, or a detail worth showing when ok. */
  message?: string;
}

export interface HealthCheck {
  name: string;
  /** false: shown, never makes the agent unhealthy. */
  required: boolean;
  check(): CheckResult;
}

export interface HealthReport {
  healthy: boolean;
  checks: (CheckResult & { name: string; required: boolean })[];
}

export class HealthChecks {
  readonly #checks: HealthCheck[] = [];

  /** Adds a check; returns what removes it again (a reader stopped on a reload takes its checks along). */
  add(check: HealthCheck): () => void {
    this.#checks.push(check);
    return () => {
      const at = this.#checks.indexOf(check);
      if (at >= 0) this.#checks.splice(at, 1);
    };
  }

  report(): HealthReport {
    const checks = this.#checks.map((one) => {
      let result: CheckResult;
      try {
        result = one.check();
      } catch (error) {
        result = { ok: false, message: `check failed: ${error instanceof Error ? error.message : String(error)}` };
      }
      return { name: one.name, required: one.required, ...result };
    });
    return { healthy: checks.every((check) => check.ok || !check.required), checks };
  }

  /** The first failing required check's words, or "ok": the node's Ready message. */
  summary(): { ready: boolean; message: string } {
    const report = this.report();
    const failing = report.checks.find((check) => check.required && !check.ok);
    if (!failing) return { ready: true, message: 'podvisor is supervising its pods' };
    return { ready: false, message: `${failing.name}: ${failing.message ?? 'failed'}` };
  }
}

/** The /healthz text: "ok", or one line a check as the Kubernetes components print `?verbose`. */
export function healthText(report: HealthReport, verbose: boolean): string {
  if (report.healthy && !verbose) return 'ok';
  const lines = report.checks.map((check) => {
    const mark = check.ok ? '[+]' : check.required ? '[-]' : '[!]';
    const words = check.ok ? `ok${check.message ? ` (${check.message})` : ''}` : `failed: ${check.message ?? 'no reason given'}`;
    return `${mark}${check.name} ${words}`;
  });
  lines.push(report.healthy ? 'healthz check passed' : 'healthz check failed');
  return lines.join('\n');
}

/** A check that a loop has finished a round within `maxAgeMs` (given when it last did, in ms). */
export function freshness(input: { last: () => number | undefined; maxAgeMs: number; now?: () => number; what: string; error?: () => string | undefined; startedAt: number }): () => CheckResult {
  const now = input.now ?? Date.now;
  return () => {
    const last = input.last() ?? input.startedAt;
    const age = now() - last;
    const error = input.error?.();
    if (age <= input.maxAgeMs) return error ? { ok: true, message: `last attempt failed: ${error}` } : { ok: true };
    return { ok: false, message: `no ${input.what} for ${Math.round(age / 1000)} s${error ? `: ${error}` : ''}` };
  };
}
