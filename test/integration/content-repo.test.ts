/**
 * ContentRepo against real PostgreSQL: what each write stores and returns (absent optional fields kept on
 * update, defaulted on create), bulk all-or-nothing, hiding, lookups, failures as domain errors, and the
 * content_changes notification every write sends (`<id>:v` visible, `<id>:h` hidden).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ContentRepo } from '../../src/data/content-repo.js';
import { connect, type Sql } from '../../src/data/db.js';
import { parseBulkContentBody } from '../../src/http/ingest-params.js';
import type { ContentItem, ContentRecord } from '../../src/domain/types.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { createTestDatabase, listenTo, UNAVAILABLE, withUnreachableDatabase, type Heard, type TestDatabase } from '../support/db.js';

let db: TestDatabase;
let sql: Sql;
let repo: ContentRepo;
const metrics = createMetrics('test');

beforeAll(async () => {
  db = await createTestDatabase();
  sql = connect(db.url, { max: 4 });
  repo = new ContentRepo(sql, metrics.db);
});
afterAll(async () => {
  await sql?.end();
  await db?.drop();
});

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const rows = async () => (await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM content`)[0]!.n;
/** The record of a title: the given fields over the defaults of a created one (created_at: any instant). */
const stored = (content_id: number, fields: Partial<ContentRecord>): ContentRecord => ({
  content_id,
  title: '',
  genre: '',
  popularity_score: 0,
  created_at: expect.stringMatching(ISO) as unknown as string,
  hidden: false,
  subscription_tier: 'free',
  countries: [],
  ...fields,
});
const item = (content_id: number, extra: Partial<ContentItem> = {}): ContentItem => ({
  content_id,
  title: `Title ${content_id}`,
  genre: 'drama',
  popularity_score: 0.5,
  ...extra,
});

describe('upsert', () => {
  it('creates a title with the defaults of the absent fields', async () => {
    const before = Date.now();
    const { created, record } = await repo.upsert(101, { title: 'Iron Protocol', genre: 'action', popularity_score: 0.42 });
    expect(created).toBe(true);
    expect(record).toEqual(stored(101, { title: 'Iron Protocol', genre: 'action', popularity_score: 0.42 }));
    expect(Date.parse(record.created_at)).toBeGreaterThanOrEqual(before - 1000);
    expect(await repo.byId(101)).toEqual(record);
  });

  it('creates a title with every field given', async () => {
    const fields = {
      title: 'Quiet Years',
      genre: 'drama',
      popularity_score: 1,
      created_at: '2025-06-01T12:00:00.250Z',
      hidden: true,
      subscription_tier: 'premium' as const,
      countries: ['US', 'GB'],
    };
    expect(await repo.upsert(102, fields)).toEqual({ created: true, record: { content_id: 102, ...fields } });
  });

  it('stores and returns an instant of any year the API accepts (years below 1000 once failed to parse: a 500)', async () => {
    for (const [id, created_at] of [[191, '0024-08-05T08:22:42.099Z'], [192, '0001-01-01T00:00:00.000Z'], [193, '9999-12-31T23:59:59.999Z']] as const) {
      const fields = { title: 'Old Rivers', genre: 'horror', popularity_score: 0.1, created_at };
      expect((await repo.upsert(id, fields)).record.created_at).toBe(created_at);
      expect((await repo.byId(id))?.created_at).toBe(created_at);
    }
  });

  it('on update replaces the required fields and keeps every absent one, including the columns the API does not write', async () => {
    await repo.upsert(103, { title: 'Old', genre: 'horror', popularity_score: 0.1, created_at: '2024-01-01T00:00:00.000Z', hidden: true, subscription_tier: 'basic', countries: ['JP'] });
    await db.sql`UPDATE content SET release_year = 1999, duration_minutes = 101 WHERE id = 103`;
    const { created, record } = await repo.upsert(103, { title: 'New', genre: 'comedy', popularity_score: 0.9 });
    expect(created).toBe(false);
    expect(record).toEqual(
      stored(103, { title: 'New', genre: 'comedy', popularity_score: 0.9, created_at: '2024-01-01T00:00:00.000Z', hidden: true, subscription_tier: 'basic', countries: ['JP'] }),
    );
    const [extra] = await db.sql`SELECT release_year, duration_minutes FROM content WHERE id = 103`;
    expect(extra).toEqual({ release_year: 1999, duration_minutes: 101 });
  });

  it('on update changes each optional field given, an empty countries list included', async () => {
    const { record } = await repo.upsert(103, {
      title: 'New',
      genre: 'comedy',
      popularity_score: 0.9,
      created_at: '2020-02-02T02:02:02.000Z',
      hidden: false,
      subscription_tier: 'free',
      countries: [],
    });
    expect(record).toMatchObject({ created_at: '2020-02-02T02:02:02.000Z', hidden: false, subscription_tier: 'free', countries: [] });
  });

  it('turns a value PostgreSQL refuses (validation bypassed) into a 400, not counted as a database error', async () => {
    const errors = metrics.db.content_upsert.errors.value;
    await expect(repo.upsert(104, { title: 'x', genre: 'drama', popularity_score: 2 })).rejects.toMatchObject({
      code: 'invalid_body',
      status: 400,
      message: 'Rejected by the database: violates content_popularity_score_check',
    });
    await expect(repo.upsert(104, { title: 'x', genre: 'drama', popularity_score: 0.5, subscription_tier: 'gold' as never })).rejects.toMatchObject({
      code: 'invalid_body',
      message: 'Rejected by the database: violates content_subscription_tier_check',
    });
    expect(await repo.byId(104)).toBeNull();
    expect(metrics.db.content_upsert.errors.value).toBe(errors);
    expect(metrics.db.content_upsert.duration.count).toBeGreaterThanOrEqual(5);
  });
});

describe('upsertMany', () => {
  afterEach(async () => {
    await db.sql`DELETE FROM content WHERE id >= 1000`;
  });

  it('creates new titles and updates existing ones in one statement, counting each', async () => {
    await repo.upsert(1001, { title: 'Kept', genre: 'drama', popularity_score: 0.3, created_at: '2024-05-05T00:00:00.000Z', hidden: true, subscription_tier: 'premium', countries: ['FR'] });
    await repo.upsert(1002, { title: 'Changed', genre: 'drama', popularity_score: 0.3, subscription_tier: 'basic', countries: ['DE'] });
    const result = await repo.upsertMany([
      item(1001),
      item(1002, { hidden: true, subscription_tier: 'free', countries: [] }),
      item(1003),
      item(1004, { created_at: '2023-03-03T03:03:03.000Z', hidden: true, subscription_tier: 'basic', countries: ['US', 'BR'] }),
    ]);
    expect(result).toEqual({ created: 2, updated: 2 });
    expect(await repo.byId(1001)).toEqual(
      stored(1001, { ...item(1001), created_at: '2024-05-05T00:00:00.000Z', hidden: true, subscription_tier: 'premium', countries: ['FR'] }),
    );
    expect(await repo.byId(1002)).toMatchObject({ title: 'Title 1002', hidden: true, subscription_tier: 'free', countries: [] });
    expect(await repo.byId(1003)).toMatchObject({ hidden: false, subscription_tier: 'free', countries: [], created_at: expect.stringMatching(ISO) });
    expect(await repo.byId(1004)).toMatchObject({
      created_at: '2023-03-03T03:03:03.000Z',
      hidden: true,
      subscription_tier: 'basic',
      countries: ['US', 'BR'],
    });
  });

  it('writes 1000 titles at once', async () => {
    const items = Array.from({ length: 1000 }, (_, i) => item(2000 + i, i % 2 ? { countries: ['CA'] } : {}));
    expect(await repo.upsertMany(items)).toEqual({ created: 1000, updated: 0 });
    expect(await repo.upsertMany(items)).toEqual({ created: 0, updated: 1000 });
    const [row] = await db.sql<{ n: number; ca: number }[]>`
      SELECT count(*)::int AS n, count(*) FILTER (WHERE countries = '{CA}')::int AS ca FROM content WHERE id >= 2000`;
    expect(row).toEqual({ n: 1000, ca: 500 });
  });

  it('a bad item at index 500 writes nothing: refused by the parser before the database, or by the database as a whole', async () => {
    const before = await rows();
    const items = Array.from({ length: 1000 }, (_, i) => item(3000 + i, i === 500 ? { popularity_score: 1.5 } : {}));
    expect(() => parseBulkContentBody(Buffer.from(JSON.stringify(items)))).toThrow(
      'items[500]: popularity_score must be a number from 0 to 1',
    );
    await repo.upsert(3001, { title: 'Untouched', genre: 'drama', popularity_score: 0.2 });
    await expect(repo.upsertMany(items)).rejects.toMatchObject({
      code: 'invalid_body',
      message: 'Rejected by the database: violates content_popularity_score_check',
    });
    expect(await rows()).toBe(before + 1);
    expect(await repo.byId(3001)).toMatchObject({ title: 'Untouched', popularity_score: 0.2 });
  });

  it('refuses an id given twice (validation bypassed) with a 400 and writes nothing', async () => {
    const before = await rows();
    await expect(repo.upsertMany([item(4000), item(4001), item(4000)])).rejects.toMatchObject({
      code: 'invalid_body',
      status: 400,
      message: 'Rejected by the database: the same row is written twice',
    });
    expect(await rows()).toBe(before);
  });

  it('declares its arrays by type, not by their first element: a first statement on a new connection with hidden: true first', async () => {
    const fresh = connect(db.url, { max: 1 });
    try {
      const result = await new ContentRepo(fresh).upsertMany([
        item(5000, { hidden: true, created_at: '2022-02-02T00:00:00.000Z', countries: ['AU'] }),
        item(5001, { hidden: false }),
      ]);
      expect(result).toEqual({ created: 2, updated: 0 });
      expect(await repo.byId(5000)).toMatchObject({ hidden: true, created_at: '2022-02-02T00:00:00.000Z', countries: ['AU'] });
    } finally {
      await fresh.end();
    }
  });

  it('does nothing for no items', async () => {
    expect(await repo.upsertMany([])).toEqual({ created: 0, updated: 0 });
  });
});

describe('hide and byId', () => {
  it('hides an existing title (a repeat is the same success) and keeps its row', async () => {
    await repo.upsert(201, { title: 'Soon hidden', genre: 'drama', popularity_score: 0.5 });
    expect(await repo.hide(201)).toBe(true);
    expect(await repo.byId(201)).toMatchObject({ content_id: 201, title: 'Soon hidden', hidden: true });
    expect(await repo.hide(201)).toBe(true);
  });

  it('says false / null for a title that does not exist', async () => {
    expect(await repo.hide(999_999)).toBe(false);
    expect(await repo.byId(999_999)).toBeNull();
  });

  it('a hidden title comes back visible when an upsert says hidden: false', async () => {
    expect((await repo.upsert(201, { title: 'Back', genre: 'drama', popularity_score: 0.5, hidden: false })).record.hidden).toBe(false);
  });
});

describe('content_changes notifications', () => {
  let heard: Heard;
  beforeAll(async () => {
    heard = await listenTo(db.sql, 'content_changes');
  });
  afterAll(async () => {
    await heard.stop();
  });

  it('one per written title: <id>:v when it may be shown, <id>:h when hidden', async () => {
    heard.payloads.length = 0;
    await repo.upsert(301, { title: 'Visible', genre: 'drama', popularity_score: 0.5 });
    await repo.upsert(302, { title: 'Hidden', genre: 'drama', popularity_score: 0.5, hidden: true });
    await repo.hide(301);
    await repo.upsertMany([item(303), item(302, { hidden: false })]);
    expect(await heard.count(5)).toEqual(['301:v', '302:h', '301:h', '303:v', '302:v']);
  });

  it('none for a write PostgreSQL refused', async () => {
    heard.payloads.length = 0;
    await expect(repo.upsertMany([item(304), item(305, { popularity_score: -1 })])).rejects.toMatchObject({ code: 'invalid_body' });
    expect(await heard.count(0, 200)).toEqual([]);
  });
});

describe('PostgreSQL unreachable', () => {
  it('every statement fails with 503 service_unavailable', async () => {
    await withUnreachableDatabase(async (down) => {
      const offline = new ContentRepo(down);
      await expect(offline.upsert(1, { title: 'x', genre: 'drama', popularity_score: 0.5 })).rejects.toMatchObject(UNAVAILABLE);
      await expect(offline.upsertMany([item(1)])).rejects.toMatchObject(UNAVAILABLE);
      await expect(offline.hide(1)).rejects.toMatchObject(UNAVAILABLE);
      await expect(offline.byId(1)).rejects.toMatchObject(UNAVAILABLE);
    });
  });
});
