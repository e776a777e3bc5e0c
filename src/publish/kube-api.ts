// The few Kubernetes API calls the publisher makes, over the HTTP client: JSON in and out, the
// server's v1 Status turned into a PublishError that keeps its code and reason (NotFound,
// AlreadyExists, Conflict), and every request counted in the metrics by its result.
import { HttpClient, PublishError, resultLabel, retryAfterOf } from './http-client.js';
import { connectionToken, type KubeConnection } from './kubeconfig.js';

/** A v1 Status, as the API server answers errors. */
export interface KubeStatus {
  kind?: string;
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
}

/** What the publisher reads of an object the server returns. */
export interface ApiObject {
  metadata: {
    name: string;
    namespace?: string;
    uid: string;
    resourceVersion?: string;
    annotations?: Record<string, string>;
    deletionTimestamp?: string | null;
  };
  status?: unknown;
}

export interface ApiList {
  items?: ApiObject[];
}

export interface KubeRequest {
  body?: unknown;
  /** application/json unless given (merge-patch+json for a PATCH). */
  contentType?: string;
  signal?: AbortSignal;
}

export interface KubeApiOptions {
  timeoutMs: number;
  /** Called once per request with its result label (success, not_found, conflict, timeout...). */
  onResult?: (result: string) => void;
}

/** True when `error` is the server's answer with this HTTP status. */
export function hasStatus(error: unknown, status: number): error is PublishError {
  return error instanceof PublishError && error.kind === 'http' && error.status === status;
}

export class KubeApi {
  readonly #client: HttpClient;
  readonly #base: string;
  readonly #onResult: ((result: string) => void) | undefined;

  constructor(connection: KubeConnection, options: KubeApiOptions) {
    const token = connectionToken(connection);
    this.#client = new HttpClient({ tls: connection.tls, timeoutMs: options.timeoutMs, ...(token ? { token } : {}) });
    // A path in the server URL (a proxy's prefix) goes before every API path.
    this.#base = connection.server.href.replace(/\/+$/, '');
    this.#onResult = options.onResult;
  }

  /** One call; resolves with the parsed answer of a 2xx, rejects with a PublishError otherwise. */
  async request<T = ApiObject>(method: string, path: string, options: KubeRequest = {}): Promise<T> {
    try {
      const result = await this.#request<T>(method, path, options);
      this.#onResult?.(resultLabel());
      return result;
    } catch (error) {
      if (!(error instanceof PublishError && error.kind === 'aborted')) this.#onResult?.(resultLabel(error));
      throw error;
    }
  }

  async #request<T>(method: string, path: string, options: KubeRequest): Promise<T> {
    const response = await this.#client.request({
      method,
      url: new URL(this.#base + path),
      ...(options.body !== undefined ? { body: JSON.stringify(options.body), headers: { 'Content-Type': options.contentType ?? 'application/json' } } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    let parsed: unknown;
    try {
      parsed = response.body ? JSON.parse(response.body) : undefined;
    } catch (error) {
      if (response.status >= 200 && response.status <= 299) {
        throw new PublishError('response', `${method} ${path}: HTTP ${response.status} with an answer that is not JSON`, { cause: error });
      }
    }
    if (response.status >= 200 && response.status <= 299) {
      // Every success of the calls made here carries an object (the API server always sends one).
      if (typeof parsed !== 'object' || parsed === null) throw new PublishError('response', `${method} ${path}: HTTP ${response.status} without an object in the answer`);
      return parsed as T;
    }
    const status = (parsed ?? {}) as KubeStatus;
    const reason = typeof status.reason === 'string' && status.reason ? status.reason : undefined;
    const message = typeof status.message === 'string' && status.message ? status.message : response.body.trim().slice(0, 200);
    throw new PublishError('http', `${method} ${path}: HTTP ${response.status}${reason ? ` ${reason}` : ''}${message ? `: ${message}` : ''}`, {
      status: response.status,
      ...(reason ? { reason } : {}),
      retryAfterMs: retryAfterOf(response, Date.now()),
    });
  }

  close(): void {
    this.#client.close();
  }
}
