/**
 * Two cache tiers for one computed list per user: L1 (in-process LRU, bounded by entries and bytes)
 * and L2 (Redis, shared by every process and instance).
 *
 * Consistency (DESIGN.md §7): a computation that read its data before a watch-history write must never
 * be stored after that write's invalidation. Both tiers check a generation taken BEFORE the data read:
 * - L1: a process-wide epoch; invalidating a user records the epoch at which it happened.
 * - L2: a per-user generation key in Redis, bumped atomically with the delete; stores are compare-and-set.
 * A reseed replaces every user at once: entries carry the data set version they were computed from, and
 * one of another version is a miss (useDataset).
 *
 * A user has one main list and one list per genre asked for (`?genre=`): each is an entry of its own in
 * both tiers (L1 key `id/genre`, a field of the Redis hash `rec:{id}:genres`), under the same generation,
 * and a user's invalidation drops them all at once.
 */
import { LRUCache } from 'lru-cache';
import { replicasFor, type RedisClient } from './redis.js';
import { HIT_BODIES_PER_LIST, HIT_BODY_ITEMS_PER_LIST } from '../domain/constants.js';
import { EXPLANATION_KINDS } from '../domain/model-tables.js';
import { explanationsJson, itemsJson } from '../domain/recommendation-json.js';
import type { Explanation, RecommendationList } from '../domain/types.js';
import type { Metrics } from '../observability/metrics.js';

export interface CacheOptions {
  ttlSec: number;
  fallbackTtlSec: number;
  /** How long past its freshness a list is kept to be served if PostgreSQL fails ("stale if error"). */
  staleTtlSec: number;
  l1MaxEntries: number;
  l1MaxBytes: number;
  /** Redis Cluster: how long an invalidation waits for the replicas of its slot to confirm it (WAIT). */
  replicaWaitMs: number;
}

/** What a miss learned before it read PostgreSQL; hand it back to store(). */
export interface Ticket {
  epoch: number;
  /** Redis generation at read time; undefined when Redis could not be asked (then L2 is not written). */
  sharedGen: string | undefined;
}

export interface SharedLookup {
  /** A fresh list, if Redis had one. */
  list: RecommendationList | undefined;
  /** A list past its freshness but within the stale TTL: an answer for when PostgreSQL is down. */
  stale: RecommendationList | undefined;
  ticket: Ticket;
}

/** Invalidation marks kept before the oldest ones are folded into one floor epoch. */
const MAX_INVALIDATION_MARKS = 100_000;
const GEN_TTL_SEC = 86_400;

const STORE_IF_GEN = `
local g = redis.call('GET', KEYS[2])
if (g or '') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1`;

/** A genre list is a field of the user's genres hash; the hash lives as long as its longest-lived field. */
const STORE_GENRE_IF_GEN = `
local g = redis.call('GET', KEYS[2])
if (g or '') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], ARGV[4], ARGV[2])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return 1`;

const INVALIDATE = `
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[1])
return redis.call('DEL', KEYS[1], KEYS[3])`;

/** INVALIDATE for many users in one call: KEYS are each user's list, generation and genres keys, in threes. */
const INVALIDATE_MANY = `
for i = 1, #KEYS, 3 do
  redis.call('INCR', KEYS[i + 1])
  redis.call('EXPIRE', KEYS[i + 1], ARGV[1])
  redis.call('DEL', KEYS[i], KEYS[i + 2])
end
return #KEYS / 3`;

interface CacheCommands {
  recStoreIfGen(listKey: string, genKey: string, gen: string, value: string, ttlMs: number): Promise<number>;
  recStoreGenreIfGen(genresKey: string, genKey: string, gen: string, value: string, ttlMs: number, genre: string): Promise<number>;
  recInvalidate(listKey: string, genKey: string, genresKey: string, genTtlSec: number): Promise<number>;
  /** `numberOfKeys`, then three keys per user (list, generation, genres), then the generation TTL. */
  recInvalidateMany(numberOfKeys: number, ...keysThenTtl: (string | number)[]): Promise<number>;
}

// Hash tags keep a user's keys in one slot, so the scripts (and a pipeline of them) also run on Redis Cluster.
const listKey = (userId: number) => `rec:{${userId}}:list`;
const genKey = (userId: number) => `rec:{${userId}}:gen`;
const genresKey = (userId: number) => `rec:{${userId}}:genres`;

/** L1 key of a user's main list (the number) or genre list (`id/genre`). */
type LocalKey = number | string;
const localKey = (userId: number, genre: string | undefined): LocalKey => (genre === undefined ? userId : `${userId}/${genre}`);

export class RecommendationCache {
  private readonly l1: LRUCache<LocalKey, RecommendationList> | null;
  /** L1 keys of each user's genre lists, so the user's invalidation finds them. */
  private readonly genreKeys = new Map<number, Set<string>>();
  private readonly redis: (RedisClient & CacheCommands) | null;
  private epoch = 0;
  private floor = 0;
  private readonly invalidatedAt = new Map<number, number>();
  private readonly pendingShared = new Set<number>();
  private retryTimer: NodeJS.Timeout | undefined;
  /** The data set (PostgreSQL `dataset.version`) the lists computed now come from; Redis entries carry it. */
  private dataset = '';

  constructor(
    redis: RedisClient | null,
    private readonly opts: CacheOptions,
    private readonly metrics: Metrics,
  ) {
    this.l1 =
      opts.l1MaxEntries > 0
        ? new LRUCache<LocalKey, RecommendationList>({
            max: opts.l1MaxEntries,
            maxSize: opts.l1MaxBytes,
            sizeCalculation: (list) => estimateBytes(list),
            ttl: (opts.ttlSec + opts.staleTtlSec) * 1000,
            dispose: (_list, key) => {
              if (typeof key === 'string') this.forgetGenreKey(key);
            },
          })
        : null;
    this.redis = redis ? withScripts(redis) : null;
    // Owed invalidations land the moment Redis is back, before anything is read from it again.
    redis?.on('ready', () => void this.retryPending());
    // A Cluster re-read its slot map (a failover: a promoted replica now owns the slots): retry at once.
    redis?.on('refresh', () => {
      if (this.pendingShared.size > 0) void this.retryPending();
    });
  }

  get hasShared(): boolean {
    return this.redis !== null;
  }

  /** L1 lookup of a fresh list: synchronous, the hot path. */
  getLocal(userId: number, genre?: string): RecommendationList | undefined {
    if (!this.l1) return undefined;
    const list = this.l1.get(genre === undefined ? userId : localKey(userId, genre));
    if (list !== undefined && list.freshUntil > Date.now()) {
      this.metrics.cache.l1.hit.inc();
      return list;
    }
    this.metrics.cache.l1.miss.inc();
    return undefined;
  }

  /** The L1 entry whatever its freshness (within the stale TTL), without touching recency or metrics. */
  peekLocal(userId: number, genre?: string): RecommendationList | undefined {
    return this.l1?.peek(localKey(userId, genre));
  }

  /**
   * Puts `next` in place of `previous` (the same list re-checked: a title taken out) if L1 still holds
   * `previous`, keeping its remaining lifetime.
   */
  replaceLocal(userId: number, genre: string | undefined, previous: RecommendationList, next: RecommendationList): void {
    const key = localKey(userId, genre);
    if (!this.l1 || this.l1.peek(key) !== previous) return;
    const ttl = this.l1.getRemainingTTL(key);
    if (ttl > 0) this.l1.set(key, next, { ttl });
  }

  /** L2 lookup; also reads the generation a following computation must store under. Never throws. */
  async getShared(userId: number, genre?: string): Promise<SharedLookup> {
    const epoch = this.epoch;
    const unknown = { list: undefined, stale: undefined, ticket: { epoch, sharedGen: undefined } };
    // A user whose Redis invalidation has not landed yet is never read from Redis by this process.
    if (!this.redis || this.pendingShared.has(userId)) return unknown;
    try {
      const [value, gen] = genre === undefined ? await this.redis.mget(listKey(userId), genKey(userId)) : await this.genreEntry(userId, genre);
      const ticket = { epoch, sharedGen: gen ?? '' };
      const parsed = value ? (JSON.parse(value) as StoredList) : undefined;
      const now = Date.now();
      // Computed from another data set (before or after a reseed this process has not seen yet), or by a
      // version that did not record the audience, or past even its stale lifetime (a hash field): not ours.
      const stored = parsed && parsed.v === this.dataset && parsed.a && parsed.e + this.opts.staleTtlSec * 1000 > now ? parsed : undefined;
      if (!stored || stored.e <= now) {
        this.metrics.cache.redis.miss.inc();
        return { list: undefined, stale: stored && fromStored(stored), ticket };
      }
      this.metrics.cache.redis.hit.inc();
      const list = fromStored(stored);
      this.setLocal(userId, genre, list, stored.e - now, epoch);
      return { list, stale: undefined, ticket };
    } catch {
      this.metrics.cache.redis.error.inc();
      return unknown;
    }
  }

  /** A genre list and the generation, read in one round trip (one slot: one node on a Cluster). */
  private async genreEntry(userId: number, genre: string): Promise<[string | null, string | null]> {
    const replies = (await this.redis!.pipeline().hget(genresKey(userId), genre).get(genKey(userId)).exec()) ?? [];
    for (const [err] of replies) if (err) throw err;
    return [(replies[0]?.[1] as string | null) ?? null, (replies[1]?.[1] as string | null) ?? null];
  }

  /** Stores a freshly computed list in both tiers unless the user was invalidated since `ticket`. */
  store(userId: number, list: RecommendationList, ticket: Ticket, genre?: string): void {
    const keepMs = list.freshUntil - Date.now() + this.opts.staleTtlSec * 1000;
    this.setLocal(userId, genre, list, keepMs, ticket.epoch);
    if (!this.redis || ticket.sharedGen === undefined || this.isStale(userId, ticket.epoch)) return;
    if (this.pendingShared.has(userId)) return;
    // The StoredList shape, from the items' cached JSON fragments (the response uses the same ones).
    const audience = `[${list.audience.tier},${JSON.stringify(list.audience.country)}]`;
    const explained = list.explanations?.length === list.items.length ? `,"x":${explanationsJson(list.explanations)}` : '';
    const stored = `{"v":"${this.dataset}","e":${list.freshUntil},"s":"${list.source}","g":"${list.generatedAt}","a":${audience},"i":${itemsJson(list)}${explained}}`;
    const ttlMs = Math.max(1, Math.round(keepMs));
    const write =
      genre === undefined
        ? this.redis.recStoreIfGen(listKey(userId), genKey(userId), ticket.sharedGen, stored, ttlMs)
        : this.redis.recStoreGenreIfGen(genresKey(userId), genKey(userId), ticket.sharedGen, stored, ttlMs, genre);
    write.catch(() => this.metrics.cache.redis.error.inc());
  }

  /** How long a freshly computed list of this source stays fresh, ms. */
  freshnessMs(source: RecommendationList['source']): number {
    return (source === 'model' ? this.opts.ttlSec : this.opts.fallbackTtlSec) * 1000;
  }

  /** Drops the user's L1 entry and marks every computation that started earlier as stale. */
  invalidateLocal(userId: number): void {
    this.epoch += 1;
    if (this.invalidatedAt.size >= MAX_INVALIDATION_MARKS) {
      // Bounded memory: forget individual marks, treat everything started before now as stale.
      this.invalidatedAt.clear();
      this.floor = this.epoch;
    }
    this.invalidatedAt.set(userId, this.epoch);
    this.l1?.delete(userId);
    const genres = this.genreKeys.get(userId);
    if (genres) for (const key of [...genres]) this.l1?.delete(key); // dispose takes each out of the set
    this.metrics.invalidations.inc();
  }

  /**
   * Drops every L1 entry and marks every computation in flight as stale: for when invalidations may
   * have been missed (the primary's LISTEN connection was re-established).
   */
  invalidateAllLocal(): void {
    this.epoch += 1;
    this.invalidatedAt.clear();
    this.floor = this.epoch;
    this.l1?.clear();
    this.genreKeys.clear();
  }

  /**
   * The tables were replaced (a reseed) and this process now computes from data set `version`: every L1
   * entry and every computation in flight is dropped (invalidateAllLocal), and Redis entries of any other
   * data set read as misses from now on. They are not deleted - Redis may be shared with instances that
   * have not switched yet, and each expires with its TTL. A computation that started before this call
   * is never stored (its epoch is below the floor), so what is stored under `version` was computed from it.
   */
  useDataset(version: string): void {
    if (version === this.dataset) return;
    const first = this.dataset === '';
    this.dataset = version;
    if (!first) this.invalidateAllLocal();
  }

  /**
   * Deletes the user's Redis entry and bumps its generation in one atomic step. When Redis cannot be
   * reached, the user is remembered and retried until it lands (at once on reconnect); until then this
   * process neither reads nor writes the user's Redis entry. Resolves false when it had to defer.
   */
  async invalidateShared(userId: number): Promise<boolean> {
    if (!this.redis) return true;
    try {
      await invalidateSharedEntry(this.redis, userId, this.opts.ttlSec + this.opts.staleTtlSec, this.opts.replicaWaitMs);
      return true;
    } catch {
      this.metrics.cache.redis.error.inc();
      this.pendingShared.add(userId);
      this.scheduleRetry();
      return false;
    }
  }

  /**
   * invalidateShared for many users (a bulk write): pipelined, not one round trip each. Resolves with the
   * users whose invalidation had to be deferred (each then pending as in invalidateShared); empty when all landed.
   */
  async invalidateSharedMany(userIds: readonly number[]): Promise<number[]> {
    if (!this.redis || userIds.length === 0) return [];
    const deferred = await invalidateSharedEntries(this.redis, userIds, this.opts.ttlSec + this.opts.staleTtlSec, this.opts.replicaWaitMs);
    if (deferred.length > 0) {
      this.metrics.cache.redis.error.inc();
      for (const userId of deferred) this.pendingShared.add(userId);
      this.scheduleRetry();
    }
    return deferred;
  }

  /**
   * Another process could not land (or replicate) the user's Redis invalidation: until this process
   * lands one itself, it neither reads nor writes the user's Redis entry (see invalidateSharedEntry).
   */
  markSharedPending(userId: number): void {
    if (!this.redis) return;
    this.pendingShared.add(userId);
    this.scheduleRetry();
  }

  /** Users whose Redis invalidation is still owed. */
  get pendingInvalidations(): number {
    return this.pendingShared.size;
  }

  private scheduleRetry(delayMs = 250): void {
    if (this.retryTimer || !this.redis) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.retryPending(Math.min(delayMs * 2, 5000));
    }, delayMs);
    this.retryTimer.unref();
  }

  private async retryPending(nextDelayMs = 250): Promise<void> {
    if (!this.redis) return;
    for (const userId of [...this.pendingShared]) {
      try {
        await invalidateSharedEntry(this.redis, userId, this.opts.ttlSec + this.opts.staleTtlSec, this.opts.replicaWaitMs);
        this.pendingShared.delete(userId);
      } catch {
        this.scheduleRetry(nextDelayMs);
        return;
      }
    }
  }

  private isStale(userId: number, epoch: number): boolean {
    return epoch < this.floor || (this.invalidatedAt.get(userId) ?? -1) > epoch;
  }

  private setLocal(userId: number, genre: string | undefined, list: RecommendationList, ttlMs: number, epoch: number): void {
    if (!this.l1 || ttlMs <= 0 || this.isStale(userId, epoch)) return;
    const key = localKey(userId, genre);
    this.l1.set(key, list, { ttl: ttlMs });
    if (typeof key === 'string' && this.l1.has(key)) {
      let keys = this.genreKeys.get(userId);
      if (!keys) this.genreKeys.set(userId, (keys = new Set()));
      keys.add(key);
    }
  }

  private forgetGenreKey(key: string): void {
    const userId = Number(key.slice(0, key.indexOf('/')));
    const keys = this.genreKeys.get(userId);
    if (!keys) return;
    keys.delete(key);
    if (keys.size === 0) this.genreKeys.delete(userId);
  }
}

function withScripts(redis: RedisClient): RedisClient & CacheCommands {
  const r = redis as RedisClient & Partial<CacheCommands>;
  if (typeof r.recInvalidateMany !== 'function') {
    redis.defineCommand('recInvalidateMany', { lua: INVALIDATE_MANY });
  }
  if (typeof r.recInvalidate !== 'function') {
    redis.defineCommand('recStoreIfGen', { numberOfKeys: 2, lua: STORE_IF_GEN });
    redis.defineCommand('recStoreGenreIfGen', { numberOfKeys: 2, lua: STORE_GENRE_IF_GEN });
    redis.defineCommand('recInvalidate', { numberOfKeys: 3, lua: INVALIDATE });
  }
  return redis as RedisClient & CacheCommands;
}

/**
 * Deletes a user's Redis entry and bumps its generation atomically (also used by the primary on NOTIFY).
 * Resolves only once the invalidation will survive a failover; rejects otherwise (the caller defers it).
 *
 * Redis Cluster replicates asynchronously: a master can acknowledge the script and die before its replica
 * received it. The promoted replica would then hold the old list AND the old generation, so a later read
 * serves the old list and a computation that read PostgreSQL before the write still passes STORE_IF_GEN.
 * So on a Cluster the script is followed, on the same connection (one pipeline: it goes to the slot's
 * master), by `WAIT <replicas of the slot> <replicaWaitMs>`. The replication stream is ordered, so a
 * replica that acknowledged holds this invalidation and every write before it; whichever node serves the
 * slot after a failover has it. Fewer acknowledgements (a replica lagging or cut off, the master dying
 * mid-way) reject: the invalidation is NOT done, and every process that learns of the write keeps the user
 * pending (markSharedPending) until it lands a replicated invalidation itself - after a failover that is
 * on the promoted node, which deletes the old entry there. A single Redis, or a master without replicas,
 * has nothing that could be promoted without the write: no WAIT, nothing changes.
 */
export async function invalidateSharedEntry(
  redis: RedisClient,
  userId: number,
  cacheTtlSec: number,
  replicaWaitMs: number,
): Promise<void> {
  const scripts = withScripts(redis);
  const genTtlSec = Math.max(GEN_TTL_SEC, cacheTtlSec * 2);
  if (!('slots' in redis)) {
    await scripts.recInvalidate(listKey(userId), genKey(userId), genresKey(userId), genTtlSec);
    return;
  }
  // The replicas to wait for: those the slot map lists (it keeps a disconnected one until the cluster marks
  // it failed, but it is up to 5 s old and Redis 7.0 leaves out replicas at offset 0), and those connected
  // to the master now (a replica that joined since). One round trip, then WAIT on the same slot's master.
  type Replies = [Error | null, unknown][];
  const first = (await (scripts.pipeline() as Pipelined)
    .recInvalidate(listKey(userId), genKey(userId), genresKey(userId), genTtlSec)
    .info('replication')
    .exec()) as Replies | null;
  for (const [err] of first ?? []) if (err) throw err;
  const connected = Number(/connected_slaves:(\d+)/.exec(String(first?.[1]?.[1]))?.[1] ?? 0);
  const replicas = Math.max(connected, replicasFor(redis, listKey(userId)));
  if (replicas === 0) return;
  const second = (await redis.pipeline().pttl(genKey(userId)).call('WAIT', replicas, replicaWaitMs).exec()) as Replies | null;
  for (const [err] of second ?? []) if (err) throw err;
  const acknowledged = Number(second?.[1]?.[1] ?? 0);
  if (acknowledged < replicas) {
    throw new Error(`invalidation of user ${userId} reached ${acknowledged} of ${replicas} replicas`);
  }
}

/** Users one INVALIDATE_MANY call invalidates: small enough that its reply arrives within the command timeout. */
const INVALIDATIONS_PER_CALL = 250;
/** Redis Cluster: users invalidated at once (each its own slot's pipeline and WAIT). */
const CLUSTER_INVALIDATIONS_IN_FLIGHT = 32;

/**
 * invalidateSharedEntry for many users, with its guarantee for each: resolves with the users whose
 * invalidation did not land (or, on a Cluster, was not replicated), never rejects. One Redis: one script call
 * per INVALIDATIONS_PER_CALL users (each user's step atomic as in INVALIDATE), one call after another: a call
 * per user costs Redis more than the step itself. A Cluster script must stay within one slot, so there each
 * user is invalidated as by invalidateSharedEntry, CLUSTER_INVALIDATIONS_IN_FLIGHT at once.
 */
export async function invalidateSharedEntries(
  redis: RedisClient,
  userIds: readonly number[],
  cacheTtlSec: number,
  replicaWaitMs: number,
): Promise<number[]> {
  const failed: number[] = [];
  if ('slots' in redis) {
    let next = 0;
    const runner = async (): Promise<void> => {
      while (next < userIds.length) {
        const userId = userIds[next++]!;
        await invalidateSharedEntry(redis, userId, cacheTtlSec, replicaWaitMs).catch(() => failed.push(userId));
      }
    };
    await Promise.all(Array.from({ length: Math.min(CLUSTER_INVALIDATIONS_IN_FLIGHT, userIds.length) }, runner));
    return failed;
  }
  const scripts = withScripts(redis);
  const genTtlSec = Math.max(GEN_TTL_SEC, cacheTtlSec * 2);
  for (let start = 0; start < userIds.length; start += INVALIDATIONS_PER_CALL) {
    const chunk = userIds.slice(start, start + INVALIDATIONS_PER_CALL);
    const keys = chunk.flatMap((userId) => [listKey(userId), genKey(userId), genresKey(userId)]);
    await scripts.recInvalidateMany(keys.length, ...keys, genTtlSec).catch(() => failed.push(...chunk));
  }
  return failed;
}

type Pipelined = ReturnType<RedisClient['pipeline']> & {
  recInvalidate(listKey: string, genKey: string, genresKey: string, genTtlSec: number): ReturnType<RedisClient['pipeline']>;
};

function fromStored(stored: StoredList): RecommendationList {
  // checked 0: its titles are checked against this process's visibility before it is served.
  const list: RecommendationList = { items: stored.i, source: stored.s, generatedAt: stored.g, freshUntil: stored.e, audience: { tier: stored.a[0], country: stored.a[1] }, checked: 0 };
  if (wellFormed(stored.x, stored.i.length)) list.explanations = stored.x;
  return list;
}

const KINDS = new Set<string>(EXPLANATION_KINDS);

/** Explanations read back as the wire writes them unescaped: known kinds, integer ids, one per item. */
function wellFormed(x: Explanation[] | undefined, items: number): x is Explanation[] {
  return (
    Array.isArray(x) &&
    x.length === items &&
    x.every((e) => KINDS.has(e?.kind) && (e.because === undefined || (Array.isArray(e.because) && e.because.every(Number.isSafeInteger))))
  );
}

/** Redis value: short keys, the list as computed. */
interface StoredList {
  /** data set version it was computed from */
  v: string;
  /** fresh until, epoch ms */
  e: number;
  s: RecommendationList['source'];
  g: string;
  /** audience: tier index, country */
  a: [number, string | null];
  i: RecommendationList['items'];
  /** explanations, parallel to i (absent: stored before lists carried them) */
  x?: Explanation[];
}

/**
 * Heap bytes an L1 entry keeps alive while cached: an upper-ish estimate, measured (scripts/l1-bound.mjs:
 * heapUsed after full GCs over thousands of lists built as the service builds them, stored in this cache,
 * with the bodies the wire layer attaches). Per item, with `text` its title + genre characters:
 * - the list itself, ~200 B + text: an item object with two heap numbers, and strings of its own (a list
 *   parsed from Redis, or one that outlived the catalog snapshot whose titles it shared);
 * - the JSON fragment src/http/bodies.ts keeps for every item, ~240 B + text (a fragment is ~85 chars
 *   of JSON besides the text, held as the concatenation JSON.stringify built);
 * - its share of the cache-hit bodies bodies.ts keeps per list: at most 60 items of JSON in all
 *   (HIT_BODY_ITEMS_PER_LIST in domain/constants.ts: limits 10 and 50), ~100 B + text an item, plus ~256 B a body.
 * Text is counted at one byte a character (Latin-1, as the seed's titles; other text takes two).
 * Measured at 50 items of seed titles: list 7.0–11.6 KB, fragments 11.8 KB, bodies of limits 10 and 50
 * 7.0 KB, so 26–30 KB held; estimated ~32 KB. The previous estimate (12 KB) left the fragments and bodies
 * out: an L1 "full" at L1_MAX_BYTES held 2.1× that on the heap. A list's explanations (50 of them: 5.1 KB as
 * computed, 6.4 KB as parsed from Redis; node --expose-gc, 10k lists) are counted on top.
 */
export function estimateBytes(list: RecommendationList): number {
  const n = list.items.length;
  let text = 0;
  for (const item of list.items) text += item.title.length + item.genre.length;
  const bodyItems = Math.min(HIT_BODY_ITEMS_PER_LIST, HIT_BODIES_PER_LIST * n);
  const bodies = n > 0 ? HIT_BODIES_PER_LIST * 256 + bodyItems * 100 + Math.ceil((text * bodyItems) / n) : 0;
  // Explanations: ~100 B an item as computed, ~130 B parsed from Redis (an object and its `because` array).
  const explained = list.explanations ? list.explanations.length * 130 : 0;
  return 512 + list.generatedAt.length + n * (200 + 240) + 2 * text + bodies + explained;
}
