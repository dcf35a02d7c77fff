/** Builds the uWS app: every route group, 405 for a known path with another method, 404 JSON otherwise. */
import { Errors, ServiceError } from '../domain/errors.js';
import type { BatchService } from '../service/batch.js';
import type { RecommendationService } from '../service/recommendation-service.js';
import { Exchange, type WireContext } from './exchange.js';
import { opsRoutes, type OpsDeps } from './ops-routes.js';
import { recommendationRoutes } from './recommendation-routes.js';
import { App, closeListenSocket, type ListenSocket, type TemplatedApp } from './uws.js';
import { watchHistoryRoutes } from './watch-history-routes.js';

export interface HttpDeps extends OpsDeps {
  recommendations: RecommendationService;
  batch: BatchService;
  maxBodyBytes: number;
}

const KNOWN_PATHS = ['/users/:id/recommendations', '/users/:id/watch-history', '/recommendations/batch', '/health', '/ready', '/metrics'];

export function createHttpApp(ctx: WireContext, deps: HttpDeps): TemplatedApp {
  const app = App();
  recommendationRoutes(app, ctx, deps.recommendations, deps.batch);
  watchHistoryRoutes(app, ctx, deps.recommendations, deps.maxBodyBytes);
  opsRoutes(app, ctx, deps);
  for (const path of KNOWN_PATHS) {
    app.any(path, (res, req) => {
      const method = req.getMethod().toUpperCase();
      new Exchange(res, 'unknown', method, ctx).fail(
        new ServiceError('method_not_allowed', `Method ${method} is not allowed on this route`),
      );
    });
  }
  app.any('/*', (res, req) => {
    new Exchange(res, 'unknown', req.getMethod().toUpperCase(), ctx).fail(Errors.notFound());
  });
  return app;
}

export function listen(app: TemplatedApp, host: string, port: number): Promise<ListenSocket> {
  return new Promise((resolve, reject) => {
    app.listen(host, port, (socket) => (socket ? resolve(socket) : reject(new Error(`cannot listen on ${host}:${port}`))));
  });
}

export { closeListenSocket };
