/** Builds the uWS app: every route group, 405 for a known path with another method, 404 JSON otherwise. */
import { Errors } from '../domain/errors.js';
import type { BatchService } from '../service/batch.js';
import type { BatchJobs } from '../service/batch-jobs.js';
import type { CatalogService } from '../service/catalog-service.js';
import type { RecommendationService } from '../service/recommendation-service.js';
import type { UserWrites } from '../service/user-writes.js';
import type { WatchEvents } from '../service/watch-events.js';
import { contentRoutes } from './content-routes.js';
import { contentWriteRoutes } from './content-write-routes.js';
import { DOCS_PATHS, docsRoutes } from './docs-routes.js';
import { eventsRoutes } from './events-routes.js';
import { jobRoutes } from './job-routes.js';
import { Exchange, type WireContext } from './exchange.js';
import type { Guards } from './guards.js';
import { opsRoutes, type OpsDeps } from './ops-routes.js';
import { recommendationRoutes } from './recommendation-routes.js';
import { App, closeListenSocket, type HttpRequest, type HttpResponse, type ListenSocket, type TemplatedApp } from './uws.js';
import { userRoutes } from './user-routes.js';
import { watchHistoryRoutes } from './watch-history-routes.js';

export interface HttpDeps extends OpsDeps {
  recommendations: RecommendationService;
  batch: BatchService;
  jobs: BatchJobs;
  catalog: CatalogService;
  users: UserWrites;
  events: WatchEvents;
  guards: Guards;
  maxBodyBytes: number;
  /** POST /events' own body limit (EVENTS_MAX_BODY_BYTES). */
  eventsMaxBodyBytes: number;
  /** The OpenAPI document, serialized once at start-up. */
  openApi: string;
}

/** Each known path and the methods it answers: anything else on it is 405 with `Allow`. */
const KNOWN_PATHS: Record<string, string> = {
  '/users/:id/recommendations': 'GET',
  '/users/:id/watch-history': 'POST',
  '/events': 'POST',
  '/users/:id': 'PUT',
  '/users/:id/dismissals': 'POST',
  '/users/:id/dismissals/:content_id': 'DELETE',
  '/content/popular': 'GET',
  '/content/latest': 'GET',
  '/content/bulk': 'POST',
  '/content/:id': 'GET, PUT, DELETE',
  '/content/:id/similar': 'GET',
  '/recommendations/batch': 'GET',
  '/recommendations/jobs': 'POST',
  '/recommendations/jobs/:job_id': 'GET, DELETE',
  '/recommendations/jobs/:job_id/results': 'GET',
  '/health': 'GET',
  '/ready': 'GET',
  '/metrics': 'GET',
  '/openapi.json': 'GET',
  ...Object.fromEntries(DOCS_PATHS.map((p) => [p, 'GET'])),
};

export function createHttpApp(ctx: WireContext, deps: HttpDeps): TemplatedApp {
  const app = App();
  recommendationRoutes(app, ctx, deps.guards, deps.recommendations, deps.batch);
  watchHistoryRoutes(app, ctx, deps.guards, deps.recommendations, deps.maxBodyBytes);
  eventsRoutes(app, ctx, deps.guards, deps.events, deps.eventsMaxBodyBytes);
  contentRoutes(app, ctx, deps.guards, deps.catalog);
  contentWriteRoutes(app, ctx, deps.guards, deps.catalog, deps.maxBodyBytes);
  userRoutes(app, ctx, deps.guards, deps.users, deps.maxBodyBytes);
  jobRoutes(app, ctx, deps.guards, deps.jobs);
  opsRoutes(app, ctx, deps);
  app.get('/openapi.json', (res, req) => new Exchange(res, 'unknown', 'GET', ctx, req).send(200, deps.openApi));
  docsRoutes(app, ctx);
  for (const [path, allow] of Object.entries(KNOWN_PATHS)) {
    const refuse = (res: HttpResponse, req: HttpRequest): void => {
      const method = req.getMethod().toUpperCase();
      new Exchange(res, 'unknown', method, ctx, req).fail(Errors.methodNotAllowed(method, allow));
    };
    // Per method too: uWS prefers a route of the request's method, even with a parameter, over `any` on a
    // static path, so PUT /content/bulk would otherwise reach PUT /content/:id (a 400 instead of the 405).
    for (const method of ['get', 'post', 'put', 'del', 'patch'] as const) {
      if (!allow.split(', ').includes(method === 'del' ? 'DELETE' : method.toUpperCase())) app[method](path, refuse);
    }
    app.any(path, refuse);
  }
  app.any('/*', (res, req) => {
    new Exchange(res, 'unknown', req.getMethod().toUpperCase(), ctx, req).fail(Errors.notFound());
  });
  return app;
}

export function listen(app: TemplatedApp, host: string, port: number): Promise<ListenSocket> {
  return new Promise((resolve, reject) => {
    app.listen(host, port, (socket) => (socket ? resolve(socket) : reject(new Error(`cannot listen on ${host}:${port}`))));
  });
}

export { closeListenSocket };
