/**
 * Request ids: the caller's `X-Request-Id` when it is a sane token (≤ 128 chars of [A-Za-z0-9._-]), else
 * this worker's prefix and a counter — unique per process start without any randomness per request.
 */
import { randomBytes } from 'node:crypto';

const MAX_LENGTH = 128;
const SANE = /^[A-Za-z0-9._-]+$/;

export class RequestIds {
  private count = 0;

  /** `prefix`: e.g. `forWorker(1)` gives `3f9a2c1e-1-`; ids then read `3f9a2c1e-1-1`, `…-2`, `…-a` (base 36). */
  constructor(private readonly prefix: string) {}

  /** A random start-up tag (restarts and instances never collide) plus the worker index. */
  static forWorker(index: number | string): RequestIds {
    return new RequestIds(`${randomBytes(4).toString('hex')}-${index}-`);
  }

  /** The id of a request whose `X-Request-Id` header is `incoming` ('' when absent). */
  take(incoming: string): string {
    if (incoming.length > 0 && incoming.length <= MAX_LENGTH && SANE.test(incoming)) return incoming;
    this.count += 1;
    return this.prefix + this.count.toString(36);
  }
}
