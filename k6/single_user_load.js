// The seed's single-user load: users 1-20 × limits 5/10/15/20, up to 100 VUs, 100 ms think time.
//   k6 run k6/single_user_load.js            (BASE_URL, SCALE, VUS: see lib.js)
import http from 'k6/http';
import { check, sleep } from 'k6';
import { BASE_URL, json, pick, stages, vus } from './lib.js';

export const options = {
  stages: stages(20, 60, 10, vus(100)),
  thresholds: {
    http_req_duration: ['p(95)<500', 'p(99)<1000'],
    http_req_failed: ['rate<0.05'],
    checks: ['rate>0.99'],
  },
};

export default function () {
  const user = 1 + Math.floor(Math.random() * 20);
  const limit = pick([5, 10, 15, 20]);
  const res = http.get(`${BASE_URL}/users/${user}/recommendations?limit=${limit}`, { tags: { name: 'GET /users/{id}/recommendations' } });
  const body = json(res);
  check(res, {
    'status is 200 or 503': (r) => r.status === 200 || r.status === 503,
    'has valid JSON body': () => body !== null,
    'has recommendations on success': (r) =>
      r.status !== 200 || (Array.isArray(body.recommendations) && body.recommendations.length > 0 && body.recommendations.length <= limit),
    'has metadata': (r) => r.status !== 200 || (body.metadata && typeof body.metadata.cache_hit === 'boolean' && body.metadata.total_count === body.recommendations.length),
  });
  sleep(0.1);
}
