/**
 * Every SQL statement of the request path. Each method is one round trip with a prepared statement.
 */
import type { Sql } from './db.js';
import { HISTORY_WINDOW } from '../domain/constants.js';
import { Errors } from '../domain/errors.js';
import type { Candidate, UserSignals } from '../domain/types.js';
import { isConnectionError } from './db.js';

type CandidateRow = [number, string, string, number, number];

export interface WatchRecord {
  user_id: number;
  content_id: number;
  watched_at: string;
}

export interface UserPage {
  totalUsers: number;
  userIds: number[];
}

export class RecommendationRepo {
  constructor(private readonly sql: Sql) {}

  /**
   * User existence, recent genres and unwatched candidates in ONE statement: a cache miss costs one
   * round trip. Candidates come by popularity DESC off idx_content_popularity; the anti-join probes
   * idx_watch_history_user_content per title. `pool` 0 means the whole catalog.
   */
  async userSignals(userId: number, pool: number): Promise<UserSignals | null> {
    const limit = pool > 0 ? pool : null;
    const rows = await guard(
      () => this.sql<{ found: boolean; genres: string[]; candidates: CandidateRow[] }[]>`
        SELECT
          EXISTS (SELECT 1 FROM users WHERE id = ${userId}) AS found,
          COALESCE((
            SELECT json_agg(h.genre ORDER BY h.watched_at DESC, h.id DESC)
            FROM (
              SELECT c.genre, w.watched_at, w.id
              FROM user_watch_history w JOIN content c ON c.id = w.content_id
              WHERE w.user_id = ${userId}
              ORDER BY w.watched_at DESC, w.id DESC
              LIMIT ${HISTORY_WINDOW}
            ) h
          ), '[]'::json) AS genres,
          COALESCE((
            SELECT json_agg(json_build_array(k.id, k.title, k.genre, k.popularity_score,
                                             (extract(epoch FROM k.created_at) * 1000)::float8)
                            ORDER BY k.popularity_score DESC, k.id)
            FROM (
              SELECT c.id, c.title, c.genre, c.popularity_score, c.created_at
              FROM content c
              WHERE NOT EXISTS (
                SELECT 1 FROM user_watch_history w WHERE w.user_id = ${userId} AND w.content_id = c.id
              )
              ORDER BY c.popularity_score DESC, c.id
              LIMIT ${limit}
            ) k
          ), '[]'::json) AS candidates`,
    );
    const row = rows[0]!;
    if (!row.found) return null;
    const candidates: Candidate[] = row.candidates.map(([id, title, genre, popularity, createdAtMs]) => ({
      id,
      title,
      genre,
      popularity,
      createdAtMs,
    }));
    return { userId, recentGenres: row.genres, candidates };
  }

  /** One insert; the foreign keys tell an unknown user from an unknown title in the same round trip. */
  async addWatch(userId: number, contentId: number): Promise<WatchRecord> {
    try {
      const rows = await this.sql<{ watched_at: Date }[]>`
        INSERT INTO user_watch_history (user_id, content_id) VALUES (${userId}, ${contentId})
        RETURNING watched_at`;
      return { user_id: userId, content_id: contentId, watched_at: rows[0]!.watched_at.toISOString() };
    } catch (err) {
      const e = err as { code?: string; constraint_name?: string };
      if (e.code === '23503') {
        if (e.constraint_name === 'user_watch_history_user_id_fkey') throw Errors.userNotFound(userId);
        if (e.constraint_name === 'user_watch_history_content_id_fkey') throw Errors.contentNotFound(contentId);
      }
      throw mapFailure(err);
    }
  }

  /** Users in ascending id for one batch page, with the total. */
  async userPage(page: number, limit: number): Promise<UserPage> {
    const offset = (page - 1) * limit;
    const rows = await guard(
      () => this.sql<{ total: number; ids: number[] | null }[]>`
        SELECT (SELECT count(*) FROM users)::int8 AS total,
               (SELECT array_agg(id ORDER BY id) FROM (
                  SELECT id FROM users ORDER BY id LIMIT ${limit} OFFSET ${offset}
               ) p) AS ids`,
    );
    const row = rows[0]!;
    return { totalUsers: Number(row.total), userIds: (row.ids ?? []).map(Number) };
  }

  async ping(): Promise<void> {
    await guard(() => this.sql`SELECT 1`);
  }
}

function mapFailure(err: unknown): Error {
  return isConnectionError(err) ? Errors.unavailable('Database', err) : Errors.internal(err);
}

async function guard<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    throw mapFailure(err);
  }
}
