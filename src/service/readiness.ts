/**
 * What `/ready` reports: can this worker answer correctly? PostgreSQL is required. Redis is reported but
 * does not make an instance unready: it is a cache, and every instance shares it, so a Redis outage (or a
 * Redis Cluster failover) would take every instance out of the load balancer at once while each could
 * answer from L1 and PostgreSQL.
 */
import type { RecommendationRepo } from '../data/recommendation-repo.js';
import type { RedisClient } from '../data/redis.js';
import type { ReplicaStatus } from '../data/replicas.js';

export interface Readiness {
  ready: boolean;
  checks: { postgres: 'ok' | 'down'; redis: 'ok' | 'down' | 'disabled' };
  /** With DATABASE_REPLICA_URLS: each replica as last probed (reported, never a reason to be unready). */
  replicas?: ReplicaStatus[];
}

/**
 * Each check gets `timeoutMs`: a hung dependency is reported down, not waited for. The PostgreSQL check is
 * a read like the request path's: on a healthy replica, else (or if the replica fails it) on the primary.
 */
export async function checkReadiness(
  repo: RecommendationRepo,
  redis: RedisClient | null,
  timeoutMs: number,
  replicas?: () => ReplicaStatus[],
): Promise<Readiness> {
  const [pg, rd] = await Promise.all([
    within(repo.ping(), timeoutMs).then(
      () => 'ok' as const,
      () => 'down' as const,
    ),
    redis
      ? within(redis.ping(), timeoutMs).then(
          () => 'ok' as const,
          () => 'down' as const,
        )
      : Promise.resolve('disabled' as const),
  ]);
  return { ready: pg === 'ok', checks: { postgres: pg, redis: rd }, ...(replicas ? { replicas: replicas() } : {}) };
}

function within<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    work,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('timed out')), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
