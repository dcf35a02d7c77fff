// The seed's batch stress: pages 1-3 × limits 5/10/20, up to 30 VUs, 500 ms think time.
//   k6 run k6/batch_stress.js                (BASE_URL, SCALE, VUS: see lib.js)
import http from 'k6/http';
import { check, sleep } from 'k6';
import { BASE_URL, json, pick, stages, vus } from './lib.js';

export const options = {
  stages: stages(10, 30, 10, vus(30)),
  thresholds: {
    http_req_duration: ['p(95)<5000', 'p(99)<10000'],
    http_req_failed: ['rate<0.05'],
    checks: ['rate>0.99'],
  },
};

export default function () {
  const page = pick([1, 2, 3]);
  const limit = pick([5, 10, 20]);
  const res = http.get(`${BASE_URL}/recommendations/batch?page=${page}&limit=${limit}`, { tags: { name: 'GET /recommendations/batch' } });
  const body = json(res);
  check(res, {
    'status is 200': (r) => r.status === 200,
    'has results array': () => body !== null && Array.isArray(body.results) && body.results.length <= limit,
    'has summary': () =>
      body !== null && body.summary && body.summary.success_count + body.summary.failed_count === body.results.length,
    'has pagination info': () => body !== null && body.page === page && body.limit === limit && Number.isInteger(body.total_users),
  });
  sleep(0.5);
}
