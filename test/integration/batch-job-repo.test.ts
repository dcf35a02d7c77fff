/**
 * The batch jobs' tables on real PostgreSQL: a chunk's results become visible once, with its job's
 * counters, however often the chunk is committed (a retry after a crash that followed the commit); a
 * cancelled job takes no more results; a running job shows only the results before its first unfinished
 * chunk, so paging never skips a user that a later chunk adds.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BatchJobRepo, type ChunkRef, type ResultRow } from '../../src/data/batch-job-repo.js';
import { connect, type Sql } from '../../src/data/db.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

let db: TestDatabase;
let sql: Sql;
let repo: BatchJobRepo;

beforeAll(async () => {
  db = await createTestDatabase();
  sql = connect(db.url, { max: 4 });
  await sql`INSERT INTO users (id) SELECT generate_series(1, 6)`;
  repo = new BatchJobRepo(sql, 3600);
});

afterAll(async () => {
  await sql?.end();
  await db?.drop();
});

const noEngine = async () => {};
const row = (userId: number): ResultRow => ({ user_id: userId, status: 'success', recommendations: '[]', error: null, message: null });

/** A job of users 1-6 in chunks of 2, and its chunks as the engine would hand them out. */
async function job(): Promise<{ id: string; chunks: ChunkRef[] }> {
  const id = randomUUID();
  let chunks: ChunkRef[] = [];
  await repo.create({ id, users: 'all', limit: 10, warm: true }, 2, async (_tx, queued) => void (chunks = queued.map((c) => c.ref)));
  return { id, chunks };
}

const resultCount = async (id: string) =>
  (await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM batch_job_results WHERE job_id = ${id}::uuid`)[0]!.n;

it('writes a chunk once however often it is committed, and completes the job with its last chunk', async () => {
  const { id, chunks } = await job();
  expect(chunks.map((c) => c.chunkNo)).toEqual([0, 1, 2]);
  let completions = 0;
  const complete = async () => void (completions += 1);
  expect(await repo.commitChunk(chunks[0]!, [row(1), row(2)], complete)).toBe(true);
  expect(await repo.commitChunk(chunks[0]!, [row(1), row(2)], complete)).toBe(false);
  expect(completions).toBe(2); // the engine's completion runs either way (a no-op for a finished job)
  expect(await resultCount(id)).toBe(2);
  expect(await repo.find(id)).toMatchObject({ status: 'running', processed_users: 2 });

  await repo.commitChunk(chunks[2]!, [row(5), row(6)], noEngine);
  expect(await repo.commitChunk(chunks[1]!, [row(3), row(4)], noEngine)).toBe(true);
  expect(await repo.find(id)).toMatchObject({ status: 'completed', processed_users: 6, finished_at: expect.any(Date) });
  expect(await resultCount(id)).toBe(6);
});

it('shows a running job only up to its first unfinished chunk', async () => {
  const { id, chunks } = await job();
  await repo.commitChunk(chunks[0]!, [row(1), row(2)], noEngine);
  await repo.commitChunk(chunks[2]!, [row(5), row(6)], noEngine);
  const page = await repo.results(id, 0, 100);
  expect(page!.rows.map((r) => r.user_id)).toEqual([1, 2]);
  await repo.commitChunk(chunks[1]!, [row(3), row(4)], noEngine);
  expect((await repo.results(id, 2, 100))!.rows.map((r) => r.user_id)).toEqual([3, 4, 5, 6]);
});

it('takes no results after a cancellation, and tells the engine which chunks to cancel', async () => {
  const { id, chunks } = await job();
  await repo.commitChunk(chunks[0]!, [row(1), row(2)], noEngine);
  let cancelled: string[] = [];
  const after = await repo.cancel(id, async (_tx, engineIds) => void (cancelled = engineIds));
  expect(after).toMatchObject({ status: 'cancelled', processed_users: 2 });
  expect(cancelled).toHaveLength(2);
  expect(await repo.commitChunk(chunks[1]!, [row(3), row(4)], noEngine)).toBe(false);
  expect(await resultCount(id)).toBe(2);
  expect(await repo.find(id)).toMatchObject({ status: 'cancelled', processed_users: 2 });
});
