// The agent's configuration: one zod schema for what `podvisor run` accepts, from flags or a
// config file (`--config FILE`, YAML, the same names as the flags, with `api:` and `publish:`
// sections). A bad value is one clear line naming the flag, or the file, line and key.
import { z } from 'zod';
import { UsageError } from '../errors.js';
import { LOG_FORMATS, LOG_LEVELS } from '../log/logger.js';
import { normalizeCapability, normalizeHostPath } from '../manifest/device-policy.js';
import { isDns1123Subdomain } from '../manifest/pod-schema.js';
import { parseQuantity } from '../manifest/quantity.js';
import { MAX_WINDOW_SECONDS, parseDuration, windowExpressionProblem } from '../rollout/replace-window.js';

const seconds = (flag: string, min: number) =>
  z.coerce.number({ message: `${flag} must be a number of seconds` }).finite(`${flag} must be a number of seconds`).min(min, `${flag} must be at least ${min}`);

/** The default heartbeat: every minute. */
export const DEFAULT_HEARTBEAT = '* * * * *';

/**
 * node-cron's own check of an expression, loaded only for an expression other than the default:
 * an agent that publishes nothing need not carry the module (a few MB of RSS on a small device).
 * A dynamic import, so that the bundle carries node-cron and the package needs no node_modules.
 */
async function validCron(expression: string): Promise<boolean> {
  if (expression === DEFAULT_HEARTBEAT) return true;
  const { validate } = await import('node-cron');
  return validate(expression);
}

/** The smallest container log bound: conmon would start a log over at nearly every line below it. */
const MIN_CONTAINER_LOG_BYTES = 64 * 1024;

/** A size as Kubernetes writes quantities (10Mi, 500Ki, 1048576), in bytes. */
const logSize = (flag: string) =>
  z
    .union([z.string(), z.number()], { message: `${flag} must be a size such as 10Mi` })
    .transform((value, context) => {
      const bytes = parseQuantity(value);
      if (bytes === undefined || !Number.isFinite(bytes) || bytes < MIN_CONTAINER_LOG_BYTES) {
        context.addIssue({ code: 'custom', message: `${flag} must be a size of at least 64Ki, such as 10Mi` });
        return z.NEVER;
      }
      return Math.floor(bytes);
    });

/** A yes or no: `true`/`false` in a file, or as a flag's value. */
const yesNo = (flag: string) =>
  z.union([z.boolean(), z.enum(['true', 'false'])], { message: `${flag} must be true or false` }).transform((value) => value === true || value === 'true');

/** A length of time: `90m`, `2h`, `1h30m`, `45s`, or a number of seconds. */
const duration = (flag: string, min: number, max: number) =>
  z
    .union([z.string(), z.number()], { message: `${flag} must be a duration such as 1h or 90m` })
    .transform((value, context) => {
      const seconds = parseDuration(value);
      if (seconds === undefined) {
        context.addIssue({ code: 'custom', message: `${flag} must be a duration such as 1h, 90m or 1h30m (or a number of seconds), not "${String(value)}"` });
        return z.NEVER;
      }
      if (seconds < min || seconds > max) {
        context.addIssue({ code: 'custom', message: `${flag} must be between ${min} s and ${max / 86400} days, not ${seconds} s` });
        return z.NEVER;
      }
      return seconds;
    });

/** A replace window's cron expression: five fields, checked by node-cron (loaded only when one is given). */
const windowExpression = z.string({ message: '--replace-window must be a cron expression in quotes, such as "0 2 * * *"' }).superRefine(async (text, context) => {
  const problem = await windowExpressionProblem(text);
  if (problem) context.addIssue({ code: 'custom', message: `--replace-window ${problem}` });
});

const path = (flag: string) => z.string({ message: `${flag} must be a path` }).min(1, `${flag} must not be empty`);

/**
 * A list: a YAML sequence in the config file, comma-separated as a flag's value (`a,b`; an
 * empty value is an empty list). Each item is checked by `item`, so an error names the item.
 */
const list = <T extends z.ZodType>(flag: string, item: T) =>
  z.preprocess(
    (value) => (typeof value === 'string' ? (value.trim() === '' ? [] : value.split(',').map((one) => one.trim())) : value),
    z.array(item, { message: `${flag} must be a list (a YAML sequence in the config file, comma-separated as a flag)` }),
  );

/** An item of a list of absolute paths (normalised, as they are compared). */
const absolutePath = (flag: string) =>
  z
    .string({ message: `${flag}: each item must be a path` })
    .refine((text) => text.startsWith('/'), { error: (issue) => `${flag}: "${String(issue.input)}" is not an absolute path` })
    .transform(normalizeHostPath);

const capabilityName = z
  .string({ message: '--policy-capabilities: each item must be a capability name' })
  .regex(/^[A-Za-z_]+$/, { error: (issue) => `--policy-capabilities: "${String(issue.input)}" is not a capability name (such as NET_BIND_SERVICE)` })
  .transform(normalizeCapability);

/** A registry as an image reference's first element names it (a dot, a port or localhost), with an optional path prefix. */
const registryName = z
  .string({ message: '--policy-registries: each item must be a registry' })
  .transform((text) => text.toLowerCase().replace(/\/+$/, ''))
  .refine((text) => /^(?:localhost|[a-z0-9-]+(?:\.[a-z0-9-]+)+|[a-z0-9.-]+:\d{1,5})(?::\d{1,5})?(?:\/[a-z0-9._-]+)*$/.test(text), {
    error: (issue) => `--policy-registries: "${String(issue.input)}" is not a registry: write its host as images name it (registry.example.com, host:5000, localhost), optionally with a path (quay.io/myorg), without https://`,
  });

/** `HOST:PORT` (an IPv6 host in brackets) as the API's listening address. */
export function parseListenAddress(text: string): { host: string; port: number } | undefined {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  if (!match) return undefined;
  const port = Number(match[3]);
  if (port > 65535) return undefined;
  return { host: match[1] ?? match[2] ?? '', port };
}

const listenAddress = z
  .string({ message: '--api-address must be HOST:PORT (for example 127.0.0.1:10255)' })
  .transform((text, context) => {
    const address = parseListenAddress(text);
    if (!address) {
      context.addIssue({ code: 'custom', message: `--api-address must be HOST:PORT (for example 127.0.0.1:10255), not "${text}"` });
      return z.NEVER;
    }
    return address;
  });

const webhookUrl = z.string({ message: '--publish-webhook must be an http:// or https:// URL' }).refine((text) => {
  try {
    const url = new URL(text);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}, '--publish-webhook must be an http:// or https:// URL');

export const agentConfigSchema = z
  .object({
    manifestDir: path('--manifest-dir'),
    nodeName: z
      .string({ message: '--node-name must be text' })
      .transform((name) => name.toLowerCase())
      .refine(isDns1123Subdomain, '--node-name must be a DNS-1123 subdomain (lower-case letters, digits, "-" and ".")'),
    stateDir: path('--state-dir'),
    /** Image archives to load into podman (issue 12); <state-dir>/images when not given. */
    imagesDir: path('--images-dir').optional(),
    resyncIntervalSeconds: seconds('--resync-interval', 1),
    relistIntervalSeconds: seconds('--relist-interval', 1),
    backoffInitialSeconds: seconds('--backoff-initial', 0),
    backoffMaxSeconds: seconds('--backoff-max', 0),
    rollbackAfterSeconds: seconds('--rollback-after', 0),
    locksDir: path('--locks-dir'),
    /** When replaces of running pods may happen (issue 12): a cron expression, and how long each window stays open. */
    replaceWindow: windowExpression.optional(),
    replaceWindowSeconds: duration('--replace-window-duration', 60, MAX_WINDOW_SECONDS),
    logLevel: z.enum(LOG_LEVELS as [string, ...string[]], { message: `--log-level must be one of ${LOG_LEVELS.join(', ')}` }),
    containerLogMaxBytes: logSize('--container-log-max-size'),
    logFormat: z.enum(LOG_FORMATS, { message: `--log-format must be ${LOG_FORMATS.join(', ')}` }).optional(),
    apiAddress: listenAddress.optional(),
    apiTokenFile: path('--api-token-file').optional(),
    apiTlsCert: path('--api-tls-cert').optional(),
    apiTlsKey: path('--api-tls-key').optional(),
    publishWebhook: webhookUrl.optional(),
    publishTokenFile: path('--publish-token-file').optional(),
    publishCaFile: path('--publish-ca-file').optional(),
    publishKubeconfig: path('--publish-kubeconfig').optional(),
    publishIntervalSeconds: seconds('--publish-interval', 1),
    /** A full PodList at least this often when the receiver takes deltas; 0: never deltas (src/publish/webhook.ts). */
    publishFullIntervalSeconds: seconds('--publish-full-interval', 0),
    serveEnvValues: yesNo('--serve-env-values'),
    publishHeartbeat: z.string({ message: '--publish-heartbeat must be a cron expression in quotes' }).refine(validCron, '--publish-heartbeat must be a cron expression (for example "* * * * *", every minute)'),
    // The manifest policy (src/manifest/file-ownership.ts, device-policy.ts): who may write
    // manifests, and what they may ask for.
    policyCheckOwnership: yesNo('--policy-check-ownership'),
    /** Whether links are held to policy.symlink-roots; on its own, so that owners unchecked still keep links in. */
    policyCheckSymlinks: yesNo('--policy-check-symlinks'),
    /** Where symbolic links may lead; the manifest directory when not given. */
    policySymlinkRoots: list('--policy-symlink-roots', absolutePath('--policy-symlink-roots')).optional(),
    policyPrivileged: yesNo('--policy-privileged'),
    policyHostNetwork: yesNo('--policy-host-network'),
    policyHostPid: yesNo('--policy-host-pid'),
    policyHostIpc: yesNo('--policy-host-ipc'),
    policyHostPathPrefixes: list('--policy-host-path-prefixes', absolutePath('--policy-host-path-prefixes')).optional(),
    policyCapabilities: list('--policy-capabilities', capabilityName).optional(),
    policyRegistries: list('--policy-registries', registryName).optional(),
    policyRequireDigest: yesNo('--policy-require-digest'),
  })
  .superRefine((config, context) => {
    // An issue between two settings names both: the error shows where either was given.
    if (config.backoffMaxSeconds < config.backoffInitialSeconds) {
      context.addIssue({ code: 'custom', path: ['backoffMaxSeconds'], params: { related: ['backoffInitialSeconds'] }, message: '--backoff-max must be at least --backoff-initial' });
    }
    if ((config.apiTlsCert === undefined) !== (config.apiTlsKey === undefined)) {
      // Named by the one that was given: the missing one has no place in a file.
      context.addIssue({ code: 'custom', path: [config.apiTlsCert === undefined ? 'apiTlsKey' : 'apiTlsCert'], message: '--api-tls-cert and --api-tls-key go together' });
    }
    for (const field of ['apiTokenFile', 'apiTlsCert'] as const) {
      if (config[field] !== undefined && config.apiAddress === undefined) context.addIssue({ code: 'custom', path: [field], message: `${FLAG_OF[field]} needs --api-address` });
    }
    if (config.publishWebhook !== undefined && config.publishKubeconfig !== undefined) {
      context.addIssue({ code: 'custom', path: ['publishKubeconfig'], params: { related: ['publishWebhook'] }, message: '--publish-webhook and --publish-kubeconfig cannot be used together: choose one' });
    }
    for (const field of ['publishTokenFile', 'publishCaFile'] as const) {
      if (config[field] !== undefined && config.publishWebhook === undefined) context.addIssue({ code: 'custom', path: [field], message: `${FLAG_OF[field]} needs --publish-webhook` });
    }
    // Roots that nothing reads would look like a restriction that is not there.
    if (config.policySymlinkRoots !== undefined && !config.policyCheckSymlinks) {
      context.addIssue({ code: 'custom', path: ['policySymlinkRoots'], params: { related: ['policyCheckSymlinks'] }, message: '--policy-symlink-roots has no effect with --policy-check-symlinks false: remove one' });
    }
  });

export type AgentConfig = z.infer<typeof agentConfigSchema>;

/** Every setting: its flag, its place in a config file, and its default. */
export const SETTINGS = [
  { field: 'manifestDir', flag: 'manifest-dir', key: ['manifest-dir'], fallback: '/etc/pods.d' },
  { field: 'nodeName', flag: 'node-name', key: ['node-name'] },
  { field: 'stateDir', flag: 'state-dir', key: ['state-dir'], fallback: '/var/lib/podvisor' },
  { field: 'imagesDir', flag: 'images-dir', key: ['images-dir'] },
  { field: 'resyncIntervalSeconds', flag: 'resync-interval', key: ['resync-interval'], fallback: 20 },
  { field: 'relistIntervalSeconds', flag: 'relist-interval', key: ['relist-interval'], fallback: 10 },
  { field: 'backoffInitialSeconds', flag: 'backoff-initial', key: ['backoff-initial'], fallback: 10 },
  { field: 'backoffMaxSeconds', flag: 'backoff-max', key: ['backoff-max'], fallback: 300 },
  { field: 'rollbackAfterSeconds', flag: 'rollback-after', key: ['rollback-after'], fallback: 120 },
  { field: 'locksDir', flag: 'locks-dir', key: ['locks-dir'], fallback: '/run/podvisor/locks' },
  { field: 'replaceWindow', flag: 'replace-window', key: ['replace-window'] },
  { field: 'replaceWindowSeconds', flag: 'replace-window-duration', key: ['replace-window-duration'], fallback: '1h' },
  { field: 'logLevel', flag: 'log-level', key: ['log-level'], fallback: 'info' },
  { field: 'logFormat', flag: 'log-format', key: ['log-format'] },
  { field: 'containerLogMaxBytes', flag: 'container-log-max-size', key: ['container-log-max-size'], fallback: '10Mi' },
  { field: 'apiAddress', flag: 'api-address', key: ['api', 'address'] },
  { field: 'apiTokenFile', flag: 'api-token-file', key: ['api', 'token-file'] },
  { field: 'apiTlsCert', flag: 'api-tls-cert', key: ['api', 'tls-cert'] },
  { field: 'apiTlsKey', flag: 'api-tls-key', key: ['api', 'tls-key'] },
  { field: 'publishWebhook', flag: 'publish-webhook', key: ['publish', 'webhook'] },
  { field: 'publishTokenFile', flag: 'publish-token-file', key: ['publish', 'token-file'] },
  { field: 'publishCaFile', flag: 'publish-ca-file', key: ['publish', 'ca-file'] },
  { field: 'publishKubeconfig', flag: 'publish-kubeconfig', key: ['publish', 'kubeconfig'] },
  { field: 'publishIntervalSeconds', flag: 'publish-interval', key: ['publish', 'interval'], fallback: 10 },
  { field: 'publishHeartbeat', flag: 'publish-heartbeat', key: ['publish', 'heartbeat'], fallback: DEFAULT_HEARTBEAT },
  { field: 'publishFullIntervalSeconds', flag: 'publish-full-interval', key: ['publish', 'full-interval'], fallback: 3600 },
  { field: 'serveEnvValues', flag: 'serve-env-values', key: ['serve-env-values'], fallback: false },
  { field: 'policyCheckOwnership', flag: 'policy-check-ownership', key: ['policy', 'check-ownership'], fallback: true },
  { field: 'policyCheckSymlinks', flag: 'policy-check-symlinks', key: ['policy', 'check-symlinks'], fallback: true },
  { field: 'policySymlinkRoots', flag: 'policy-symlink-roots', key: ['policy', 'symlink-roots'], list: true },
  { field: 'policyPrivileged', flag: 'policy-privileged', key: ['policy', 'privileged'], fallback: true },
  { field: 'policyHostNetwork', flag: 'policy-host-network', key: ['policy', 'host-network'], fallback: true },
  { field: 'policyHostPid', flag: 'policy-host-pid', key: ['policy', 'host-pid'], fallback: true },
  { field: 'policyHostIpc', flag: 'policy-host-ipc', key: ['policy', 'host-ipc'], fallback: true },
  { field: 'policyHostPathPrefixes', flag: 'policy-host-path-prefixes', key: ['policy', 'host-path-prefixes'], list: true },
  { field: 'policyCapabilities', flag: 'policy-capabilities', key: ['policy', 'capabilities'], list: true },
  { field: 'policyRegistries', flag: 'policy-registries', key: ['policy', 'registries'], list: true },
  { field: 'policyRequireDigest', flag: 'policy-require-digest', key: ['policy', 'require-digest'], fallback: false },
] as const satisfies readonly { field: keyof AgentConfig; flag: string; key: readonly string[]; fallback?: unknown; list?: true }[];

/** True for a setting whose value is a list (a YAML sequence; a comma-separated flag). */
export function isListSetting(setting: (typeof SETTINGS)[number]): boolean {
  return 'list' in setting && setting.list;
}

const FLAG_OF = Object.fromEntries(SETTINGS.map((setting) => [setting.field, `--${setting.flag}`])) as Record<keyof AgentConfig, string>;

/** Where a value came from, for its error message: a flag, or a config file's line (and each item's, for a list). */
export type Origin = { flag: string } | { file: string; line: number; column: number; key: string; items?: { line: number; column: number }[] };

/** Validates raw values by field; the first problem is a UsageError naming its flag or file line. */
export async function parseAgentConfig(raw: Record<string, unknown>, origins: ReadonlyMap<string, Origin> = new Map()): Promise<AgentConfig> {
  const result = await agentConfigSchema.safeParseAsync(raw);
  if (!result.success) {
    const issue = result.error.issues[0];
    const related = (issue as { params?: { related?: string[] } } | undefined)?.params?.related ?? [];
    const fields = [String(issue?.path[0] ?? ''), ...related];
    const origin = fields.map((field) => origins.get(field)).find((one) => one !== undefined && 'file' in one) ?? origins.get(fields[0] ?? '');
    const message = issue?.message ?? 'invalid configuration';
    // An item of a list: its own line, and its index after the key.
    const index = issue?.path[1];
    const item = typeof index === 'number' && origin && 'file' in origin ? origin.items?.[index] : undefined;
    if (origin && 'file' in origin && item) throw new UsageError(`${origin.file}:${item.line}:${item.column}: ${origin.key}[${String(index)}]: ${message}`);
    if (origin && 'file' in origin) throw new UsageError(`${origin.file}:${origin.line}:${origin.column}: ${origin.key}: ${message}`);
    throw new UsageError(message);
  }
  return result.data;
}
