/**
 * What every bulk writer of the data set shares (npm run seed, npm run import): one lock, bare tables while
 * loading, COPY with progress, the trigger-kept counts recomputed once, and one data set version bump.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type postgres from 'postgres';

export interface LoadProgress {
  /** A table (rows), a file being read (bytes), or `indexes` (rebuild steps). */
  table: string;
  done: number;
  total: number;
  rowsPerSec: number;
  etaSec: number;
  /** What done and total count (default rows; `indexes` counts steps). */
  unit?: 'rows' | 'bytes' | 'steps';
}

/** Rows per COPY chunk: big enough to amortise stream overhead, small enough to keep memory flat. */
export const CHUNK_ROWS = 16_384;
/** Serialises bulk loads: two seeders (or a seeder and an importer) never interleave. */
export const LOAD_LOCK_KEY = '7283462919304417002';
/** The tables a load writes (the ones with an id sequence, then those without). */
export const DATA_TABLES = ['users', 'content', 'user_watch_history', 'user_dismissals'] as const;

/** Channel of the one notification a load sends (delivered at commit): the service reloads and flushes. */
export const DATASET_CHANNEL = 'recsvc_dataset';

/** Takes the load lock, lifts the statement timeout and gives index builds memory; throws before migrations. */
export async function beginLoad(tx: postgres.TransactionSql, command: string): Promise<void> {
  await tx`SELECT pg_advisory_xact_lock(${LOAD_LOCK_KEY}::bigint)`;
  await tx`SET LOCAL statement_timeout = 0`;
  // Index rebuilds after the load sort in memory rather than on disk.
  await tx`SET LOCAL maintenance_work_mem = '256MB'`;
  const [{ ready } = { ready: false }] = await tx<{ ready: boolean }[]>`
    SELECT to_regclass('users') IS NOT NULL AND to_regclass('content') IS NOT NULL
       AND to_regclass('user_watch_history') IS NOT NULL AND to_regclass('user_dismissals') IS NOT NULL AS ready`;
  if (!ready) {
    throw new Error(`${command}: tables users/content/user_watch_history/user_dismissals do not exist: run migrations up first`);
  }
}

/** Empties the data set (ids restart at 1), and what is derived from it. */
export async function truncateDataset(tx: postgres.TransactionSql): Promise<void> {
  // Truncating inside the load's transaction also lets COPY FREEZE skip later vacuum work.
  await tx`TRUNCATE users, content, user_watch_history, user_dismissals RESTART IDENTITY CASCADE`;
  // Derived from the old history (migration 0005, no foreign keys): stale lists must not outlive it.
  const [{ similarity } = { similarity: false }] = await tx<{ similarity: boolean }[]>`
    SELECT to_regclass('content_similarity') IS NOT NULL AS similarity`;
  if (similarity) await tx`TRUNCATE content_similarity`;
}

/**
 * Marks the data as replaced (migration 0004): a new version, and one NOTIFY instead of one per row
 * (the row triggers are paused). Services also notice the version in their periodic catalog reload.
 */
export async function replaceDataset(tx: postgres.TransactionSql): Promise<void> {
  const [{ present } = { present: false }] = await tx<{ present: boolean }[]>`
    SELECT to_regclass('dataset') IS NOT NULL AS present`;
  if (!present) return;
  const [row] = await tx<{ version: string }[]>`
    UPDATE dataset SET version = version + 1, replaced_at = now() RETURNING version::text`;
  await tx`SELECT pg_notify(${DATASET_CHANNEL}, ${row!.version})`;
}

/**
 * The counts migration 0003 keeps by trigger (users per id block, events per user): its triggers were
 * paused for the bulk load, so they are computed once from the loaded rows.
 */
export async function refreshUserStats(tx: postgres.TransactionSql): Promise<void> {
  const [{ present } = { present: false }] = await tx<{ present: boolean }[]>`
    SELECT to_regclass('user_id_blocks') IS NOT NULL AND to_regclass('user_activity') IS NOT NULL AS present`;
  if (!present) return;
  await tx`TRUNCATE user_id_blocks, user_activity`;
  await tx`
    INSERT INTO user_id_blocks (block, n, before)
    SELECT block, n, coalesce(sum(n) OVER (ORDER BY block ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
    FROM (SELECT id >> 10 AS block, count(*) AS n FROM users GROUP BY 1) b`;
  await tx`INSERT INTO user_activity (user_id, events) SELECT user_id, count(*) FROM user_watch_history GROUP BY 1`;
}

/** Moves each id sequence past the highest id (rows loaded with their own ids did not draw from it). */
export async function advanceSequences(tx: postgres.TransactionSql): Promise<void> {
  for (const table of ['users', 'content', 'user_watch_history']) {
    await tx.unsafe(
      `SELECT setval(pg_get_serial_sequence('${table}', 'id'), COALESCE(max(id), 1), max(id) IS NOT NULL) FROM ${table}`,
    );
  }
}

/**
 * Pauses the data tables' triggers (so a bulk load does not NOTIFY once per row: replaceDataset sends the
 * one notification) and, with `indexes`, drops their indexes and foreign keys: loading into bare tables and
 * building them once afterwards is several times faster than maintaining them row by row, but it locks
 * readers out, so a load that adds to live data keeps them. Definitions are read from the catalog, so
 * whatever migrations created comes back exactly (names included). The returned function restores it all.
 */
export async function pauseForBulkLoad(
  tx: postgres.TransactionSql,
  opts: { indexes: boolean },
): Promise<(progress: (p: LoadProgress) => void) => Promise<void>> {
  const relations = [...DATA_TABLES];
  const indexes = !opts.indexes ? [] : await tx<{ name: string; def: string }[]>`
    SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS def
    FROM pg_index i
    WHERE i.indrelid = ANY(${relations}::regclass[])
      AND NOT EXISTS (SELECT 1 FROM pg_constraint c
                      WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid AND c.contype IN ('p', 'u', 'x'))
    ORDER BY 1`;
  const foreignKeys = !opts.indexes ? [] : await tx<{ tbl: string; name: string; def: string }[]>`
    SELECT conrelid::regclass::text AS tbl, quote_ident(conname) AS name, pg_get_constraintdef(oid) AS def
    FROM pg_constraint
    WHERE contype = 'f'
      AND conrelid = ANY(${relations}::regclass[])
    ORDER BY 2`;
  const triggers = await tx<{ tbl: string; name: string }[]>`
    SELECT tgrelid::regclass::text AS tbl, quote_ident(tgname) AS name
    FROM pg_trigger
    WHERE NOT tgisinternal AND tgenabled <> 'D'
      AND tgrelid = ANY(${relations}::regclass[])
    ORDER BY 2`;

  for (const fk of foreignKeys) await tx.unsafe(`ALTER TABLE ${fk.tbl} DROP CONSTRAINT ${fk.name}`);
  for (const ix of indexes) await tx.unsafe(`DROP INDEX ${ix.name}`);
  for (const tg of triggers) await tx.unsafe(`ALTER TABLE ${tg.tbl} DISABLE TRIGGER ${tg.name}`);

  return async (progress) => {
    const steps = [
      ...indexes.map((ix) => ix.def),
      ...foreignKeys.map((fk) => `ALTER TABLE ${fk.tbl} ADD CONSTRAINT ${fk.name} ${fk.def}`),
      ...triggers.map((tg) => `ALTER TABLE ${tg.tbl} ENABLE TRIGGER ${tg.name}`),
    ];
    const started = Date.now();
    for (const [i, statement] of steps.entries()) {
      await tx.unsafe(statement);
      progress(rate('indexes', i + 1, steps.length, started, 'steps'));
    }
  };
}

/** COPY text chunks into `statement`'s table, reporting rows as they go (`total`: rows expected, if known). */
export async function copyRows(
  tx: postgres.TransactionSql,
  statement: string,
  chunks: Iterable<{ text: string; rows: number }> | AsyncIterable<{ text: string; rows: number }>,
  table: string,
  total: number,
  progress: (p: LoadProgress) => void,
): Promise<number> {
  const started = Date.now();
  let done = 0;
  async function* text(): AsyncGenerator<string> {
    for await (const chunk of chunks) {
      yield chunk.text;
      done += chunk.rows;
      progress(rate(table, done, total, started));
    }
  }
  const sink = await tx.unsafe(statement).writable();
  // pipeline() waits on the sink's drain events: generation never runs ahead of PostgreSQL.
  await pipeline(Readable.from(text()), sink);
  if (total === 0) progress(rate(table, 0, 0, started));
  return done;
}

export function rate(table: string, done: number, total: number, startedMs: number, unit?: LoadProgress['unit']): LoadProgress {
  const seconds = Math.max((Date.now() - startedMs) / 1000, 1e-3);
  const rowsPerSec = done / seconds;
  const p: LoadProgress = { table, done, total, rowsPerSec, etaSec: rowsPerSec > 0 ? (total - done) / rowsPerSec : 0 };
  if (unit) p.unit = unit;
  return p;
}

/** Planner statistics for fresh data; run after commit, so a failed load leaves nothing to analyze. */
export async function analyzeDataset(sql: postgres.Sql): Promise<void> {
  await sql`ANALYZE users, content, user_watch_history, user_dismissals`;
}
