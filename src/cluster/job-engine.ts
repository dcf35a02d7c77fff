/**
 * The job engine as the primary runs it: its schema and queues prepared before the HTTP workers start
 * (they only fetch and complete), then the scheduled background work — the co-watch refresh, the batch
 * jobs' retention sweep — and the handler of chunks whose retries are spent (their job fails).
 */
import type { Config } from '../config.js';
import { BatchJobRepo, type ChunkRef } from '../data/batch-job-repo.js';
import type { Sql } from '../data/db.js';
import { JobQueue } from '../data/job-queue.js';
import type { Logger } from '../observability/logger.js';
import { CHUNK_QUEUE, CHUNK_RETRIES, FAILED_CHUNK_QUEUE } from '../service/batch-jobs.js';
import { Scheduler } from './scheduler.js';

export const SWEEP_JOB = 'batch-job-sweep';
/** Sweeps at least hourly, and as often as the retention when it is shorter. */
const SWEEP_MAX_PERIOD_S = 3600;

/**
 * How often the engine looks for chunks whose worker died (its maintenance, once across instances): half
 * the chunk timeout, at most 30 s. A dead worker's chunk is handed out again within
 * JOB_CHUNK_TIMEOUT_S + this + the retry delay + the polling interval (docs/jobs.md).
 */
export const maintenanceIntervalS = (config: Pick<Config, 'JOB_CHUNK_TIMEOUT_S'>) =>
  Math.max(1, Math.min(30, Math.ceil(config.JOB_CHUNK_TIMEOUT_S / 2)));
/** Seconds between two polls of an idle chunk worker (the engine's minimum is 0.5). */
export const CHUNK_POLLING_S = 1;
/** Seconds before a failed chunk is tried again (doubled per retry, with jitter). */
const CHUNK_RETRY_DELAY_S = 1;

export async function startJobEngine(config: Config, databaseUrl: string, log: Logger): Promise<JobQueue> {
  const queue = await JobQueue.start({
    databaseUrl,
    role: 'primary',
    maintenanceIntervalS: maintenanceIntervalS(config),
    poolSize: 3,
    onError: (err) => log.warn({ err: err.message }, 'job engine error'),
  });
  // The dead-letter queue first: the chunk queue names it.
  await queue.ensureQueue(FAILED_CHUNK_QUEUE, { policy: 'standard', expireInS: 60, retryLimit: 10, retryDelayS: CHUNK_RETRY_DELAY_S });
  await queue.ensureQueue(CHUNK_QUEUE, {
    policy: 'standard',
    expireInS: config.JOB_CHUNK_TIMEOUT_S,
    retryLimit: CHUNK_RETRIES,
    retryDelayS: CHUNK_RETRY_DELAY_S,
    deadLetter: FAILED_CHUNK_QUEUE,
  });
  return queue;
}

/** The primary's share of the jobs: the retention sweep (scheduled) and failing jobs whose chunk failed for good. */
export async function startJobUpkeep(queue: JobQueue, scheduler: Scheduler, sql: Sql, config: Config, log: Logger): Promise<void> {
  const repo = new BatchJobRepo(sql, config.JOB_RETENTION_S);
  await scheduler.register({
    name: SWEEP_JOB,
    periodS: Math.min(SWEEP_MAX_PERIOD_S, config.JOB_RETENTION_S),
    timeoutS: 600,
    run: async () => {
      const deleted = await repo.sweep();
      if (deleted) log.info({ deleted }, 'batch jobs past JOB_RETENTION_S deleted');
    },
  });
  await queue.work<ChunkRef>(FAILED_CHUNK_QUEUE, 1, CHUNK_POLLING_S, async (job) => {
    log.error({ job_id: job.data.jobId, chunk: job.data.chunkNo }, 'batch job chunk failed after its retries: job failed');
    await repo.fail(job.data.jobId, (tx, ids) => queue.cancelInTx(tx, CHUNK_QUEUE, ids));
  });
}
