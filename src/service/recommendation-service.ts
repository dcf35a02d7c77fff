/**
 * The recommendation pipeline (DESIGN.md §4): L1 → Redis → singleflight → PostgreSQL → model behind a
 * circuit breaker → popularity fallback. Knows nothing of HTTP; throws only ServiceError.
 */
import { CACHED_LIST_SIZE } from '../domain/constants.js';
import { Errors, ModelError, isServiceError } from '../domain/errors.js';
import type {
  Recommendation,
  RecommendationList,
  RecommendationSource,
  ScoringTask,
  UserSignals,
} from '../domain/types.js';
import type { RecommendationCache } from '../data/recommendation-cache.js';
import type { RecommendationRepo, WatchRecord } from '../data/recommendation-repo.js';
import type { Metrics } from '../observability/metrics.js';
import type { Logger } from '../observability/logger.js';
import { popularityFallback } from '../scoring-worker/model.js';
import { Singleflight } from './singleflight.js';

/** After a PostgreSQL failure, how long reads answer without asking it (one probe then asks again). */
const DB_RETRY_AFTER_MS = 500;

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
  /** Served past its freshness because PostgreSQL could not be asked ("stale if error"). */
  stale?: boolean;
}

export interface ServiceDeps {
  repo: RecommendationRepo;
  cache: RecommendationCache;
  score: ScoreFn;
  model: ModelSettings;
  metrics: Metrics;
  log: Logger;
  /** Computations (cache misses) in flight at once; beyond it requests are shed with 503. */
  maxPendingComputations: number;
  /** Tells every other process on this instance to drop the user's entry; resolves when they have. */
  broadcastInvalidation: (userId: number) => Promise<void>;
}

export class RecommendationService {
  private readonly flights = new Singleflight<number, Lookup>();
  private pending = 0;
  /** Until then PostgreSQL is taken as down: reads answer from stale lists or 503 without queueing. */
  private dbDownUntil = 0;

  constructor(private readonly deps: ServiceDeps) {}

  /** Synchronous L1 lookup: the hot path answers without a single await. */
  cached(userId: number): RecommendationList | undefined {
    return this.deps.cache.getLocal(userId);
  }

  /** The full lookup: L1, then one shared computation per user (Redis, then PostgreSQL + model). */
  async recommendationsFor(userId: number): Promise<Lookup> {
    const local = this.deps.cache.getLocal(userId);
    if (local) return { list: local, cacheHit: true };
    if (this.pending >= this.deps.maxPendingComputations && !this.flights.has(userId)) {
      throw Errors.unavailable('Recommendation capacity');
    }
    const { promise, shared } = this.flights.do(userId, () => this.counted(userId));
    if (shared) this.deps.metrics.coalesced.inc();
    return promise;
  }

  /** Records a watch event; when it resolves, no process of this instance serves a list that predates it. */
  async recordWatch(userId: number, contentId: number): Promise<WatchRecord> {
    const record = await this.deps.repo.addWatch(userId, contentId);
    this.invalidateLocal(userId);
    if (!(await this.deps.cache.invalidateShared(userId))) {
      this.deps.log.warn({ userId }, 'redis unavailable: invalidation deferred until it is back');
    }
    await this.deps.broadcastInvalidation(userId);
    return record;
  }

  /** Applies an invalidation from any source (this process's write, another worker, NOTIFY). */
  invalidateLocal(userId: number): void {
    this.deps.cache.invalidateLocal(userId);
    this.flights.forget(userId);
  }

  private async counted(userId: number): Promise<Lookup> {
    this.pending += 1;
    try {
      return await this.load(userId);
    } finally {
      this.pending -= 1;
    }
  }

  private async load(userId: number): Promise<Lookup> {
    const { cache } = this.deps;
    const shared = await cache.getShared(userId);
    if (shared.list) return { list: shared.list, cacheHit: true };
    const stale = newest(cache.peekLocal(userId), shared.stale);
    // PostgreSQL failed a moment ago: answer now (stale list, else 503) instead of queueing behind it;
    // the first request after the pause probes it again.
    if (Date.now() < this.dbDownUntil) {
      if (stale) return { list: stale, cacheHit: true, stale: true };
      throw Errors.unavailable('Database');
    }
    let signals: UserSignals | null;
    try {
      signals = await this.deps.repo.userSignals(userId, this.deps.model.candidatePool);
    } catch (err) {
      if (!isServiceError(err) || err.code !== 'service_unavailable') throw err;
      this.dbDownUntil = Date.now() + DB_RETRY_AFTER_MS;
      // Stale if error: an expired list beats a 503 while PostgreSQL is down or hung.
      if (stale) return { list: stale, cacheHit: true, stale: true };
      throw err;
    }
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
      return this.list(items, 'model');
    } catch (err) {
      if (isServiceError(err)) throw err;
      const reason = err instanceof ModelError ? err.reason : 'failure';
      metrics.model[reason].inc();
      metrics.fallbacks[reason].inc();
      return this.list(popularityFallback(signals.candidates, CACHED_LIST_SIZE), 'popularity_fallback');
    }
  }

  private list(items: Recommendation[], source: RecommendationSource): RecommendationList {
    const now = Date.now();
    return { items, source, generatedAt: new Date(now).toISOString(), freshUntil: now + this.deps.cache.freshnessMs(source) };
  }
}

function newest(a: RecommendationList | undefined, b: RecommendationList | undefined): RecommendationList | undefined {
  if (!a || !b) return a ?? b;
  return a.freshUntil >= b.freshUntil ? a : b;
}
