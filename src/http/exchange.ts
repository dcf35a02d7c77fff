/**
 * One request/response pair and the uWS rules around it: onAborted is attached first, a response is
 * written at most once, never after an abort, always inside cork(), and counted in the metrics.
 */
import { ERROR_STATUS, Errors, isServiceError, type ServiceError } from '../domain/errors.js';
import type { Metrics, RouteName } from '../observability/metrics.js';
import type { Logger } from '../observability/logger.js';
import { RequestIds } from './request-id.js';
import type { HttpRequest, HttpResponse } from './uws.js';

const STATUS_LINE: Record<number, string> = {
  200: '200 OK',
  201: '201 Created',
  202: '202 Accepted',
  204: '204 No Content',
  400: '400 Bad Request',
  401: '401 Unauthorized',
  404: '404 Not Found',
  405: '405 Method Not Allowed',
  413: '413 Payload Too Large',
  414: '414 URI Too Long',
  429: '429 Too Many Requests',
  500: '500 Internal Server Error',
  503: '503 Service Unavailable',
};

const JSON_TYPE = 'application/json';

export interface WireContext {
  metrics: Metrics;
  log: Logger;
  /** Set while the worker drains: every response then closes its connection. */
  draining: boolean;
  /** Requests started and not yet answered or aborted. */
  inFlight: number;
  requestTimeoutMs: number;
  /** This worker's request ids (unset: a per-process generator). */
  requestIds?: RequestIds;
  /** One debug line per request; decided once at start-up (`log.isLevelEnabled('debug')`). */
  accessLog?: boolean;
}

const processRequestIds = RequestIds.forWorker(process.pid);

export class Exchange {
  private done = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly started = performance.now();
  /** The caller's `X-Request-Id` when accepted, else '' and `seq` numbers a generated id. */
  private readonly incomingId: string;
  private readonly seq: number;
  /** The user the request is about, once parsed: context for error logs. */
  userId: number | undefined = undefined;
  private requestLog: Logger | undefined = undefined;

  /** `req`: read synchronously here for `X-Request-Id` (uWS requests are valid only in the handler). */
  constructor(
    readonly res: HttpResponse,
    private readonly route: RouteName,
    private readonly method: string,
    private readonly ctx: WireContext,
    req?: HttpRequest,
  ) {
    const incoming = req ? req.getHeader('x-request-id') : '';
    const accepted = RequestIds.accepts(incoming);
    this.incomingId = accepted ? incoming : '';
    this.seq = accepted ? 0 : (ctx.requestIds ?? processRequestIds).next();
    ctx.inFlight += 1;
    res.onAborted(() => {
      if (this.done) return;
      this.finish();
    });
  }

  get finished(): boolean {
    return this.done;
  }

  /** Echoed as `x-request-id` and on every log line about this request (built when asked for). */
  get id(): string {
    return this.incomingId || (this.ctx.requestIds ?? processRequestIds).text(this.seq);
  }

  /** A logger whose lines carry this request's id; created on first use, so only when logging. */
  logger(): Logger {
    return (this.requestLog ??= this.ctx.log.child({ request_id: this.id }));
  }

  /** Starts the request deadline: past it the client gets 503 request_timeout. */
  deadline(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => this.fail(Errors.timeout()), this.ctx.requestTimeoutMs);
  }

  send(
    status: number,
    body: string | Uint8Array,
    contentType = JSON_TYPE,
    closeConnection = false,
    headers?: Readonly<Record<string, string>>,
  ): void {
    if (this.done) return;
    this.finish();
    const { res, ctx } = this;
    res.cork(() => {
      // A generated id goes out as bytes from a reused buffer: no string per request.
      const id = this.incomingId || (ctx.requestIds ?? processRequestIds).bytes(this.seq);
      res.writeStatus(STATUS_LINE[status] ?? String(status));
      if (status !== 204) res.writeHeader('content-type', contentType);
      res.writeHeader('x-request-id', id);
      if (headers) for (const name in headers) res.writeHeader(name, headers[name]!);
      const close = closeConnection || ctx.draining;
      // 204 carries no body and no Content-Length (RFC 9110 §8.6): endWithoutBody() writes none when given
      // no length. Closing needs the second argument, and then a length: 0 is the honest one.
      if (status === 204) {
        if (close) res.endWithoutBody(0, true);
        else res.endWithoutBody();
      } else {
        res.end(body, close);
      }
    });
    const seconds = (performance.now() - this.started) / 1000;
    ctx.metrics.request(this.route, this.method, status, seconds);
    if (ctx.accessLog) {
      ctx.log.debug(
        { request_id: this.id, method: this.method, route: this.route, status, duration_ms: Math.round(seconds * 1e6) / 1000 },
        'request',
      );
    }
  }

  /** Any error becomes the JSON error shape; only ServiceError text reaches the client. */
  fail(err: unknown, closeConnection = false): void {
    if (this.done) return;
    const known: ServiceError = isServiceError(err) ? err : Errors.internal(err);
    if (known.code === 'internal_error') {
      this.ctx.log.error(
        { request_id: this.id, route: this.route, user_id: this.userId, err: known.cause ?? err },
        'request failed',
      );
    } else if (known.status >= 500) {
      this.ctx.log.warn(
        { request_id: this.id, route: this.route, user_id: this.userId, code: known.code, cause: errorText(known.cause) },
        'request failed',
      );
    }
    this.send(ERROR_STATUS[known.code], errorBody(known), JSON_TYPE, closeConnection, known.headers);
  }

  private finish(): void {
    this.done = true;
    this.ctx.inFlight -= 1;
    if (this.timer) clearTimeout(this.timer);
  }
}

export function errorBody(err: ServiceError): string {
  return JSON.stringify({ error: err.code, message: err.message });
}

function errorText(cause: unknown): string | undefined {
  return cause instanceof Error ? cause.message : cause === undefined ? undefined : String(cause);
}
