#!/usr/bin/env node
/**
 * Cost of the metric updates one cache-hit request makes (L1 hit counter, request counter, duration
 * histogram): prom-client's own label children, as src/observability/metrics.ts first used them, against
 * the plain-number children it uses now. Needs a build: npm run build && node scripts/bench-metrics.mjs
 */
import { createRequire } from 'node:module';
import { PerformanceObserver, performance } from 'node:perf_hooks';
const require = createRequire(import.meta.url);
const client = require('prom-client');
const { createMetrics } = await import('../dist/observability/metrics.js');

let gcs = 0;
new PerformanceObserver((l) => (gcs += l.getEntries().length)).observe({ entryTypes: ['gc'] });

// The previous metrics.ts hot path (prom-client children, key string per request).
function oldMetrics() {
  const registry = new client.Registry();
  const requests = new client.Counter({ name: 'http_requests_total', help: 'h', labelNames: ['route', 'method', 'status'], registers: [registry] });
  const duration = new client.Histogram({ name: 'http_request_duration_seconds', help: 'h', labelNames: ['route'], buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: [registry] });
  const cache = new client.Counter({ name: 'cache_lookups_total', help: 'h', labelNames: ['tier', 'result'], registers: [registry] });
  const rc = new Map([['recommendations GET 200', requests.labels('recommendations', 'GET', '200')]]);
  const dc = new Map([['recommendations', duration.labels('recommendations')]]);
  const hit = cache.labels('l1', 'hit');
  return {
    hit,
    request(route, method, status, s) {
      rc.get(`${route} ${method} ${status}`).inc();
      dc.get(route).observe(s);
    },
  };
}
const N = 3_000_000;
async function run(name, m) {
  for (let i = 0; i < 100_000; i++) { m.hit.inc(); m.request('recommendations', 'GET', 200, 0.0003); }
  await new Promise((r) => setTimeout(r, 50));
  gcs = 0;
  const t = performance.now();
  for (let i = 0; i < N; i++) {
    m.hit.inc();
    m.request('recommendations', 'GET', 200, 0.0003);
  }
  const ns = ((performance.now() - t) * 1e6) / N;
  await new Promise((r) => setTimeout(r, 50));
  console.log(`${name}: ${ns.toFixed(0)} ns per cache-hit request, ${gcs} GC events per ${N / 1e6}M requests`);
}
const fresh = createMetrics('0');
for (let round = 0; round < 2; round++) {
  await run('prom-client children', oldMetrics());
  await run('own children        ', { hit: fresh.cache.l1.hit, request: fresh.request });
}
