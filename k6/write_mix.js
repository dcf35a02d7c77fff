// 95 % reads / 5 % watch-history writes. Each write is a title the user was just recommended; a read
// that starts after that write was acknowledged must not contain it (the service's read-your-write
// guarantee across workers and cache tiers). k6 VUs share no memory, so each VU checks its own writes.
//   k6 run k6/write_mix.js                   (BASE_URL, SCALE, VUS: see lib.js)
//   USER_BASE (default 1) and USERS (default 20): the users written to (use users no other load reads)
import http from 'k6/http';
import { check, sleep } from 'k6';
import { Counter } from 'k6/metrics';
import { BASE_URL, json, stages, vus } from './lib.js';

const staleReads = new Counter('stale_reads');
const writesAcked = new Counter('writes_acknowledged');
const USER_BASE = Number(__ENV.USER_BASE || 1);
const USERS = Number(__ENV.USERS || 20);

export const options = {
  stages: stages(10, 40, 5, vus(20)),
  thresholds: {
    stale_reads: ['count<1'],
    http_req_failed: ['rate<0.01'],
    http_req_duration: ['p(99)<1000'],
    checks: ['rate>0.99'],
  },
};

const seen = {}; // user → content ids of its latest list (this VU's view)
const written = {}; // user → { content id: acknowledged at (ms) } (this VU's writes)

export default function () {
  const user = USER_BASE + ((__VU - 1 + Math.floor(Math.random() * 3)) % USERS);
  const ids = seen[user] || [];
  if (Math.random() < 0.05 && ids.length > 0) {
    const contentId = ids[Math.floor(Math.random() * ids.length)];
    const res = http.post(`${BASE_URL}/users/${user}/watch-history`, JSON.stringify({ content_id: contentId }), {
      headers: { 'content-type': 'application/json' },
      tags: { name: 'POST /users/{id}/watch-history' },
    });
    check(res, { 'write is 201': (r) => r.status === 201 });
    if (res.status === 201) {
      written[user] = written[user] || {};
      if (written[user][contentId] === undefined) written[user][contentId] = Date.now();
      writesAcked.add(1);
    }
  } else {
    const started = Date.now();
    const res = http.get(`${BASE_URL}/users/${user}/recommendations?limit=50`, { tags: { name: 'GET /users/{id}/recommendations' } });
    const body = json(res);
    check(res, { 'read is 200': (r) => r.status === 200 && body !== null });
    if (res.status === 200 && body) {
      const got = body.recommendations.map((r) => r.content_id);
      seen[user] = got;
      const mine = written[user] || {};
      staleReads.add(got.some((id) => mine[id] !== undefined && mine[id] < started) ? 1 : 0);
    }
  }
  sleep(0.01);
}
