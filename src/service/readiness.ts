/** What `/ready` reports: can this worker reach the dependencies a request needs? */
import type { RecommendationRepo } from '../data/recommendation-repo.js';
import type { Redis } from '../data/redis.js';

export interface Readiness {
  ready: boolean;
  checks: { postgres: 'ok' | 'down'; redis: 'ok' | 'down' | 'disabled' };
}

export async function checkReadiness(repo: RecommendationRepo, redis: Redis | null): Promise<Readiness> {
  const [pg, rd] = await Promise.all([
    repo.ping().then(
      () => 'ok' as const,
      () => 'down' as const,
    ),
    redis
      ? redis.ping().then(
          () => 'ok' as const,
          () => 'down' as const,
        )
      : Promise.resolve('disabled' as const),
  ]);
  return { ready: pg === 'ok' && rd !== 'down', checks: { postgres: pg, redis: rd } };
}
