/** GET /users/:id/recommendations and GET /recommendations/batch. */
import type { BatchService } from '../service/batch.js';
import type { RecommendationService } from '../service/recommendation-service.js';
import { recommendationsBody } from './bodies.js';
import { Exchange, type WireContext } from './exchange.js';
import { admit, type Guards } from './guards.js';
import { parseBatchLimit, parsePage, parseQuery, parseRecommendationQuery, parseUserId } from './params.js';
import type { TemplatedApp } from './uws.js';

export function recommendationRoutes(
  app: TemplatedApp,
  ctx: WireContext,
  guards: Guards,
  recommendations: RecommendationService,
  batch: BatchService,
): void {
  app.get('/users/:id/recommendations', (res, req) => {
    const ex = new Exchange(res, 'recommendations', 'GET', ctx, req);
    const rawId = req.getParameter(0) ?? '';
    const rawQuery = req.getQuery();
    const authorization = req.getHeader('authorization');
    const client = guards.limit ? guards.clientOf(res, req) : '';
    let userId: number;
    let limit: number;
    let offset: number;
    let genre: string | undefined;
    try {
      userId = ex.userId = parseUserId(rawId);
      ({ limit, offset, genre } = parseRecommendationQuery(parseQuery(rawQuery)));
    } catch (err) {
      return ex.fail(err);
    }
    admit(ex, guards, 'read', authorization, client, () => {
      const cached = recommendations.cached(userId, genre);
      if (cached) return ex.send(200, recommendationsBody(userId, cached, limit, true, false, offset));
      ex.deadline();
      recommendations.recommendationsFor(userId, true, genre).then(
        ({ list, cacheHit, stale }) => ex.send(200, recommendationsBody(userId, list, limit, cacheHit, stale, offset)),
        (err: unknown) => ex.fail(err),
      );
    });
  });

  app.get('/recommendations/batch', (res, req) => {
    const ex = new Exchange(res, 'batch', 'GET', ctx, req);
    const rawQuery = req.getQuery();
    const authorization = req.getHeader('authorization');
    const client = guards.limit ? guards.clientOf(res, req) : '';
    let page: number;
    let limit: number;
    try {
      const query = parseQuery(rawQuery);
      page = parsePage(query.get('page'));
      limit = parseBatchLimit(query.get('limit'));
    } catch (err) {
      return ex.fail(err);
    }
    admit(ex, guards, 'read', authorization, client, () => {
      ex.deadline();
      batch.page(page, limit, () => ex.logger()).then(
        (result) => ex.send(200, JSON.stringify(result)),
        (err: unknown) => ex.fail(err),
      );
    });
  });
}
