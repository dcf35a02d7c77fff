/**
 * The recommendation pipeline (DESIGN.md §4): L1 → Redis → singleflight → PostgreSQL → model behind a
 * circuit breaker → popularity fallback. Knows nothing of HTTP; throws only ServiceError.
 */
import { CACHED_LIST_SIZE } from '../domain/constants.js';
import { Errors, ModelError, isServiceError } from '../domain/errors.js';
import type { CatalogSnapshot } from '../domain/catalog-columns.js';
import { EXPLANATION_KINDS, REASON } from '../domain/model-tables.js';
import type { Explanation, Ranking, RecommendationList, RecommendationSource, ScoringTask, UserSignals } from '../domain/types.js';
import type { RecommendationCache } from '../data/recommendation-cache.js';
import type { RecommendationRepo, WatchRecord } from '../data/recommendation-repo.js';
import type { Metrics } from '../observability/metrics.js';
import type { Logger } from '../observability/logger.js';
import { popularityRanking, scoringTask, toRecommendations } from '../recommenders/heuristic.js';
import type { ServedModel } from './served-model.js';
import { Singleflight } from './singleflight.js';
import type { Visibility } from './visibility.js';

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
  /** Which titles may be served now: every list passes through it on its way out. */
  visibility: Visibility;
  /**
   * Tells every other process on this instance to drop the user's entry; resolves when they have.
   * `sharedPending`: this process's Redis invalidation did not land (or was not replicated), so each of
   * them must land its own before it reads the user from Redis. `lsn` (with replicas): the write's WAL
   * position, which their replica reads of the user must have replayed.
   */
  broadcastInvalidation: (userId: number, sharedPending: boolean, lsn?: string) => Promise<void>;
  /** broadcastInvalidation for many users in one message; `sharedPending`: those of them whose Redis invalidation is owed. */
  broadcastInvalidations: (userIds: readonly number[], sharedPending: readonly number[], lsn?: string) => Promise<void>;
  /** The model that ranks (MODEL) and its tables for a catalog snapshot; absent: the seed's formula. */
  servedModel?: Pick<ServedModel, 'tablesFor'>;
}

export class RecommendationService {
  private readonly flights = new Singleflight<number, Lookup>();
  /** Genre lists' computations, keyed `id/genre`, and each user's keys among them (to forget them). */
  private readonly genreFlights = new Singleflight<string, Lookup>();
  private readonly genreFlightKeys = new Map<number, Set<string>>();
  private pending = 0;
  /** Until then PostgreSQL is taken as down: reads answer from stale lists or 503 without queueing. */
  private dbDownUntil = 0;

  constructor(private readonly deps: ServiceDeps) {}

  /**
   * Synchronous L1 lookup: the hot path answers without a single await. A list checked at the current
   * visibility version is returned as is (one comparison); otherwise its titles are checked once.
   */
  cached(userId: number, genre?: string): RecommendationList | undefined {
    const list = this.deps.cache.getLocal(userId, genre);
    if (list === undefined || list.checked === this.deps.visibility.version) return list;
    return this.recheck(userId, genre, list);
  }

  /**
   * The full lookup: L1, then one shared computation per user and list (Redis, then PostgreSQL + model).
   * `l1Missed`: the caller has just looked in L1 itself (the hot path) — do not look (and count) twice.
   * `genre`: the user's list of that genre's titles only (cached apart from the main list).
   * `explained`: the caller shows explanations — a cached list that cannot give them is computed again.
   */
  async recommendationsFor(userId: number, l1Missed = false, genre?: string, explained = false): Promise<Lookup> {
    const local = l1Missed ? undefined : this.cached(userId, genre);
    if (local && (!explained || explains(local))) return { list: local, cacheHit: true };
    const key = genre === undefined ? undefined : `${userId}/${genre}`;
    const joins = key === undefined ? this.flights.has(userId) : this.genreFlights.has(key);
    if (this.pending >= this.deps.maxPendingComputations && !joins) {
      throw Errors.unavailable('Recommendation capacity');
    }
    const { promise, shared } =
      key === undefined ? this.flights.do(userId, () => this.counted(userId, undefined, explained)) : this.genreFlight(userId, genre!, key, explained);
    if (shared) this.deps.metrics.coalesced.inc();
    return this.servable(userId, genre, await promise);
  }

  private genreFlight(userId: number, genre: string, key: string, explained: boolean): { promise: Promise<Lookup>; shared: boolean } {
    const flight = this.genreFlights.do(key, () => this.counted(userId, genre, explained));
    if (!flight.shared) {
      let keys = this.genreFlightKeys.get(userId);
      if (!keys) this.genreFlightKeys.set(userId, (keys = new Set()));
      keys.add(key);
      const done = (): void => {
        keys.delete(key);
        if (keys.size === 0 && this.genreFlightKeys.get(userId) === keys) this.genreFlightKeys.delete(userId);
      };
      flight.promise.then(done, done);
    }
    return flight;
  }

  /** Records a watch event; when it resolves, no process of this instance serves a list that predates it. */
  async recordWatch(userId: number, contentId: number): Promise<WatchRecord> {
    // addWatch has already noted the write's position (invalidateLocal notes it again, as for every source):
    // a computation starting during the Redis invalidation below reads the new generation, so it must not
    // read a replica that lacks the write, or it would store an old list under that generation.
    const { record, lsn } = await this.deps.repo.addWatch(userId, contentId);
    await this.afterUserWrite(userId, lsn);
    return record;
  }

  /**
   * A committed write changed what the user may be recommended (a watch event, a dismissal, their tier or
   * country): when this resolves, no process of this instance serves a list of theirs that predates it.
   * `lsn`: the write's WAL position (read replicas), already noted by the repository that wrote it.
   */
  async afterUserWrite(userId: number, lsn: string | undefined): Promise<void> {
    // Redis before L1: a miss between the two would otherwise refill L1 from the old Redis entry.
    const landed = await this.deps.cache.invalidateShared(userId);
    if (!landed) this.deps.log.warn({ userId }, 'redis invalidation not landed (unavailable or not replicated): deferred, every worker retries it');
    this.invalidateLocal(userId, lsn);
    await this.deps.broadcastInvalidation(userId, !landed, lsn);
  }

  /**
   * afterUserWrite for many users at once: the same steps in the same order (Redis, then this process, then
   * every other process), each step done for all of them together — pipelined Redis, one broadcast.
   */
  async afterUsersWrite(userIds: readonly number[], lsn: string | undefined): Promise<void> {
    const deferred = await this.deps.cache.invalidateSharedMany(userIds);
    if (deferred.length > 0) {
      this.deps.log.warn({ users: deferred.length }, 'redis invalidations not landed (unavailable or not replicated): deferred, every worker retries them');
    }
    for (const userId of userIds) this.invalidateLocal(userId, lsn);
    await this.deps.broadcastInvalidations(userIds, deferred, lsn);
  }

  /** The lookup with its list's titles checked against the visibility now (see cached). */
  private servable(userId: number, genre: string | undefined, lookup: Lookup): Lookup {
    const { list } = lookup;
    if (list.checked === this.deps.visibility.version) return lookup;
    return { ...lookup, list: this.recheck(userId, genre, list) };
  }

  /**
   * Takes out of a list what may no longer be shown to its audience (hidden since, restricted since) and
   * records the version it was checked at. A list that loses titles is replaced in L1 by the shorter one;
   * it is recomputed in full at its TTL or at the user's next invalidation.
   */
  private recheck(userId: number, genre: string | undefined, list: RecommendationList): RecommendationList {
    const { visibility } = this.deps;
    const version = visibility.version;
    const keep = list.items.map((item) => visibility.allows(item.content_id, list.audience));
    const explanations = list.explanations && withoutHidden(list.explanations, visibility);
    if (!keep.includes(false) && explanations === list.explanations) {
      list.checked = version;
      return list;
    }
    const items = list.items.filter((_, i) => keep[i]);
    const next: RecommendationList = { ...list, items, checked: version };
    if (explanations) next.explanations = explanations.filter((_, i) => keep[i]);
    this.deps.cache.replaceLocal(userId, genre, list, next);
    return next;
  }

  /**
   * Forgets every cached list and in-flight computation of this process (missed invalidations). `lsn`:
   * where those writes end in the WAL; every later replica read must have replayed it (ipc.ts).
   */
  invalidateAll(lsn?: string): void {
    this.deps.repo.noteWrite(undefined, lsn);
    this.deps.cache.invalidateAllLocal();
    this.flights.forgetAll();
    this.genreFlights.forgetAll();
    this.genreFlightKeys.clear();
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
    const genreKeys = this.genreFlightKeys.get(userId);
    if (genreKeys) {
      for (const key of genreKeys) this.genreFlights.forget(key);
      this.genreFlightKeys.delete(userId);
    }
  }

  /**
   * recommendationsFor for many users (a batch page): the same tiers and consistency rules, but the users
   * that miss both caches share ONE PostgreSQL query instead of one each. Each such user is a singleflight
   * computation of its own (single requests meanwhile join it), its ticket is taken before the shared read,
   * and at most `rankConcurrency` of them are ranked at once. One outcome per user, in order.
   * `store: false` (a batch job that asked not to warm the caches): computed lists are not cached.
   */
  recommendationsForMany(userIds: readonly number[], rankConcurrency: number, opts: { store?: boolean } = {}): Promise<PromiseSettledResult<Lookup>[]> {
    const outcomes = new Array<Promise<Lookup>>(userIds.length);
    const misses: number[] = [];
    const missAt: number[] = [];
    for (const [index, userId] of userIds.entries()) {
      const local = this.cached(userId);
      if (local) outcomes[index] = Promise.resolve({ list: local, cacheHit: true });
      else if (this.flights.has(userId)) outcomes[index] = this.recommendationsFor(userId); // joins it
      else if (this.pending + misses.length >= this.deps.maxPendingComputations) {
        outcomes[index] = Promise.reject(Errors.unavailable('Recommendation capacity'));
      } else {
        misses.push(userId);
        missAt.push(index);
      }
    }
    const computed = this.loadMany(misses, rankConcurrency, opts.store !== false);
    misses.forEach((userId, i) => {
      this.pending += 1;
      const { promise, shared } = this.flights.do(userId, () => computed[i]!);
      if (shared) this.deps.metrics.coalesced.inc();
      outcomes[missAt[i]!] = promise.then((lookup) => this.servable(userId, undefined, lookup));
      promise.then(
        () => (this.pending -= 1),
        () => (this.pending -= 1),
      );
    });
    return Promise.allSettled(outcomes);
  }

  /** `load` for many users: one promise per user, settled as soon as that user is done. */
  private loadMany(userIds: number[], rankConcurrency: number, store: boolean): Promise<Lookup>[] {
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
            if (store) cache.store(userId, list, shared[i]!.ticket);
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

  private async counted(userId: number, genre?: string, explained = false): Promise<Lookup> {
    this.pending += 1;
    try {
      return await this.load(userId, genre, explained);
    } finally {
      this.pending -= 1;
    }
  }

  private async load(userId: number, genre?: string, explained = false): Promise<Lookup> {
    const { cache } = this.deps;
    const shared = await cache.getShared(userId, genre);
    if (shared.list && (!explained || explains(shared.list))) return { list: shared.list, cacheHit: true };
    // Explanations asked of a list stored without them (before lists carried them): it is computed again and
    // stored over; while that cannot be done, it is still the answer.
    const unexplained = shared.list && { list: shared.list, cacheHit: true };
    const stale = newest(cache.peekLocal(userId, genre), shared.stale);
    // PostgreSQL failed a moment ago: answer now (stale list, else 503) instead of queueing behind it;
    // the first request after the pause probes it again.
    if (Date.now() < this.dbDownUntil) {
      if (unexplained) return unexplained;
      if (stale) return { list: stale, cacheHit: true, stale: true };
      throw Errors.unavailable('Database');
    }
    let signals: UserSignals | null;
    try {
      signals = await this.deps.repo.userSignals(userId);
    } catch (err) {
      if (!isServiceError(err) || err.code !== 'service_unavailable') throw err;
      this.dbDownUntil = Date.now() + DB_RETRY_AFTER_MS;
      if (unexplained) return unexplained;
      // Stale if error: an expired list beats a 503 while PostgreSQL is down or hung.
      if (stale) return { list: stale, cacheHit: true, stale: true };
      throw err;
    }
    if (!signals) throw Errors.userNotFound(userId);
    const list = await this.rank(signals, genre);
    this.deps.cache.store(userId, list, shared.ticket, genre);
    return { list, cacheHit: false };
  }

  private async rank(signals: UserSignals, genre?: string): Promise<RecommendationList> {
    const { model, metrics, visibility } = this.deps;
    const started = performance.now();
    // The version before the task reads what is hidden: a hide after it makes the list be checked again.
    const checked = visibility.version;
    const task = scoringTask(signals, {
      ...(this.deps.servedModel ? { model: this.deps.servedModel.tablesFor(signals.catalog) } : {}),
      pool: model.candidatePool,
      keep: CACHED_LIST_SIZE,
      nowMs: Date.now(),
      noise: model.noise,
      exclude: visibility.hiddenSinceSnapshot,
      ...(genre !== undefined ? { genre } : {}),
    });
    const list = (ranking: Ranking, source: RecommendationSource): RecommendationList => {
      const now = Date.now();
      const freshUntil = now + this.deps.cache.freshnessMs(source);
      return {
        items: toRecommendations(ranking, signals.catalog),
        explanations: explanationsOf(ranking, signals.catalog, source, visibility),
        source,
        generatedAt: new Date(now).toISOString(),
        freshUntil,
        audience: signals.audience,
        checked,
      };
    };
    try {
      const ranking = await this.deps.score(task);
      metrics.model.success.inc();
      metrics.modelDuration.observe((performance.now() - started) / 1000);
      return list(ranking, 'model');
    } catch (err) {
      if (isServiceError(err)) throw err;
      const reason = err instanceof ModelError ? err.reason : 'failure';
      metrics.model[reason].inc();
      metrics.fallbacks[reason].inc();
      return list(popularityRanking(task), 'popularity_fallback');
    }
  }
}

/**
 * Whether a list can say why each item is there: it carries explanations, or it is a fallback list (every
 * item `fallback`). Only a list stored in Redis before lists carried explanations cannot.
 */
export function explains(list: RecommendationList): boolean {
  return list.explanations !== undefined || list.source === 'popularity_fallback';
}

/**
 * A ranking's reasons as the API names them, with content ids; every item of a fallback list is `fallback`.
 * A hidden title is never shown, not even as a reason: `because` leaves it out.
 */
function explanationsOf(ranking: Ranking, catalog: CatalogSnapshot, source: RecommendationSource, visibility: Visibility): Explanation[] {
  return ranking.positions.map((_, i) => {
    if (source === 'popularity_fallback') return { kind: 'fallback' };
    const kind = EXPLANATION_KINDS[ranking.reasons?.[i] ?? REASON.popular]!;
    const because = ranking.because?.[i]?.map((p) => catalog.ids[p]!).filter((id) => visibility.allows(id));
    return because && because.length > 0 ? { kind, because } : { kind };
  });
}

/** Explanations without the titles hidden since they were given (the same array when none was). */
function withoutHidden(explanations: Explanation[], visibility: Visibility): Explanation[] {
  let out: Explanation[] | undefined;
  explanations.forEach((e, i) => {
    if (!e.because?.some((id) => !visibility.allows(id))) return;
    out ??= [...explanations];
    const because = e.because.filter((id) => visibility.allows(id));
    out[i] = because.length > 0 ? { kind: e.kind, because } : { kind: e.kind };
  });
  return out ?? explanations;
}

function newest(a: RecommendationList | undefined, b: RecommendationList | undefined): RecommendationList | undefined {
  if (!a || !b) return a ?? b;
  return a.freshUntil >= b.freshUntil ? a : b;
}
