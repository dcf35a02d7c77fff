/**
 * The metrics registry: what Prometheus reads (exact exposition lines) and what the primary's
 * AggregatorRegistry makes of two workers' registries (sums; per-worker gauges kept apart).
 */
import { AggregatorRegistry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/observability/metrics.js';

const lines = (text: string, name: string) => text.split('\n').filter((l) => l.startsWith(name));

describe('worker metrics', () => {
  it('exports precreated series at zero before any traffic', async () => {
    const text = await createMetrics('0').registry.metrics();
    expect(text).toContain('recommendation_fallbacks_total{reason="timeout"} 0');
    expect(text).toContain('cache_lookups_total{tier="redis",result="error"} 0');
    expect(text).toContain('http_requests_total{route="recommendations",method="GET",status="200"} 0');
    expect(text).toContain('db_query_errors_total{query="user_signals"} 0');
    expect(text).toContain('batch_users_total{status="failed"} 0');
    expect(text).toContain('model_breaker_state{worker="0"} 0');
    expect(text).toMatch(/^nodejs_gc_duration_seconds_count\{kind="minor",worker="0"\} \d+$/m);
    expect(text).toContain('# TYPE http_request_duration_seconds histogram');
  });

  it('counts requests by route, method and status; unknown methods as OTHER', async () => {
    const m = createMetrics('0');
    m.request('recommendations', 'GET', 200, 0.0007);
    m.request('recommendations', 'GET', 200, 0.003);
    m.request('unknown', 'PATCH', 405, 0.0001);
    m.request('batch', 'GET', 418, 0.2); // a status outside the precreated set still counts
    m.request('batch', 'GET', 418, 0.2);
    const text = await m.registry.metrics();
    expect(text).toContain('http_requests_total{route="recommendations",method="GET",status="200"} 2');
    expect(text).toContain('http_requests_total{route="unknown",method="OTHER",status="405"} 1');
    expect(text).toContain('http_requests_total{route="batch",method="GET",status="418"} 2');
    expect(lines(text, 'http_request_duration_seconds_bucket{route="recommendations",le="0.001"}')).toEqual([
      'http_request_duration_seconds_bucket{route="recommendations",le="0.001"} 1',
    ]);
    expect(text).toContain('http_request_duration_seconds_bucket{route="recommendations",le="0.005"} 2');
    expect(text).toContain('http_request_duration_seconds_bucket{route="recommendations",le="+Inf"} 2');
    expect(text).toContain('http_request_duration_seconds_sum{route="recommendations"} 0.0037');
    expect(text).toContain('http_request_duration_seconds_count{route="recommendations"} 2');
  });

  it('puts a value equal to a bound in that bucket (le is "less or equal")', async () => {
    const m = createMetrics('0');
    m.modelDuration.observe(0.05);
    m.modelDuration.observe(5); // above every bound: only +Inf
    const text = await m.registry.metrics();
    expect(text).toContain('model_call_duration_seconds_bucket{le="0.04"} 0');
    expect(text).toContain('model_call_duration_seconds_bucket{le="0.05"} 1');
    expect(text).toContain('model_call_duration_seconds_bucket{le="1"} 1');
    expect(text).toContain('model_call_duration_seconds_bucket{le="+Inf"} 2');
    expect(text).toContain('model_call_duration_seconds_count 2');
  });

  it('reads scrape-time gauges from their sources, and omits those never wired', async () => {
    const m = createMetrics('1');
    expect(await m.registry.metrics()).not.toMatch(/^scoring_pool_queue_size\{/m);
    m.sources.scoringPool = () => ({ queueSize: 3, utilization: 0.25, inFlight: 67, capacity: 64, nice: 10 });
    m.sources.dbInFlight = () => 4;
    m.sources.dbPoolSize = 20;
    m.sources.redisReady = () => false;
    const text = await m.registry.metrics();
    expect(text).toContain('scoring_pool_queue_size{worker="1"} 3');
    expect(text).toContain('scoring_pool_utilization_ratio{worker="1"} 0.25');
    expect(text).toContain('scoring_pool_tasks_in_flight{worker="1"} 67');
    expect(text).toContain('scoring_pool_capacity{worker="1"} 64');
    expect(text).toContain('scoring_thread_nice{worker="1"} 10');
    expect(text).toContain('db_queries_in_flight{worker="1"} 4');
    expect(text).toContain('db_pool_connections{worker="1"} 20');
    expect(text).toContain('redis_connected{worker="1"} 0');
  });

  it('goes back to zero on registry.resetMetrics(), keeping the children the code holds', async () => {
    const m = createMetrics('0');
    const hit = m.cache.l1.hit;
    hit.inc();
    m.modelDuration.observe(0.01);
    m.registry.resetMetrics();
    hit.inc();
    const text = await m.registry.metrics();
    expect(text).toContain('cache_lookups_total{tier="l1",result="hit"} 1');
    expect(text).toContain('model_call_duration_seconds_count 0');
  });

  it('sums two workers in the aggregator: counters and histogram buckets add, worker gauges stay apart', async () => {
    const a = createMetrics('0');
    const b = createMetrics('1');
    a.cache.l1.hit.inc();
    a.cache.l1.hit.inc();
    b.cache.l1.hit.inc();
    a.db.user_signals.duration.observe(0.002);
    b.db.user_signals.duration.observe(0.02);
    a.breakerState.set(2);
    const aggregated = AggregatorRegistry.aggregate([await a.registry.getMetricsAsJSON(), await b.registry.getMetricsAsJSON()]);
    const text = await aggregated.metrics();
    expect(text).toContain('cache_lookups_total{tier="l1",result="hit"} 3');
    expect(text).toContain('db_query_duration_seconds_bucket{query="user_signals",le="0.0025"} 1');
    expect(text).toContain('db_query_duration_seconds_bucket{query="user_signals",le="0.025"} 2');
    expect(text).toContain('db_query_duration_seconds_count{query="user_signals"} 2');
    expect(text).toContain('model_breaker_state{worker="0"} 2');
    expect(text).toContain('model_breaker_state{worker="1"} 0');
  });
});
