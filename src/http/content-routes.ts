/** GET /content/popular, /content/latest, /content/:id, /content/:id/similar. */
import type { CatalogService, ContentList, ContentListQuery } from '../service/catalog-service.js';
import { Exchange, type WireContext } from './exchange.js';
import { admit, type Guards } from './guards.js';
import { parseContentId, parseContentListQuery, parseQuery, parseSimilarLimit } from './params.js';
import type { TemplatedApp } from './uws.js';

export function contentRoutes(app: TemplatedApp, ctx: WireContext, guards: Guards, catalog: CatalogService): void {
  const listRoute = (path: string, list: (q: ContentListQuery) => Promise<ContentList>) =>
    app.get(path, (res, req) => {
      const ex = new Exchange(res, 'content_list', 'GET', ctx, req);
      const rawQuery = req.getQuery();
      const authorization = req.getHeader('authorization');
      const client = guards.limit ? guards.clientOf(res, req) : '';
      let query: ContentListQuery;
      try {
        const { limit, offset, genre, userId } = parseContentListQuery(parseQuery(rawQuery));
        query = { limit, offset, ...(genre !== undefined ? { genre } : {}), ...(userId !== undefined ? { userId } : {}) };
        ex.userId = userId;
      } catch (err) {
        return ex.fail(err);
      }
      admit(ex, guards, 'read', authorization, client, () => {
        ex.deadline();
        list(query).then(
          ({ items, generatedAt }) =>
            ex.send(200, JSON.stringify({ items, metadata: { total_count: items.length, generated_at: generatedAt } })),
          (err: unknown) => ex.fail(err),
        );
      });
    });
  listRoute('/content/popular', (q) => catalog.popular(q));
  listRoute('/content/latest', (q) => catalog.latest(q));

  app.get('/content/:id', (res, req) => {
    const ex = new Exchange(res, 'content_item', 'GET', ctx, req);
    const rawId = req.getParameter(0) ?? '';
    const rawQuery = req.getQuery();
    const authorization = req.getHeader('authorization');
    const client = guards.limit ? guards.clientOf(res, req) : '';
    let contentId: number;
    try {
      contentId = parseContentId(rawId);
      parseQuery(rawQuery); // no parameters, but an over-long or malformed query is still refused
    } catch (err) {
      return ex.fail(err);
    }
    admit(ex, guards, 'read', authorization, client, () => {
      ex.deadline();
      catalog.title(contentId).then(
        (item) => ex.send(200, JSON.stringify(item)),
        (err: unknown) => ex.fail(err),
      );
    });
  });

  app.get('/content/:id/similar', (res, req) => {
    const ex = new Exchange(res, 'content_similar', 'GET', ctx, req);
    const rawId = req.getParameter(0) ?? '';
    const rawQuery = req.getQuery();
    const authorization = req.getHeader('authorization');
    const client = guards.limit ? guards.clientOf(res, req) : '';
    let contentId: number;
    let limit: number;
    try {
      contentId = parseContentId(rawId);
      limit = parseSimilarLimit(parseQuery(rawQuery).get('limit'));
    } catch (err) {
      return ex.fail(err);
    }
    admit(ex, guards, 'read', authorization, client, () => {
      ex.deadline();
      catalog.similar(contentId, limit).then(
        ({ similar, source, generatedAt }) =>
          ex.send(200, JSON.stringify({ content_id: contentId, similar, metadata: { source, generated_at: generatedAt } })),
        (err: unknown) => ex.fail(err),
      );
    });
  });
}
