/**
 * The recommendation pipeline (DESIGN.md §4): L1 → Redis → singleflight → PostgreSQL → model behind a
 * circuit breaker → popularity fallback. Knows nothing of HTTP; throws only ServiceError.
 */
import { CACHED_LIST_SIZE } from '../domain/constants.js';
import { Errors, ModelError, isServiceError } from '../domain/errors.js';
import type { Ranking, Recommendation, RecommendationList, RecommendationSource, ScoringTask, UserSignals } from '../domain/types.js';
import type { RecommendationCache } from '../data/recommendation-cache.js';
import type { RecommendationRepo, WatchRecord } from '../data/recommendation-repo.js';
import type { Metrics } from '../observability/metrics.js';
import type { Logger } from '../observability/logger.js';
import { popularityRanking, scoringTask, toRecommendations } from '../scoring-worker/model.js';
import { Singleflight } from './singleflight.js';

/** After a PostgreSQL failure, how long reads answer without asking it (one probe then asks again). */
const DB_RETRY_AFTER_MS = 500;

export interface ModelSettings {
  /** Unwatched titles scored per user (0 = whole catalog). */
  candidatePool: number;
  noise: boolean;
}

/** The model as the service sees it: a call that may fail (the breaker-wrapped remote model and scoring). */
export type ScoreFn = (task: ScoringTask) => Promise<Ranking>;

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
  /**
   * Tells every other process on this instance to drop the user's entry; resolves when they have.
   * `sharedPending`: this process's Redis invalidation did not land (or was not replicated), so each of
   * them must land its own before it reads the user from Redis. `lsn` (with replicas): the write's WAL
   * position, which their replica reads of the user must have replayed.
   */
  broadcastInvalidation: (userId: number, sharedPending: boolean, lsn?: string) => Promise<void>;
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

  /**
   * The full lookup: L1, then one shared computation per user (Redis, then PostgreSQL + model).
   * `l1Missed`: the caller has just looked in L1 itself (the hot path) — do not look (and count) twice.
   */
  async recommendationsFor(userId: number, l1Missed = false): Promise<Lookup> {
    const local = l1Missed ? undefined : this.deps.cache.getLocal(userId);
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
    // addWatch has already noted the write's position (invalidateLocal notes it again, as for every source):
    // a computation starting during the Redis invalidation below reads the new generation, so it must not
    // read a replica that lacks the write, or it would store an old list under that generation.
    const { record, lsn } = await this.deps.repo.addWatch(userId, contentId);
    // Redis before L1: a miss between the two would otherwise refill L1 from the old Redis entry.
    const landed = await this.deps.cache.invalidateShared(userId);
    if (!landed) this.deps.log.warn({ userId }, 'redis invalidation not landed (unavailable or not replicated): deferred, every worker retries it');
    this.invalidateLocal(userId, lsn);
    await this.deps.broadcastInvalidation(userId, !landed, lsn);
    return record;
  }

  /**
   * Forgets every cached list and in-flight computation of this process (missed invalidations). `lsn`:
   * where those writes end in the WAL; every later replica read must have replayed it (ipc.ts).
   */
  invalidateAll(lsn?: string): void {
    this.deps.repo.noteWrite(undefined, lsn);
    this.deps.cache.invalidateAllLocal();
    this.flights.forgetAll();
  }

  /**
   * Applies an invalidation from any source (this process's write, another worker, NOTIFY). `lsn`: the
   * write's WAL position, noted before the caches are dropped, so no later computation of the user reads a
   * replica that has not replayed it.
   */
  invalidateLocal(userId: number, lsn?: string): void {
    this.deps.repo.noteWrite(userId, lsn);
    this.deps.cache.invalidateLocal(userId);
    this.flights.forget(userId);
  }

  /**
   * recommendationsFor for many users (a batch page): the same tiers and consistency rules, but the users
   * that miss both caches share ONE PostgreSQL query instead of one each. Each such user is a singleflight
   * computation of its own (single requests meanwhile join it), its ticket is taken before the shared read,
   * and at most `rankConcurrency` of them are ranked at once. One outcome per user, in order.
   */
  recommendationsForMany(userIds: readonly number[], rankConcurrency: number): Promise<PromiseSettledResult<Lookup>[]> {
    const outcomes = new Array<Promise<Lookup>>(userIds.length);
    const misses: number[] = [];
    const missAt: number[] = [];
    for (const [index, userId] of userIds.entries()) {
      const local = this.deps.cache.getLocal(userId);
      if (local) outcomes[index] = Promise.resolve({ list: local, cacheHit: true });
      else if (this.flights.has(userId)) outcomes[index] = this.recommendationsFor(userId); // joins it
      else if (this.pending + misses.length >= this.deps.maxPendingComputations) {
        outcomes[index] = Promise.reject(Errors.unavailable('Recommendation capacity'));
      } else {
        misses.push(userId);
        missAt.push(index);
      }
    }
    const computed = this.loadMany(misses, rankConcurrency);
    misses.forEach((userId, i) => {
      this.pending += 1;
      const { promise, shared } = this.flights.do(userId, () => computed[i]!);
      if (shared) this.deps.metrics.coalesced.inc();
      outcomes[missAt[i]!] = promise;
      promise.then(
        () => (this.pending -= 1),
        () => (this.pending -= 1),
      );
    });
    return Promise.allSettled(outcomes);
  }

  /** `load` for many users: one promise per user, settled as soon as that user is done. */
  private loadMany(userIds: number[], rankConcurrency: number): Promise<Lookup>[] {
    const settle = userIds.map(() => {
      let resolve!: (lookup: Lookup) => void;
      let reject!: (err: unknown) => void;
      const promise = new Promise<Lookup>((res, rej) => ((resolve = res), (reject = rej)));
      return { promise, resolve, reject };
    });
    if (userIds.length === 0) return [];
    const { cache } = this.deps;
    void (async () => {
      // Tickets first: each is taken before the data read it will be stored under.
      const shared = await Promise.all(userIds.map((userId) => cache.getShared(userId)));
      const need: number[] = [];
      shared.forEach((s, i) => (s.list ? settle[i]!.resolve({ list: s.list, cacheHit: true }) : need.push(i)));
      if (need.length === 0) return;
      const staleOr = (i: number, err: unknown): void => {
        const stale = newest(cache.peekLocal(userIds[i]!), shared[i]!.stale);
        if (stale) settle[i]!.resolve({ list: stale, cacheHit: true, stale: true });
        else settle[i]!.reject(err);
      };
      if (Date.now() < this.dbDownUntil) return need.forEach((i) => staleOr(i, Errors.unavailable('Database')));
      let signals: Map<number, UserSignals>;
      try {
        signals = await this.deps.repo.userSignalsMany(need.map((i) => userIds[i]!));
      } catch (err) {
        if (!isServiceError(err) || err.code !== 'service_unavailable') return need.forEach((i) => settle[i]!.reject(err));
        this.dbDownUntil = Date.now() + DB_RETRY_AFTER_MS;
        return need.forEach((i) => staleOr(i, err));
      }
      let next = 0;
      const runner = async (): Promise<void> => {
        while (next < need.length) {
          const i = need[next++]!;
          const userId = userIds[i]!;
          const userSignals = signals.get(userId);
          if (!userSignals) {
            settle[i]!.reject(Errors.userNotFound(userId));
            continue;
          }
          try {
            const list = await this.rank(userSignals);
            cache.store(userId, list, shared[i]!.ticket);
            settle[i]!.resolve({ list, cacheHit: false });
          } catch (err) {
            settle[i]!.reject(err);
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(Math.max(1, rankConcurrency), need.length) }, runner));
    })().catch((err: unknown) => settle.forEach((s) => s.reject(err))); // settled ones ignore it
    return settle.map((s) => s.promise);
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
      signals = await this.deps.repo.userSignals(userId);
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
    const task = scoringTask(signals, { pool: model.candidatePool, keep: CACHED_LIST_SIZE, nowMs: Date.now(), noise: model.noise });
    try {
      const ranking = await this.deps.score(task);
      metrics.model.success.inc();
      metrics.modelDuration.observe((performance.now() - started) / 1000);
      return this.list(toRecommendations(ranking, signals.catalog), 'model');
    } catch (err) {
      if (isServiceError(err)) throw err;
      const reason = err instanceof ModelError ? err.reason : 'failure';
      metrics.model[reason].inc();
      metrics.fallbacks[reason].inc();
      return this.list(toRecommendations(popularityRanking(task), signals.catalog), 'popularity_fallback');
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
