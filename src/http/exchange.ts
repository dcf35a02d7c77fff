/**
 * One request/response pair and the uWS rules around it: onAborted is attached first, a response is
 * written at most once, never after an abort, always inside cork(), and counted in the metrics.
 */
import { ERROR_STATUS, Errors, isServiceError, type ServiceError } from '../domain/errors.js';
import type { Metrics, RouteName } from '../observability/metrics.js';
import type { Logger } from '../observability/logger.js';
import type { HttpResponse } from './uws.js';

const STATUS_LINE: Record<number, string> = {
  200: '200 OK',
  201: '201 Created',
  400: '400 Bad Request',
  401: '401 Unauthorized',
  404: '404 Not Found',
  405: '405 Method Not Allowed',
  413: '413 Payload Too Large',
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
}

export class Exchange {
  private done = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly started = performance.now();

  constructor(
    readonly res: HttpResponse,
    private readonly route: RouteName,
    private readonly method: string,
    private readonly ctx: WireContext,
  ) {
    ctx.inFlight += 1;
    res.onAborted(() => {
      if (this.done) return;
      this.finish();
    });
  }

  get finished(): boolean {
    return this.done;
  }

  /** Starts the request deadline: past it the client gets 503 request_timeout. */
  deadline(): void {
    this.timer = setTimeout(() => this.fail(Errors.timeout()), this.ctx.requestTimeoutMs);
  }

  send(status: number, body: string, contentType = JSON_TYPE, closeConnection = false): void {
    if (this.done) return;
    this.finish();
    const { res, ctx } = this;
    res.cork(() => {
      res.writeStatus(STATUS_LINE[status] ?? String(status)).writeHeader('content-type', contentType);
      res.end(body, closeConnection || ctx.draining);
    });
    ctx.metrics.request(this.route, this.method, status, (performance.now() - this.started) / 1000);
  }

  /** Any error becomes the JSON error shape; only ServiceError text reaches the client. */
  fail(err: unknown, closeConnection = false): void {
    if (this.done) return;
    const known: ServiceError = isServiceError(err) ? err : Errors.internal(err);
    if (known.code === 'internal_error') {
      this.ctx.log.error({ route: this.route, err: known.cause ?? err }, 'request failed');
    } else if (known.status >= 500) {
      this.ctx.log.warn({ route: this.route, code: known.code, cause: errorText(known.cause) }, 'request failed');
    }
    this.send(ERROR_STATUS[known.code], errorBody(known), JSON_TYPE, closeConnection);
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
