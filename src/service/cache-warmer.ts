/**
 * WARM_CACHE_TOP_N: after a worker listens, compute the lists of the N most active users (by watch events)
 * in the background, so their first requests are cache hits. It never delays readiness and yields to
 * requests: 100 users at a time through the batch path (one PostgreSQL query per 100 users, ranked with
 * the batch concurrency), every store through the usual ticketed cache rules.
 *
 * Who warms: with Redis, one worker (index 0) warms Redis once and the other workers fill their L1 from
 * Redis on first use (cache_hit true, no PostgreSQL or model work); without Redis each worker warms its
 * own L1, since nothing is shared.
 */
import type { Logger } from '../observability/logger.js';
import type { RecommendationService } from './recommendation-service.js';

export interface CacheWarmerDeps {
  topActiveUsers: (n: number) => Promise<number[]>;
  recommendations: Pick<RecommendationService, 'recommendationsForMany'>;
  log: Logger;
  /** Users ranked at once (BATCH_CONCURRENCY). */
  concurrency: number;
}

export interface WarmResult {
  warmed: number;
  failed: number;
  ms: number;
}

const CHUNK = 100;

/** Whether this worker warms: worker 0 when Redis is shared, every worker otherwise. */
export function shouldWarm(topN: number, workerIndex: number, sharedCache: boolean): boolean {
  return topN > 0 && (!sharedCache || workerIndex === 0);
}

export async function warmCache(topN: number, deps: CacheWarmerDeps): Promise<WarmResult> {
  const started = performance.now();
  let warmed = 0;
  let failed = 0;
  const users = await deps.topActiveUsers(topN);
  for (let from = 0; from < users.length; from += CHUNK) {
    const outcomes = await deps.recommendations.recommendationsForMany(users.slice(from, from + CHUNK), deps.concurrency);
    for (const outcome of outcomes) outcome.status === 'fulfilled' ? (warmed += 1) : (failed += 1);
    // Let queued requests run between chunks: warming is background work.
    await new Promise((resolve) => setImmediate(resolve));
  }
  return { warmed, failed, ms: Math.round(performance.now() - started) };
}

/** Starts warming in the background; logs the outcome, never throws. */
export function startCacheWarming(topN: number, deps: CacheWarmerDeps): Promise<void> {
  deps.log.info({ users: topN }, 'cache warming started');
  return warmCache(topN, deps).then(
    (r) => deps.log.info({ ...r, requested: topN }, 'cache warming finished'),
    (err: unknown) => deps.log.warn({ err: (err as Error).message }, 'cache warming failed'),
  );
}
