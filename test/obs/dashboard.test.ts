/**
 * The provisioned Grafana files agree with each other and with what the service exports: one datasource
 * uid everywhere, the provider reads the folder compose mounts, and every required view has a panel.
 * (That every queried metric exists in a real scrape is test/e2e/metrics.test.ts.)
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, allPanels, dashboardExpressions, loadDashboard, metricNames } from '../support/prometheus.js';

const dashboard = loadDashboard();
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

describe('metric names from PromQL', () => {
  it.each([
    ['sum by (route) (rate(http_requests_total{status=~"5.."}[$__rate_interval]))', ['http_requests_total']],
    [
      'histogram_quantile(0.99, sum by (le, route) (rate(http_request_duration_seconds_bucket{route="batch"}[5m])))',
      ['http_request_duration_seconds_bucket'],
    ],
    [
      'sum by (result) (rate(model_calls_total{result!="success"}[1m])) / ignoring(result) group_left sum(rate(model_calls_total[1m]))',
      ['model_calls_total'],
    ],
    ['sum(scoring_pool_tasks_in_flight) / sum(scoring_pool_capacity) offset 5m', ['scoring_pool_tasks_in_flight', 'scoring_pool_capacity']],
    ['count(model_breaker_state == 2) or vector(0)', ['model_breaker_state']],
    ['sum(rate(x_total[1m])) by (job) > bool 0.5 unless on(job) y', ['x_total', 'y']],
  ])('%s', (expr, names) => {
    expect(metricNames(expr).sort()).toEqual([...names].sort());
  });
});

describe('grafana/dashboards/recommendation-service.json', () => {
  const panels = allPanels(dashboard).filter((p) => p.type !== 'row');
  const exprs = dashboardExpressions(dashboard);
  const queried = new Set(exprs.flatMap((e) => metricNames(e.expr)));

  it('has a stable uid, unique panel ids and panels inside the 24-column grid', () => {
    expect(dashboard.uid).toBe('recommendation-service');
    const ids = allPanels(dashboard).map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of allPanels(dashboard)) {
      expect(p.gridPos!.x + p.gridPos!.w, p.title).toBeLessThanOrEqual(24);
    }
  });

  it('queries only the provisioned Prometheus datasource, and every panel has a query', () => {
    const uid = /^\s*uid:\s*(\S+)\s*$/m.exec(read('grafana/provisioning/datasources/prometheus.yml'))?.[1];
    expect(uid).toBe('prometheus');
    for (const p of panels) {
      expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid });
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets!) expect(t.datasource?.uid, p.title).toBe(uid);
    }
  });

  it('covers RED, cache, breaker, model, scoring pool, PostgreSQL, batch, batch jobs and the Node.js runtime', () => {
    for (const name of [
      'http_requests_total',
      'http_request_duration_seconds_bucket',
      'cache_lookups_total',
      'cache_invalidations_total',
      'singleflight_coalesced_total',
      'model_breaker_state',
      'recommendation_fallbacks_total',
      'model_calls_total',
      'model_call_duration_seconds_bucket',
      'scoring_pool_queue_size',
      'scoring_pool_utilization_ratio',
      'scoring_pool_tasks_in_flight',
      'scoring_task_wait_seconds_bucket',
      'scoring_task_run_seconds_bucket',
      'db_query_duration_seconds_bucket',
      'db_queries_in_flight',
      'redis_command_errors_total',
      'redis_connected',
      'batch_users_total',
      'batch_duration_seconds_bucket',
      'batch_jobs',
      'batch_job_users_total',
      'batch_job_chunks_total',
      'nodejs_eventloop_lag_p99_seconds',
      'nodejs_heap_size_used_bytes',
      'process_cpu_seconds_total',
    ]) {
      expect(queried.has(name), name).toBe(true);
    }
    const quantiles = exprs.filter((e) => e.expr.includes('http_request_duration_seconds_bucket')).map((e) => e.expr);
    for (const q of ['0.5', '0.95', '0.99']) {
      expect(quantiles.some((e) => e.startsWith(`histogram_quantile(${q}, sum by (le, route)`)), `p${q} per route`).toBe(true);
    }
  });
});

describe('provisioning and scrape config', () => {
  it('points Grafana at prometheus:9090 and at the dashboards folder docker-compose mounts', () => {
    expect(read('grafana/provisioning/datasources/prometheus.yml')).toMatch(/^\s*url:\s*http:\/\/prometheus:9090\s*$/m);
    const provider = read('grafana/provisioning/dashboards/dashboards.yml');
    expect(provider).toMatch(/^\s*type:\s*file\s*$/m);
    expect(provider).toMatch(/^\s*path:\s*\/var\/lib\/grafana\/dashboards\s*$/m);
  });

  it('scrapes app:8080/metrics every 5s', () => {
    const config = read('grafana/prometheus.yml');
    expect(config).toMatch(/^\s*scrape_interval:\s*5s\s*$/m);
    expect(config).toMatch(/^\s*metrics_path:\s*\/metrics\s*$/m);
    expect(config).toMatch(/targets:\s*\['app:8080'\]/);
  });
});
