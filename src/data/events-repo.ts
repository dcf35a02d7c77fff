/**
 * POST /events' write: many watch events in one statement on the primary. Its repository is built without a
 * client-side deadline (the worker passes 0): cutting the wait short cannot withdraw a statement that is
 * committing, so an answer of "unavailable" could follow a write that happened. The connection's server-side
 * statement_timeout bounds it instead, and a statement it stops is rolled back: nothing is written.
 */
import { Errors } from '../domain/errors.js';
import type { WatchEventInput } from '../domain/types.js';
import { noteCommittedWrite, Repository } from './statements.js';

/**
 * POST /events in one statement (one transaction: all or nothing). $1 user ids, $2 content ids, $3 timestamps
 * (NULL: now), in request order. The first event (by position) whose user or title does not exist is
 * reported and then nothing is inserted; else every event is, in request order, at its timestamp or, when
 * none is given or it is ahead of the database's clock (the clock skew the parser tolerates), at
 * clock_timestamp(): volatile, so evaluated after the ORDER BY, row by row, and distinct within the statement.
 * Each row's trigger notifies `watch_history` (one notification per distinct user: PostgreSQL folds repeats).
 */
export const ADD_EVENTS_SQL = `
WITH input AS (
  SELECT * FROM unnest($1::int8[], $2::int8[], $3::timestamptz[]) WITH ORDINALITY AS e(user_id, content_id, at, i)
), missing AS (
  SELECT e.i, u.id IS NULL AS no_user
  FROM input e LEFT JOIN users u ON u.id = e.user_id
  WHERE u.id IS NULL OR NOT EXISTS (SELECT 1 FROM content c WHERE c.id = e.content_id)
  ORDER BY e.i LIMIT 1
), inserted AS (
  INSERT INTO user_watch_history (user_id, content_id, watched_at)
  SELECT user_id, content_id, least(at, clock_timestamp()) FROM input
  WHERE NOT EXISTS (SELECT 1 FROM missing)
  ORDER BY i
  RETURNING 1
)
SELECT (SELECT i FROM missing)::int8 AS bad, (SELECT no_user FROM missing) AS no_user, (SELECT count(*) FROM inserted)::int8 AS events`;

/** Type oids of ADD_EVENTS_SQL's arrays (int8[], timestamptz[]). */
const EVENT_OID = { int8: 1016, timestamptz: 1185 } as const;

export class EventsRepo extends Repository {
  /**
   * Many watch events in one statement, all or nothing. An unknown user or title is the client's 400, naming
   * the first such event by its index; nothing is written then. With replicas, the WAL position after the
   * commit is noted for every user written (their later reads wait for it) and returned for the caller to relay.
   */
  async addWatches(events: readonly WatchEventInput[]): Promise<{ users: number[]; lsn?: string }> {
    // Declared array types: postgres.js would otherwise declare an array by its first element.
    const array = <T>(values: T[], oid: number) => this.sql.typed(values as never, oid);
    const params = [
      array(events.map((e) => e.user_id), EVENT_OID.int8),
      array(events.map((e) => e.content_id), EVENT_OID.int8),
      array(events.map((e) => e.timestamp ?? null), EVENT_OID.timestamptz),
    ];
    const [row] = await this.statements.write('add_events', () =>
      this.sql.unsafe<{ bad: number | null; no_user: boolean | null; events: number }[]>(ADD_EVENTS_SQL, params as never[], { prepare: true }),
    );
    if (row!.bad !== null) {
      const at = Number(row!.bad) - 1; // ordinality counts from 1
      const event = events[at]!;
      throw Errors.invalidBody(
        row!.no_user ? `events[${at}]: user ${event.user_id} does not exist` : `events[${at}]: content ${event.content_id} does not exist`,
      );
    }
    const users = [...new Set(events.map((e) => e.user_id))];
    if (!this.reads.replicated) return { users };
    return { users, lsn: await noteCommittedWrite(this.sql, this.reads, users) };
  }
}
