// The network probes (httpGet, tcpSocket, grpc) as the kubelet's pkg/probe runs them, in the
// agent's own Node: the same success rules and, as far as Node's errors allow, the same wording,
// since the words end up in 'Unhealthy' events. Where the bytes go is a Dialer's business: from
// the agent itself (hostNetwork pods, probes with an explicit host), or through a small process
// inside a pod's network namespace (netns-dial.ts) whose stdin and stdout are the connection. HTTP,
// TLS and HTTP/2 run here either way, over whatever stream the dialer gives.
import type { IncomingMessage } from 'node:http';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import { classifyHttpStatus } from './http-status.js';
import { NetnsError } from './probe-error.js';
import type { ProbeOutcome } from './types.js';

// http, https and http2 are taken when a probe first needs them: most pods have no network
// probe, and the agent's RSS is what a device pays for every module loaded at start-up.
const http = () => process.getBuiltinModule('node:http');
const httpsModule = () => process.getBuiltinModule('node:https');
const http2 = () => process.getBuiltinModule('node:http2');

/** The User-Agent the kubelet sends (kube-probe/<major>.<minor>); applications match its prefix. */
export const PROBE_USER_AGENT = 'kube-probe/1.33';
/** The kubelet reads at most this much of a response body. */
const MAX_BODY_BYTES = 10 * 1024;
/** Go's http.Client stops after 10 requests in one chain of redirects. */
const MAX_REQUESTS = 10;
const REDIRECT_CODES = new Set([301, 302, 303, 307, 308]);

export type NetProbeRequest =
  | {
      type: 'http';
      scheme: 'http' | 'https';
      host: string;
      port: number;
      path: string;
      headers: Array<[string, string]>;
      timeoutMs: number;
    }
  | { type: 'tcp'; host: string; port: number; timeoutMs: number }
  | { type: 'grpc'; host: string; port: number; service: string; timeoutMs: number };

/** Where one connection of a probe goes, and what may stop it. */
export interface DialTarget {
  host: string;
  port: number;
  /** Aborts when the probe's time is up or it is cancelled: the connection is then torn down. */
  signal: AbortSignal;
  /** The probe's timeout (a backstop for whatever process the dialer starts). */
  timeoutMs: number;
}

/** How a network probe reaches `host:port`: from the agent itself, or from inside a pod's network namespace. */
export interface Dialer {
  /**
   * A byte stream to host:port, usable at once (writes before the connection opens are held). A
   * failure to connect is the stream's error, with the errno code Node's own sockets carry
   * (ECONNREFUSED, ...); a NetnsError when the namespace cannot be entered.
   */
  connect(target: DialTarget): Duplex;
  /** Opens a TCP connection to host:port and closes it at once; rejects as connect()'s stream errors. */
  touch(target: DialTarget): Promise<void>;
}

/** The agent's own network: plain Node sockets. */
export const directDialer: Dialer = {
  connect: ({ host, port }) => netConnect({ host, port }),
  touch: ({ host, port, signal }) =>
    new Promise<void>((resolve, reject) => {
      const socket = netConnect({ host, port });
      const onAbort = (): void => {
        socket.destroy();
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      const settle = (error?: Error): void => {
        signal.removeEventListener('abort', onAbort);
        socket.destroy();
        if (error) reject(error);
        else resolve();
      };
      socket.once('connect', () => settle());
      socket.once('error', settle);
    }),
};

/**
 * Runs one network probe through `dialer` (default: from the agent itself); never rejects (every
 * error is an outcome).
 */
export async function runNetProbe(request: NetProbeRequest, signal?: AbortSignal, dialer: Dialer = directDialer): Promise<ProbeOutcome> {
  try {
    switch (request.type) {
      case 'http':
        return await httpProbe(request, signal, dialer);
      case 'tcp':
        return await tcpProbe(request, signal, dialer);
      case 'grpc':
        return await grpcProbe(request, signal, dialer);
    }
  } catch (error) {
    return { result: 'unknown', output: error instanceof Error ? error.message : String(error) };
  }
}

/** The pod's network namespace could not be entered: the run is an error, not a failure. */
function netnsFailure(error: unknown): ProbeOutcome | undefined {
  const cause = (error as { cause?: unknown } | undefined)?.cause;
  const found = error instanceof NetnsError ? error : cause instanceof NetnsError ? cause : undefined;
  return found && { result: 'unknown', output: found.message };
}

/** `host:port`, with brackets for an IPv6 address (Go's net.JoinHostPort). */
export function joinHostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The probe URL as the kubelet forms it: scheme://host:port followed by the path as given. */
export function probeUrl(scheme: string, host: string, port: number, path: string): URL {
  const withSlash = path.startsWith('/') ? path : `/${path}`;
  return new URL(`${scheme}://${joinHostPort(host, port)}${withSlash}`);
}

/** Go's wording (mostly) for a Node socket error met while dialling or reading `address`. */
export function describeNetError(error: unknown, address: string): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ECONNREFUSED':
      return `dial tcp ${address}: connect: connection refused`;
    case 'EHOSTUNREACH':
      return `dial tcp ${address}: connect: no route to host`;
    case 'ENETUNREACH':
      return `dial tcp ${address}: connect: network is unreachable`;
    case 'ETIMEDOUT':
      return `dial tcp ${address}: connect: connection timed out`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `dial tcp: lookup ${address.replace(/:\d+$/, '')}: no such host`;
    case 'ECONNRESET':
      return 'read: connection reset by peer';
    case 'EPIPE':
      return 'write: broken pipe';
    default:
      return error instanceof Error ? error.message : String(error);
  }
}

/** Go's time.Duration formatting for whole seconds and milliseconds (1s, 1.5s, 500ms). */
export function formatDuration(ms: number): string {
  return ms % 1000 === 0 || ms >= 1000 ? `${ms / 1000}s` : `${ms}ms`;
}

/** Aborts when the probe's own timeout passes or the caller cancels; says which. */
function deadline(timeoutMs: number, signal: AbortSignal | undefined): { signal: AbortSignal; timedOut: () => boolean; clear: () => void } {
  const controller = new AbortController();
  let expired = false;
  const timer = setTimeout(() => {
    expired = true;
    controller.abort(new Error('timeout'));
  }, timeoutMs);
  const onCancel = (): void => controller.abort(signal?.reason);
  signal?.addEventListener('abort', onCancel, { once: true });
  if (signal?.aborted) onCancel();
  return {
    signal: controller.signal,
    timedOut: () => expired,
    clear: () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onCancel);
    },
  };
}

interface HttpResponse {
  statusCode: number;
  location: string | undefined;
  body: string;
}

/**
 * httpGet: GET with the kubelet's headers and no certificate check; redirects are followed only
 * to the same host name (as the kubelet does: followNonLocalRedirects is false), 10 requests at most; a
 * redirect elsewhere is not followed and its 3xx counts as a success with a warning.
 */
async function httpProbe(request: Extract<NetProbeRequest, { type: 'http' }>, signal: AbortSignal | undefined, dialer: Dialer): Promise<ProbeOutcome> {
  const limit = deadline(request.timeoutMs, signal);
  let url = probeUrl(request.scheme, request.host, request.port, request.path);
  const hostname = url.hostname;
  const headers = probeHeaders(request.headers);
  try {
    for (let requests = 1; ; requests++) {
      let response: HttpResponse;
      try {
        response = await httpGet(url, headers, limit.signal, dialer, request.timeoutMs);
      } catch (error) {
        if (!limit.timedOut() && signal?.aborted) return { result: 'unknown', output: 'cancelled' };
        const unreachable = netnsFailure(error);
        if (unreachable) return unreachable;
        const address = joinHostPort(url.hostname.replace(/^\[|\]$/g, ''), Number(url.port || (url.protocol === 'https:' ? 443 : 80)));
        const why = limit.timedOut()
          ? 'context deadline exceeded (Client.Timeout exceeded while awaiting headers)'
          : describeNetError(error, address);
        return { result: 'failure', output: `Get "${url.href}": ${why}` };
      }
      const final = (): ProbeOutcome => ({ ...classifyHttpStatus(response.statusCode, response.body), statusCode: response.statusCode });
      if (!REDIRECT_CODES.has(response.statusCode) || response.location === undefined) return final();
      let next: URL;
      try {
        next = new URL(response.location, url);
      } catch {
        return { result: 'failure', output: `Get "${url.href}": failed to parse Location header "${response.location}"` };
      }
      if (next.hostname !== hostname || (next.protocol !== 'http:' && next.protocol !== 'https:')) return final();
      if (requests >= MAX_REQUESTS) {
        return { result: 'failure', output: `Get "${next.href}": stopped after ${MAX_REQUESTS} redirects` };
      }
      url = next;
    }
  } finally {
    limit.clear();
  }
}

/** The request headers: the manifest's, then the kubelet's User-Agent and Accept unless given. */
function probeHeaders(pairs: ReadonlyArray<[string, string]>): Record<string, string | string[]> {
  const headers: Record<string, string[]> = {};
  const names = new Map<string, string>();
  for (const [name, value] of pairs) {
    const key = names.get(name.toLowerCase()) ?? name;
    names.set(name.toLowerCase(), key);
    (headers[key] ??= []).push(value);
  }
  if (!names.has('user-agent')) headers['User-Agent'] = [PROBE_USER_AGENT];
  const accept = names.get('accept');
  if (accept === undefined) {
    headers.Accept = ['*/*'];
  } else if (headers[accept]?.every((value) => value === '')) {
    // An Accept header set to "" removes it, as the kubelet does.
    delete headers[accept];
  }
  // A single value as a string: Node sends Host (and most headers) only from a string.
  return Object.fromEntries(Object.entries(headers).map(([name, values]) => [name, values.length === 1 ? (values[0] ?? '') : values]));
}

/**
 * One GET on a fresh connection from `dialer` (no agent, no keep-alive), reading at most
 * MAX_BODY_BYTES of the body. HTTPS is TLS over that connection, without certificate checks; the
 * server name goes out as SNI unless it is an IP address (as Go's client does).
 */
function httpGet(url: URL, headers: Record<string, string | string[]>, signal: AbortSignal, dialer: Dialer, timeoutMs: number): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const https = url.protocol === 'https:';
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const port = Number(url.port || (https ? 443 : 80));
    const createConnection = (): Socket => {
      const stream = dialer.connect({ host, port, signal, timeoutMs });
      if (!https) return stream as Socket; // http.request takes any Duplex (its types say Socket)
      return tlsConnect({ socket: stream, rejectUnauthorized: false, ...(isIP(host) === 0 ? { servername: host } : {}) });
    };
    const send = https ? httpsModule().request : http().request;
    const req = send(url, { method: 'GET', headers, signal, createConnection });
    req.on('error', reject);
    req.on('response', (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let finished = false;
      const finish = (): void => {
        if (finished) return;
        finished = true;
        const location = res.headers.location;
        resolve({ statusCode: res.statusCode ?? 0, location, body: Buffer.concat(chunks).subarray(0, MAX_BODY_BYTES).toString('utf8') });
        res.destroy();
      };
      res.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        size += chunk.length;
        if (size >= MAX_BODY_BYTES) finish();
      });
      res.on('end', finish);
      res.on('error', reject);
    });
    req.end();
  });
}

/** tcpSocket: succeeds when a connection opens; it is closed at once. */
async function tcpProbe(request: Extract<NetProbeRequest, { type: 'tcp' }>, signal: AbortSignal | undefined, dialer: Dialer): Promise<ProbeOutcome> {
  const address = joinHostPort(request.host, request.port);
  const limit = deadline(request.timeoutMs, signal);
  try {
    await dialer.touch({ host: request.host, port: request.port, signal: limit.signal, timeoutMs: request.timeoutMs });
    return { result: 'success', output: '' };
  } catch (error) {
    if (limit.timedOut()) return { result: 'failure', output: `dial tcp ${address}: i/o timeout` };
    if (signal?.aborted) return { result: 'unknown', output: 'cancelled' };
    return netnsFailure(error) ?? { result: 'failure', output: describeNetError(error, address) };
  } finally {
    limit.clear();
  }
}

/** gRPC status codes by number, named as grpc-go prints them. */
const GRPC_CODES = [
  'OK', 'Canceled', 'Unknown', 'InvalidArgument', 'DeadlineExceeded', 'NotFound', 'AlreadyExists', 'PermissionDenied',
  'ResourceExhausted', 'FailedPrecondition', 'Aborted', 'OutOfRange', 'Unimplemented', 'Internal', 'Unavailable',
  'DataLoss', 'Unauthenticated',
];
const SERVING_STATUS = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];

/** grpc-go's status code for a non-200 HTTP status (its transport's mapping). */
function grpcCodeForHttpStatus(status: number): number {
  switch (status) {
    case 400:
      return 13; // Internal
    case 401:
      return 16; // Unauthenticated
    case 403:
      return 7; // PermissionDenied
    case 404:
      return 12; // Unimplemented
    case 429:
    case 502:
    case 503:
    case 504:
      return 14; // Unavailable
    default:
      return 2; // Unknown
  }
}

/** A length-prefixed gRPC message carrying grpc.health.v1.HealthCheckRequest { service }. */
export function encodeHealthCheckRequest(service: string): Buffer {
  const name = Buffer.from(service, 'utf8');
  const fields: number[] = [];
  if (name.length > 0) {
    fields.push(0x0a); // field 1, length-delimited
    for (let length = name.length; ; length >>>= 7) {
      if (length < 0x80) {
        fields.push(length);
        break;
      }
      fields.push((length & 0x7f) | 0x80);
    }
  }
  const payload = Buffer.concat([Buffer.from(fields), name]);
  const header = Buffer.alloc(5);
  header.writeUInt32BE(payload.length, 1);
  return Buffer.concat([header, payload]);
}

/** The `status` of a grpc.health.v1.HealthCheckResponse in a length-prefixed message (0 when absent). */
export function decodeHealthCheckStatus(message: Buffer): number | undefined {
  if (message.length < 5 || message[0] !== 0) return undefined; // too short, or compressed
  const payload = message.subarray(5, 5 + message.readUInt32BE(1));
  let offset = 0;
  const varint = (): number => {
    let value = 0;
    for (let shift = 0; offset < payload.length; shift += 7) {
      const byte = payload[offset++] ?? 0;
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return value;
    }
    throw new Error('truncated varint');
  };
  let status = 0;
  try {
    while (offset < payload.length) {
      const key = varint();
      const wireType = key & 7;
      if (key >>> 3 === 1 && wireType === 0) status = varint();
      else if (wireType === 0) varint();
      else if (wireType === 1) offset += 8;
      else if (wireType === 2) {
        const length = varint(); // read before adding: `offset += varint()` would add to the old offset
        offset += length;
      }
      else if (wireType === 5) offset += 4;
      else return undefined;
    }
  } catch {
    return undefined;
  }
  return status;
}

/**
 * grpc: grpc.health.v1.Health/Check over HTTP/2 cleartext; SERVING succeeds. A refused connection
 * fails at once (the kubelet's grpc-go client retries the dial until the timeout; the result is the
 * same failure, sooner, with the dial error in the message). The connection counts as made once
 * the server's SETTINGS arrive, as grpc-go's transport counts it ready (and as a stream from a
 * process in the pod's namespace can tell: it is writable before any TCP connection exists).
 */
function grpcProbe(request: Extract<NetProbeRequest, { type: 'grpc' }>, signal: AbortSignal | undefined, dialer: Dialer): Promise<ProbeOutcome> {
  const address = joinHostPort(request.host, request.port);
  const within = formatDuration(request.timeoutMs);
  const limit = deadline(request.timeoutMs, signal);
  return new Promise<ProbeOutcome>((resolve) => {
    let connected = false;
    let settled = false;
    const { connect: http2Connect, constants: http2Constants } = http2();
    const session = http2Connect(`http://${address}`, {
      createConnection: () => dialer.connect({ host: request.host, port: request.port, signal: limit.signal, timeoutMs: request.timeoutMs }),
    });
    const done = (outcome: ProbeOutcome): void => {
      if (settled) return;
      settled = true;
      limit.signal.removeEventListener('abort', onAbort);
      session.destroy();
      resolve(outcome);
    };
    const onAbort = (): void => {
      if (!limit.timedOut()) return done({ result: 'unknown', output: 'cancelled' });
      done({
        result: 'failure',
        output: connected
          ? `timeout: health rpc did not complete within ${within}`
          : `timeout: failed to connect service "${address}" within ${within}: context deadline exceeded`,
      });
    };
    limit.signal.addEventListener('abort', onAbort, { once: true });
    session.once('remoteSettings', () => {
      connected = true;
    });
    session.on('error', (error) =>
      done(netnsFailure(error) ?? { result: 'failure', output: `error: failed to connect service at "${address}": ${describeNetError(error, address)}` }));

    const stream = session.request({
      [http2Constants.HTTP2_HEADER_METHOD]: 'POST',
      [http2Constants.HTTP2_HEADER_PATH]: '/grpc.health.v1.Health/Check',
      [http2Constants.HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc',
      [http2Constants.HTTP2_HEADER_TE]: 'trailers',
      [http2Constants.HTTP2_HEADER_USER_AGENT]: PROBE_USER_AGENT,
      'grpc-timeout': `${request.timeoutMs}m`,
    });
    const chunks: Buffer[] = [];
    let httpStatus = 0;
    let grpcStatus: string | undefined;
    let grpcMessage = '';
    const readStatus = (headers: Record<string, unknown>): void => {
      if (typeof headers['grpc-status'] === 'string') grpcStatus = headers['grpc-status'];
      if (typeof headers['grpc-message'] === 'string') grpcMessage = safeDecode(headers['grpc-message']);
    };
    stream.on('response', (headers) => {
      httpStatus = Number(headers[http2Constants.HTTP2_HEADER_STATUS] ?? 0);
      readStatus(headers);
    });
    stream.on('trailers', (trailers) => readStatus(trailers));
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('error', (error: Error) => {
      // Before the session connects, a stream fails with the dial error as its cause.
      const cause = (error as { cause?: unknown }).cause ?? error;
      const unreachable = netnsFailure(error);
      if (unreachable) return done(unreachable);
      done({
        result: 'failure',
        output: connected
          ? `error: health rpc probe failed: ${describeNetError(error, address)}`
          : `error: failed to connect service at "${address}": ${describeNetError(cause, address)}`,
      });
    });
    stream.on('end', () => {
      const code = httpStatus !== 200 ? grpcCodeForHttpStatus(httpStatus) : grpcStatus === undefined ? 13 : Number(grpcStatus);
      if (httpStatus !== 200) grpcMessage = `unexpected HTTP status code received from server: ${httpStatus}`;
      else if (grpcStatus === undefined) grpcMessage = 'server closed the stream without sending trailers';
      if (code === 12) {
        return done({ result: 'failure', output: `error: this server does not implement the grpc health protocol (grpc.health.v1.Health): ${grpcMessage}` });
      }
      if (code === 4) return done({ result: 'failure', output: `timeout: health rpc did not complete within ${within}` });
      if (code !== 0) {
        return done({ result: 'failure', output: `error: health rpc probe failed: rpc error: code = ${GRPC_CODES[code] ?? `Code(${code})`} desc = ${grpcMessage}` });
      }
      const status = decodeHealthCheckStatus(Buffer.concat(chunks));
      if (status === undefined) {
        return done({ result: 'failure', output: 'error: health rpc probe failed: rpc error: code = Internal desc = malformed response message' });
      }
      if (status !== 1) {
        return done({ result: 'failure', output: `service unhealthy (responded with "${SERVING_STATUS[status] ?? String(status)}")` });
      }
      done({ result: 'success', output: 'service healthy' });
    });
    stream.end(encodeHealthCheckRequest(request.service));
  }).finally(limit.clear);
}

/** grpc-message is percent-encoded; a malformed one is shown as sent. */
function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}
