// The agent's configuration: one zod schema for what `podvisor run` accepts, so a bad value is
// one clear line naming the flag, whatever it came from.
import { z } from 'zod';
import { UsageError } from '../errors.js';
import { LOG_LEVELS } from '../log/logger.js';
import { isDns1123Subdomain } from '../manifest/pod-schema.js';

const seconds = (flag: string, min: number) =>
  z.coerce.number({ message: `${flag} must be a number of seconds` }).finite(`${flag} must be a number of seconds`).min(min, `${flag} must be at least ${min}`);

export const agentConfigSchema = z
  .object({
  manifestDir: z.string().min(1, '--manifest-dir must not be empty'),
  nodeName: z
    .string()
    .transform((name) => name.toLowerCase())
    .refine(isDns1123Subdomain, '--node-name must be a DNS-1123 subdomain (lower-case letters, digits, "-" and ".")'),
  stateDir: z.string().min(1, '--state-dir must not be empty'),
  resyncIntervalSeconds: seconds('--resync-interval', 1),
  relistIntervalSeconds: seconds('--relist-interval', 1),
  backoffInitialSeconds: seconds('--backoff-initial', 0),
  backoffMaxSeconds: seconds('--backoff-max', 0),
  logLevel: z.enum(LOG_LEVELS as [string, ...string[]], { message: `--log-level must be one of ${LOG_LEVELS.join(', ')}` }),
  logFormat: z.enum(['text', 'json'], { message: '--log-format must be text or json' }).optional(),
  })
  .refine((config) => config.backoffMaxSeconds >= config.backoffInitialSeconds, { message: '--backoff-max must be at least --backoff-initial' });

export type AgentConfig = z.infer<typeof agentConfigSchema>;

/** Validates raw option values; the first problem is a UsageError naming its flag. */
export function parseAgentConfig(raw: Record<string, unknown>): AgentConfig {
  const result = agentConfigSchema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new UsageError(issue?.message ?? 'invalid configuration');
  }
  return result.data;
}
