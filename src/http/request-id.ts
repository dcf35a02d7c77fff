/**
 * Request ids: the caller's `X-Request-Id` when it is a sane token (≤ 128 chars of [A-Za-z0-9._-]), else
 * this worker's prefix and a counter — unique per process start without any randomness per request.
 * A generated id costs nothing until used: the response header is written from a reused byte buffer,
 * and the text form is built only for a log line.
 */
import { randomBytes } from 'node:crypto';

const MAX_LENGTH = 128;
const SANE = /^[A-Za-z0-9._-]+$/;
const DIGITS = '0123456789abcdefghijklmnopqrstuvwxyz';
/** Base-36 digits of Number.MAX_SAFE_INTEGER: no counter value needs more. */
const MAX_DIGITS = 11;

export class RequestIds {
  private count = 0;
  private readonly buffer: Uint8Array;
  /** views[n]: the prefix and n digits, made once so bytes() allocates nothing. */
  private readonly views: Uint8Array[] = [];

  /** `prefix`: e.g. `forWorker(1)` gives `3f9a2c1e-1-`; ids then read `3f9a2c1e-1-1`, `…-2`, `…-a` (base 36). */
  constructor(private readonly prefix: string) {
    this.buffer = new Uint8Array(prefix.length + MAX_DIGITS);
    new TextEncoder().encodeInto(prefix, this.buffer);
    for (let n = 0; n <= MAX_DIGITS; n++) this.views.push(this.buffer.subarray(0, prefix.length + n));
  }

  /** A random start-up tag (restarts and instances never collide) plus the worker index. */
  static forWorker(index: number | string): RequestIds {
    return new RequestIds(`${randomBytes(4).toString('hex')}-${index}-`);
  }

  /** Whether a caller's `X-Request-Id` ('' when absent) is used as the request's id. */
  static accepts(incoming: string): boolean {
    return incoming.length > 0 && incoming.length <= MAX_LENGTH && SANE.test(incoming);
  }

  /** The next generated id's sequence number (1, 2, …). */
  next(): number {
    return ++this.count;
  }

  /** Generated id `seq` as text. */
  text(seq: number): string {
    return this.prefix + seq.toString(36);
  }

  /** Generated id `seq` as bytes, in a buffer every call reuses: write it out before the next call. */
  bytes(seq: number): Uint8Array {
    let digits = 1;
    for (let v = Math.floor(seq / 36); v > 0; v = Math.floor(v / 36)) digits++;
    const end = this.prefix.length + digits;
    for (let i = end - 1, v = seq; i >= this.prefix.length; i--, v = Math.floor(v / 36)) {
      this.buffer[i] = DIGITS.charCodeAt(v % 36);
    }
    return this.views[digits]!;
  }
}
