/** The read side of content_similarity (written by similarity-job.ts): one primary-key lookup. */
import { Errors } from '../domain/errors.js';
import { isConnectionError, type Sql } from './db.js';

/** $1 content id: its stored list, or no row (nothing similar known yet). */
export const SIMILAR_SQL = `
SELECT similar_ids, scores, computed_at FROM content_similarity WHERE content_id = $1::int8`;

export interface SimilarTitles {
  /** Content ids, most similar first (hidden or deleted titles included: the caller filters). */
  similarIds: number[];
  /** Cosine similarity per id, 0 < score ≤ 1, 3 decimals. */
  scores: number[];
  /** ISO time of the watch history the list was computed from. */
  computedAt: string;
}

interface SimilarRow {
  similar_ids: number[];
  scores: number[];
  computed_at: Date;
}

export class SimilarityRepo {
  constructor(private readonly sql: Sql) {}

  /** The title's similar titles; null when none are stored (unknown title, too few co-watchers, not computed yet). */
  async similarTo(contentId: number): Promise<SimilarTitles | null> {
    let rows: SimilarRow[];
    try {
      rows = await this.sql.unsafe<SimilarRow[]>(SIMILAR_SQL, [contentId], { prepare: true });
    } catch (err) {
      throw isConnectionError(err) ? Errors.unavailable('Database', err) : Errors.internal(err);
    }
    const row = rows[0];
    if (!row) return null;
    // int8[] elements arrive as numbers (db.ts parses int8 to Number), float4[] ones as numbers too.
    return { similarIds: row.similar_ids, scores: row.scores, computedAt: row.computed_at.toISOString() };
  }
}
