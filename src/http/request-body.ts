/** Request bodies: the declared size checked before reading, each chunk copied (uWS reuses its buffer), capped. */
import { Errors } from '../domain/errors.js';
import type { Exchange } from './exchange.js';
import type { HttpRequest, HttpResponse } from './uws.js';

/**
 * Reads the whole body, then calls `onBody`. Over `max` bytes (declared or received) the client gets 413
 * and the connection is closed rather than read on. `req` is read here, synchronously, for Content-Length.
 */
export function readBody(res: HttpResponse, req: HttpRequest, ex: Exchange, max: number, onBody: (body: Buffer) => void): void {
  const declared = Number(req.getHeader('content-length') || '0');
  if (declared > max) return ex.fail(Errors.payloadTooLarge(max), true);
  const chunks: Buffer[] = [];
  let size = 0;
  res.onData((chunk, isLast) => {
    if (ex.finished) return;
    size += chunk.byteLength;
    // Stop reading: answer now and close, rather than buffer what the client keeps sending.
    if (size > max) return ex.fail(Errors.payloadTooLarge(max), true);
    chunks.push(Buffer.from(new Uint8Array(chunk)));
    if (isLast) onBody(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
  });
}
