/**
 * Loads an ImportSource into users, content and user_watch_history in one transaction: every file is
 * parsed and COPYed into temporary staging tables, checked there (unknown users and titles name their line),
 * then merged: updates of the rows that differ and anti-joined inserts of the new ones, so importing the
 * same files again changes nothing. `reset` replaces the data set instead. Any error rolls everything back.
 */
import type postgres from 'postgres';
import {
  advanceSequences, analyzeDataset, beginLoad, copyRows, type LoadProgress, pauseForBulkLoad, rate,
  refreshUserStats, replaceDataset, truncateDataset,
} from '../bulk-load.js';
import { type ImportFile, ImportInputError, type ImportSource } from './source.js';

export interface ImportOptions {
  /** Replace the data set (users, content, watch history, dismissals) instead of adding to it. */
  reset?: boolean;
  onProgress?: (p: LoadProgress) => void;
}

export interface ImportResult {
  layout: string;
  users: { added: number; updated: number };
  titles: { added: number; updated: number };
  /** Watch events added (an event already stored, same user, title and time, is not added again). */
  events: { added: number; read: number };
  elapsedMs: number;
}

/** created_at of a title with no date in the files and no watch event: the Unix epoch (documented). */
const NO_DATE = '1970-01-01T00:00:00Z';

/** COPY text: backslash, tab, newline and carriage return escaped; undefined and null are NULL. */
function cell(value: string | number | boolean | null | undefined): string {
  if (value === undefined || value === null) return '\\N';
  if (typeof value !== 'string') return String(value);
  return /[\\\t\n\r]/.test(value) ? value.replace(/[\\\t\n\r]/g, (c) => ({ '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' })[c]!) : value;
}

/** A text[] literal of values that need no quoting (genre slugs, country codes). */
const array = (values: string[] | undefined): string | undefined => (values ? `{${values.join(',')}}` : undefined);

/** Rows of `file` as COPY text, refusing an id seen before in the same file. */
async function* copyText<Row extends { line: number }>(
  file: ImportFile<Row>,
  progress: (p: LoadProgress) => void,
  toLine: (row: Row) => string,
  idOf?: (row: Row) => number,
): AsyncGenerator<{ text: string; rows: number }> {
  const firstLine = new Map<number, number>();
  for await (const batch of file.rows(progress)) {
    let text = '';
    for (const row of batch) {
      if (idOf) {
        const id = idOf(row);
        const first = firstLine.get(id);
        if (first !== undefined) throw new ImportInputError(file.path, row.line, `id ${id} already on line ${first}`);
        firstLine.set(id, row.line);
      }
      text += toLine(row);
    }
    yield { text, rows: batch.length };
  }
}

export async function importDataset(sql: postgres.Sql, source: ImportSource, opts: ImportOptions = {}): Promise<ImportResult> {
  const started = Date.now();
  const progress = opts.onProgress ?? (() => {});
  const result = await sql.begin(async (tx) => {
    await beginLoad(tx, 'import');
    await tx`SET LOCAL work_mem = '256MB'`;
    await tx`
      CREATE TEMP TABLE import_users (id int8, age int4, age_set bool, country text, country_set bool,
        subscription_type text, created_at timestamptz, line int4) ON COMMIT DROP`;
    await tx`
      CREATE TEMP TABLE import_content (id int8, title text, genres text[], release_year int4, created_at timestamptz,
        popularity float8, hidden bool, subscription_tier text, countries text[], line int4) ON COMMIT DROP`;
    await tx`CREATE TEMP TABLE import_events (user_id int8, content_id int8, watched_ms int8, line int4) ON COMMIT DROP`;

    const ms = (v: number | undefined) => (v === undefined ? undefined : new Date(v).toISOString());
    if (source.users) {
      await copyRows(tx, 'COPY import_users FROM STDIN', copyText(source.users, progress, (u) =>
        `${u.id}\t${cell(u.age)}\t${u.age !== undefined}\t${cell(u.country)}\t${u.country !== undefined}\t` +
        `${cell(u.subscription_type)}\t${cell(ms(u.createdAtMs))}\t${u.line}\n`, (u) => u.id), 'users', 0, () => {});
    }
    await copyRows(tx, 'COPY import_content FROM STDIN', copyText(source.titles, progress, (t) =>
      `${t.id}\t${cell(t.title)}\t${array(t.genres)}\t${cell(t.releaseYear)}\t${cell(ms(t.createdAtMs))}\t` +
      `${cell(t.popularity)}\t${cell(t.hidden)}\t${cell(t.subscription_tier)}\t${cell(array(t.countries))}\t${t.line}\n`,
    (t) => t.id), 'content', 0, () => {});
    const read = await copyRows(tx, 'COPY import_events FROM STDIN', copyText(source.events, progress, (e) =>
      `${e.userId}\t${e.contentId}\t${e.watchedAtMs}\t${e.line}\n`), 'events', 0, () => {});
    await tx`ANALYZE import_users, import_content, import_events`;

    const steps = ['check', 'users', 'content', 'events', 'popularity', 'stats'];
    const stepsStarted = Date.now();
    const step = (name: string) => progress({ ...rate('merge', steps.indexOf(name) + 1, steps.length, stepsStarted, 'steps') });

    // Loading into bare tables (indexes rebuilt once) pays off when the tables are empty or replaced.
    const [{ empty } = { empty: false }] = await tx<{ empty: boolean }[]>`
      SELECT NOT EXISTS (SELECT 1 FROM users) AND NOT EXISTS (SELECT 1 FROM content)
         AND NOT EXISTS (SELECT 1 FROM user_watch_history) AS empty`;
    const fresh = opts.reset === true || empty;

    // References: the events' users and titles are in the files or (adding) already stored.
    const requireKnown = async (column: string, staged: string, stored: string, what: string, file: string) => {
      const [bad] = await tx.unsafe<{ line: number; id: string }[]>(`
        SELECT e.line, e.${column}::text AS id FROM import_events e
        WHERE NOT EXISTS (SELECT 1 FROM ${staged} s WHERE s.id = e.${column})
          ${fresh ? '' : `AND NOT EXISTS (SELECT 1 FROM ${stored} t WHERE t.id = e.${column})`}
        ORDER BY e.line LIMIT 1`);
      if (bad) throw new ImportInputError(source.events.path, bad.line, `unknown ${what} ${bad.id} (not in ${file})`);
    };
    if (source.users) await requireKnown('user_id', 'import_users', 'users', 'user', source.users.path);
    await requireKnown('content_id', 'import_content', 'content', 'title', source.titles.path);
    // No users file: the users are those of the events, every field at its default.
    if (!source.users) {
      await tx`
        INSERT INTO import_users (id, age_set, country_set, line)
        SELECT DISTINCT user_id, false, false, 0 FROM import_events`;
    }
    step('check');

    if (opts.reset) await truncateDataset(tx);
    const restore = await pauseForBulkLoad(tx, { indexes: fresh });

    // Users: absent fields are kept on update and take the API's defaults on create (age and country
    // unknown, tier free, created_at their first watch event or, with none, now).
    const updatedUsers = await tx`
      UPDATE users u SET
        age = CASE WHEN s.age_set THEN s.age ELSE u.age END,
        country = CASE WHEN s.country_set THEN s.country ELSE u.country END,
        subscription_type = coalesce(s.subscription_type, u.subscription_type),
        created_at = coalesce(s.created_at, u.created_at)
      FROM import_users s
      WHERE u.id = s.id
        AND (u.age, u.country, u.subscription_type, u.created_at) IS DISTINCT FROM
            (CASE WHEN s.age_set THEN s.age ELSE u.age END, CASE WHEN s.country_set THEN s.country ELSE u.country END,
             coalesce(s.subscription_type, u.subscription_type), coalesce(s.created_at, u.created_at))`;
    const addedUsers = await tx`
      INSERT INTO users (id, age, country, subscription_type, created_at)
      SELECT s.id, s.age, s.country, coalesce(s.subscription_type, 'free'),
             coalesce(s.created_at, to_timestamp(f.first_ms / 1000.0), now())
      FROM import_users s
      LEFT JOIN (SELECT user_id, min(watched_ms) AS first_ms FROM import_events GROUP BY 1) f ON f.user_id = s.id
      WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = s.id)
      ORDER BY s.id`;
    step('users');

    // Titles: same rule; created_at absent on create is the first watch event, else NO_DATE.
    const changedTitles = new Set<string>();
    const updatedTitles = await tx<{ id: string }[]>`
      UPDATE content c SET
        title = s.title, genre = s.genres[1], genres = s.genres,
        release_year = coalesce(s.release_year, c.release_year),
        created_at = coalesce(s.created_at, c.created_at),
        popularity_score = coalesce(s.popularity, c.popularity_score),
        hidden = coalesce(s.hidden, c.hidden),
        subscription_tier = coalesce(s.subscription_tier, c.subscription_tier),
        countries = coalesce(s.countries, c.countries)
      FROM import_content s
      WHERE c.id = s.id
        AND (c.title, c.genres, c.release_year, c.created_at, c.popularity_score, c.hidden, c.subscription_tier, c.countries)
            IS DISTINCT FROM
            (s.title, s.genres, coalesce(s.release_year, c.release_year), coalesce(s.created_at, c.created_at),
             coalesce(s.popularity, c.popularity_score), coalesce(s.hidden, c.hidden),
             coalesce(s.subscription_tier, c.subscription_tier), coalesce(s.countries, c.countries))
      RETURNING c.id::text`;
    for (const r of updatedTitles) changedTitles.add(r.id);
    const addedTitles = await tx<{ id: string }[]>`
      INSERT INTO content (id, title, genre, genres, release_year, popularity_score, created_at, hidden, subscription_tier, countries)
      SELECT s.id, s.title, s.genres[1], s.genres, s.release_year, coalesce(s.popularity, 0),
             coalesce(s.created_at, to_timestamp(f.first_ms / 1000.0), ${NO_DATE}::timestamptz),
             coalesce(s.hidden, false), coalesce(s.subscription_tier, 'free'), coalesce(s.countries, '{}')
      FROM import_content s
      LEFT JOIN (SELECT content_id, min(watched_ms) AS first_ms FROM import_events GROUP BY 1) f ON f.content_id = s.id
      WHERE NOT EXISTS (SELECT 1 FROM content c WHERE c.id = s.id)
      ORDER BY s.id
      RETURNING id::text`;
    step('content');

    // Events: one per (user, title, time), in time order per user; one already stored is not added again.
    const addedEvents = await tx.unsafe(`
      INSERT INTO user_watch_history (user_id, watched_at, content_id)
      SELECT DISTINCT e.user_id, to_timestamp(e.watched_ms / 1000.0), e.content_id
      FROM import_events e
      ${fresh ? '' : `WHERE NOT EXISTS (SELECT 1 FROM user_watch_history h WHERE h.user_id = e.user_id
                        AND h.content_id = e.content_id AND h.watched_at = to_timestamp(e.watched_ms / 1000.0))`}
      ORDER BY 1, 2, 3`);
    step('events');

    // popularity_score of the imported titles that give none: watch events / the most-watched title's.
    const rescored = await tx<{ id: string }[]>`
      WITH counts AS (SELECT content_id, count(*) AS n FROM user_watch_history GROUP BY 1),
           top AS (SELECT greatest(max(n), 1) AS m FROM counts),
           scored AS (SELECT s.id, coalesce(k.n, 0)::float8 / top.m AS p
                      FROM import_content s CROSS JOIN top LEFT JOIN counts k ON k.content_id = s.id
                      WHERE s.popularity IS NULL)
      UPDATE content c SET popularity_score = scored.p
      FROM scored
      WHERE c.id = scored.id AND c.popularity_score IS DISTINCT FROM scored.p
      RETURNING c.id::text`;
    // A new title's score is set here too: it counts as added, not updated.
    const added = new Set(addedTitles.map((r) => r.id));
    for (const r of rescored) if (!added.has(r.id)) changedTitles.add(r.id);
    step('popularity');

    await restore(progress);
    const changed = updatedUsers.count + addedUsers.count + changedTitles.size + addedTitles.count + addedEvents.count > 0;
    if (changed) {
      await refreshUserStats(tx);
      // One notification: running services reload the catalog and drop every cached list.
      await replaceDataset(tx);
      await advanceSequences(tx);
    }
    step('stats');
    return {
      users: { added: addedUsers.count, updated: updatedUsers.count },
      addedTitles: addedTitles.count,
      changedTitles,
      events: { added: addedEvents.count, read },
      changed,
    };
  });
  if (result.changed) await analyzeDataset(sql);
  return {
    layout: source.layout,
    users: result.users,
    titles: { added: result.addedTitles, updated: result.changedTitles.size },
    events: result.events,
    elapsedMs: Date.now() - started,
  };
}
