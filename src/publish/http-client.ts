// A small HTTP(S) client for the publishers, on node:http and node:https: a deadline for each
// request (connection, answer and body together), cancellation by AbortSignal, a CA, client
// certificate and bearer token, and TLS verification always on unless a kubeconfig says
// insecure-skip-tls-verify. Redirects are not followed, so a token never goes anywhere but the
// endpoint it was configured for. Answers of any status are returned; the caller judges them.
// The token is cut out of error answers and error messages: an error page that echoes the request
// (some proxies' debug pages do) would otherwise carry it into the log and /healthz.
import http from 'node:http';
import https from 'node:https';
import { PodvisorError } from '../errors.js';

/**
 * What went wrong, for retry decisions, health and the metrics' result label. 'state': the
 * endpoint answered, but what it holds is something podvisor waits out or leaves alone.
 */
export type PublishFailureKind = 'timeout' | 'network' | 'tls' | 'aborted' | 'http' | 'response' | 'credentials' | 'state';

/**
 * A failed delivery (code E_PUBLISH). The publishers keep these to themselves (health, logs,
 * metrics) and never throw them into the agent; `kind` is what their retry decisions read.
 */
export class PublishError extends PodvisorError {
  readonly kind: PublishFailureKind;
  /** The HTTP status, for kind 'http'. */
  readonly status: number | undefined;
  /** The `reason` of a Kubernetes Status answer: AlreadyExists, NotFound, Conflict... */
  readonly reason: string | undefined;
  /** How long the server asked to be left alone (its Retry-After on a 429 or 503), bounded. */
  readonly retryAfterMs: number | undefined;

  constructor(kind: PublishFailureKind, message: string, options: { cause?: unknown; status?: number; reason?: string; retryAfterMs?: number | undefined } = {}) {
    super('E_PUBLISH', message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PublishError';
    this.kind = kind;
    this.status = options.status;
    this.reason = options.reason;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** The longest Retry-After taken: a server asking for more is asked again after this. */
export const MAX_RETRY_AFTER_MS = 15 * 60_000;

/**
 * The wait a 429 or 503 answer asks for in its Retry-After header (RFC 9110: seconds, or an
 * HTTP date), at most MAX_RETRY_AFTER_MS; undefined for other answers or a value that is neither.
 */
export function retryAfterOf(response: HttpResponse, now: number): number | undefined {
  if (response.status !== 429 && response.status !== 503) return undefined;
  const value = response.headers['retry-after']?.trim();
  if (!value) return undefined;
  // An HTTP date names its day ("Fri, 04 Dec 2026 12:00:30 GMT"); Date.parse alone takes "-5" as a year.
  const ms = /^\d+$/.test(value) ? Number(value) * 1000 : /^[A-Za-z]{3}, /.test(value) ? Date.parse(value) - now : NaN;
  if (Number.isNaN(ms)) return undefined;
  return Math.min(MAX_RETRY_AFTER_MS, Math.max(0, ms));
}

/** The wait an error's server asked for, or 0. */
export function askedWait(error: unknown): number {
  return error instanceof PublishError ? (error.retryAfterMs ?? 0) : 0;
}

/** True for failures of the endpoint as a whole (unreachable, overloaded), not of one request's content. */
export function isEndpointFailure(error: unknown): boolean {
  if (!(error instanceof PublishError)) return false;
  if (error.kind === 'http') return error.status === undefined || error.status >= 500 || error.status === 429 || error.status === 401;
  return error.kind !== 'response' && error.kind !== 'state';
}

/** The metrics' `result` label for an attempt: a small fixed set. */
export function resultLabel(error?: unknown): string {
  if (error === undefined) return 'success';
  if (!(error instanceof PublishError)) return 'error';
  if (error.kind !== 'http') return error.kind;
  if (error.status === 404) return 'not_found';
  if (error.status === 409) return 'conflict';
  return error.status !== undefined && (error.status >= 500 || error.status === 429) ? 'server_error' : 'rejected';
}

export interface TlsSettings {
  /** PEM certificates to verify the server with instead of the system's roots. */
  ca?: string | Buffer;
  /** PEM client certificate and key. */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Only from a kubeconfig's insecure-skip-tls-verify: no verification of the server at all. */
  insecureSkipTLSVerify?: boolean;
  /** The name to verify the server's certificate for, when it is not the URL's host. */
  serverName?: string;
}

/** Where the bearer token comes from: read for each request, so a rotated token file is picked up. */
export type TokenSource = () => Promise<string | undefined>;

export interface HttpClientOptions {
  tls?: TlsSettings;
  token?: TokenSource;
  /** The deadline of one request (default 10000 ms). */
  timeoutMs?: number;
  /** Answers longer than this fail (default 16 MiB), so a broken endpoint cannot fill memory. */
  maxResponseBytes?: number;
  userAgent?: string;
}

export interface HttpRequest {
  method: string;
  url: URL;
  headers?: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
}

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

// OpenSSL's and Node's codes for a server certificate that does not verify.
const TLS_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

function describe(request: HttpRequest): string {
  return `${request.method} ${request.url.origin}${request.url.pathname}`;
}

function classify(error: unknown, request: HttpRequest): PublishError {
  if (error instanceof PublishError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  if (typeof code === 'string' && (TLS_CODES.has(code) || code.startsWith('ERR_SSL_'))) {
    return new PublishError('tls', `${describe(request)}: TLS verification of ${request.url.host} failed: ${message}`, { cause: error });
  }
  return new PublishError('network', `${describe(request)}: ${message}`, { cause: error });
}

export class HttpClient {
  readonly #httpAgent: http.Agent;
  readonly #httpsAgent: https.Agent;
  readonly #token: TokenSource | undefined;
  readonly #timeoutMs: number;
  readonly #maxResponseBytes: number;
  readonly #userAgent: string;

  constructor(options: HttpClientOptions = {}) {
    const tls = options.tls ?? {};
    // Keep-alive: the Kubernetes mode makes several requests per change to the same server.
    this.#httpAgent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    this.#httpsAgent = new https.Agent({
      keepAlive: true,
      maxSockets: 4,
      ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
      ...(tls.cert !== undefined ? { cert: tls.cert } : {}),
      ...(tls.key !== undefined ? { key: tls.key } : {}),
      ...(tls.serverName !== undefined ? { servername: tls.serverName } : {}),
      rejectUnauthorized: tls.insecureSkipTLSVerify !== true,
    });
    this.#token = options.token;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#maxResponseBytes = options.maxResponseBytes ?? 16 * 1024 * 1024;
    this.#userAgent = options.userAgent ?? 'podvisor';
  }

  /** Sends one request; rejects with a PublishError when no complete answer came. */
  async request(request: HttpRequest): Promise<HttpResponse> {
    const { signal } = request;
    if (signal?.aborted) throw new PublishError('aborted', `${describe(request)}: cancelled`);
    let token: string | undefined;
    try {
      token = await this.#token?.();
    } catch (error) {
      throw new PublishError('credentials', `cannot read the bearer token: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    const redact = (text: string) => redactToken(text, token);
    // The token may have taken a while (a file on a slow disk): the caller may have given up.
    if (signal?.aborted) throw new PublishError('aborted', `${describe(request)}: cancelled`);
    const headers: Record<string, string> = { 'User-Agent': this.#userAgent, Accept: 'application/json', ...request.headers };
    if (token !== undefined) headers['Authorization'] = `Bearer ${token}`;
    if (request.body !== undefined) headers['Content-Length'] = String(Buffer.byteLength(request.body));
    const secure = request.url.protocol === 'https:';
    return new Promise<HttpResponse>((resolve, reject) => {
      let settled = false;
      const finish = (error: PublishError | undefined, response?: HttpResponse) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (error) {
          // Without the error: passed on, it would reach emitters that have no listener left.
          req.destroy();
          reject(redactError(error, redact));
        } else if (response) {
          resolve(response);
        }
      };
      const onAbort = () => finish(new PublishError('aborted', `${describe(request)}: cancelled`));
      const req = (secure ? https : http).request(request.url, {
        method: request.method,
        headers,
        agent: secure ? this.#httpsAgent : this.#httpAgent,
      });
      const timer = setTimeout(() => finish(new PublishError('timeout', `${describe(request)}: no complete answer within ${this.#timeoutMs} ms`)), this.#timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      req.on('error', (error) => finish(classify(error, request)));
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > this.#maxResponseBytes) finish(new PublishError('response', `${describe(request)}: answer longer than ${this.#maxResponseBytes} bytes`));
          else chunks.push(chunk);
        });
        res.on('error', (error) => finish(classify(error, request)));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          const body = Buffer.concat(chunks).toString('utf8');
          // Only error answers: they are read for messages, while a success is data, left whole.
          finish(undefined, { status, headers: res.headers, body: status >= 200 && status <= 299 ? body : redact(body) });
        });
        res.on('close', () => {
          if (!res.complete) finish(new PublishError('network', `${describe(request)}: the connection closed before the answer was complete`));
        });
      });
      req.end(request.body);
    });
  }

  /** Closes the kept-alive connections; requests after this open new ones. */
  close(): void {
    this.#httpAgent.destroy();
    this.#httpsAgent.destroy();
  }
}

/** The marker that stands where a token was cut out. */
export const REDACTED = '(redacted)';

/** `text` with every occurrence of `token` replaced by the marker. */
export function redactToken(text: string, token: string | undefined): string {
  return token ? text.split(token).join(REDACTED) : text;
}

/** The error itself when its message does not carry the token; otherwise one like it without it. */
function redactError(error: PublishError, redact: (text: string) => string): PublishError {
  const message = redact(error.message);
  if (message === error.message) return error;
  // The cause is dropped too: its message carried the token.
  return new PublishError(error.kind, message, { ...(error.status !== undefined ? { status: error.status } : {}), ...(error.reason !== undefined ? { reason: error.reason } : {}), retryAfterMs: error.retryAfterMs });
}
