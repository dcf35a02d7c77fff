import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_MIGRATIONS_DIR, migrate } from '../../src/data/migrate.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

const ALL = [
  '0001_schema', '0002_watch_history_notify', '0003_user_stats', '0004_dataset', '0005_catalog_feedback', '0006_content_genres',
  '0007_trained_models', '0008_batch_jobs',
];
/** What 0003_user_stats adds: two count tables, their indexes, the triggers that keep them exact. */
const STATS_INDEXES = ['idx_user_activity_events', 'idx_user_id_blocks_before', 'user_activity_pkey', 'user_id_blocks_pkey'];
/** What 0004_dataset adds. */
const DATASET_INDEXES = ['dataset_pkey'];
/** What 0005_catalog_feedback adds: dismissals, the similarity lists, and the triggers that notify. */
const FEEDBACK_INDEXES = ['content_similarity_pkey', 'idx_dismissals_content', 'user_dismissals_pkey'];
/** What 0008_batch_jobs adds: jobs, their chunks and results. */
/** What 0007_trained_models adds: stored models and failed training runs. */
const MODEL_INDEXES = ['model_training_failures_pkey', 'trained_models_pkey'];
const JOB_INDEXES = ['batch_job_chunks_pkey', 'batch_job_results_pkey', 'batch_jobs_finished_at', 'batch_jobs_pkey'];
const FEEDBACK_TRIGGERS = ['content_notify', 'user_dismissals_notify', 'users_audience_notify'];
/** What 0006_content_genres adds: content.genres and the trigger that keeps it in step with genre. */
const GENRES_TRIGGERS = ['content_genres'];
const STATS_TRIGGERS = [
  'users_count_delete', 'users_count_insert', 'users_count_truncate', 'users_count_update',
  'watch_history_count_delete', 'watch_history_count_insert', 'watch_history_count_truncate', 'watch_history_count_update',
];
const INDEXES = [
  'content_pkey',
  'idx_content_genre',
  'idx_content_popularity',
  'idx_users_country',
  'idx_users_subscription',
  'idx_watch_history_composite',
  'idx_watch_history_content',
  'idx_watch_history_user',
  'idx_watch_history_user_content',
  'user_watch_history_pkey',
  'users_pkey',
];

let db: TestDatabase;
beforeEach(async () => {
  db = await createTestDatabase({ migrate: false });
});
afterEach(async () => {
  await db.drop();
});

async function tables(sql: postgres.Sql): Promise<string[]> {
  const rows = await sql<{ name: string }[]>`
    SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1`;
  return rows.map((r) => r.name);
}

async function indexes(sql: postgres.Sql): Promise<string[]> {
  const rows = await sql<{ name: string }[]>`
    SELECT indexname AS name FROM pg_indexes
    WHERE schemaname = current_schema() AND tablename <> 'schema_migrations' ORDER BY 1`;
  return rows.map((r) => r.name);
}

async function triggers(sql: postgres.Sql): Promise<string[]> {
  const rows = await sql<{ name: string }[]>`SELECT tgname AS name FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1`;
  return rows.map((r) => r.name);
}

async function ledger(sql: postgres.Sql): Promise<string[]> {
  const rows = await sql<{ id: string }[]>`SELECT version || '_' || name AS id FROM schema_migrations ORDER BY version`;
  return rows.map((r) => r.id);
}

describe('migrate up', () => {
  it('creates the tables, every index, the named foreign keys and the NOTIFY trigger', async () => {
    const result = await migrate(db.sql, 'up');

    expect(result).toEqual({ applied: ALL, pending: [], ran: ALL });
    expect(await tables(db.sql)).toEqual([
      'batch_job_chunks', 'batch_job_results', 'batch_jobs', 'content', 'content_similarity', 'dataset', 'model_training_failures',
      'schema_migrations', 'trained_models', 'user_activity', 'user_dismissals', 'user_id_blocks', 'user_watch_history', 'users',
    ]);
    expect(await indexes(db.sql)).toEqual([...INDEXES, ...STATS_INDEXES, ...DATASET_INDEXES, ...FEEDBACK_INDEXES, ...MODEL_INDEXES, ...JOB_INDEXES].sort());
    expect(await triggers(db.sql)).toEqual([...STATS_TRIGGERS, ...FEEDBACK_TRIGGERS, ...GENRES_TRIGGERS, 'watch_history_notify'].sort());
    const fks = await db.sql<{ name: string; def: string }[]>`
      SELECT conname AS name, pg_get_constraintdef(oid) AS def FROM pg_constraint
      WHERE contype = 'f' AND conrelid = 'user_watch_history'::regclass ORDER BY 1`;
    expect(fks).toEqual([
      { name: 'user_watch_history_content_id_fkey', def: 'FOREIGN KEY (content_id) REFERENCES content(id) ON DELETE CASCADE' },
      { name: 'user_watch_history_user_id_fkey', def: 'FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE' },
    ]);
    const [popularity] = await db.sql<{ def: string }[]>`SELECT pg_get_indexdef('idx_content_popularity'::regclass) AS def`;
    expect(popularity!.def).toContain('(popularity_score DESC, id)');
    expect(await ledger(db.sql)).toEqual(ALL);
  });

  it('is a no-op when everything is applied', async () => {
    await migrate(db.sql, 'up');
    expect(await migrate(db.sql, 'up')).toEqual({ applied: ALL, pending: [], ran: [] });
    expect(await ledger(db.sql)).toEqual(ALL);
  });

  it('applies only the next N with steps', async () => {
    expect(await migrate(db.sql, 'up', { steps: 1 })).toEqual({ applied: ['0001_schema'], pending: ALL.slice(1), ran: ['0001_schema'] });
    expect(await triggers(db.sql)).toEqual([]);
  });

  it('enforces the schema: popularity in [0, 1], watch events need an existing user and title', async () => {
    await migrate(db.sql, 'up');
    await expect(db.sql`INSERT INTO content (title, genre, popularity_score) VALUES ('x', 'drama', 1.5)`).rejects.toThrow(/check constraint/);
    await expect(db.sql`INSERT INTO user_watch_history (user_id, content_id) VALUES (1, 1)`).rejects.toMatchObject({
      constraint_name: 'user_watch_history_user_id_fkey',
    });
  });

  it('from two clients at once applies each file exactly once', async () => {
    const clients = [0, 1, 2].map(() => postgres(db.url, { max: 1, onnotice: () => {} }));
    try {
      await Promise.all(clients.map((c) => c`SELECT 1`)); // connected up front, so the runners truly overlap
      const results = await Promise.all(clients.map((c) => migrate(c, 'up')));
      // The lock serialises them: exactly one runner applied the files, the others found nothing to do.
      expect(results.map((r) => r.ran).sort((a, b) => b.length - a.length)).toEqual([ALL, [], []]);
      for (const r of results) expect(r.applied).toEqual(ALL);
      expect(await ledger(db.sql)).toEqual(ALL);
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });
});

describe('migrate status', () => {
  it('lists pending migrations on an empty database without creating anything', async () => {
    expect(await migrate(db.sql, 'status')).toEqual({ applied: [], pending: ALL, ran: [] });
    expect(await tables(db.sql)).toEqual([]);
  });

  it('lists applied and pending after a partial up', async () => {
    await migrate(db.sql, 'up', { steps: 1 });
    expect(await migrate(db.sql, 'status')).toEqual({
      applied: ['0001_schema'],
      pending: ALL.slice(1),
      ran: [],
    });
  });
});

describe('migrate down', () => {
  it('reverts the newest migration first, one at a time by default', async () => {
    await migrate(db.sql, 'up');

    expect(await migrate(db.sql, 'down')).toEqual({ applied: ALL.slice(0, 7), pending: ['0008_batch_jobs'], ran: ['0008_batch_jobs'] });
    expect((await tables(db.sql)).filter((t) => t.startsWith('batch_job'))).toEqual([]);

    expect(await migrate(db.sql, 'down')).toEqual({ applied: ALL.slice(0, 6), pending: ALL.slice(6), ran: ['0007_trained_models'] });
    expect((await tables(db.sql)).filter((t) => t.includes('model'))).toEqual([]);

    expect(await migrate(db.sql, 'down')).toEqual({ applied: ALL.slice(0, 5), pending: ALL.slice(5), ran: ['0006_content_genres'] });
    const [genres] = await db.sql<{ n: number }[]>`
      SELECT count(*)::int AS n FROM information_schema.columns
      WHERE table_schema = current_schema() AND table_name = 'content' AND column_name = 'genres'`;
    expect(genres!.n).toBe(0);
    expect(await triggers(db.sql)).toEqual([...STATS_TRIGGERS, ...FEEDBACK_TRIGGERS, 'watch_history_notify'].sort());

    expect(await migrate(db.sql, 'down')).toEqual({ applied: ALL.slice(0, 4), pending: ALL.slice(4), ran: ['0005_catalog_feedback'] });
    expect(await tables(db.sql)).not.toContain('user_dismissals');
    const [columns] = await db.sql<{ n: number }[]>`
      SELECT count(*)::int AS n FROM information_schema.columns
      WHERE table_schema = current_schema() AND table_name = 'content' AND column_name IN ('hidden', 'subscription_tier', 'countries')`;
    expect(columns!.n).toBe(0);
    expect(await triggers(db.sql)).toEqual([...STATS_TRIGGERS, 'watch_history_notify'].sort());

    expect(await migrate(db.sql, 'down')).toEqual({ applied: ALL.slice(0, 3), pending: ALL.slice(3), ran: ['0004_dataset'] });
    expect(await tables(db.sql)).not.toContain('dataset');

    expect(await migrate(db.sql, 'down')).toEqual({ applied: ALL.slice(0, 2), pending: ALL.slice(2), ran: ['0003_user_stats'] });
    expect(await tables(db.sql)).toEqual(['content', 'schema_migrations', 'user_watch_history', 'users']);
    expect(await triggers(db.sql)).toEqual(['watch_history_notify']);
    expect(await indexes(db.sql)).toEqual(INDEXES);

    expect(await migrate(db.sql, 'down')).toEqual({ applied: ['0001_schema'], pending: ALL.slice(1), ran: ['0002_watch_history_notify'] });
    expect(await triggers(db.sql)).toEqual([]);
    const [fn] = await db.sql<{ exists: boolean }[]>`SELECT to_regproc('notify_watch_history') IS NOT NULL AS exists`;
    expect(fn!.exists).toBe(false);
    expect(await indexes(db.sql)).toEqual(INDEXES);

    expect((await migrate(db.sql, 'down')).ran).toEqual(['0001_schema']);
    expect(await tables(db.sql)).toEqual(['schema_migrations']);
    expect(await indexes(db.sql)).toEqual([]);

    expect(await migrate(db.sql, 'down')).toEqual({ applied: [], pending: ALL, ran: [] });
  });

  it('reverts several with steps, newest first, and up restores them', async () => {
    await migrate(db.sql, 'up');
    expect((await migrate(db.sql, 'down', { steps: ALL.length })).ran).toEqual([...ALL].reverse());
    expect(await tables(db.sql)).toEqual(['schema_migrations']);
    expect((await migrate(db.sql, 'up')).ran).toEqual(ALL);
    expect(await indexes(db.sql)).toEqual([...INDEXES, ...STATS_INDEXES, ...DATASET_INDEXES, ...FEEDBACK_INDEXES, ...MODEL_INDEXES, ...JOB_INDEXES].sort());
  });
});

describe('migration files', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'migrations-'));
    await cp(DEFAULT_MIGRATIONS_DIR, dir, { recursive: true });
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses to run when an applied version has no file', async () => {
    await migrate(db.sql, 'up');
    await rm(path.join(dir, '0002_watch_history_notify.up.sql'));
    await rm(path.join(dir, '0002_watch_history_notify.down.sql'));

    await expect(migrate(db.sql, 'status', { dir })).rejects.toThrow(/applied migration version\(s\) 0002 .* no file/);
    await expect(migrate(db.sql, 'down', { dir })).rejects.toThrow(/0002/);
    expect(await triggers(db.sql)).toEqual([...STATS_TRIGGERS, ...FEEDBACK_TRIGGERS, ...GENRES_TRIGGERS, 'watch_history_notify'].sort()); // nothing was reverted
  });

  it('rolls back a failing migration entirely and records nothing', async () => {
    await writeFile(path.join(dir, '0009_broken.up.sql'), 'CREATE TABLE half_done (id int);\nSELECT 1/0;\n');
    await writeFile(path.join(dir, '0009_broken.down.sql'), 'DROP TABLE half_done;\n');

    await expect(migrate(db.sql, 'up', { dir })).rejects.toThrow(/0009_broken failed and was rolled back: division by zero/);
    expect(await ledger(db.sql)).toEqual(ALL); // the good ones before it stay applied
    expect(await tables(db.sql)).not.toContain('half_done');
    expect((await migrate(db.sql, 'status', { dir })).pending).toEqual(['0009_broken']);
  });

  it('orders versions numerically and logs what it runs', async () => {
    await writeFile(path.join(dir, '10_tenth.up.sql'), 'CREATE TABLE tenth (id int);');
    await writeFile(path.join(dir, '9_ninth.up.sql'), 'CREATE TABLE ninth (id int);');
    const lines: string[] = [];
    const result = await migrate(db.sql, 'up', { dir, log: (m) => lines.push(m) });
    expect(result.ran).toEqual([...ALL, '9_ninth', '10_tenth']);
    expect(lines).toEqual(result.ran.map((id) => `migrate up ${id}`));
  });
});

describe('watch_history NOTIFY trigger', () => {
  it('notifies the user id on insert, both users on a re-assigning update, and on delete', async () => {
    await migrate(db.sql, 'up');
    const [u1, u2] = await db.sql<{ id: string }[]>`INSERT INTO users (age) VALUES (30), (40) RETURNING id::text`;
    const [c] = await db.sql<{ id: string }[]>`INSERT INTO content (title, genre) VALUES ('t', 'drama') RETURNING id::text`;

    const received: string[] = [];
    let arrived = (): void => {};
    const listener = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      await listener.listen('watch_history', (payload) => {
        received.push(payload);
        arrived();
      });
      const next = (n: number): Promise<string[]> =>
        new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`wanted ${n} notification(s), got [${received}]`)), 5000);
          arrived = () => {
            if (received.length < n) return;
            clearTimeout(timer);
            arrived = () => {};
            resolve(received.splice(0, n));
          };
          arrived();
        });

      const [event] = await db.sql<{ id: string }[]>`
        INSERT INTO user_watch_history (user_id, content_id) VALUES (${u1!.id}, ${c!.id}) RETURNING id::text`;
      expect(await next(1)).toEqual([u1!.id]);

      await db.sql`UPDATE user_watch_history SET user_id = ${u2!.id} WHERE id = ${event!.id}`;
      expect((await next(2)).sort()).toEqual([u1!.id, u2!.id].sort());

      await db.sql`UPDATE user_watch_history SET completed = true WHERE id = ${event!.id}`;
      expect(await next(1)).toEqual([u2!.id]);

      await db.sql`DELETE FROM user_watch_history WHERE id = ${event!.id}`;
      expect(await next(1)).toEqual([u2!.id]);

      await new Promise((r) => setTimeout(r, 200));
      expect(received).toEqual([]); // nothing extra arrived
    } finally {
      await listener.end();
    }
  });
});

describe('user stats (0003): counts kept exact by triggers', () => {
  /** Both count tables against the rows they count: empty arrays mean every count is exact. */
  async function mismatches(): Promise<{ blocks: unknown[]; activity: unknown[] }> {
    const blocks = await db.sql`
      SELECT coalesce(b.block, u.block) AS block, b.n AS kept, u.n AS actual, b.before AS kept_before, u.before AS actual_before
      FROM (SELECT block, n, before FROM user_id_blocks WHERE n <> 0) b
      FULL JOIN (SELECT block, n, coalesce(sum(n) OVER (ORDER BY block ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
                 FROM (SELECT id >> 10 AS block, count(*) AS n FROM users GROUP BY 1) c) u ON u.block = b.block
      WHERE b.n IS DISTINCT FROM u.n OR b.before IS DISTINCT FROM u.before`;
    const activity = await db.sql`
      SELECT coalesce(a.user_id, w.user_id) AS user_id, a.events AS kept, w.n AS actual
      FROM (SELECT user_id, events FROM user_activity WHERE events <> 0) a
      FULL JOIN (SELECT user_id, count(*) AS n FROM user_watch_history GROUP BY 1) w ON w.user_id = a.user_id
      WHERE a.events IS DISTINCT FROM w.n`;
    return { blocks: [...blocks], activity: [...activity] };
  }

  it('follows inserts, id changes, deletes and truncation of users and watch events', async () => {
    await migrate(db.sql, 'up', { steps: 2 });
    // Rows that exist before the migration are counted by it.
    await db.sql`INSERT INTO users (id, age) SELECT g, 30 FROM generate_series(1, 3000) g`;
    await db.sql`INSERT INTO content (id, title, genre) SELECT g, 't' || g, 'drama' FROM generate_series(1, 50) g`;
    await db.sql`INSERT INTO user_watch_history (user_id, content_id) SELECT 1 + g % 40, 1 + g % 50 FROM generate_series(1, 500) g`;
    await migrate(db.sql, 'up');
    expect(await mismatches()).toEqual({ blocks: [], activity: [] });

    // A new session for the writes: each trigger function is planned afresh, as in any client's first write.
    const writer = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      await writer`INSERT INTO users (id, age) VALUES (5000, 1), (5001, 1), (1_000_000, 1)`;
      await writer`UPDATE users SET id = 7000 WHERE id = 1500`;
      await writer`UPDATE users SET age = 31 WHERE id < 100`;
      await writer`DELETE FROM users WHERE id BETWEEN 1000 AND 1100 OR id = 2`; // cascades to user 2's events
      await writer`INSERT INTO user_watch_history (user_id, content_id) VALUES (3, 1), (3, 2), (5000, 3)`;
      await writer`UPDATE user_watch_history SET user_id = 4 WHERE user_id = 5`;
      await writer`DELETE FROM user_watch_history WHERE user_id = 6`;
      expect(await mismatches()).toEqual({ blocks: [], activity: [] });
    } finally {
      await writer.end();
    }
    await db.sql`TRUNCATE users, user_watch_history CASCADE`;
    const [left] = await db.sql<{ blocks: number; activity: number }[]>`
      SELECT (SELECT count(*)::int FROM user_id_blocks) AS blocks, (SELECT count(*)::int FROM user_activity) AS activity`;
    expect(left).toEqual({ blocks: 0, activity: 0 });
  });
});
