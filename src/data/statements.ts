/**
 * How every repository sends a statement: timed and counted per query name, cut off at the per-statement
 * deadline, and its failures turned into domain errors. One instance per repository (its `inFlight` is the
 * repository's statements sent and not yet answered).
 */
import type { Sql } from './db.js';
import { isConnectionError } from './db.js';
import { primaryReads, type Cancellable, type ReadRoute } from './replicas.js';
import { Errors } from '../domain/errors.js';
import type { DbQuery, QueryMetrics } from '../observability/metrics.js';

export class Statements {
  /** Statements sent and not yet answered: postgres.js exposes no pool statistics, so we count. */
  inFlight = 0;

  constructor(
    private readonly metrics?: Record<DbQuery, QueryMetrics>,
    /** Per-statement deadline, ms (0 = none): past it PostgreSQL counts as unavailable. */
    private readonly timeoutMs = 0,
  ) {}

  /** `timed`, with every failure mapped (mapFailure). */
  async guard<T>(query: DbQuery, run: () => Cancellable<T>): Promise<T> {
    try {
      return await this.timed(query, run);
    } catch (err) {
      throw mapFailure(err);
    }
  }

  /** `timed`, for a write: values PostgreSQL refuses are the client's 400 (mapWriteFailure). */
  async write<T>(query: DbQuery, run: () => Cancellable<T>): Promise<T> {
    try {
      return await this.timed(query, run);
    } catch (err) {
      throw mapWriteFailure(err);
    }
  }

  /** Times one statement (failed ones too) and counts failures that are not answers about the data. */
  async timed<T>(query: DbQuery, run: () => Cancellable<T>): Promise<T> {
    const m = this.metrics?.[query];
    const started = performance.now();
    this.inFlight += 1;
    const pending = run();
    let timer: NodeJS.Timeout | undefined;
    try {
      if (!this.timeoutMs) return await pending;
      // Past the deadline: withdraw the statement (a queued one is never sent) and stop waiting.
      return await Promise.race([
        pending,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            pending.cancel?.();
            reject(Object.assign(new Error(`${query} exceeded ${this.timeoutMs} ms`), { code: 'ETIMEDOUT' }));
          }, this.timeoutMs);
        }),
      ]);
    } catch (err) {
      // An answer about the data (unknown user/title on insert: a 404; a value the column refuses: a 400), not a failure.
      if (!isDataAnswer(err)) m?.errors.inc();
      throw err;
    } finally {
      clearTimeout(timer);
      this.inFlight -= 1;
      m?.duration.observe((performance.now() - started) / 1000);
    }
  }
}

/** What every repository holds: the primary, its statements, and where its reads go. */
export abstract class Repository {
  protected readonly statements: Statements;

  constructor(
    protected readonly sql: Sql,
    metrics?: Record<DbQuery, QueryMetrics>,
    /** Per-statement deadline, ms (0 = none): past it PostgreSQL counts as unavailable. */
    timeoutMs = 0,
    /** Where reads run (replicas.ts); writes always run on `sql`, the primary. */
    protected readonly reads: ReadRoute = primaryReads(sql),
  ) {
    this.statements = new Statements(metrics, timeoutMs);
  }

  /** Statements sent and not yet answered. */
  get inFlight(): number {
    return this.statements.inFlight;
  }
}

/**
 * SQLSTATE classes 21 (cardinality: one upsert touching a row twice), 22 (data exception) and 23
 * (integrity constraint): PostgreSQL refused these values.
 */
function isDataAnswer(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  return code !== undefined && (code.startsWith('21') || code.startsWith('22') || code.startsWith('23'));
}

/** Unreachable PostgreSQL → 503; anything else is our fault → 500. */
export function mapFailure(err: unknown): Error {
  return isConnectionError(err) ? Errors.unavailable('Database', err) : Errors.internal(err);
}

/**
 * A write's failure: values PostgreSQL refused that the request validation let through are the client's
 * (400 invalid_body, naming the constraint or the server's reason), never a 500.
 */
export function mapWriteFailure(err: unknown): Error {
  if (!isDataAnswer(err)) return mapFailure(err);
  const e = err as { code?: string; constraint_name?: string; column_name?: string; message?: string };
  const what =
    e.code === '21000' ? 'the same row is written twice'
    : e.constraint_name ? `violates ${e.constraint_name}`
    : e.column_name ? `${e.column_name}: ${e.message}`
    : e.message;
  return Errors.invalidBody(`Rejected by the database: ${truncate(what ?? 'invalid value')}`);
}

/**
 * An insert into `table` (user_id, content_id) refused by one of its foreign keys (named
 * `<table>_user_id_fkey` / `<table>_content_id_fkey` by the migrations): the 404 of the unknown one, else
 * undefined. Checked in the same round trip as the insert.
 */
export function missingReference(err: unknown, table: string, userId: number, contentId: number): Error | undefined {
  const e = err as { code?: string; constraint_name?: string } | null;
  if (e?.code !== '23503') return undefined;
  if (e.constraint_name === `${table}_user_id_fkey`) return Errors.userNotFound(userId);
  if (e.constraint_name === `${table}_content_id_fkey`) return Errors.contentNotFound(contentId);
  return undefined;
}

/** Server messages may quote the input: never echo more than a line of it. */
const truncate = (text: string): string => (text.length > 120 ? `${text.slice(0, 119)}…` : text);

/**
 * After a committed write of `userId` (or of each of several users), with replicas: the WAL insert position,
 * at or past the end of the commit record (the write returned, so its commit record is in the WAL), so a
 * replica that has replayed it shows the write. This process's later reads of the user wait for it; the
 * caller relays it. Undefined when the position could not be read: the user is then read from the primary
 * until a later position is noted.
 */
export async function noteCommittedWrite(sql: Sql, reads: ReadRoute, userId: number | readonly number[]): Promise<string | undefined> {
  let lsn: string | undefined;
  try {
    const [row] = await sql<{ lsn: string }[]>`SELECT pg_current_wal_insert_lsn()::text AS lsn`;
    lsn = row?.lsn;
  } catch {
    // Committed, position unknown: the user is read from the primary until a later position is read.
  }
  if (typeof userId === 'number') reads.noteWrite(userId, lsn);
  else for (const id of userId) reads.noteWrite(id, lsn);
  return lsn;
}
