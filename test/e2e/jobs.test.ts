/**
 * Asynchronous batch jobs through the real clustered server: submit, follow, fetch, cancel, expire.
 *
 * `api` computes no chunk (JOB_WORKER_CHUNKS=0), so a job it accepts stays queued until `workers` (a second
 * instance on the same database) starts: the queued state and the cancellation are seen without a race,
 * and a job submitted to one instance is computed and answered by another.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { startServer, type Reply, type RunningServer } from '../support/server.js';

let db: TestDatabase;
let api: RunningServer;
let workers: RunningServer | undefined;

beforeAll(async () => {
  db = await createTestDatabase();
  // The engine is the subject: the seed's formula, so no trained model swaps lists between a job and a read.
  api = await startServer({ MODEL: 'heuristic', DATABASE_URL: db.url, JOB_WORKER_CHUNKS: '0', JOB_CHUNK_USERS: '3' });
});

afterAll(async () => {
  await Promise.all([api?.stop(), workers?.stop()]);
  await db?.drop();
});

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const submit = (server: RunningServer, body: unknown): Promise<Reply> => server.post('/recommendations/jobs', body);
const jobCount = async () => (await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM batch_jobs`)[0]!.n;

/** Polls the job until it is finished (the server says when; no timing is asserted). */
async function finished(server: RunningServer, id: string): Promise<Reply> {
  for (let i = 0; i < 600; i++) {
    const r = await server.get(`/recommendations/jobs/${id}`);
    if (r.status !== 200 || !['queued', 'running'].includes(r.json.status)) return r;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`job ${id} did not finish`);
}

/** Every result, page by page through next_cursor. */
async function allResults(server: RunningServer, id: string, limit: number): Promise<{ pages: number; results: any[] }> {
  const results: any[] = [];
  let cursor = '';
  for (let pages = 1; ; pages++) {
    const r = await server.get(`/recommendations/jobs/${id}/results?cursor=${cursor}&limit=${limit}`);
    expect(r.status).toBe(200);
    results.push(...r.json.results);
    if (r.json.next_cursor === null) return { pages, results };
    cursor = r.json.next_cursor;
  }
}

describe('while no instance computes chunks', () => {
  let listed: string;
  let all: string;
  let cancelled: string;

  it('accepts a job with 202, its id, "queued" and its distinct users', async () => {
    const r = await submit(api, { users: [5, 3, 999_999, 3, 1, 2, 4, 6, 7], limit: 5 });
    expect(r.status).toBe(202);
    expect(r.json).toEqual({ job_id: expect.stringMatching(UUID), status: 'queued', total_users: 8 });
    listed = r.json.job_id;

    const everyone = await submit(api, { users: 'all', warm: false });
    expect(everyone.status).toBe(202);
    const [{ n }] = await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM users`;
    expect(everyone.json).toMatchObject({ status: 'queued', total_users: n });
    all = everyone.json.job_id;
  });

  it('reports a queued job with nulls where nothing happened yet, and no results yet', async () => {
    const r = await api.get(`/recommendations/jobs/${listed}`);
    expect(r.status).toBe(200);
    expect(r.json).toEqual({
      job_id: listed,
      status: 'queued',
      total_users: 8,
      processed_users: 0,
      failed_users: 0,
      created_at: expect.any(String),
      started_at: null,
      finished_at: null,
    });
    const results = await api.get(`/recommendations/jobs/${listed}/results`);
    expect(results.status).toBe(200);
    // Not finished: a cursor to come back with.
    expect(results.json).toEqual({ results: [], next_cursor: '0' });
  });

  it('cancels a job with 202: it is never computed; cancelling again changes nothing', async () => {
    cancelled = (await submit(api, { users: [1, 2, 3, 4] })).json.job_id;
    const r = await api.request('DELETE', `/recommendations/jobs/${cancelled}`);
    expect(r.status).toBe(202);
    expect(r.json).toMatchObject({ job_id: cancelled, status: 'cancelled', processed_users: 0, finished_at: expect.any(String) });
    const again = await api.request('DELETE', `/recommendations/jobs/${cancelled}`);
    expect(again.status).toBe(202);
    expect(again.json).toEqual(r.json);
    // Its chunks are cancelled in the engine too: no instance will fetch them.
    const states = await db.sql<{ state: string }[]>`
      SELECT j.state FROM pgboss.job j JOIN batch_job_chunks c ON c.engine_id = j.id WHERE c.job_id = ${cancelled}::uuid`;
    expect(states.map((s) => s.state)).toEqual(['cancelled', 'cancelled']);
  });

  it('answers bad bodies with 400 invalid_body and creates nothing', async () => {
    const before = await jobCount();
    const bodies: unknown[] = [
      {},
      { users: [] },
      { users: 'some' },
      { users: [0] },
      { users: [1.5] },
      { users: ['1'] },
      { users: [1], limit: 0 },
      { users: [1], limit: 51 },
      { users: [1], warm: 'yes' },
      { users: [1], extra: true },
      { users: Array.from({ length: 100_001 }, (_, i) => i + 1) },
      [1, 2],
    ];
    for (const body of bodies) {
      const r = await submit(api, body);
      expect([r.status, r.json?.error], JSON.stringify(body).slice(0, 80)).toEqual([400, 'invalid_body']);
      expect(r.json.message).toEqual(expect.any(String));
    }
    const notJson = await api.request('POST', '/recommendations/jobs', { body: '{"users":' });
    expect([notJson.status, notJson.json.error]).toEqual([400, 'invalid_body']);
    expect(await jobCount()).toBe(before);
  });

  it('answers unknown jobs with 404 job_not_found and malformed parameters with 400', async () => {
    const unknown = '00000000-0000-4000-8000-000000000000';
    for (const [method, path] of [
      ['GET', `/recommendations/jobs/${unknown}`],
      ['GET', `/recommendations/jobs/${unknown}/results`],
      ['DELETE', `/recommendations/jobs/${unknown}`],
    ] as const) {
      const r = await api.request(method, path);
      expect([r.status, r.json.error], path).toEqual([404, 'job_not_found']);
    }
    for (const path of [
      '/recommendations/jobs/not-a-uuid',
      `/recommendations/jobs/${listed}/results?limit=0`,
      `/recommendations/jobs/${listed}/results?limit=1001`,
      `/recommendations/jobs/${listed}/results?cursor=abc`,
      `/recommendations/jobs/${listed}/results?cursor=99999999999999999`,
    ]) {
      const r = await api.get(path);
      expect([r.status, r.json.error], path).toEqual([400, 'invalid_parameter']);
    }
    const method = await api.request('PUT', `/recommendations/jobs/${listed}`);
    expect([method.status, method.headers.allow]).toEqual([405, 'GET, DELETE']);
  });

  describe('once another instance computes chunks', () => {
    beforeAll(async () => {
      workers = await startServer({ MODEL: 'heuristic', DATABASE_URL: db.url });
    }, 120_000);

    it('completes the job submitted elsewhere: each listed user once, in id order, the unknown one failed', async () => {
      const done = await finished(api, listed);
      expect(done.json).toMatchObject({ status: 'completed', total_users: 8, processed_users: 8, failed_users: 1 });
      expect(Date.parse(done.json.finished_at)).toBeGreaterThanOrEqual(Date.parse(done.json.started_at));

      const { pages, results } = await allResults(api, listed, 3);
      expect(pages).toBe(3);
      expect(results.map((r) => r.user_id)).toEqual([1, 2, 3, 4, 5, 6, 7, 999_999]);
      expect(results.at(-1)).toEqual({
        user_id: 999_999,
        status: 'failed',
        recommendations: [],
        error: 'user_not_found',
        message: 'User with ID 999999 does not exist',
      });
      // The request path's pipeline and list: the same titles the user's own request gets (noise is off).
      for (const result of results.slice(0, -1)) {
        expect(result.status).toBe('success');
        const own = await workers!.get(`/users/${result.user_id}/recommendations?limit=5`);
        expect(result.recommendations).toEqual(own.json.recommendations);
      }
    });

    it('completes an "all" job: every user once', async () => {
      const done = await finished(workers!, all);
      expect(done.json.status).toBe('completed');
      const { results } = await allResults(workers!, all, 1000);
      const ids = (await db.sql<{ id: number }[]>`SELECT id::int FROM users ORDER BY id`).map((u) => u.id);
      expect(results.map((r) => r.user_id)).toEqual(ids);
      expect(results.every((r) => r.status === 'success' && r.recommendations.length === 10)).toBe(true);
    });

    it('never computes the cancelled job', async () => {
      await finished(workers!, all); // the others are done: the cancelled one had every chance
      const r = await workers!.get(`/recommendations/jobs/${cancelled}`);
      expect(r.json).toMatchObject({ status: 'cancelled', processed_users: 0 });
      expect((await workers!.get(`/recommendations/jobs/${cancelled}/results`)).json).toEqual({ results: [], next_cursor: null });
    });

    it('counts jobs by status and users processed in /metrics', async () => {
      const text = (await workers!.get('/metrics')).text;
      expect(text).toMatch(/^batch_jobs\{status="completed"\} [1-9]/m);
      expect(text).toMatch(/^batch_jobs\{status="cancelled"\} 1$/m);
      expect(text).toMatch(/^batch_job_users_total\{status="success"\} [1-9]/m);
    });
  });
});

it('forgets a finished job and its results JOB_RETENTION_S after it finished', async () => {
  const scratch = await createTestDatabase();
  const server = await startServer({ MODEL: 'heuristic', DATABASE_URL: scratch.url, JOB_RETENTION_S: '2' });
  try {
    const id = (await submit(server, { users: [1, 2] })).json.job_id;
    expect((await finished(server, id)).json.status).toBe('completed');
    expect((await server.get(`/recommendations/jobs/${id}/results`)).json.results).toHaveLength(2);
    let r: Reply;
    do {
      await new Promise((resolve) => setTimeout(resolve, 200));
      r = await server.get(`/recommendations/jobs/${id}`);
    } while (r.status === 200);
    expect([r.status, r.json.error]).toEqual([404, 'job_not_found']);
    expect((await server.get(`/recommendations/jobs/${id}/results`)).status).toBe(404);
    // The sweep (a scheduled job) deletes the rows too.
    for (let i = 0; i < 100; i++) {
      const [{ n }] = await scratch.sql<{ n: number }[]>`SELECT (SELECT count(*) FROM batch_jobs) + (SELECT count(*) FROM batch_job_results) AS n`;
      if (Number(n) === 0) return;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error('the expired job was never deleted');
  } finally {
    await server.stop();
    await scratch.drop();
  }
}, 120_000);

it('follows the API_KEY rules: submitting and cancelling need the key, reading does not', async () => {
  const key = 'job-test-key-0123456789';
  const server = await startServer({ MODEL: 'heuristic', DATABASE_URL: db.url, API_KEY: key, JOB_WORKER_CHUNKS: '0' });
  try {
    const before = await jobCount();
    const denied = await submit(server, { users: [1] });
    expect([denied.status, denied.json.error]).toEqual([401, 'unauthorized']);
    expect(await jobCount()).toBe(before);
    const auth = { authorization: `Bearer ${key}` };
    const accepted = await server.request('POST', '/recommendations/jobs', { body: JSON.stringify({ users: [1] }), headers: auth });
    expect(accepted.status).toBe(202);
    const id = accepted.json.job_id;
    expect((await server.get(`/recommendations/jobs/${id}`)).status).toBe(200);
    expect((await server.request('DELETE', `/recommendations/jobs/${id}`)).status).toBe(401);
    expect((await server.request('DELETE', `/recommendations/jobs/${id}`, { headers: auth })).status).toBe(202);
  } finally {
    await server.stop();
  }
}, 120_000);

it('warms the caches with what it computed unless the job says "warm": false', async () => {
  const scratch = await createTestDatabase();
  // One worker: the one that computes the job is the one that answers the request.
  const server = await startServer({ MODEL: 'heuristic', DATABASE_URL: scratch.url, WORKERS: '1' });
  try {
    const cold = (await submit(server, { users: [1], warm: false })).json.job_id;
    const warm = (await submit(server, { users: [2] })).json.job_id;
    expect((await finished(server, cold)).json.status).toBe('completed');
    expect((await finished(server, warm)).json.status).toBe('completed');
    expect((await server.get('/users/1/recommendations')).json.metadata.cache_hit).toBe(false);
    expect((await server.get('/users/2/recommendations')).json.metadata.cache_hit).toBe(true);
  } finally {
    await server.stop();
    await scratch.drop();
  }
}, 120_000);
