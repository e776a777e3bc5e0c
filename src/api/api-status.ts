// The API's failure answers, as the Kubernetes API words them: a v1 `Status` object whose code,
// reason and message a client (kubectl) prints as its error.

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  causes?: { reason: string; message: string; field?: string }[];
  retryAfterSeconds?: number;
}

export interface V1Status {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure';
  message: string;
  reason: string;
  details?: StatusDetails;
  code: number;
}

/** A Failure Status with `code`, `reason` and `message`. */
export function failure(code: number, reason: string, message: string, details?: StatusDetails): V1Status {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code };
}

export const notFound = (resource: string, name: string): V1Status => failure(404, 'NotFound', `${resource} "${name}" not found`, { name, kind: resource });

export const unknownPath = (): V1Status =>
  failure(404, 'NotFound', 'the server could not find the requested resource', { causes: [{ reason: 'UnexpectedServerResponse', message: '404 page not found' }] });

/** Every write: mirror pods are seen here, changed only through the manifest files. */
export const readOnly = (method: string, path: string, nodeName: string): V1Status =>
  failure(
    405,
    'MethodNotAllowed',
    `${method} is not allowed: podvisor serves read-only mirror pods of node "${nodeName}"; change the manifest files in its manifest directory instead (${method} ${path})`,
  );

export const badRequest = (message: string): V1Status => failure(400, 'BadRequest', message);

export const unauthorized = (): V1Status => failure(401, 'Unauthorized', 'Unauthorized');

export const expired = (message: string): V1Status => failure(410, 'Expired', message);

export const notAcceptable = (accept: string): V1Status =>
  failure(406, 'NotAcceptable', `only the following media types are accepted: application/json, application/json;as=Table;v=v1;g=meta.k8s.io (asked for ${accept})`);
