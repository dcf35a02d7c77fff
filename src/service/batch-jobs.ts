/**
 * Asynchronous batch jobs (`/recommendations/jobs`): a job is split into chunks of users that the job
 * engine hands to every instance's HTTP workers. A chunk runs the request path's pipeline
 * (recommendationsForMany: caches, one shared PostgreSQL read, model behind the breaker, fallback,
 * availability) and commits its results, its job's counters and the engine's completion in one transaction.
 */
import { randomUUID } from 'node:crypto';
import { setImmediate as yieldToRequests } from 'node:timers/promises';
import { Errors, isServiceError } from '../domain/errors.js';
import { fragmentsOf } from '../domain/recommendation-json.js';
import type { BatchJobRepo, ChunkRef, JobRow, ResultRow } from '../data/batch-job-repo.js';
import type { EngineJob, JobQueue } from '../data/job-queue.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { RecommendationService } from './recommendation-service.js';

/** The engine's queue of chunks, and where a chunk goes once its retries are spent. */
export const CHUNK_QUEUE = 'batch-job-chunk';
export const FAILED_CHUNK_QUEUE = 'batch-job-chunk-failed';
/** Retries of a chunk (a crash, PostgreSQL down) before its job fails. */
export const CHUNK_RETRIES = 5;
/** Users that share one PostgreSQL read; between two slices the event loop serves requests. */
const SLICE = 50;
/** A user shed for capacity (the request path is busy) is tried again this many times, then the chunk is retried later. */
const SHED_RETRIES = 5;
/** What recommendationsForMany rejects a user with when the worker's computations are at their limit. */
const SHED = Errors.unavailable('Recommendation capacity').message;

export interface JobRequest {
  users: 'all' | readonly number[];
  limit: number;
  warm: boolean;
}

export interface BatchJobSettings {
  /** Users per chunk (JOB_CHUNK_USERS). */
  chunkUsers: number;
  /** Users one chunk ranks at once (JOB_CONCURRENCY). */
  concurrency: number;
}

export interface ResultsPage {
  /** `[…]` JSON of the results, in user order. */
  resultsJson: string;
  nextCursor: string | null;
}

export class BatchJobs {
  constructor(
    private readonly repo: BatchJobRepo,
    private readonly queue: JobQueue,
    private readonly recommendations: RecommendationService,
    private readonly settings: BatchJobSettings,
    private readonly log: Logger,
    private readonly metrics?: Pick<Metrics, 'jobs'>,
  ) {}

  submit(request: JobRequest): Promise<JobRow> {
    return this.repo.create({ id: randomUUID(), ...request }, this.settings.chunkUsers, (tx, chunks) =>
      this.queue.insertInTx(tx, CHUNK_QUEUE, chunks.map((c) => ({ id: c.engineId, data: c.ref }))),
    );
  }

  async status(id: string): Promise<JobRow> {
    const job = await this.repo.find(id);
    if (!job) throw Errors.jobNotFound(id);
    return job;
  }

  /** `cursor`: the last user id of the previous page (opaque to clients). */
  async results(id: string, cursor: number, limit: number): Promise<ResultsPage> {
    const page = await this.repo.results(id, cursor, limit);
    if (!page) throw Errors.jobNotFound(id);
    const last = page.rows.at(-1)?.user_id ?? cursor;
    const finished = page.status !== 'queued' && page.status !== 'running';
    // A running job may add users after `last` (its next chunks): the client comes back with the cursor.
    const nextCursor = page.more || !finished ? String(last) : null;
    return { resultsJson: `[${page.rows.map(resultJson).join(',')}]`, nextCursor };
  }

  async cancel(id: string): Promise<JobRow> {
    const job = await this.repo.cancel(id, (tx, engineIds) => this.queue.cancelInTx(tx, CHUNK_QUEUE, engineIds));
    if (!job) throw Errors.jobNotFound(id);
    return job;
  }

  /** The engine's handler for one chunk; throwing fails it (the engine retries it, then dead-letters it). */
  async processChunk(job: EngineJob<ChunkRef>): Promise<void> {
    const ref = job.data;
    const work = await this.repo.chunk(ref);
    if (!work || work.skip) {
      this.metrics?.jobs.chunks.skipped.inc();
      return; // done already, cancelled or expired: the engine completes it
    }
    const rows: ResultRow[] = [];
    for (let i = 0; i < work.userIds.length; i += SLICE) {
      if (i > 0) await yieldToRequests();
      rows.push(...(await this.slice(work.userIds.slice(i, i + SLICE), work.limit, work.warm)));
    }
    const wrote = await this.repo.commitChunk(ref, rows, (tx) => this.queue.completeInTx(tx, CHUNK_QUEUE, job.id));
    if (!wrote) {
      this.metrics?.jobs.chunks.skipped.inc();
      return;
    }
    const failed = rows.filter((r) => r.status === 'failed').length;
    if (this.metrics) {
      this.metrics.jobs.chunks.committed.inc();
      this.metrics.jobs.users.success.inc(rows.length - failed);
      this.metrics.jobs.users.failed.inc(failed);
    }
  }

  /** One result per user, in order. Users shed for capacity are tried again; PostgreSQL down fails the chunk. */
  private async slice(userIds: number[], limit: number, warm: boolean): Promise<ResultRow[]> {
    const rows = new Map<number, ResultRow>();
    let pending = userIds;
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt > SHED_RETRIES) throw Errors.unavailable('Recommendation capacity');
      if (attempt > 0) await new Promise((r) => setTimeout(r, 50 * 2 ** attempt));
      const outcomes = await this.recommendations.recommendationsForMany(pending, this.settings.concurrency, { store: warm });
      const again: number[] = [];
      outcomes.forEach((outcome, i) => {
        const userId = pending[i]!;
        if (outcome.status === 'fulfilled') {
          const items = fragmentsOf(outcome.value.list, limit).slice(0, limit);
          rows.set(userId, { user_id: userId, status: 'success', recommendations: `[${items.join(',')}]`, error: null, message: null });
          return;
        }
        const err: unknown = outcome.reason;
        if (isServiceError(err) && err.code === 'service_unavailable') {
          // PostgreSQL down fails the whole chunk (retried by the engine); a shed user is tried again here.
          if (err.message !== SHED) throw err;
          again.push(userId);
          return;
        }
        if (!isServiceError(err)) this.log.error({ route: 'jobs', user_id: userId, err }, 'batch job user failed');
        const known = isServiceError(err) ? err : Errors.internal(err);
        rows.set(userId, { user_id: userId, status: 'failed', recommendations: null, error: known.code, message: known.message });
      });
      pending = again;
    }
    return userIds.map((id) => rows.get(id)!);
  }
}

/** One result as the API shows it. */
function resultJson(row: ResultRow): string {
  if (row.status === 'success') return `{"user_id":${row.user_id},"status":"success","recommendations":${row.recommendations}}`;
  return `{"user_id":${row.user_id},"status":"failed","recommendations":[],"error":${JSON.stringify(row.error)},"message":${JSON.stringify(row.message)}}`;
}

/** A job row as the API shows it. */
export function jobJson(job: JobRow): string {
  const time = (d: Date | null) => (d ? d.toISOString() : null);
  return JSON.stringify({
    job_id: job.id,
    status: job.status,
    total_users: job.total_users,
    processed_users: job.processed_users,
    failed_users: job.failed_users,
    created_at: time(job.created_at),
    started_at: time(job.started_at),
    finished_at: time(job.finished_at),
  });
}
