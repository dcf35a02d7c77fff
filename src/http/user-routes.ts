/** PUT /users/:id, POST /users/:id/dismissals, DELETE /users/:id/dismissals/:content_id. */
import type { UserWrites } from '../service/user-writes.js';
import { Exchange, type WireContext } from './exchange.js';
import { admit, type Guards } from './guards.js';
import { parseDismissalBody, parseUserBody } from './ingest-params.js';
import { parseContentId, parseUserId } from './params.js';
import { readBody } from './request-body.js';
import type { TemplatedApp } from './uws.js';

export function userRoutes(app: TemplatedApp, ctx: WireContext, guards: Guards, users: UserWrites, maxBodyBytes: number): void {
  app.put('/users/:id', (res, req) => {
    const ex = new Exchange(res, 'user_write', 'PUT', ctx, req);
    const rawId = req.getParameter(0) ?? '';
    const authorization = req.getHeader('authorization');
    const client = guards.limit ? guards.clientOf(res, req) : '';
    readBody(res, req, ex, maxBodyBytes, (body) => {
      let userId: number;
      let fields: ReturnType<typeof parseUserBody>;
      try {
        userId = ex.userId = parseUserId(rawId);
        fields = parseUserBody(body);
      } catch (err) {
        return ex.fail(err);
      }
      admit(ex, guards, 'write', authorization, client, () => {
        ex.deadline();
        users.put(userId, fields).then(
          ({ created, record }) => ex.send(created ? 201 : 200, JSON.stringify(record)),
          (err: unknown) => ex.fail(err),
        );
      });
    });
  });

  app.post('/users/:id/dismissals', (res, req) => {
    const ex = new Exchange(res, 'dismissals', 'POST', ctx, req);
    const rawId = req.getParameter(0) ?? '';
    const authorization = req.getHeader('authorization');
    const client = guards.limit ? guards.clientOf(res, req) : '';
    readBody(res, req, ex, maxBodyBytes, (body) => {
      let userId: number;
      let contentId: number;
      try {
        userId = ex.userId = parseUserId(rawId);
        contentId = parseDismissalBody(body).content_id;
      } catch (err) {
        return ex.fail(err);
      }
      admit(ex, guards, 'write', authorization, client, () => {
        ex.deadline();
        users.dismiss(userId, contentId).then(
          (record) => ex.send(201, JSON.stringify(record)),
          (err: unknown) => ex.fail(err),
        );
      });
    });
  });

  app.del('/users/:id/dismissals/:content_id', (res, req) => {
    const ex = new Exchange(res, 'dismissals', 'DELETE', ctx, req);
    const rawId = req.getParameter(0) ?? '';
    const rawContent = req.getParameter(1) ?? '';
    const authorization = req.getHeader('authorization');
    const client = guards.limit ? guards.clientOf(res, req) : '';
    let userId: number;
    let contentId: number;
    try {
      userId = ex.userId = parseUserId(rawId);
      contentId = parseContentId(rawContent);
    } catch (err) {
      return ex.fail(err);
    }
    admit(ex, guards, 'write', authorization, client, () => {
      ex.deadline();
      users.undismiss(userId, contentId).then(
        () => ex.send(204, ''),
        (err: unknown) => ex.fail(err),
      );
    });
  });
}
