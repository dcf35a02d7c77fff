/** POST /users/:id/watch-history {"content_id": N} */
import { Errors } from '../domain/errors.js';
import type { RecommendationService } from '../service/recommendation-service.js';
import { Exchange, type WireContext } from './exchange.js';
import { admit, type Guards } from './guards.js';
import { parseUserId, parseWatchBody } from './params.js';
import type { HttpResponse, TemplatedApp } from './uws.js';

export function watchHistoryRoutes(
  app: TemplatedApp,
  ctx: WireContext,
  guards: Guards,
  recommendations: RecommendationService,
  maxBodyBytes: number,
): void {
  app.post('/users/:id/watch-history', (res, req) => {
    const ex = new Exchange(res, 'watch_history', 'POST', ctx, req);
    const rawId = req.getParameter(0) ?? '';
    const declared = Number(req.getHeader('content-length') || '0');
    const authorization = req.getHeader('authorization');
    const client = guards.limit ? guards.clientOf(res, req) : '';
    if (declared > maxBodyBytes) return ex.fail(Errors.payloadTooLarge(maxBodyBytes), true);
    readBody(res, ex, maxBodyBytes, (body) => {
      let userId: number;
      let contentId: number;
      try {
        userId = ex.userId = parseUserId(rawId);
        contentId = parseWatchBody(body).content_id;
      } catch (err) {
        return ex.fail(err);
      }
      admit(ex, guards, 'write', authorization, client, () => {
        ex.deadline();
        recommendations.recordWatch(userId, contentId).then(
          (record) => ex.send(201, JSON.stringify(record)),
          (err: unknown) => ex.fail(err),
        );
      });
    });
  });
}

/** Collects the body, copying each chunk (uWS reuses its buffer), and stops at `max` bytes with 413. */
function readBody(res: HttpResponse, ex: Exchange, max: number, onBody: (body: Buffer) => void): void {
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
