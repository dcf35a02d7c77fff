import type postgres from 'postgres';
import { mulberry32 } from '../domain/random.js';
import {
  advanceSequences, analyzeDataset, beginLoad, CHUNK_ROWS, copyRows, type LoadProgress, pauseForBulkLoad,
  refreshUserStats, replaceDataset, truncateDataset,
} from './bulk-load.js';
import {
  MAINSTREAM_SHARE, TasteCatalog, titleTastes, UNIFORM_SHARE, UserTastes, WeightedPicker, type TitleTastes,
} from './seed-tastes.js';

/** `users`, `content`, `user_watch_history`, `user_dismissals`, then `indexes` (rebuilding indexes and foreign keys). */
export type SeedProgress = LoadProgress;

export interface SeedOptions {
  users: number;
  content: number;
  events: number;
  /** Truncate the tables first; without it a non-empty database is an error. */
  reset?: boolean;
  /** PRNG seed (default 42): same options, byte-identical data. */
  seed?: number;
  onProgress?: (p: SeedProgress) => void;
}

export interface SeedResult {
  users: number;
  content: number;
  events: number;
  /** "Not interested" feedback, about one per DISMISSALS_PER_EVENT watch events. */
  dismissals: number;
  elapsedMs: number;
}

/** The seed's default data set. */
export const DEFAULT_SEED_SIZE = { users: 20, content: 50, events: 200 } as const;
export const DEFAULT_SEED = 42;
/** Every seeded date is relative to this instant, never to "now", so reruns are byte-identical. */
export const SEED_EPOCH_MS = Date.UTC(2026, 0, 1);

export const GENRES = [
  'action', 'comedy', 'drama', 'sci-fi', 'horror', 'romance', 'documentary', 'thriller', 'animation', 'fantasy',
] as const;

/** Two word lists per genre: 16 × 16 titles before sequels ("Iron Protocol 2") begin. */
const TITLE_WORDS: Record<(typeof GENRES)[number], readonly [readonly string[], readonly string[]]> = {
  action: [
    ['Iron', 'Steel', 'Rogue', 'Final', 'Burning', 'Silent', 'Crimson', 'Last', 'Dead', 'Black', 'Rapid', 'Savage', 'Broken', 'Hard', 'Lethal', 'Shadow'],
    ['Protocol', 'Strike', 'Vendetta', 'Pursuit', 'Ransom', 'Siege', 'Extraction', 'Fury', 'Target', 'Justice', 'Outpost', 'Payback', 'Convoy', 'Breach', 'Line', 'Force'],
  ],
  comedy: [
    ['Totally', 'Accidental', 'Weekend', 'Awkward', 'Wedding', 'Office', 'Holiday', 'Neighbourhood', 'Lucky', 'Crazy', 'Family', 'Midlife', 'Roommate', 'Reunion', 'Budget', 'Perfect'],
    ['Disaster', 'Getaway', 'Plan', 'Party', 'Trouble', 'Swap', 'Road Trip', 'Mix-Up', 'Crashers', 'Heist', 'Business', 'Vacation', 'Surprise', 'Schemes', 'Affair', 'Chaos'],
  ],
  drama: [
    ['Quiet', 'Distant', 'Broken', 'Northern', 'Silent', 'Paper', 'Winter', 'Borrowed', 'Fading', 'Open', 'Restless', 'Golden', 'Hollow', 'Second', 'Narrow', 'Still'],
    ['Years', 'Shore', 'Promise', 'Letters', 'Hours', 'Harvest', 'Season', 'Waters', 'Ground', 'Tide', 'Voices', 'Orchard', 'Bridge', 'Light', 'Room', 'River'],
  ],
  'sci-fi': [
    ['Quantum', 'Stellar', 'Orbital', 'Neon', 'Synthetic', 'Event', 'Dark', 'Solar', 'Void', 'Hyper', 'Binary', 'Cryo', 'Ion', 'Nova', 'Zero', 'Echo'],
    ['Horizon', 'Frontier', 'Drift', 'Signal', 'Colony', 'Paradox', 'Genesis', 'Relay', 'Station', 'Singularity', 'Machine', 'Vector', 'Array', 'Exodus', 'Nebula', 'Outlands'],
  ],
  horror: [
    ['Hollow', 'Crimson', 'Whispering', 'Rotten', 'Black', 'Bleeding', 'Haunted', 'Cursed', 'Midnight', 'Grave', 'Pale', 'Buried', 'Twisted', 'Sleepless', 'Wicked', 'Silent'],
    ['House', 'Woods', 'Hour', 'Ritual', 'Cellar', 'Mask', 'Asylum', 'Doll', 'Chapel', 'Visitor', 'Harvest', 'Lake', 'Attic', 'Curse', 'Night', 'Well'],
  ],
  romance: [
    ['Summer', 'Paris', 'Second', 'Little', 'Endless', 'Sweet', 'Secret', 'Lost', 'Starlit', 'Unexpected', 'Autumn', 'Forever', 'Tender', 'Stolen', 'Moonlit', 'Hidden'],
    ['Kiss', 'Promise', 'Letters', 'Vows', 'Chance', 'Heart', 'Affair', 'Dance', 'Serenade', 'Romance', 'Embrace', 'Season', 'Encounter', 'Sunset', 'Rendezvous', 'Love'],
  ],
  documentary: [
    ['Inside the', 'Beyond the', 'Life on the', 'Secrets of the', 'Voices of the', 'Wild', 'Deep', 'Rise of the', 'Fall of the', 'Our', 'Hidden', 'Ancient', 'Frozen', 'Living', 'Lost', 'Untold'],
    ['Planet', 'Oceans', 'Empires', 'Cities', 'Machines', 'Rivers', 'Mountains', 'Forests', 'Deserts', 'Islands', 'Frontiers', 'Kingdoms', 'Reefs', 'Skies', 'Tribes', 'Histories'],
  ],
  thriller: [
    ['Dead', 'Cold', 'Silent', 'Blind', 'Twelfth', 'Double', 'Glass', 'Night', 'Sleeping', 'Zero', 'Hidden', 'Final', 'Burnt', 'Perfect', 'Deep', 'Dark'],
    ['Witness', 'Cover', 'Motive', 'Alibi', 'Agent', 'Passenger', 'Stranger', 'Verdict', 'Informant', 'Conspiracy', 'Game', 'Trace', 'Suspect', 'Confession', 'Hour', 'Code'],
  ],
  animation: [
    ['Little', 'Brave', 'Tiny', 'Magic', 'Flying', 'Happy', 'Lost', 'Clever', 'Sleepy', 'Wandering', 'Jolly', 'Cosmic', 'Paper', 'Starry', 'Giant', 'Curious'],
    ['Dragon', 'Robot', 'Fox', 'Kingdom', 'Island', 'Bear', 'Lantern', 'Penguin', 'Garden', 'Balloon', 'Train', 'Owl', 'Friends', 'Adventure', 'Whale', 'Rocket'],
  ],
  fantasy: [
    ['Crystal', 'Shadow', 'Ember', 'Silver', 'Elder', 'Storm', 'Thorn', 'Moon', 'Rune', 'Iron', 'Dragon', 'Sun', 'Ash', 'Raven', 'Frost', 'Wild'],
    ['Crown', 'Throne', 'Blade', 'Realm', 'Oath', 'Sorcerer', 'Gate', 'Prophecy', 'Kingdom', 'Tower', 'Quest', 'Legacy', 'Heir', 'Forest', 'Covenant', 'Song'],
  ],
};

export const COUNTRIES = ['US', 'GB', 'CA', 'AU', 'DE', 'FR', 'JP', 'BR'] as const;
/** Shares of titles (migration 0005): hidden; basic and premium tiers (the rest free); restricted to 1-3 countries. */
const HIDDEN_SHARE = 0.02;
const BASIC_SHARE = 0.17;
const PREMIUM_SHARE = 0.08;
const RESTRICTED_SHARE = 0.1;
/** About one dismissal per this many watch events, of titles the user has not watched. */
export const DISMISSALS_PER_EVENT = 1 / 20;
const DAY_MS = 86_400_000;
const USER_SPAN_DAYS = 3 * 365;
const CONTENT_SPAN_DAYS = 3 * 365;
const WATCH_SPAN_DAYS = 180;
const TABLES = ['users', 'content', 'user_watch_history'] as const;

export { mulberry32 };

/**
 * Independent stream per table, so changing one table's size never changes another table's rows: 0 users,
 * 1 content, 2 watch events, 3 the availability columns of content (added later: the other content columns
 * keep their values), 4 dismissals, 5 the titles' taste profiles (planted in the events, stored nowhere).
 */
const streamFor = (seed: number, table: number): (() => number) =>
  mulberry32(Math.imul(seed ^ 0x5bd1e995, 0x9e3779b1) + Math.imul(table + 1, 0x85ebca6b));

/** Genres are stocked round robin by id: every genre equally. */
const genreIndexOf = (id: number): number => (id - 1) % GENRES.length;

/** The taste profiles the seed plants for titles 1..content (what tests check the watch events against). */
export function plantedTastes(content: number, seed: number = DEFAULT_SEED): TitleTastes {
  return titleTastes(content, genreIndexOf, GENRES.length, streamFor(seed, 5));
}

/** Seeds the default data set when `users` is empty; true when it seeded. Safe to race: one wins. */
export async function seedIfEmpty(sql: postgres.Sql, log: (msg: string) => void = () => {}): Promise<boolean> {
  const result = await load(sql, { ...DEFAULT_SEED_SIZE }, 'if-empty', log);
  if (result) {
    log(
      `seeded ${result.users} users, ${result.content} titles, ${result.events} watch events, ` +
        `${result.dismissals} dismissals in ${result.elapsedMs} ms`,
    );
  }
  return result !== undefined;
}

export async function seed(sql: postgres.Sql, opts: SeedOptions): Promise<SeedResult> {
  const result = await load(sql, opts, opts.reset ? 'reset' : 'strict', () => {});
  return result!;
}

function validate(opts: SeedOptions): void {
  for (const key of ['users', 'content', 'events'] as const) {
    const n = opts[key];
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`seed: ${key} must be a non-negative integer, got ${n}`);
  }
  if (opts.seed !== undefined && !Number.isInteger(opts.seed)) throw new Error(`seed: seed must be an integer`);
  if (opts.events > opts.users * opts.content) {
    throw new Error(
      `seed: ${opts.events} events cannot fit ${opts.users} users × ${opts.content} titles ` +
        '(each user watches a title at most once)',
    );
  }
}

async function load(
  sql: postgres.Sql,
  opts: SeedOptions,
  mode: 'strict' | 'reset' | 'if-empty',
  log: (msg: string) => void,
): Promise<SeedResult | undefined> {
  validate(opts);
  const started = Date.now();
  const progress = opts.onProgress ?? (() => {});

  const loaded = await sql.begin(async (tx) => {
    // The lock serialises seeders: two instances starting on an empty database must not both seed.
    await beginLoad(tx, 'seed');
    const [filled] = await tx<Record<(typeof TABLES)[number], boolean>[]>`
      SELECT EXISTS (SELECT 1 FROM users) AS users,
             EXISTS (SELECT 1 FROM content) AS content,
             EXISTS (SELECT 1 FROM user_watch_history) AS user_watch_history`;
    const nonEmpty = TABLES.filter((table) => filled![table]);
    if (mode === 'if-empty' && filled!.users) return undefined;
    if (mode === 'if-empty' && nonEmpty.length > 0) {
      log(`not seeding: users is empty but ${nonEmpty.join(', ')} already hold rows`);
      return undefined;
    }
    if (mode === 'strict' && nonEmpty.length > 0) {
      throw new Error(`seed: database is not empty (${nonEmpty.join(', ')} hold rows); use reset (--reset) to replace the data`);
    }

    await truncateDataset(tx);
    const restore = await pauseForBulkLoad(tx, { indexes: true });

    const rngSeed = opts.seed ?? DEFAULT_SEED;
    const users = userRows(opts.users, streamFor(rngSeed, 0));
    await copyRows(tx, 'COPY users (id, age, country, subscription_type, created_at) FROM STDIN WITH (FREEZE)',
      users.chunks, 'users', opts.users, progress);
    const catalog = contentRows(opts.content, streamFor(rngSeed, 1), streamFor(rngSeed, 3));
    await copyRows(tx, 'COPY content (id, title, genre, genres, release_year, duration_minutes, popularity_score, ' +
      'created_at, hidden, subscription_tier, countries) FROM STDIN WITH (FREEZE)', catalog.chunks, 'content', opts.content, progress);
    // The dismissals are drawn beside each user's events (they avoid the titles the user watched).
    const dismissals = new Dismissals();
    const tastes = plantedTastes(opts.content, rngSeed);
    const events = eventRows(opts, users.createdAt, catalog, tastes, streamFor(rngSeed, 2), dismissals, streamFor(rngSeed, 4));
    await copyRows(tx, 'COPY user_watch_history (id, user_id, content_id, watched_at, watch_duration_minutes, completed) FROM STDIN WITH (FREEZE)',
      events, 'user_watch_history', opts.events, progress);
    await copyRows(tx, 'COPY user_dismissals (user_id, content_id, dismissed_at) FROM STDIN WITH (FREEZE)',
      dismissals.chunks(), 'user_dismissals', dismissals.size, progress);

    await restore(progress);
    await refreshUserStats(tx);
    await replaceDataset(tx);
    await advanceSequences(tx);
    return { dismissals: dismissals.size };
  });

  if (!loaded) return undefined;
  await analyzeDataset(sql);
  return { users: opts.users, content: opts.content, events: opts.events, dismissals: loaded.dismissals, elapsedMs: Date.now() - started };
}

const iso = (ms: number): string => new Date(ms).toISOString();
/** Whole seconds keep timestamps readable and identical through text round trips. */
const secondsBefore = (rng: () => number, endMs: number, spanMs: number): number =>
  endMs - Math.floor(rng() * (spanMs / 1000)) * 1000;

function userRows(n: number, rng: () => number) {
  const createdAt = new Float64Array(n + 1);
  function* chunks(): Generator<{ text: string; rows: number }> {
    for (let from = 1; from <= n; from += CHUNK_ROWS) {
      const to = Math.min(n, from + CHUNK_ROWS - 1);
      let text = '';
      for (let id = from; id <= to; id++) {
        const age = 18 + Math.floor(rng() * 53);
        const country = COUNTRIES[Math.floor(rng() * COUNTRIES.length)];
        const r = rng();
        const subscription = r < 0.5 ? 'free' : r < 0.8 ? 'basic' : 'premium'; // the seed's 50/30/20 mix
        const created = secondsBefore(rng, SEED_EPOCH_MS, USER_SPAN_DAYS * DAY_MS);
        createdAt[id] = created;
        text += `${id}\t${age}\t${country}\t${subscription}\t${iso(created)}\n`;
      }
      yield { text, rows: to - from + 1 };
    }
  }
  return { chunks: chunks(), createdAt };
}

interface Catalog {
  chunks: Generator<{ text: string; rows: number }>;
  popularity: Float64Array;
  createdAt: Float64Array;
}

/**
 * `availability` draws the columns of migration 0005 from its own stream, in id order: hidden, tier,
 * restricted, then for a restricted title how many countries and which. The draws for title `id` depend
 * only on the titles before it, so a larger catalog keeps the smaller one's values.
 */
function contentRows(n: number, rng: () => number, availability: () => number): Catalog {
  const popularity = new Float64Array(n + 1);
  const createdAt = new Float64Array(n + 1);

  // Power law over a popularity rank, with ranks shuffled across ids so hits are not all low ids.
  const rankOf = shuffled(n, rng);
  // A fixed shuffled order of each genre's word pairs, so early titles are varied rather than alphabetical.
  const pairOrder = GENRES.map(() => shuffled(256, rng));

  function* chunks(): Generator<{ text: string; rows: number }> {
    for (let from = 1; from <= n; from += CHUNK_ROWS) {
      const to = Math.min(n, from + CHUNK_ROWS - 1);
      let text = '';
      for (let id = from; id <= to; id++) {
        const g = genreIndexOf(id);
        const genre = GENRES[g]!;
        const nth = Math.floor((id - 1) / GENRES.length);
        const pair = pairOrder[g]![nth % 256]! - 1;
        const [first, second] = TITLE_WORDS[genre];
        const sequel = Math.floor(nth / 256);
        const title = `${first[pair >> 4]} ${second[pair & 15]}${sequel > 0 ? ` ${sequel + 1}` : ''}`;

        const pop = Math.max(0.0001, Math.round(10_000 / rankOf[id - 1]! ** 0.8) / 10_000);
        const created = secondsBefore(rng, SEED_EPOCH_MS, CONTENT_SPAN_DAYS * DAY_MS);
        // Catalog additions are mostly recent releases, some decades-old classics.
        const releaseYear = new Date(created).getUTCFullYear() - Math.floor(rng() ** 3 * 40);
        const duration = genre === 'animation' ? 75 + Math.floor(rng() * 40)
          : genre === 'documentary' ? 50 + Math.floor(rng() * 70)
          : 85 + Math.floor(rng() * 70);

        popularity[id] = pop;
        createdAt[id] = created;
        // Titles come from the fixed word lists above: no tab, newline or backslash to escape.
        text += `${id}\t${title}\t${genre}\t{${genre}}\t${releaseYear}\t${duration}\t${pop}\t${iso(created)}\t${availabilityOf(availability)}\n`;
      }
      yield { text, rows: to - from + 1 };
    }
  }
  return { chunks: chunks(), popularity, createdAt };
}

/** hidden, subscription_tier and countries of one title, as COPY text columns. */
function availabilityOf(rng: () => number): string {
  const hidden = rng() < HIDDEN_SHARE;
  const t = rng();
  const tier = t < PREMIUM_SHARE ? 'premium' : t < PREMIUM_SHARE + BASIC_SHARE ? 'basic' : 'free';
  let countries = '{}';
  if (rng() < RESTRICTED_SHARE) {
    // 1 to 3 distinct countries: a partial Fisher–Yates draw, listed in COUNTRIES order.
    const k = 1 + Math.floor(rng() * 3);
    const pool: number[] = COUNTRIES.map((_, i) => i);
    for (let i = 0; i < k; i++) {
      const j = i + Math.floor(rng() * (pool.length - i));
      [pool[i], pool[j]] = [pool[j]!, pool[i]!];
    }
    countries = `{${pool.slice(0, k).sort((a, b) => a - b).map((i) => COUNTRIES[i]).join(',')}}`;
  }
  return `${hidden ? 't' : 'f'}\t${tier}\t${countries}`;
}

/**
 * The dismissals drawn while the watch events are generated, kept as columns (16 bytes each: about 16 MB
 * for the 1M-user seed's 1M) until their COPY.
 */
class Dismissals {
  size = 0;
  private users = new Int32Array(1024);
  private titles = new Int32Array(1024);
  private at = new Float64Array(1024);

  add(userId: number, contentId: number, dismissedAtMs: number): void {
    if (this.size === this.users.length) {
      const grow = <A extends Int32Array | Float64Array>(a: A): A => {
        const b = new (a.constructor as new (n: number) => A)(a.length * 2);
        b.set(a);
        return b;
      };
      this.users = grow(this.users);
      this.titles = grow(this.titles);
      this.at = grow(this.at);
    }
    this.users[this.size] = userId;
    this.titles[this.size] = contentId;
    this.at[this.size] = dismissedAtMs;
    this.size += 1;
  }

  *chunks(): Generator<{ text: string; rows: number }> {
    for (let from = 0; from < this.size; from += CHUNK_ROWS) {
      const to = Math.min(this.size, from + CHUNK_ROWS);
      let text = '';
      for (let i = from; i < to; i++) text += `${this.users[i]}\t${this.titles[i]}\t${iso(this.at[i]!)}\n`;
      yield { text, rows: to - from };
    }
  }
}

/** A Fisher–Yates permutation of 1..n. */
function shuffled(n: number, rng: () => number): Int32Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = i + 1;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = a[i]!;
    a[i] = a[j]!;
    a[j] = t;
  }
  return a;
}

/**
 * The watch events, user by user, from the planted tastes (seed-tastes.ts): each user gets their tastes and
 * an activity level (events split in proportion to it); their events are spread over their timeline in time
 * order (ids follow it), the drift taste gaining as it goes; a user watches each title at most once, after
 * both the user and the title existed. After a user's events, `dismissals` gets theirs, drawn from
 * `dismissRng` (their own stream: the events stay what they were): about DISMISSALS_PER_EVENT per event, of
 * titles the user has not watched, mostly popular ones (what they would be recommended), after both the user
 * and the title existed.
 */
function* eventRows(
  opts: SeedOptions,
  userCreatedAt: Float64Array,
  catalog: Catalog,
  profiles: TitleTastes,
  rng: () => number,
  dismissals: Dismissals,
  dismissRng: () => number,
): Generator<{ text: string; rows: number }> {
  const { users: nUsers, content: nContent, events: nEvents } = opts;
  if (nEvents === 0) return;
  const perUser = allocate(nEvents, nUsers, nContent, rng);

  const tastes = new TasteCatalog(profiles, catalog.popularity);
  const all = new Int32Array(nContent);
  for (let i = 0; i < nContent; i++) all[i] = i + 1;
  // Dismissals stay drawn by popularity_score itself, as they always were.
  const byPopularity = new WeightedPicker(all, catalog.popularity.subarray(1));
  const userTastes = new UserTastes(tastes);

  // One user's draws at a time: their titles and watch times (scratch, sized for the busiest user).
  const most = perUser.reduce((a, b) => Math.max(a, b), 0);
  const titles = new Int32Array(most);
  const times = new Float64Array(most);
  const gapSums = new Float64Array(most + 1);
  const watched = new Set<number>();
  /** An unwatched title released by `atMs`, for a watch at `progress` (0…1) through the user's events. */
  const pickTitle = (progress: number, atMs: number): number => {
    for (let attempt = 0; attempt < 8; attempt++) {
      const r = rng();
      const id = r < UNIFORM_SHARE ? 1 + Math.floor(rng() * nContent) // the long tail gets discovered too
        : r < UNIFORM_SHARE + MAINSTREAM_SHARE ? tastes.mainstream.pick(rng())
        : tastes.byTaste[userTastes.at(progress, rng)]!.pick(rng());
      if (!watched.has(id) && catalog.createdAt[id]! <= atMs) return id;
    }
    // Nearly everything likely is watched already: walk to the next unwatched id (one exists by allocation),
    // released by then if any is.
    const start = 1 + Math.floor(rng() * nContent);
    let id = start;
    do {
      if (!watched.has(id) && catalog.createdAt[id]! <= atMs) return id;
      id = (id % nContent) + 1;
    } while (id !== start);
    while (watched.has(id)) id = (id % nContent) + 1;
    return id;
  };

  const windowStart = SEED_EPOCH_MS - WATCH_SPAN_DAYS * DAY_MS;
  const dismissed = new Set<number>();
  const dismiss = (user: number, watchedCount: number): void => {
    const n = Math.min(Math.floor(watchedCount * DISMISSALS_PER_EVENT + dismissRng()), nContent - watchedCount);
    dismissed.clear();
    for (let k = 0; k < n; k++) {
      // A few tries for a title neither watched nor dismissed yet; a user who has seen nearly everything gets fewer.
      for (let attempt = 0; attempt < 8; attempt++) {
        const contentId = dismissRng() < 0.7 ? byPopularity.pick(dismissRng()) : 1 + Math.floor(dismissRng() * nContent);
        if (watched.has(contentId) || dismissed.has(contentId)) continue;
        dismissed.add(contentId);
        const earliest = Math.max(windowStart, userCreatedAt[user]!, catalog.createdAt[contentId]!);
        dismissals.add(user, contentId, secondsBefore(dismissRng, SEED_EPOCH_MS, SEED_EPOCH_MS - earliest));
        break;
      }
    }
  };
  let id = 0;
  let text = '';
  let rows = 0;
  for (let user = 1; user <= nUsers; user++) {
    const count = perUser[user - 1]!;
    if (count === 0) continue;
    userTastes.draw(rng);
    watched.clear();
    // Sorted uniform watch times in whole seconds over the user's timeline, from count + 1 exponential gaps.
    const spanSeconds = Math.floor((SEED_EPOCH_MS - Math.max(windowStart, userCreatedAt[user]!)) / 1000);
    let gaps = 0;
    for (let k = 0; k <= count; k++) gapSums[k] = gaps += -Math.log(1 - rng());
    let inOrder = true;
    for (let k = 0; k < count; k++) {
      let atMs = SEED_EPOCH_MS - (spanSeconds - Math.floor((gapSums[k]! / gaps) * spanSeconds)) * 1000;
      const contentId = pickTitle((k + 0.5) / count, atMs);
      if (catalog.createdAt[contentId]! > atMs) {
        // Every released title is watched: this one is watched on its release, out of turn.
        atMs = catalog.createdAt[contentId]!;
        inOrder = false;
      }
      titles[k] = contentId;
      times[k] = atMs;
      watched.add(contentId);
    }
    const order = inOrder ? undefined
      : Array.from({ length: count }, (_, k) => k).sort((a, b) => times[a]! - times[b]! || a - b);
    for (let k = 0; k < count; k++) {
      const at = order ? order[k]! : k;
      const length = 50 + Math.floor(rng() * 100);
      const completed = rng() < 0.6;
      const minutes = completed ? length : 1 + Math.floor(rng() * (length - 1));
      text += `${++id}\t${user}\t${titles[at]}\t${iso(times[at]!)}\t${minutes}\t${completed ? 't' : 'f'}\n`;
      if (++rows === CHUNK_ROWS) {
        yield { text, rows };
        text = '';
        rows = 0;
      }
    }
    dismiss(user, count);
  }
  if (rows > 0) yield { text, rows };
}

/**
 * Splits `total` events across users in proportion to a skewed activity weight (a few heavy watchers),
 * never giving a user more events than there are titles. Sums to exactly `total`.
 */
function allocate(total: number, nUsers: number, nContent: number, rng: () => number): Int32Array {
  const weight = new Float64Array(nUsers);
  let sum = 0;
  for (let i = 0; i < nUsers; i++) sum += weight[i] = 0.2 - Math.log(1 - rng());
  const counts = new Int32Array(nUsers);
  let cumulative = 0;
  let previous = 0;
  let carry = 0;
  for (let i = 0; i < nUsers; i++) {
    cumulative += weight[i]!;
    const target = i === nUsers - 1 ? total : Math.round((total * cumulative) / sum);
    const want = target - previous + carry;
    previous = target;
    counts[i] = Math.min(want, nContent);
    carry = want - counts[i]!;
  }
  // Users capped at the catalog size pass their surplus to users with room (validate() guarantees room).
  for (let i = 0; carry > 0; i = (i + 1) % nUsers) {
    const add = Math.min(nContent - counts[i]!, carry);
    counts[i]! += add;
    carry -= add;
  }
  return counts;
}
