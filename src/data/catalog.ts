/**
 * The catalog (every title) held in memory per process: in popularity order for candidates and by id for
 * the genres of a user's history. It is reference data every user shares, so a cache miss reads only the
 * user's own watch history from PostgreSQL (an index-only lookup) instead of joining and serializing a
 * hundred catalog rows per request (measured: ~10× the database work of the history lookup, README
 * Performance). Loaded on first use, refreshed every `refreshMs` in the background; a title the snapshot
 * does not know yet (added since) triggers an early refresh.
 */
import type { Sql } from './db.js';
import type { Candidate } from '../domain/types.js';

/** The catalog load: all titles, popularity DESC then id (the candidate order). */
export const CATALOG_SQL = `
SELECT id, title, genre, popularity_score, (extract(epoch FROM created_at) * 1000)::float8 AS created_ms
FROM content
ORDER BY popularity_score DESC, id`;

/** An unknown id asks for a refresh at most this often. */
const EARLY_REFRESH_MIN_MS = 1000;

/** One snapshot of the catalog, as the repository reads it. */
export interface CatalogView {
  size: number;
  /** Genres of the given titles in order; titles the snapshot does not know yet are skipped. */
  genresOf(contentIds: readonly number[]): string[];
  /** Unwatched titles by popularity DESC (ties: id), at most `pool` (0 = all). */
  candidates(watched: ReadonlySet<number>, pool: number): Candidate[];
}

interface Snapshot {
  byPopularity: Candidate[];
  byId: Map<number, Candidate>;
  loadedAt: number;
}

export class Catalog {
  private snapshot: Snapshot | undefined;
  private loading: Promise<Snapshot> | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly sql: Sql,
    /** Background refresh period, ms (0 = load once). */
    private readonly refreshMs: number,
  ) {}

  /** The current snapshot; the first call loads it (and later ones share that load). */
  async current(): Promise<CatalogView> {
    const snap = this.snapshot ?? (await this.reload());
    return this.viewOf(snap);
  }

  /** Stops the background refresh. */
  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Reads the catalog now (shared by concurrent callers); schedules the next refresh. */
  reload(): Promise<Snapshot> {
    this.loading ??= (async () => {
      try {
        const rows = await this.sql.unsafe<{ id: number; title: string; genre: string; popularity_score: number; created_ms: number }[]>(
          CATALOG_SQL,
          [],
          { prepare: true },
        );
        const byPopularity = new Array<Candidate>(rows.length);
        const byId = new Map<number, Candidate>();
        for (let i = 0; i < rows.length; i++) {
          const r = rows[i]!;
          const c: Candidate = { id: Number(r.id), title: r.title, genre: r.genre, popularity: r.popularity_score, createdAtMs: r.created_ms };
          byPopularity[i] = c;
          byId.set(c.id, c);
        }
        this.snapshot = { byPopularity, byId, loadedAt: Date.now() };
        return this.snapshot;
      } finally {
        this.loading = undefined;
        this.schedule();
      }
    })();
    return this.loading;
  }

  private schedule(): void {
    if (this.refreshMs <= 0 || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.reload().catch(() => this.schedule()); // PostgreSQL down: keep the old snapshot, try again later
    }, this.refreshMs);
    this.timer.unref();
  }

  /** A title the snapshot lacks was seen: refresh soon (at most once a second), without waiting for it. */
  private noticeUnknown(snap: Snapshot): void {
    if (this.loading || Date.now() - snap.loadedAt < EARLY_REFRESH_MIN_MS) return;
    this.reload().catch(() => {});
  }

  private viewOf(snap: Snapshot): CatalogView {
    return {
      size: snap.byPopularity.length,
      genresOf: (contentIds) => {
        const genres: string[] = [];
        let unknown = false;
        for (const id of contentIds) {
          const c = snap.byId.get(id);
          if (c) genres.push(c.genre);
          else unknown = true;
        }
        if (unknown) this.noticeUnknown(snap);
        return genres;
      },
      candidates: (watched, pool) => {
        const limit = pool > 0 ? pool : Infinity;
        const out: Candidate[] = [];
        const all = snap.byPopularity;
        for (let i = 0; i < all.length && out.length < limit; i++) {
          const c = all[i]!;
          if (!watched.has(c.id)) out.push(c);
        }
        return out;
      },
    };
  }
}
