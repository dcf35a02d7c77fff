/** `GET /recommendations/batch`: one page of users, each through the normal pipeline, bounded concurrency. */
import { BATCH_ITEMS_PER_USER } from '../domain/constants.js';
import { isServiceError, type ErrorCode } from '../domain/errors.js';
import type { Recommendation } from '../domain/types.js';
import type { RecommendationRepo } from '../data/recommendation-repo.js';
import type { RecommendationService } from './recommendation-service.js';
import type { Logger } from '../observability/logger.js';

export type BatchUserResult =
  | { user_id: number; recommendations: Recommendation[]; status: 'success' }
  | { user_id: number; status: 'failed'; error: ErrorCode; message: string };

export interface BatchResult {
  page: number;
  limit: number;
  total_users: number;
  results: BatchUserResult[];
  summary: { success_count: number; failed_count: number; processing_time_ms: number };
  metadata: { generated_at: string };
}

export class BatchService {
  constructor(
    private readonly repo: RecommendationRepo,
    private readonly recommendations: RecommendationService,
    private readonly concurrency: number,
    private readonly log: Logger,
  ) {}

  async page(page: number, limit: number): Promise<BatchResult> {
    const started = performance.now();
    const { totalUsers, userIds } = await this.repo.userPage(page, limit);
    const results = new Array<BatchUserResult>(userIds.length);
    let next = 0;
    // A fixed set of runners pulls the next user: at most `concurrency` users in flight.
    const runner = async () => {
      while (next < userIds.length) {
        const index = next++;
        results[index] = await this.one(userIds[index]!);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, userIds.length) }, runner));
    const success = results.filter((r) => r.status === 'success').length;
    return {
      page,
      limit,
      total_users: totalUsers,
      results,
      summary: {
        success_count: success,
        failed_count: results.length - success,
        processing_time_ms: Math.round((performance.now() - started) * 100) / 100,
      },
      metadata: { generated_at: new Date().toISOString() },
    };
  }

  private async one(userId: number): Promise<BatchUserResult> {
    try {
      const { list } = await this.recommendations.recommendationsFor(userId);
      return { user_id: userId, recommendations: list.items.slice(0, BATCH_ITEMS_PER_USER), status: 'success' };
    } catch (err) {
      if (isServiceError(err)) return { user_id: userId, status: 'failed', error: err.code, message: err.message };
      this.log.error({ userId, err }, 'batch user failed');
      return { user_id: userId, status: 'failed', error: 'internal_error', message: 'Internal server error' };
    }
  }
}
