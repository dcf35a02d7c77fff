/** GET /users/:id/recommendations and GET /recommendations/batch. */
import type { BatchService } from '../service/batch.js';
import { explains, type RecommendationService } from '../service/recommendation-service.js';
import { explainedRecommendationsBody, recommendationsBody } from './bodies.js';
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
    let explain: boolean;
    try {
      userId = ex.userId = parseUserId(rawId);
      ({ limit, offset, genre, explain } = parseRecommendationQuery(parseQuery(rawQuery)));
    } catch (err) {
      return ex.fail(err);
    }
    admit(ex, guards, 'read', authorization, client, () => {
      const cached = recommendations.cached(userId, genre);
      if (cached && !explain) return ex.send(200, recommendationsBody(userId, cached, limit, true, false, offset));
      if (cached && explains(cached)) return ex.send(200, explainedRecommendationsBody(userId, cached, limit, true, false, offset));
      ex.deadline();
      const body = explain ? explainedRecommendationsBody : recommendationsBody;
      recommendations.recommendationsFor(userId, true, genre, explain).then(
        ({ list, cacheHit, stale }) => ex.send(200, body(userId, list, limit, cacheHit, stale, offset)),
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
