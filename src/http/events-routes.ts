/** POST /events [{"user_id","content_id","timestamp"?}, …]: watch events in bulk, one transaction. */
import type { WatchEvents } from '../service/watch-events.js';
import { Exchange, type WireContext } from './exchange.js';
import { admit, type Guards } from './guards.js';
import { parseEventsBody } from './ingest-params.js';
import { readBody } from './request-body.js';
import type { TemplatedApp } from './uws.js';

export function eventsRoutes(app: TemplatedApp, ctx: WireContext, guards: Guards, events: WatchEvents, maxBodyBytes: number): void {
  app.post('/events', (res, req) => {
    const ex = new Exchange(res, 'events', 'POST', ctx, req);
    const authorization = req.getHeader('authorization');
    const client = guards.limit ? guards.clientOf(res, req) : '';
    // A caller without the key is refused before megabytes of body are read and parsed (and the connection
    // closed, as for a 413: the unread body must not be taken for the next request).
    const denied = guards.authorize('write', authorization);
    if (denied) return ex.fail(denied, true);
    readBody(res, req, ex, maxBodyBytes, (body) => {
      let parsed: ReturnType<typeof parseEventsBody>;
      try {
        parsed = parseEventsBody(body);
      } catch (err) {
        return ex.fail(err);
      }
      // No request deadline: a 503 must mean nothing was written. The statement is bounded by the server-side
      // statement_timeout (rolled back when it fires), the invalidations by their own timeouts.
      admit(ex, guards, 'write', authorization, client, () => {
        events.record(parsed).then(
          (result) => ex.send(201, JSON.stringify(result)),
          (err: unknown) => ex.fail(err),
        );
      });
    });
  });
}
