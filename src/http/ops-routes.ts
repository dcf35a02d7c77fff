/** GET /health, /ready, /metrics. */
import type { Readiness } from '../service/readiness.js';
import { Exchange, type WireContext } from './exchange.js';
import type { TemplatedApp } from './uws.js';

const HEALTHY = JSON.stringify({ status: 'ok' });

/** Paths that orchestrators and scrapers use (deploy/kubernetes, deploy/haproxy.cfg, the Dockerfile). */
export const OPS_ROUTES = { health: '/health', ready: '/ready', metrics: '/metrics' } as const;

export interface OpsDeps {
  readiness: () => Promise<Readiness>;
  /** Prometheus text for the whole instance (the primary aggregates every worker). */
  metricsText: () => Promise<{ contentType: string; body: string }>;
}

export function opsRoutes(app: TemplatedApp, ctx: WireContext, deps: OpsDeps): void {
  app.get(OPS_ROUTES.health, (res, req) => {
    new Exchange(res, 'health', 'GET', ctx, req).send(200, HEALTHY);
  });

  app.get(OPS_ROUTES.ready, (res, req) => {
    const ex = new Exchange(res, 'ready', 'GET', ctx, req);
    ex.deadline();
    deps.readiness().then(
      (r) => {
        const replicas = r.replicas ? { replicas: r.replicas } : {};
        if (r.ready) ex.send(200, JSON.stringify({ status: 'ready', checks: r.checks, ...replicas }));
        else {
          ex.send(
            503,
            JSON.stringify({ error: 'service_unavailable', message: 'A dependency is unavailable', checks: r.checks, ...replicas }),
          );
        }
      },
      (err: unknown) => ex.fail(err),
    );
  });

  app.get(OPS_ROUTES.metrics, (res, req) => {
    const ex = new Exchange(res, 'metrics', 'GET', ctx, req);
    ex.deadline();
    deps.metricsText().then(
      ({ contentType, body }) => ex.send(200, body, contentType),
      (err: unknown) => ex.fail(err),
    );
  });
}
