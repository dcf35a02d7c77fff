// The seed's cache effectiveness test: 5 users, up to 20 VUs, 50 ms think time; counts cache hits and
// misses from metadata.cache_hit. After the first request per user (per worker without Redis) every
// answer should be a hit.
//   k6 run k6/cache_effectiveness.js         (BASE_URL, SCALE, VUS: see lib.js)
import http from 'k6/http';
import { check, sleep } from 'k6';
import { Counter, Rate } from 'k6/metrics';
import { BASE_URL, json, stages, vus } from './lib.js';

const cacheHits = new Counter('cache_hits');
const cacheMisses = new Counter('cache_misses');
const hitRate = new Rate('cache_hit_rate');

export const options = {
  stages: stages(10, 30, 10, vus(20)),
  thresholds: {
    http_req_duration: ['p(95)<500', 'p(99)<1000'],
    http_req_failed: ['rate<0.05'],
    cache_hit_rate: ['rate>0.95'],
  },
};

export default function () {
  const user = 1 + Math.floor(Math.random() * 5);
  const res = http.get(`${BASE_URL}/users/${user}/recommendations?limit=10`, { tags: { name: 'GET /users/{id}/recommendations' } });
  const body = json(res);
  check(res, { 'status is 200 or 503': (r) => r.status === 200 || r.status === 503 });
  if (res.status === 200 && body && body.metadata) {
    const hit = body.metadata.cache_hit === true;
    (hit ? cacheHits : cacheMisses).add(1);
    hitRate.add(hit);
  }
  sleep(0.05);
}
