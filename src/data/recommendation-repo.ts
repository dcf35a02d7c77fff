/**
 * Every SQL statement of the request path. Each method is one round trip with a prepared statement.
 */
import type { Sql } from './db.js';
import { MODEL_HISTORY } from '../domain/constants.js';
import { tierIndex, type UserSignals } from '../domain/types.js';
import DataLoader from 'dataloader';
import type { CatalogSnapshot } from '../domain/catalog-columns.js';
import { Catalog } from './catalog.js';
import type { DbQuery, QueryMetrics } from '../observability/metrics.js';
import { primaryReads, type ReadRoute } from './replicas.js';
import { mapFailure, missingReference, noteCommittedWrite, Repository } from './statements.js';

export interface WatchRecord {
  user_id: number;
  content_id: number;
  watched_at: string;
}

/** A committed watch event and, with replicas, the WAL position its readers need (pg_lsn text). */
export interface RecordedWatch {
  record: WatchRecord;
  lsn?: string;
}

export interface UserPage {
  totalUsers: number;
  userIds: number[];
}

/**
 * The user `u.id`'s watch history as two arrays: the content ids of the MODEL_HISTORY most recent
 * events (newest first; their genres come from the catalog) and every content id watched (excluded from
 * the candidates, which come from the catalog in popularity order); the titles the user dismissed
 * (excluded too); and the tier and country the availability rules filter by. Index scans of one user.
 */
const SIGNALS_COLUMNS = `
  ARRAY(
    SELECT w.content_id FROM user_watch_history w
    WHERE w.user_id = u.id
    ORDER BY w.watched_at DESC, w.id DESC
    LIMIT ${MODEL_HISTORY}
  ) AS recent,
  ARRAY(SELECT w.content_id FROM user_watch_history w WHERE w.user_id = u.id) AS watched,
  ARRAY(SELECT d.content_id FROM user_dismissals d WHERE d.user_id = u.id) AS dismissed,
  u.subscription_type AS tier, u.country`;

/**
 * The request path's statements, exported for the EXPLAIN checks (test/scale/explain.test.ts).
 * USER_SIGNALS_SQL: $1 user id; no row for an unknown user.
 */
export const USER_SIGNALS_SQL = `
SELECT ${SIGNALS_COLUMNS}
FROM users u
WHERE u.id = $1::int8`;

/** $1 user ids (int8[]): one row per existing user. */
export const USER_SIGNALS_MANY_SQL = `
SELECT u.id AS user_id, ${SIGNALS_COLUMNS}
FROM users u
WHERE u.id = ANY($1::int8[])`;

/**
 * $1 offset ((page - 1) * limit), $2 limit. One probe of idx_user_id_blocks_before finds the block that
 * holds position $1 (its running sum `before` ≤ $1 < before + n); inside that block the offset is under
 * 1024 entries of the primary key. The total is the last block's before + n. Every page reads the same.
 */
export const USER_PAGE_SQL = `
SELECT coalesce((SELECT before + n FROM user_id_blocks ORDER BY block DESC LIMIT 1), 0)::int8 AS total,
       (SELECT array_agg(p.id ORDER BY p.id)
        FROM (
          SELECT block, before FROM user_id_blocks
          WHERE before <= $1::int8 AND before + n > $1::int8
          ORDER BY before DESC
          LIMIT 1
        ) start, LATERAL (
          SELECT id FROM users WHERE id >= start.block << 10 ORDER BY id
          OFFSET $1::int8 - start.before LIMIT $2::int8
        ) p) AS ids`;

/** $1 how many: the most active users (by watch events) off idx_user_activity_events, for cache warming. */
export const TOP_ACTIVE_USERS_SQL = `
SELECT user_id FROM user_activity WHERE events > 0 ORDER BY events DESC, user_id LIMIT $1::int8`;

interface SignalsRow {
  recent: number[];
  watched: number[];
  dismissed: number[];
  tier: string | null;
  country: string | null;
}

/** Users one signals statement reads at most; more concurrent misses make several statements. */
export const SIGNALS_BATCH_MAX = 64;

export class RecommendationRepo extends Repository {
  constructor(
    sql: Sql,
    metrics?: Record<DbQuery, QueryMetrics>,
    /** Per-statement deadline, ms (0 = none): past it PostgreSQL counts as unavailable. */
    timeoutMs = 0,
    /** Titles in memory (reference data); by default loaded on first use and refreshed every minute. */
    readonly catalog: Catalog = new Catalog(sql, 60_000),
    /** Where reads run (replicas.ts); writes always run on `sql`, the primary. */
    reads: ReadRoute = primaryReads(sql),
  ) {
    super(sql, metrics, timeoutMs, reads);
  }

  /**
   * One user's history (existence, the last 50 watched ids, every watched id); null for an unknown user.
   * Concurrent misses share round trips: every call made in the same event-loop turn joins one
   * statement (at most SIGNALS_BATCH_MAX users each), sent once the turn's I/O callbacks have run
   * (setImmediate). The caller gets its own user's row or null; a failed statement fails each caller.
   */
  userSignals(userId: number): Promise<UserSignals | null> {
    return this.signalsLoader.load(userId);
  }

  private readonly signalsLoader = new DataLoader<number, UserSignals | null>(
    async (userIds) => {
      const found = await this.userSignalsMany(userIds);
      return userIds.map((id) => found.get(id) ?? null);
    },
    { cache: false, maxBatchSize: SIGNALS_BATCH_MAX, batchScheduleFn: (run) => setImmediate(run) },
  );

  /**
   * The history of many users in ONE statement (a batch page's misses, or the misses of one event-loop
   * turn): the same subqueries per user, driven by the users primary key. Unknown users are absent.
   */
  async userSignalsMany(userIds: readonly number[]): Promise<Map<number, UserSignals>> {
    const found = new Map<number, UserSignals>();
    if (userIds.length === 0) return found;
    const single = userIds.length === 1;
    const [catalog, rows] = await Promise.all([
      this.catalogSnapshot(),
      // On a replica only if it has replayed every one of these users' last writes (read-your-writes).
      this.statements.guard('user_signals', () =>
        this.reads.read(
          (sql) =>
            single
              ? sql.unsafe<(SignalsRow & { user_id?: number })[]>(USER_SIGNALS_SQL, [userIds[0]!], { prepare: true })
              : sql.unsafe<(SignalsRow & { user_id?: number })[]>(USER_SIGNALS_MANY_SQL, [userIds as number[]], { prepare: true }),
          userIds,
        ),
      ),
    ]);
    for (const row of rows) {
      const userId = single ? userIds[0]! : Number(row.user_id);
      // int8[] elements arrive as numbers (db.ts parses int8 to Number); the newest event is where a
      // title added since the snapshot shows up first.
      if (row.recent.length > 0) this.catalog.notice(catalog, row.recent[0]!);
      found.set(userId, {
        userId,
        catalog,
        recent: row.recent,
        watched: row.watched,
        dismissed: row.dismissed,
        audience: { tier: tierIndex(row.tier), country: row.country },
      });
    }
    return found;
  }

  /** The catalog snapshot; its first load can fail like any query (PostgreSQL unavailable → 503). */
  private async catalogSnapshot(): Promise<CatalogSnapshot> {
    try {
      return await this.catalog.current();
    } catch (err) {
      throw mapFailure(err);
    }
  }

  /**
   * One insert; the foreign keys tell an unknown user from an unknown title in the same round trip. With
   * replicas, a second statement after the commit reads the WAL insert position (noteCommittedWrite): a
   * replica that has replayed it shows this event. This process's later reads of the user wait for it; the
   * caller relays it.
   */
  async addWatch(userId: number, contentId: number): Promise<RecordedWatch> {
    let record: WatchRecord;
    try {
      const rows = await this.statements.timed('add_watch', () => this.sql<{ watched_at: Date }[]>`
        INSERT INTO user_watch_history (user_id, content_id) VALUES (${userId}, ${contentId})
        RETURNING watched_at`);
      record = { user_id: userId, content_id: contentId, watched_at: rows[0]!.watched_at.toISOString() };
    } catch (err) {
      throw missingReference(err, 'user_watch_history', userId, contentId) ?? mapFailure(err);
    }
    if (!this.reads.replicated) return { record };
    return { record, lsn: await noteCommittedWrite(this.sql, this.reads, userId) };
  }

  /**
   * Users in ascending id for one batch page, with the exact total: both from user_id_blocks (migration
   * 0003), so every page costs the same (no OFFSET over the users index, no count(*) scan).
   */
  async userPage(page: number, limit: number): Promise<UserPage> {
    const offset = (page - 1) * limit;
    const rows = await this.statements.guard('user_page', () =>
      this.reads.read((sql) => sql.unsafe<{ total: number; ids: number[] | null }[]>(USER_PAGE_SQL, [offset, limit], { prepare: true })),
    );
    const row = rows[0]!;
    return { totalUsers: Number(row.total), userIds: (row.ids ?? []).map(Number) };
  }

  /** The `n` most active users, most events first (a background task's query: not in the request metrics). */
  async topActiveUsers(n: number): Promise<number[]> {
    try {
      const rows = await this.reads.read((sql) => sql.unsafe<{ user_id: number }[]>(TOP_ACTIVE_USERS_SQL, [n], { prepare: true }));
      return rows.map((r) => Number(r.user_id));
    } catch (err) {
      throw mapFailure(err);
    }
  }

  async ping(): Promise<void> {
    await this.statements.guard('ping', () => this.reads.read((sql) => sql`SELECT 1`));
  }

  /** A write of this user (or every user: `userId` undefined) committed elsewhere at `lsn` (ipc.ts). */
  noteWrite(userId: number | undefined, lsn: string | undefined): void {
    if (userId === undefined) this.reads.noteWriteAll(lsn);
    else this.reads.noteWrite(userId, lsn);
  }
}
