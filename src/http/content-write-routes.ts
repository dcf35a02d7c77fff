/** PUT /content/:id, POST /content/bulk, DELETE /content/:id: the application pushes its catalog. */
import type { CatalogService } from '../service/catalog-service.js';
import { Exchange, type WireContext } from './exchange.js';
import { admit, type Guards } from './guards.js';
import { BULK_MAX_BODY_BYTES, parseBulkContentBody, parseContentBody } from './ingest-params.js';
import { parseContentId } from './params.js';
import { readBody } from './request-body.js';
import type { TemplatedApp } from './uws.js';

export function contentWriteRoutes(app: TemplatedApp, ctx: WireContext, guards: Guards, catalog: CatalogService, maxBodyBytes: number): void {
  app.put('/content/:id', (res, req) => {
    const ex = new Exchange(res, 'content_write', 'PUT', ctx, req);
    const rawId = req.getParameter(0) ?? '';
    const authorization = req.getHeader('authorization');
    const client = guards.limit ? guards.clientOf(res, req) : '';
    readBody(res, req, ex, maxBodyBytes, (body) => {
      let contentId: number;
      let fields: ReturnType<typeof parseContentBody>;
      try {
        contentId = parseContentId(rawId);
        fields = parseContentBody(body);
      } catch (err) {
        return ex.fail(err);
      }
      admit(ex, guards, 'write', authorization, client, () => {
        ex.deadline();
        catalog.put(contentId, fields).then(
          ({ created, record }) => ex.send(created ? 201 : 200, JSON.stringify(record)),
          (err: unknown) => ex.fail(err),
        );
      });
    });
  });

  app.post('/content/bulk', (res, req) => {
    const ex = new Exchange(res, 'content_write', 'POST', ctx, req);
    const authorization = req.getHeader('authorization');
    const client = guards.limit ? guards.clientOf(res, req) : '';
    readBody(res, req, ex, BULK_MAX_BODY_BYTES, (body) => {
      let items: ReturnType<typeof parseBulkContentBody>;
      try {
        items = parseBulkContentBody(body);
      } catch (err) {
        return ex.fail(err);
      }
      admit(ex, guards, 'write', authorization, client, () => {
        ex.deadline();
        catalog.putMany(items).then(
          (result) => ex.send(200, JSON.stringify(result)),
          (err: unknown) => ex.fail(err),
        );
      });
    });
  });

  app.del('/content/:id', (res, req) => {
    const ex = new Exchange(res, 'content_write', 'DELETE', ctx, req);
    const rawId = req.getParameter(0) ?? '';
    const authorization = req.getHeader('authorization');
    const client = guards.limit ? guards.clientOf(res, req) : '';
    let contentId: number;
    try {
      contentId = parseContentId(rawId);
    } catch (err) {
      return ex.fail(err);
    }
    admit(ex, guards, 'write', authorization, client, () => {
      ex.deadline();
      catalog.hide(contentId).then(
        () => ex.send(204, ''),
        (err: unknown) => ex.fail(err),
      );
    });
  });
}
