/**
 * The recommendation pipeline (DESIGN.md §4): L1 → Redis → singleflight → PostgreSQL → model behind a
 * circuit breaker → popularity fallback. Knows nothing of HTTP; throws only ServiceError.
 */
import { CACHED_LIST_SIZE } from '../domain/constants.js';
import { Errors, ModelError, isServiceError } from '../domain/errors.js';
import type { Recommendation, RecommendationList, ScoringTask, UserSignals } from '../domain/types.js';
import type { RecommendationCache } from '../data/recommendation-cache.js';
import type { RecommendationRepo, WatchRecord } from '../data/recommendation-repo.js';
import type { Metrics } from '../observability/metrics.js';
import type { Logger } from '../observability/logger.js';
import { popularityFallback } from '../scoring-worker/model.js';
import { Singleflight } from './singleflight.js';

export interface ModelSettings {
  candidatePool: number;
  noise: boolean;
  latencyMinMs: number;
  latencyMaxMs: number;
  failureRate: number;
}

/** The model as the service sees it: a call that may fail (the breaker-wrapped scoring pool). */
export type ScoreFn = (task: ScoringTask) => Promise<Recommendation[]>;

export interface Lookup {
  list: RecommendationList;
  cacheHit: boolean;
}

export interface ServiceDeps {
  repo: RecommendationRepo;
  cache: RecommendationCache;
  score: ScoreFn;
  model: ModelSettings;
  metrics: Metrics;
  log: Logger;
  /** Tells every other process on this instance to drop the user's entry; resolves when they have. */
  broadcastInvalidation: (userId: number) => Promise<void>;
}

export class RecommendationService {
  private readonly flights = new Singleflight<number, Lookup>();

  constructor(private readonly deps: ServiceDeps) {}

  /** Synchronous L1 lookup: the hot path answers without a single await. */
  cached(userId: number): RecommendationList | undefined {
    return this.deps.cache.getLocal(userId);
  }

  /** The full lookup: L1, then one shared computation per user (Redis, then PostgreSQL + model). */
  async recommendationsFor(userId: number): Promise<Lookup> {
    const local = this.deps.cache.getLocal(userId);
    if (local) return { list: local, cacheHit: true };
    const { promise, shared } = this.flights.do(userId, () => this.load(userId));
    if (shared) this.deps.metrics.coalesced.inc();
    return promise;
  }

  /** Records a watch event; when it resolves, no process of this instance serves a list that predates it. */
  async recordWatch(userId: number, contentId: number): Promise<WatchRecord> {
    const record = await this.deps.repo.addWatch(userId, contentId);
    this.invalidateLocal(userId);
    try {
      await this.deps.cache.invalidateShared(userId);
    } catch (err) {
      // Redis down: its entry cannot be served while it is down; the TTL bounds it after a restart.
      this.deps.log.warn({ userId, err: (err as Error).message }, 'redis invalidation failed');
    }
    await this.deps.broadcastInvalidation(userId);
    return record;
  }

  /** Applies an invalidation from any source (this process's write, another worker, NOTIFY). */
  invalidateLocal(userId: number): void {
    this.deps.cache.invalidateLocal(userId);
    this.flights.forget(userId);
  }

  private async load(userId: number): Promise<Lookup> {
    const shared = await this.deps.cache.getShared(userId);
    if (shared.list) return { list: shared.list, cacheHit: true };
    const signals = await this.deps.repo.userSignals(userId, this.deps.model.candidatePool);
    if (!signals) throw Errors.userNotFound(userId);
    const list = await this.rank(signals);
    this.deps.cache.store(userId, list, shared.ticket);
    return { list, cacheHit: false };
  }

  private async rank(signals: UserSignals): Promise<RecommendationList> {
    const { model, metrics } = this.deps;
    const started = performance.now();
    try {
      const items = await this.deps.score({
        signals,
        keep: CACHED_LIST_SIZE,
        nowMs: Date.now(),
        noise: model.noise,
        latencyMinMs: model.latencyMinMs,
        latencyMaxMs: model.latencyMaxMs,
        failureRate: model.failureRate,
      });
      metrics.model.success.inc();
      metrics.modelDuration.observe((performance.now() - started) / 1000);
      return { items, source: 'model', generatedAt: new Date().toISOString() };
    } catch (err) {
      if (isServiceError(err)) throw err;
      const reason = err instanceof ModelError ? err.reason : 'failure';
      metrics.model[reason].inc();
      metrics.fallbacks[reason].inc();
      return {
        items: popularityFallback(signals.candidates, CACHED_LIST_SIZE),
        source: 'popularity_fallback',
        generatedAt: new Date().toISOString(),
      };
    }
  }
}
