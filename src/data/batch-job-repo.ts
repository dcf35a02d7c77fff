/**
 * The batch jobs' tables (migration 0008): a job, its chunks of users, and one result row per user. The
 * job row is the lock every chunk commit and a cancellation take, so a chunk's results are either all
 * visible with the job's counters, or not at all — and never twice (the chunk's done_at, the results' key).
 */
import type { Sql } from './db.js';
import type { Tx } from './job-queue.js';
import { mapFailure } from './statements.js';

export type JobStatus = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';
export const ACTIVE: readonly JobStatus[] = ['queued', 'running'];
export const JOB_STATUSES: readonly JobStatus[] = ['queued', 'running', 'completed', 'failed', 'cancelled'];

export interface JobRow {
  id: string;
  status: JobStatus;
  total_users: number;
  processed_users: number;
  failed_users: number;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
}

/** A chunk as the engine hands it out: ours to look up (the engine job carries only these). */
export interface ChunkRef {
  jobId: string;
  chunkNo: number;
}

export interface ChunkWork {
  userIds: number[];
  limit: number;
  warm: boolean;
  /** Done already (a retry of a chunk whose results committed) or its job no longer active. */
  skip: boolean;
}

/** One user's outcome: `recommendations` is the JSON text of the items (success), else the error. */
export interface ResultRow {
  user_id: number;
  status: 'success' | 'failed';
  recommendations: string | null;
  error: string | null;
  message: string | null;
}

export interface ResultsPage {
  status: JobStatus;
  rows: ResultRow[];
  /** Whether rows past the page exist now (the page was cut at its limit). */
  more: boolean;
}

/** Chunk `no` of job `jobId` has this engine id: ordered like the chunks, so the engine hands them out in user order. */
const ENGINE_ID = `(left(replace($1::text, '-', ''), 16) || lpad(to_hex(chunk_no), 16, '0'))::uuid`;

/** Users sorted and numbered into chunks of $2, from `source` (a query of one `id` column). */
const chunksFrom = (source: string) => `
WITH ids AS (SELECT id, (row_number() OVER (ORDER BY id) - 1) / $2::int AS chunk_no FROM (${source}) s)
INSERT INTO batch_job_chunks (job_id, chunk_no, user_ids, first_user_id, engine_id)
SELECT $1::uuid, chunk_no, array_agg(id ORDER BY id), min(id), ${ENGINE_ID} FROM ids GROUP BY chunk_no
RETURNING chunk_no, engine_id, cardinality(user_ids) AS users`;
const ALL_USERS_CHUNKS = chunksFrom('SELECT id FROM users');
const LISTED_USERS_CHUNKS = chunksFrom('SELECT DISTINCT unnest($3::bigint[]) AS id');

/** Finished jobs older than the retention are gone for every read, before the sweep deletes them. */
const KEPT = `(finished_at IS NULL OR finished_at > now() - make_interval(secs => $2::int))`;

export class BatchJobRepo {
  constructor(
    private readonly sql: Sql,
    /** Seconds a finished job and its results are kept (JOB_RETENTION_S). */
    private readonly retentionS: number,
  ) {}

  /**
   * Creates the job and its chunks, and `enqueue`s the chunks' engine jobs in the same transaction: a job
   * is never visible without its work queued, nor work queued for a job that does not exist.
   */
  async create(
    job: { id: string; users: 'all' | readonly number[]; limit: number; warm: boolean },
    chunkSize: number,
    enqueue: (tx: Tx, chunks: readonly { engineId: string; ref: ChunkRef }[]) => Promise<void>,
  ): Promise<JobRow> {
    try {
      return await this.sql.begin(async (tx) => {
        await tx`INSERT INTO batch_jobs (id, status, result_limit, warm, total_users, total_chunks)
                 VALUES (${job.id}::uuid, 'queued', ${job.limit}, ${job.warm}, 0, 0)`;
        const chunks =
          job.users === 'all'
            ? await tx.unsafe<{ chunk_no: number; engine_id: string; users: number }[]>(ALL_USERS_CHUNKS, [job.id, chunkSize])
            : await tx.unsafe<{ chunk_no: number; engine_id: string; users: number }[]>(LISTED_USERS_CHUNKS, [job.id, chunkSize, [...job.users]]);
        const total = chunks.reduce((n, c) => n + c.users, 0);
        // Nothing to do (no users at all): finished at once.
        const [row] = await tx<JobRow[]>`
          UPDATE batch_jobs SET total_users = ${total}, total_chunks = ${chunks.length},
                 status = CASE WHEN ${chunks.length}::int = 0 THEN 'completed' ELSE status END,
                 finished_at = CASE WHEN ${chunks.length}::int = 0 THEN now() END
          WHERE id = ${job.id}::uuid
          RETURNING id, status, total_users, processed_users, failed_users, created_at, started_at, finished_at`;
        if (chunks.length) await enqueue(tx, chunks.map((c) => ({ engineId: c.engine_id, ref: { jobId: job.id, chunkNo: c.chunk_no } })));
        return row!;
      });
    } catch (err) {
      throw mapFailure(err);
    }
  }

  async find(id: string): Promise<JobRow | undefined> {
    try {
      const [row] = await this.sql.unsafe<JobRow[]>(
        `SELECT id, status, total_users, processed_users, failed_users, created_at, started_at, finished_at
         FROM batch_jobs WHERE id = $1::uuid AND ${KEPT}`,
        [id, this.retentionS],
      );
      return row;
    } catch (err) {
      throw mapFailure(err);
    }
  }

  /**
   * Up to `limit` results after user `after`, in user order. While the job runs, only users before its first
   * unfinished chunk are shown: a later page can then never hold a user below an earlier page's last one.
   * Undefined when the job does not exist (or expired).
   */
  async results(id: string, after: number, limit: number): Promise<ResultsPage | undefined> {
    try {
      const rows = await this.sql.unsafe<(ResultRow & { job_status: JobStatus })[]>(
        `SELECT j.status AS job_status, r.user_id, r.status, r.recommendations::text AS recommendations, r.error, r.message
         FROM batch_jobs j
         CROSS JOIN LATERAL (
           SELECT CASE WHEN j.status IN ('queued', 'running')
                       THEN (SELECT min(first_user_id) FROM batch_job_chunks c WHERE c.job_id = j.id AND c.done_at IS NULL) END AS upto
         ) h
         LEFT JOIN LATERAL (
           SELECT user_id, status, recommendations, error, message FROM batch_job_results r
           WHERE r.job_id = j.id AND r.user_id > $3::int8 AND (h.upto IS NULL OR r.user_id < h.upto)
           ORDER BY r.user_id LIMIT $4::int
         ) r ON true
         WHERE j.id = $1::uuid AND ${KEPT}`,
        [id, this.retentionS, after, limit + 1],
      );
      if (rows.length === 0) return undefined;
      const status = rows[0]!.job_status;
      const found = rows.filter((r) => r.user_id !== null);
      return { status, rows: found.slice(0, limit), more: found.length > limit };
    } catch (err) {
      throw mapFailure(err);
    }
  }

  /**
   * Cancels an active job; its unfinished chunks' engine jobs go to `cancelEngineJobs` in the same
   * transaction. The job as it is after (a finished one unchanged); undefined when it does not exist.
   */
  async cancel(id: string, cancelEngineJobs: (tx: Tx, engineIds: string[]) => Promise<void>): Promise<JobRow | undefined> {
    return this.finish(id, 'cancelled', cancelEngineJobs);
  }

  /** A chunk failed for good (its retries spent): the job failed; the rest of its chunks are cancelled. */
  async fail(id: string, cancelEngineJobs: (tx: Tx, engineIds: string[]) => Promise<void>): Promise<void> {
    await this.finish(id, 'failed', cancelEngineJobs);
  }

  private async finish(id: string, status: 'cancelled' | 'failed', cancelEngineJobs: (tx: Tx, engineIds: string[]) => Promise<void>): Promise<JobRow | undefined> {
    try {
      return await this.sql.begin(async (tx) => {
        const [changed] = await tx<JobRow[]>`
          UPDATE batch_jobs SET status = ${status}, finished_at = now()
          WHERE id = ${id}::uuid AND status IN ('queued', 'running')
          RETURNING id, status, total_users, processed_users, failed_users, created_at, started_at, finished_at`;
        if (!changed) return this.find(id);
        const open = await tx<{ engine_id: string }[]>`
          SELECT engine_id FROM batch_job_chunks WHERE job_id = ${id}::uuid AND done_at IS NULL`;
        await cancelEngineJobs(tx, open.map((c) => c.engine_id));
        return changed;
      });
    } catch (err) {
      throw mapFailure(err);
    }
  }

  /** What a chunk holds, and whether it still needs doing. Marks a queued job running. */
  async chunk(ref: ChunkRef): Promise<ChunkWork | undefined> {
    const [row] = await this.sql<{ status: JobStatus; result_limit: number; warm: boolean; user_ids: number[]; done: boolean }[]>`
      WITH started AS (
        UPDATE batch_jobs SET status = 'running', started_at = now() WHERE id = ${ref.jobId}::uuid AND status = 'queued'
      )
      SELECT j.status, j.result_limit, j.warm, c.user_ids, c.done_at IS NOT NULL AS done
      FROM batch_jobs j JOIN batch_job_chunks c ON c.job_id = j.id
      WHERE j.id = ${ref.jobId}::uuid AND c.chunk_no = ${ref.chunkNo}`;
    if (!row) return undefined;
    return { userIds: row.user_ids, limit: row.result_limit, warm: row.warm, skip: row.done || !ACTIVE.includes(row.status) };
  }

  /**
   * In one transaction: the chunk marked done, its results written, the job's counters (and status, on its
   * last chunk) updated, and `complete` (the engine's own completion). Nothing is written when the chunk
   * was done already (a retry after a crash that followed the commit) or the job is no longer active
   * (cancelled, failed, expired). Returns whether this call wrote the results.
   */
  async commitChunk(ref: ChunkRef, results: readonly ResultRow[], complete: (tx: Tx) => Promise<void>): Promise<boolean> {
    const failed = results.filter((r) => r.status === 'failed').length;
    return this.sql.begin(async (tx) => {
      // The job row first: chunk commits of one job and its cancellation queue on it, never deadlock.
      const [job] = await tx<{ status: JobStatus }[]>`SELECT status FROM batch_jobs WHERE id = ${ref.jobId}::uuid FOR UPDATE`;
      const [chunk] = job && ACTIVE.includes(job.status)
        ? await tx`UPDATE batch_job_chunks SET done_at = now()
                   WHERE job_id = ${ref.jobId}::uuid AND chunk_no = ${ref.chunkNo} AND done_at IS NULL RETURNING 1`
        : [];
      if (chunk) {
        await tx`
          INSERT INTO batch_job_results (job_id, user_id, status, recommendations, error, message)
          SELECT ${ref.jobId}::uuid, u, s, r::json, e, m
          FROM unnest(${results.map((r) => r.user_id)}::int8[], ${results.map((r) => r.status)}::text[],
                      ${results.map((r) => r.recommendations)}::text[], ${results.map((r) => r.error)}::text[],
                      ${results.map((r) => r.message)}::text[]) AS t(u, s, r, e, m)`;
        await tx`
          UPDATE batch_jobs SET
            processed_users = processed_users + ${results.length},
            failed_users = failed_users + ${failed},
            done_chunks = done_chunks + 1,
            status = CASE WHEN done_chunks + 1 >= total_chunks THEN 'completed' ELSE 'running' END,
            started_at = coalesce(started_at, now()),
            finished_at = CASE WHEN done_chunks + 1 >= total_chunks THEN now() END
          WHERE id = ${ref.jobId}::uuid`;
      }
      await complete(tx);
      return chunk !== undefined;
    });
  }

  /** Deletes finished jobs past the retention (their chunks and results with them); how many. */
  async sweep(): Promise<number> {
    const rows = await this.sql`
      DELETE FROM batch_jobs WHERE finished_at <= now() - make_interval(secs => ${this.retentionS}) RETURNING 1`;
    return rows.length;
  }

  /** Jobs by status (every instance's: they share the table), kept ones only. */
  async countByStatus(): Promise<Record<JobStatus, number>> {
    const rows = await this.sql.unsafe<{ status: JobStatus; n: number }[]>(
      `SELECT status, count(*)::int AS n FROM batch_jobs WHERE ${KEPT.replace('$2', '$1')} GROUP BY status`,
      [this.retentionS],
    );
    const counts = Object.fromEntries(JOB_STATUSES.map((s) => [s, 0])) as Record<JobStatus, number>;
    for (const r of rows) counts[r.status] = r.n;
    return counts;
  }
}
