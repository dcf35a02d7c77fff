/**
 * `GET /recommendations/batch`: one page of users through the normal pipeline; the page's cache misses share
 * one PostgreSQL query (RecommendationService.recommendationsForMany), bounded ranking concurrency.
 */
import { BATCH_ITEMS_PER_USER } from '../domain/constants.js';
import { isServiceError, type ErrorCode } from '../domain/errors.js';
import type { Recommendation } from '../domain/types.js';
import type { RecommendationRepo } from '../data/recommendation-repo.js';
import type { RecommendationService } from './recommendation-service.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

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
    private readonly metrics?: Pick<Metrics, 'batch'>,
  ) {}

  /** `requestLog` gives the request's logger (with its id), asked for only when something is logged. */
  async page(page: number, limit: number, requestLog?: () => Logger): Promise<BatchResult> {
    const started = performance.now();
    const { totalUsers, userIds } = await this.repo.userPage(page, limit);
    // Cache misses share one PostgreSQL query; at most `concurrency` users are ranked at once.
    const outcomes = await this.recommendations.recommendationsForMany(userIds, this.concurrency);
    const results = outcomes.map((outcome, i): BatchUserResult =>
      outcome.status === 'fulfilled'
        ? { user_id: userIds[i]!, recommendations: outcome.value.list.items.slice(0, BATCH_ITEMS_PER_USER), status: 'success' }
        : this.failed(userIds[i]!, outcome.reason, requestLog),
    );
    const success = results.filter((r) => r.status === 'success').length;
    const seconds = (performance.now() - started) / 1000;
    if (this.metrics) {
      const { users, duration } = this.metrics.batch;
      users.success.inc(success);
      users.failed.inc(results.length - success);
      duration.observe(seconds);
    }
    return {
      page,
      limit,
      total_users: totalUsers,
      results,
      summary: {
        success_count: success,
        failed_count: results.length - success,
        processing_time_ms: Math.round(seconds * 100_000) / 100,
      },
      metadata: { generated_at: new Date().toISOString() },
    };
  }

  private failed(userId: number, err: unknown, requestLog: (() => Logger) | undefined): BatchUserResult {
    if (isServiceError(err)) return { user_id: userId, status: 'failed', error: err.code, message: err.message };
    (requestLog?.() ?? this.log).error({ route: 'batch', user_id: userId, err }, 'batch user failed');
    return { user_id: userId, status: 'failed', error: 'internal_error', message: 'Internal server error' };
  }
}
