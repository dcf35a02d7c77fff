/**
 * Writes of users (PUT /users/{id}) and of their "not interested" feedback (dismissals). Each is one
 * statement on the primary; the triggers of migration 0005 notify `watch_history` with the user's id when
 * what they may be recommended changes (a dismissal, a tier or country change). With replicas, each write
 * also notes the WAL position after its commit, so this user's later reads wait for a replica that has it.
 */
import { Errors } from '../domain/errors.js';
import type { DismissalRecord, SubscriptionTier, UserFields, UserRecord } from '../domain/types.js';
import { mapWriteFailure, missingReference, noteCommittedWrite, Repository } from './statements.js';

/**
 * $1 id; $2 whether age is given, $3 age; $4 whether country is given, $5 country; $6 subscription_type
 * (NULL: absent). A flag per nullable field, because NULL there means "clear it", not "absent". On create,
 * absent age and country are NULL and the tier is 'free'. `created`: see CONTENT_UPSERT_SQL.
 */
export const USER_UPSERT_SQL = `
INSERT INTO users AS u (id, age, country, subscription_type)
VALUES ($1::int8, CASE WHEN $2::bool THEN $3::int4 END, CASE WHEN $4::bool THEN $5::text END, coalesce($6::text, 'free'))
ON CONFLICT (id) DO UPDATE SET
  age = CASE WHEN $2::bool THEN EXCLUDED.age ELSE u.age END,
  country = CASE WHEN $4::bool THEN EXCLUDED.country ELSE u.country END,
  subscription_type = coalesce($6::text, u.subscription_type)
RETURNING (xmax = 0) AS created, id, age, country, subscription_type, created_at`;

/**
 * $1 user id, $2 content id. A repeat keeps the first dismissed_at: the no-op update only lets RETURNING
 * answer with the row (DO NOTHING returns nothing), and waits for a concurrent first dismissal rather than
 * missing it. The foreign keys tell an unknown user from an unknown title.
 */
export const DISMISS_SQL = `
INSERT INTO user_dismissals AS d (user_id, content_id) VALUES ($1::int8, $2::int8)
ON CONFLICT (user_id, content_id) DO UPDATE SET dismissed_at = d.dismissed_at
RETURNING (xmax = 0) AS created, dismissed_at`;

/**
 * $1 user id, $2 content id: deletes the dismissal, and says in the same round trip whether the user and
 * the title exist (a dismissal that was not there is not an error; an unknown user or title is).
 */
export const UNDISMISS_SQL = `
WITH removed AS (DELETE FROM user_dismissals WHERE user_id = $1::int8 AND content_id = $2::int8 RETURNING 1)
SELECT EXISTS (SELECT 1 FROM removed) AS removed,
       EXISTS (SELECT 1 FROM users WHERE id = $1::int8) AS user_exists,
       EXISTS (SELECT 1 FROM content WHERE id = $2::int8) AS content_exists`;

interface UserRow {
  created: boolean;
  id: number;
  age: number | null;
  country: string | null;
  subscription_type: SubscriptionTier | null;
  created_at: Date | null;
}

export class UserRepo extends Repository {
  /** Creates or updates user `id`: only the fields given change (undefined: absent; null clears age or country). */
  async upsert(id: number, fields: UserFields): Promise<{ created: boolean; record: UserRecord; lsn?: string }> {
    const params = [
      id,
      fields.age !== undefined,
      fields.age ?? null,
      fields.country !== undefined,
      fields.country ?? null,
      fields.subscription_type ?? null,
    ];
    const [row] = await this.statements.write('user_upsert', () =>
      this.sql.unsafe<UserRow[]>(USER_UPSERT_SQL, params as never[], { prepare: true }),
    );
    const record: UserRecord = {
      user_id: Number(row!.id),
      age: row!.age,
      country: row!.country,
      subscription_type: row!.subscription_type,
      created_at: row!.created_at?.toISOString() ?? null,
    };
    return { created: row!.created, record, ...(await this.committed(id)) };
  }

  /** Marks the title "not interested" for the user; a repeat is the same success with the first time. */
  async dismiss(userId: number, contentId: number): Promise<{ created: boolean; record: DismissalRecord; lsn?: string }> {
    let row: { created: boolean; dismissed_at: Date };
    try {
      const rows = await this.statements.timed('dismiss', () =>
        this.sql.unsafe<(typeof row)[]>(DISMISS_SQL, [userId, contentId], { prepare: true }),
      );
      row = rows[0]!;
    } catch (err) {
      throw missingReference(err, 'user_dismissals', userId, contentId) ?? mapWriteFailure(err);
    }
    const record = { user_id: userId, content_id: contentId, dismissed_at: row.dismissed_at.toISOString() };
    return { created: row.created, record, ...(await this.committed(userId)) };
  }

  /**
   * Withdraws a dismissal; `removed` false when there was none (still a success). An unknown user, then an
   * unknown title, is a 404.
   */
  async undismiss(userId: number, contentId: number): Promise<{ removed: boolean; lsn?: string }> {
    const [row] = await this.statements.write('undismiss', () =>
      this.sql.unsafe<{ removed: boolean; user_exists: boolean; content_exists: boolean }[]>(
        UNDISMISS_SQL,
        [userId, contentId],
        { prepare: true },
      ),
    );
    if (!row!.user_exists) throw Errors.userNotFound(userId);
    if (!row!.content_exists) throw Errors.contentNotFound(contentId);
    // Nothing deleted changes nothing the user is shown: no position to wait for.
    return row!.removed ? { removed: true, ...(await this.committed(userId)) } : { removed: false };
  }

  /** With replicas: the LSN after this user's committed write, noted for their later reads. */
  private async committed(userId: number): Promise<{ lsn?: string }> {
    if (!this.reads.replicated) return {};
    return { lsn: await noteCommittedWrite(this.sql, this.reads, userId) };
  }
}
