/**
 * The catalog (every title) held in memory per process: in popularity order for candidates and by id for
 * the genres of a user's history. It is reference data every user shares, so a cache miss reads only the
 * user's own watch history from PostgreSQL (an index-only lookup) instead of joining and serializing a
 * hundred catalog rows per request (measured: ~10× the database work of the history lookup, docs/
 * design-decisions.md). Held as columns in shared memory (domain/catalog-columns.ts) so the scoring threads read it
 * in place. Loaded on first use, refreshed every `refreshMs` in the background; a title the snapshot does
 * not know yet (added since) triggers an early refresh, and so does a reseed's notification (primary).
 */
import type { Sql } from './db.js';
import { primaryReads, type ReadRoute } from './replicas.js';
import { catalogSnapshot, type CatalogSnapshot } from '../domain/catalog-columns.js';
import type { Candidate } from '../domain/types.js';

/** The catalog load: all titles, popularity DESC then id (the candidate order), each row a Candidate. */
export const CATALOG_SQL = `
SELECT id, title, genre, popularity_score AS popularity, (extract(epoch FROM created_at) * 1000)::float8 AS "createdAtMs",
       hidden, array_position('{free,basic,premium}'::text[], subscription_tier) - 1 AS tier, NULLIF(countries, '{}') AS countries
FROM content
ORDER BY popularity_score DESC, id`;

/** The data set version (migration 0004); read before the rows, so the rows are at least that new. */
const DATASET_SQL = `SELECT version::text AS version FROM dataset`;

/** An unknown id asks for a refresh at most this often. */
const EARLY_REFRESH_MIN_MS = 1000;
/**
 * Announced changes start a load at most this often: a stream of writes (an import of one title per
 * request) then costs each worker two loads a second, not one load after another, and a change still
 * shows within a second (this wait plus the load).
 */
const CHANGE_RELOAD_MIN_MS = 500;

export class Catalog {
  private snapshot: CatalogSnapshot | undefined;
  private loadedAt = 0;
  private loading: Promise<CatalogSnapshot> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private dataset: string | undefined;
  /** A change was announced while a load ran (which may have read before it): load once more after it. */
  private again = false;
  private loadStartedAt = 0;
  private changeTimer: NodeJS.Timeout | undefined;
  /** Called with every snapshot installed (first load, refreshes, reloads after a change). */
  onSnapshot: (snapshot: CatalogSnapshot) => void = () => {};
  /**
   * Called after the first load, and after any load that finds another data set than the previous one (a
   * reseed replaced the tables, `replaced` true), once its snapshot is installed: whatever was computed
   * from the old data must go.
   */
  onDataset: (version: string, replaced: boolean) => void = () => {};

  constructor(
    private readonly sql: Sql,
    /** Background refresh period, ms (0 = load once). */
    private readonly refreshMs: number,
    /** Where the loads run: a replica that has replayed every write all reads need (a reseed), else `sql`. */
    private readonly reads: ReadRoute = primaryReads(sql),
  ) {}

  /** The current snapshot; the first call loads it (and later ones share that load). */
  async current(): Promise<CatalogSnapshot> {
    return this.snapshot ?? (await this.reload());
  }

  /** Stops the background refresh. */
  close(): void {
    clearTimeout(this.timer);
    clearTimeout(this.changeTimer);
    this.timer = undefined;
    this.changeTimer = undefined;
  }

  /** Reads the catalog now (shared by concurrent callers); schedules the next refresh. */
  reload(): Promise<CatalogSnapshot> {
    if (!this.loading) this.loadStartedAt = Date.now();
    this.loading ??= (async () => {
      try {
        // Version and rows from one server (a fallback to the primary re-reads both).
        const { version, rows } = await this.reads.read(async (sql) => ({
          version: await this.datasetVersion(sql),
          // The rows are the candidates (no copy: at 100k titles a copy is ~10 MB of garbage per load).
          rows: await sql.unsafe<Candidate[]>(CATALOG_SQL, [], { prepare: true }),
        }));
        this.snapshot = catalogSnapshot(rows);
        this.loadedAt = Date.now();
        this.onSnapshot(this.snapshot);
        const previous = this.dataset;
        this.dataset = version;
        if (version !== previous) this.onDataset(version, previous !== undefined);
        return this.snapshot;
      } finally {
        this.loading = undefined;
        if (this.again) {
          this.again = false;
          this.changed();
        } else {
          this.schedule();
        }
      }
    })();
    return this.loading;
  }

  /**
   * Titles changed (a content NOTIFY): load now, or once more after the load in flight, which may have read
   * before the change, at most one load start every CHANGE_RELOAD_MIN_MS. Changes arriving meanwhile share
   * that one load.
   */
  changed(): void {
    if (this.loading) {
      this.again = true;
      return;
    }
    const wait = this.loadStartedAt + CHANGE_RELOAD_MIN_MS - Date.now();
    if (wait <= 0) {
      this.reload().catch(() => {});
      return;
    }
    if (this.changeTimer) return; // a load is already due: this change joins it
    this.changeTimer = setTimeout(() => {
      this.changeTimer = undefined;
      this.changed();
    }, wait);
    this.changeTimer.unref();
  }

  /**
   * A user's history named this title: if the snapshot lacks it (added since), refresh soon (at most
   * once a second) without waiting for it.
   */
  notice(snapshot: CatalogSnapshot, contentId: number): void {
    if (snapshot.positionOf.has(contentId)) return;
    if (this.loading || Date.now() - this.loadedAt < EARLY_REFRESH_MIN_MS) return;
    this.reload().catch(() => {});
  }

  private async datasetVersion(sql: Sql): Promise<string> {
    try {
      const [row] = await sql.unsafe<{ version: string }[]>(DATASET_SQL, [], { prepare: true });
      return row?.version ?? '0';
    } catch (err) {
      if ((err as { code?: string }).code === '42P01') return '0'; // before migration 0004
      throw err;
    }
  }

  private schedule(): void {
    if (this.refreshMs <= 0 || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.reload().catch(() => this.schedule()); // PostgreSQL down: keep the old snapshot, try again later
    }, this.refreshMs);
    this.timer.unref();
  }
}
