/**
 * Every error a client can see, in one table: a stable machine code (the JSON `error` field) and the
 * HTTP status the wire layer maps it to. Lower layers throw these; nothing else reaches a response.
 */
export const ERROR_STATUS = {
  invalid_parameter: 400,
  invalid_body: 400,
  unauthorized: 401,
  not_found: 404,
  user_not_found: 404,
  content_not_found: 404,
  job_not_found: 404,
  method_not_allowed: 405,
  payload_too_large: 413,
  uri_too_long: 414,
  too_many_requests: 429,
  internal_error: 500,
  service_unavailable: 503,
  request_timeout: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export class ServiceError extends Error {
  readonly code: ErrorCode;
  /** Response headers the error implies (Retry-After, WWW-Authenticate, Allow). */
  readonly headers: Readonly<Record<string, string>> | undefined;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; headers?: Record<string, string> }) {
    super(message, options);
    this.name = 'ServiceError';
    this.code = code;
    this.headers = options?.headers;
  }
  get status(): number {
    return ERROR_STATUS[this.code];
  }
}

export const Errors = {
  invalidParameter: (name: string) => new ServiceError('invalid_parameter', `Invalid ${name} parameter`),
  invalidBody: (message: string) => new ServiceError('invalid_body', message),
  userNotFound: (id: number) => new ServiceError('user_not_found', `User with ID ${id} does not exist`),
  contentNotFound: (id: number) => new ServiceError('content_not_found', `Content with ID ${id} does not exist`),
  jobNotFound: (id: string) => new ServiceError('job_not_found', `Job ${id} does not exist (or has expired)`),
  notFound: () => new ServiceError('not_found', 'Route not found'),
  payloadTooLarge: (max: number) => new ServiceError('payload_too_large', `Request body exceeds ${max} bytes`),
  unauthorized: () =>
    new ServiceError('unauthorized', 'Missing or invalid API key', { headers: { 'www-authenticate': 'Bearer' } }),
  tooManyRequests: (retryAfterSec: number) =>
    new ServiceError('too_many_requests', 'Rate limit exceeded', { headers: { 'retry-after': String(retryAfterSec) } }),
  methodNotAllowed: (method: string, allow: string) =>
    new ServiceError('method_not_allowed', `Method ${method} is not allowed on this route`, { headers: { allow } }),
  uriTooLong: (max: number) => new ServiceError('uri_too_long', `Request URL exceeds ${max} bytes`),
  unavailable: (what: string, cause?: unknown) =>
    new ServiceError('service_unavailable', `${what} is temporarily unavailable`, { cause }),
  timeout: () => new ServiceError('request_timeout', 'Request did not complete within its deadline'),
  internal: (cause?: unknown) => new ServiceError('internal_error', 'Internal server error', { cause }),
} as const;

/** Model failures never reach a client: the service falls back to popularity ranking. */
export class ModelError extends Error {
  readonly reason: 'failure' | 'timeout' | 'rejected';
  constructor(reason: 'failure' | 'timeout' | 'rejected', message: string) {
    super(message);
    this.name = 'ModelError';
    this.reason = reason;
  }
}

export function isServiceError(err: unknown): err is ServiceError {
  return err instanceof ServiceError;
}
