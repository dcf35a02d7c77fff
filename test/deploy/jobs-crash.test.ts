/**
 * A batch job survives a crashed instance. Instance A starts the job alone; while chunks are in progress
 * on it, A (its primary and every worker at once) is SIGKILLed: nothing runs its shutdown, so the chunks it
 * held stay "active" in the engine. Instance B, on the same PostgreSQL, takes them over once they expire
 * (JOB_CHUNK_TIMEOUT_S), and the job completes with every user exactly once.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { seed } from '../../src/data/seed.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { isAlive, startServer, type RunningServer } from '../support/server.js';

const USERS = 1200;

let db: TestDatabase;
let a: RunningServer | undefined;
let b: RunningServer | undefined;

/** Each chunk (30 users, one ranked at a time, 20 ms model latency) takes about a second: A dies inside some. */
const env = (url: string) => ({
  DATABASE_URL: url,
  // The engine is the subject: no model training competing for the two cores while chunks must be in flight.
  MODEL: 'heuristic',
  SEED_ON_START: 'false',
  MODEL_LATENCY_MS: '20',
  JOB_CHUNK_USERS: '30',
  JOB_CONCURRENCY: '1',
  JOB_WORKER_CHUNKS: '2',
  JOB_CHUNK_TIMEOUT_S: '4',
  SIMILAR_REFRESH_S: '0',
});

beforeAll(async () => {
  db = await createTestDatabase();
  await seed(db.sql, { users: USERS, content: 100, events: 12_000, reset: true });
}, 120_000);

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await db?.drop();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function progress(server: RunningServer, id: string): Promise<{ status: string; processed_users: number }> {
  const r = await server.get(`/recommendations/jobs/${id}`);
  expect(r.status).toBe(200);
  return r.json;
}

it('completes with every user exactly once after the instance holding its chunks is SIGKILLed', async () => {
  a = await startServer(env(db.url));
  const submitted = await a.post('/recommendations/jobs', { users: 'all', limit: 3 });
  expect(submitted.json).toMatchObject({ status: 'queued', total_users: USERS });
  const id: string = submitted.json.job_id;

  // Mid-job: some chunks committed, most not, and one in progress right now (between two polls a worker
  // may hold none: a kill there would orphan nothing and test nothing).
  const activeChunks = async () =>
    Number((await db.sql<{ n: string }[]>`SELECT count(*)::text AS n FROM pgboss.job WHERE name = 'batch-job-chunk' AND state = 'active'`)[0]!.n);
  const workers = execFileSync('ps', ['-o', 'pid=', '--ppid', String(a.child.pid)], { encoding: 'utf8' })
    .split('\n').map((l) => Number(l.trim())).filter((pid) => pid > 0);
  expect(workers.length).toBe(2);
  // Several chunks in progress, and the kill right after seeing them (a chunk may commit meanwhile).
  while ((await progress(a, id)).processed_users < 90 || (await activeChunks()) < 2) await sleep(20);
  for (const pid of [a.child.pid!, ...workers]) process.kill(pid, 'SIGKILL');
  while ([a.child.pid!, ...workers].some(isAlive)) await sleep(20);
  a = undefined;

  // What the dead instance held: engine jobs still active, that no process will finish.
  const orphaned = await db.sql<{ id: string }[]>`SELECT id FROM pgboss.job WHERE name = 'batch-job-chunk' AND state = 'active'`;
  expect(orphaned.length).toBeGreaterThan(0);
  const before = await progress(await (b = await startServer(env(db.url))), id);
  expect(before.status).toBe('running');
  expect(before.processed_users).toBeLessThan(USERS);

  let job = before;
  while (job.status === 'running') {
    await sleep(200);
    job = await progress(b, id);
  }
  expect(job).toMatchObject({ status: 'completed', total_users: USERS, processed_users: USERS, failed_users: 0 });

  // Every user exactly once: the result rows, and what the API pages through.
  const [rows] = await db.sql<{ n: number; distinct: number; users: number }[]>`
    SELECT count(*)::int AS n, count(DISTINCT user_id)::int AS distinct, (SELECT count(*)::int FROM users) AS users
    FROM batch_job_results WHERE job_id = ${id}::uuid`;
  expect(rows).toEqual({ n: USERS, distinct: USERS, users: USERS });
  const seen: number[] = [];
  for (let cursor = ''; ; ) {
    const page = await b.get(`/recommendations/jobs/${id}/results?limit=1000&cursor=${cursor}`);
    seen.push(...page.json.results.map((r: { user_id: number }) => r.user_id));
    if (page.json.next_cursor === null) break;
    cursor = page.json.next_cursor;
  }
  expect(seen).toEqual([...seen].sort((x, y) => x - y));
  expect(new Set(seen).size).toBe(USERS);
  expect(seen.length).toBe(USERS);

  // The orphaned chunks were expired by the engine and retried (on B), then completed.
  const retried = await db.sql<{ state: string; retry_count: number }[]>`
    SELECT state::text, retry_count FROM pgboss.job WHERE id IN ${db.sql(orphaned.map((o) => o.id))}`;
  expect(retried.every((r) => r.state === 'completed' && r.retry_count >= 1)).toBe(true);
}, 240_000);
