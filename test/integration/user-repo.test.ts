/**
 * UserRepo against real PostgreSQL: user upserts (absent fields kept, null clears), dismissals (idempotent,
 * first dismissed_at kept), their 404s, the `watch_history` notifications of migration 0005's triggers, and
 * the WAL position each write notes for read-your-writes when replicas are configured.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { connect, type Sql } from '../../src/data/db.js';
import type { ReadRoute } from '../../src/data/replicas.js';
import { RecommendationRepo } from '../../src/data/recommendation-repo.js';
import { UserRepo } from '../../src/data/user-repo.js';
import { createTestDatabase, listenTo, UNAVAILABLE, withUnreachableDatabase, type Heard, type TestDatabase } from '../support/db.js';

let db: TestDatabase;
let sql: Sql;
let users: UserRepo;

beforeAll(async () => {
  db = await createTestDatabase();
  sql = connect(db.url, { max: 4 });
  users = new UserRepo(sql);
  await db.sql`INSERT INTO content (id, title, genre, popularity_score) VALUES (1, 'One', 'drama', 0.5), (2, 'Two', 'drama', 0.4)`;
});
afterAll(async () => {
  await sql?.end();
  await db?.drop();
});

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

describe('upsert', () => {
  it('creates a user: absent age and country null, tier free, created now', async () => {
    const before = Date.now();
    const { created, record, lsn } = await users.upsert(10, {});
    expect({ created, lsn }).toEqual({ created: true, lsn: undefined });
    expect(record).toEqual({ user_id: 10, age: null, country: null, subscription_type: 'free', created_at: expect.stringMatching(ISO) });
    expect(Date.parse(record.created_at!)).toBeGreaterThanOrEqual(before - 1000);
  });

  it('creates a user with every field given', async () => {
    const { created, record } = await users.upsert(11, { age: 34, country: 'DE', subscription_type: 'premium' });
    expect(created).toBe(true);
    expect(record).toMatchObject({ user_id: 11, age: 34, country: 'DE', subscription_type: 'premium' });
  });

  it('on update changes only the fields given, keeps created_at, and null clears age and country', async () => {
    const first = (await users.upsert(12, { age: 40, country: 'FR', subscription_type: 'basic' })).record;
    const tierOnly = await users.upsert(12, { subscription_type: 'premium' });
    expect(tierOnly).toEqual({ created: false, record: { ...first, subscription_type: 'premium' } });
    const cleared = await users.upsert(12, { age: null, country: null });
    expect(cleared.record).toEqual({ ...first, age: null, country: null, subscription_type: 'premium' });
    expect((await users.upsert(12, {})).record).toEqual(cleared.record);
  });

  it('keeps the batch endpoint\'s user count (migration 0003 triggers) exact', async () => {
    const page = () => new RecommendationRepo(sql).userPage(1, 100);
    const before = await page();
    await users.upsert(5000, {});
    await users.upsert(5000, { age: 20 });
    const after = await page();
    expect(after.totalUsers).toBe(before.totalUsers + 1);
    expect(after.userIds).toContain(5000);
  });

  it('turns a value PostgreSQL refuses (validation bypassed) into a 400', async () => {
    await expect(users.upsert(13, { age: 2 ** 40 })).rejects.toMatchObject({ code: 'invalid_body', status: 400 });
  });
});

describe('dismiss and undismiss', () => {
  beforeAll(async () => {
    await users.upsert(20, {});
  });
  beforeEach(async () => {
    await db.sql`DELETE FROM user_dismissals`;
  });

  it('records a dismissal; a repeat is the same success with the first dismissed_at', async () => {
    const first = await users.dismiss(20, 1);
    expect(first).toEqual({ created: true, record: { user_id: 20, content_id: 1, dismissed_at: expect.stringMatching(ISO) } });
    await new Promise((r) => setTimeout(r, 20));
    expect(await users.dismiss(20, 1)).toEqual({ created: false, record: first.record });
    const [row] = await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM user_dismissals WHERE user_id = 20`;
    expect(row!.n).toBe(1);
  });

  it('answers 404 for an unknown user (checked first) or an unknown title, and writes nothing', async () => {
    await expect(users.dismiss(999, 1)).rejects.toMatchObject({ code: 'user_not_found', status: 404, message: 'User with ID 999 does not exist' });
    await expect(users.dismiss(20, 999)).rejects.toMatchObject({ code: 'content_not_found', status: 404, message: 'Content with ID 999 does not exist' });
    await expect(users.dismiss(998, 999)).rejects.toMatchObject({ code: 'user_not_found' });
    const [row] = await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM user_dismissals`;
    expect(row!.n).toBe(0);
  });

  it('undismiss removes it, and is a success when there was nothing to remove', async () => {
    await users.dismiss(20, 2);
    expect(await users.undismiss(20, 2)).toEqual({ removed: true });
    expect(await users.undismiss(20, 2)).toEqual({ removed: false });
    expect(await users.undismiss(20, 1)).toEqual({ removed: false });
  });

  it('undismiss answers 404 for an unknown user (checked first) or an unknown title', async () => {
    await expect(users.undismiss(999, 1)).rejects.toMatchObject({ code: 'user_not_found', message: 'User with ID 999 does not exist' });
    await expect(users.undismiss(20, 999)).rejects.toMatchObject({ code: 'content_not_found', message: 'Content with ID 999 does not exist' });
    await expect(users.undismiss(998, 999)).rejects.toMatchObject({ code: 'user_not_found' });
  });

  it('a hidden title can still be dismissed (it exists)', async () => {
    await db.sql`UPDATE content SET hidden = true WHERE id = 2`;
    try {
      expect((await users.dismiss(20, 2)).created).toBe(true);
    } finally {
      await db.sql`UPDATE content SET hidden = false WHERE id = 2`;
    }
  });
});

describe('watch_history notifications (the user whose recommendations went stale)', () => {
  let heard: Heard;
  beforeAll(async () => {
    await users.upsert(30, { age: 30, country: 'US', subscription_type: 'free' });
    heard = await listenTo(db.sql, 'watch_history');
  });
  afterAll(async () => {
    await heard.stop();
  });
  beforeEach(() => {
    heard.payloads.length = 0;
  });

  it('on a dismissal, its repeat and its withdrawal', async () => {
    await users.dismiss(30, 1);
    await users.dismiss(30, 1);
    await users.undismiss(30, 1);
    expect(await heard.count(3)).toEqual(['30', '30', '30']);
  });

  it('none for a withdrawal of nothing, or a refused dismissal', async () => {
    await users.undismiss(30, 2);
    await expect(users.dismiss(30, 999)).rejects.toMatchObject({ code: 'content_not_found' });
    expect(await heard.count(0, 200)).toEqual([]);
  });

  it('on a tier or country change, not on an age change or an unchanged tier', async () => {
    await users.upsert(30, { subscription_type: 'basic' });
    await users.upsert(30, { country: 'GB' });
    await users.upsert(30, { country: null });
    await users.upsert(30, { age: 31 });
    await users.upsert(30, { subscription_type: 'basic' });
    expect(await heard.count(3, 200)).toEqual(['30', '30', '30']);
  });

  it('none when a user is created (nothing cached for them yet)', async () => {
    await users.upsert(31, { subscription_type: 'premium', country: 'JP' });
    expect(await heard.count(0, 200)).toEqual([]);
  });
});

describe('with read replicas', () => {
  const LSN = /^[0-9A-F]+\/[0-9A-F]+$/;
  let noted: [number, string | undefined][];
  let replicated: UserRepo;
  beforeAll(async () => {
    const reads: ReadRoute = {
      replicated: true,
      read: (run) => run(sql),
      noteWrite: (userId, lsn) => void noted.push([userId, lsn]),
      noteWriteAll: () => {},
    };
    replicated = new UserRepo(sql, undefined, 0, reads);
    await users.upsert(40, {});
  });
  beforeEach(() => {
    noted = [];
  });

  it('every write that changes what the user may be shown returns and notes the WAL position after its commit', async () => {
    const upserted = await replicated.upsert(40, { subscription_type: 'premium' });
    const dismissed = await replicated.dismiss(40, 1);
    const undismissed = await replicated.undismiss(40, 1);
    for (const { lsn } of [upserted, dismissed, undismissed]) expect(lsn).toMatch(LSN);
    expect(noted).toEqual([
      [40, upserted.lsn],
      [40, dismissed.lsn],
      [40, undismissed.lsn],
    ]);
    const [row] = await db.sql<{ ordered: boolean }[]>`
      SELECT ${upserted.lsn!}::pg_lsn <= ${dismissed.lsn!}::pg_lsn AND ${dismissed.lsn!}::pg_lsn <= ${undismissed.lsn!}::pg_lsn
         AND ${undismissed.lsn!}::pg_lsn <= pg_current_wal_insert_lsn() AS ordered`;
    expect(row!.ordered).toBe(true);
  });

  it('a withdrawal of nothing and a refused write note nothing', async () => {
    expect(await replicated.undismiss(40, 2)).toEqual({ removed: false });
    await expect(replicated.dismiss(40, 999)).rejects.toMatchObject({ code: 'content_not_found' });
    expect(noted).toEqual([]);
  });
});

describe('PostgreSQL unreachable', () => {
  it('every statement fails with 503 service_unavailable', async () => {
    await withUnreachableDatabase(async (down) => {
      const offline = new UserRepo(down);
      await expect(offline.upsert(1, {})).rejects.toMatchObject(UNAVAILABLE);
      await expect(offline.dismiss(1, 1)).rejects.toMatchObject(UNAVAILABLE);
      await expect(offline.undismiss(1, 1)).rejects.toMatchObject(UNAVAILABLE);
    });
  });
});
