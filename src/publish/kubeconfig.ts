// Reads a kubeconfig into what the Kubernetes publisher connects with: the current context's
// cluster (server, certificate authority, insecure-skip-tls-verify, tls-server-name) and user
// (token, tokenFile, client certificate and key, inline or as files). Relative file names are
// relative to the kubeconfig's directory, as kubectl reads them. Anything wrong is one
// PodvisorError('E_CONFIG') in the form `file:line:column: field: message`.
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { errorMessage, PodvisorError } from '../errors.js';
import type { Path } from '../manifest/field-policy.js';
import { parseManifestText } from '../manifest/parse.js';
import { formatPath } from '../manifest/validate.js';
import type { TlsSettings, TokenSource } from './http-client.js';

export interface KubeConnection {
  /** The kubeconfig file, for messages. */
  source: string;
  context: string;
  /** The API server's URL (a path in it is a prefix of every request's path). */
  server: URL;
  tls: TlsSettings;
  /** A bearer token given inline; it wins over tokenFile, as in kubectl. */
  token?: string;
  /** A file holding the bearer token, read for each request so that a rotated token is used. */
  tokenFile?: string;
}

const optionalString = z.string().optional();

const clusterSchema = z.object({
  server: z.string().min(1, 'Required'),
  'certificate-authority': optionalString,
  'certificate-authority-data': optionalString,
  'insecure-skip-tls-verify': z.boolean().optional(),
  'tls-server-name': optionalString,
  'proxy-url': optionalString,
});

const userSchema = z.object({
  token: optionalString,
  tokenFile: optionalString,
  'client-certificate': optionalString,
  'client-certificate-data': optionalString,
  'client-key': optionalString,
  'client-key-data': optionalString,
  username: optionalString,
  password: optionalString,
  exec: z.unknown().optional(),
  'auth-provider': z.unknown().optional(),
});

const contextSchema = z.object({ cluster: z.string().min(1, 'Required'), user: optionalString, namespace: optionalString });

const named = <T extends z.ZodType>(field: string, schema: T) => z.object({ name: z.string().min(1, 'Required'), [field]: schema });

const kubeconfigSchema = z.object({
  kind: z.literal('Config').optional(),
  clusters: z.array(named('cluster', clusterSchema)),
  users: z.array(named('user', userSchema)).optional(),
  contexts: z.array(named('context', contextSchema)),
  'current-context': optionalString,
});

type Cluster = z.infer<typeof clusterSchema>;
type User = z.infer<typeof userSchema>;
type Context = z.infer<typeof contextSchema>;

function issueMessage(issue: z.core.$ZodRawIssue): string | undefined {
  if (issue.code === 'invalid_type') {
    if (issue.input === undefined) return 'Required';
    const got = issue.input === null ? 'null' : Array.isArray(issue.input) ? 'a list' : typeof issue.input;
    return `must be ${issue.expected === 'object' ? 'a mapping' : issue.expected === 'array' ? 'a list' : `a ${issue.expected}`}, got ${got}`;
  }
  if (issue.code === 'invalid_value') return `must be ${issue.values.map((value) => JSON.stringify(value)).join(' or ')}`;
  return undefined;
}

export interface KubeconfigOptions {
  /** The context to use instead of current-context. */
  context?: string;
}

/** Reads and checks a kubeconfig file and the files it names. */
export function loadKubeconfig(path: string, options: KubeconfigOptions = {}): KubeConnection {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new PodvisorError('E_CONFIG', `${path}: cannot read the kubeconfig: ${errorMessage(error)}`, { cause: error });
  }
  return parseKubeconfig(text, path, options);
}

/** Checks a kubeconfig's text as if read from `path` (which relative file names are resolved against). */
export function parseKubeconfig(text: string, path: string, options: KubeconfigOptions = {}): KubeConnection {
  const [document] = parseManifestText(text);
  const fail = (field: Path, message: string, at?: { line: number; column: number }, cause?: unknown): never => {
    const where = at ?? document?.locate(field) ?? { line: 1, column: 1 };
    const name = formatPath(field);
    throw new PodvisorError('E_CONFIG', `${path}:${where.line}:${where.column}: ${name ? `${name}: ` : ''}${message}`, cause === undefined ? undefined : { cause });
  };
  if (!document) return fail([], 'the kubeconfig is empty');
  const syntax = document.syntaxErrors[0];
  if (syntax) return fail([], `YAML: ${syntax.message}`, syntax.position);
  if (typeof document.value !== 'object' || document.value === null || Array.isArray(document.value)) return fail([], 'a kubeconfig must be a mapping');
  const parsed = kubeconfigSchema.safeParse(document.value, { error: issueMessage });
  if (!parsed.success) {
    const [issue, ...others] = parsed.error.issues;
    const more = others.length > 0 ? ` (and ${others.length} more problem${others.length > 1 ? 's' : ''})` : '';
    return fail((issue?.path ?? []) as Path, `${issue?.message ?? 'invalid'}${more}`);
  }
  const config = parsed.data;

  const contextName = options.context ?? config['current-context'];
  if (!contextName) return fail(['current-context'], 'Required: no current-context, and no context was asked for');
  const contextIndex = config.contexts.findIndex((entry) => entry.name === contextName);
  if (contextIndex < 0) return fail(options.context ? ['contexts'] : ['current-context'], `no context named ${JSON.stringify(contextName)} in contexts`);
  const context = (config.contexts[contextIndex] as { context: Context }).context;
  const contextPath: Path = ['contexts', contextIndex, 'context'];

  const clusterIndex = config.clusters.findIndex((entry) => entry.name === context.cluster);
  if (clusterIndex < 0) return fail([...contextPath, 'cluster'], `no cluster named ${JSON.stringify(context.cluster)} in clusters`);
  const cluster = (config.clusters[clusterIndex] as { cluster: Cluster }).cluster;
  const clusterPath: Path = ['clusters', clusterIndex, 'cluster'];

  let user: User = {};
  let userPath: Path = [];
  if (context.user !== undefined) {
    const users = config.users ?? [];
    const userIndex = users.findIndex((entry) => entry.name === context.user);
    if (userIndex < 0) return fail([...contextPath, 'user'], `no user named ${JSON.stringify(context.user)} in users`);
    user = (users[userIndex] as { user: User }).user;
    userPath = ['users', userIndex, 'user'];
  }

  const dir = dirname(resolve(path));
  const readNamed = (field: Path, file: string): Buffer => {
    try {
      return readFileSync(resolve(dir, file));
    } catch (error) {
      return fail(field, `cannot read ${resolve(dir, file)}: ${errorMessage(error)}`, undefined, error);
    }
  };
  const decode = (field: Path, data: string): Buffer => {
    const compact = data.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(compact) || compact.length % 4 !== 0) return fail(field, 'must be base64 (of a PEM file)');
    return Buffer.from(compact, 'base64');
  };
  /** Inline data (base64) or a file: both is a mistake kubectl refuses too. */
  const pem = (base: Path, fileField: string, dataField: string, file: string | undefined, data: string | undefined): Buffer | undefined => {
    if (file !== undefined && data !== undefined) return fail([...base, dataField], `give ${dataField} or ${fileField}, not both`);
    const field = [...base, data !== undefined ? dataField : fileField];
    const content = data !== undefined ? decode(field, data) : file !== undefined ? readNamed(field, file) : undefined;
    if (content !== undefined && !content.toString('latin1').includes('-----BEGIN ')) return fail(field, 'is not PEM (no -----BEGIN line)');
    return content;
  };

  let server: URL;
  try {
    server = new URL(cluster.server);
  } catch (error) {
    return fail([...clusterPath, 'server'], `not a URL: ${JSON.stringify(cluster.server)}`, undefined, error);
  }
  if (server.protocol !== 'https:' && server.protocol !== 'http:') return fail([...clusterPath, 'server'], `must be an https:// or http:// URL, got ${server.protocol}`);
  if (cluster['proxy-url'] !== undefined) return fail([...clusterPath, 'proxy-url'], 'is not supported by podvisor');

  const ca = pem(clusterPath, 'certificate-authority', 'certificate-authority-data', cluster['certificate-authority'], cluster['certificate-authority-data']);
  const insecure = cluster['insecure-skip-tls-verify'] === true;
  if (insecure && ca !== undefined) return fail([...clusterPath, 'insecure-skip-tls-verify'], 'a certificate authority and insecure-skip-tls-verify do not go together');

  for (const unsupported of ['exec', 'auth-provider', 'username', 'password'] as const) {
    if (user[unsupported] !== undefined) return fail([...userPath, unsupported], 'is not supported by podvisor: use token, tokenFile or client-certificate and client-key');
  }
  const cert = pem(userPath, 'client-certificate', 'client-certificate-data', user['client-certificate'], user['client-certificate-data']);
  const key = pem(userPath, 'client-key', 'client-key-data', user['client-key'], user['client-key-data']);
  if ((cert === undefined) !== (key === undefined)) {
    return fail([...userPath, cert === undefined ? 'client-certificate' : 'client-key'], 'Required: a client certificate and its key go together');
  }
  let tokenFile: string | undefined;
  if (user.tokenFile !== undefined && user.token === undefined) {
    tokenFile = resolve(dir, user.tokenFile);
    readNamed([...userPath, 'tokenFile'], user.tokenFile);
  }

  const tls: TlsSettings = {
    ...(ca !== undefined ? { ca } : {}),
    ...(cert !== undefined ? { cert } : {}),
    ...(key !== undefined ? { key } : {}),
    ...(insecure ? { insecureSkipTLSVerify: true } : {}),
    ...(cluster['tls-server-name'] !== undefined ? { serverName: cluster['tls-server-name'] } : {}),
  };
  return {
    source: path,
    context: contextName,
    server,
    tls,
    ...(user.token !== undefined ? { token: user.token } : {}),
    ...(tokenFile !== undefined ? { tokenFile } : {}),
  };
}

/** The bearer token of a connection, if it has one. */
export function connectionToken(connection: KubeConnection): TokenSource | undefined {
  const { token, tokenFile } = connection;
  if (token !== undefined) return async () => token;
  if (tokenFile !== undefined) {
    return async () => {
      const read = (await readFile(tokenFile, 'utf8')).trim();
      if (!read) throw new Error(`${tokenFile} is empty`);
      return read;
    };
  }
  return undefined;
}
