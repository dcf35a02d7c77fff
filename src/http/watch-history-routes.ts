/** POST /users/:id/watch-history {"content_id": N} */
import type { RecommendationService } from '../service/recommendation-service.js';
import { Exchange, type WireContext } from './exchange.js';
import { admit, type Guards } from './guards.js';
import { parseUserId, parseWatchBody } from './params.js';
import { readBody } from './request-body.js';
import type { TemplatedApp } from './uws.js';

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
    const authorization = req.getHeader('authorization');
    const client = guards.limit ? guards.clientOf(res, req) : '';
    readBody(res, req, ex, maxBodyBytes, (body) => {
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
