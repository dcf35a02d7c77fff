/**
 * npm run import's library against a real PostgreSQL: each MovieLens layout and JSON Lines from small files
 * written here (no data set is committed: their licences forbid it), idempotence, --reset, and every kind of
 * bad input refused by file and line with nothing imported.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { importDataset } from '../../src/data/import/importer.js';
import { jsonlSource } from '../../src/data/import/jsonl.js';
import { movielensSource } from '../../src/data/import/movielens.js';
import { seed } from '../../src/data/seed.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

let db: TestDatabase;
const dirs: string[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
afterEach(async () => {
  await db.sql`TRUNCATE users, content, user_watch_history, user_dismissals RESTART IDENTITY CASCADE`;
});

/** A temp folder holding `files` (string: UTF-8; Buffer: exact bytes). */
function folder(files: Record<string, string | Buffer>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'import-test-'));
  dirs.push(dir);
  for (const [name, body] of Object.entries(files)) writeFileSync(path.join(dir, name), body);
  return dir;
}

const T1 = 881250949; // 1997-12-04T15:55:49Z
const T2 = 891717742;
const T3 = 878887116;

const GENRES_100K = ['unknown', 'Action', 'Adventure', "Children's", 'Comedy', 'Sci-Fi'];
const flags = (...on: string[]) => GENRES_100K.map((g) => (on.includes(g) ? '1' : '0')).join('|');

/** MovieLens 100K: tab-separated ratings, pipe-separated Latin-1 items and users, genre names in u.genre. */
const ML100K = {
  'u.genre': GENRES_100K.map((g, i) => `${g}|${i}`).join('\n') + '\n\n',
  'u.item': Buffer.from(
    `1|Toy Story (1995)|01-Jan-1995||http://x|${flags("Children's", 'Comedy')}\n` +
      `2|Les Mis\xe9rables (1995)|15-Mar-1996||http://y|${flags('Action', 'Sci-Fi')}\n` +
      `3|Nameless|||http://z|${flags()}\n`,
    'latin1',
  ),
  'u.user': '1|24|M|technician|85711\n2|53|F|other|94043\n',
  'u.data': `1\t1\t5\t${T1}\n1\t2\t3\t${T2}\n2\t1\t4\t${T3}\n`,
};

/** MovieLens 1M: `::`-separated, Latin-1; age is a range code. */
const ML1M = {
  'movies.dat': Buffer.from("1::Toy Story (1995)::Animation|Children's|Comedy\n2::Caf\xe9 au Lait (1993)::Drama\n", 'latin1'),
  'users.dat': '1::F::1::10::48067\n2::M::56::16::70072\n',
  'ratings.dat': `1::1::5::${T1}\r\n2::2::3::${T2}\r\n2::1::4::${T3}\r\n`,
};

/** The CSV releases: a header, RFC 4180 quoting, no users file. */
const MLCSV = {
  'movies.csv':
    'movieId,title,genres\n' +
    '1,Toy Story (1995),Adventure|Animation|Children\n' +
    '11,"American President, The (1995)",Comedy|Drama|Romance\n' +
    '12,"Dracula: Dead and Loving It (1995)",Comedy|Horror\n' +
    '13,"The ""Quoted"" One (2001)",(no genres listed)\n' +
    '14,No Year At All,Drama\n',
  'ratings.csv': `userId,movieId,rating,timestamp\n1,1,4.0,${T1}\n1,11,2.5,${T2}\n7,12,5.0,${T3}\n7,13,0.5,${T1}\n`,
};

const JSONL = {
  'users.jsonl': '{"user_id":5,"age":31,"country":"DE","subscription_type":"premium","created_at":"2020-01-02T03:04:05Z"}\n{"user_id":6}\n',
  'items.jsonl':
    '{"content_id":100,"title":"Alpha","genres":["drama","comedy"],"created_at":"2019-05-01T00:00:00Z"}\n' +
    '{"content_id":101,"title":"Beta","genre":"action","popularity_score":0.25,"hidden":true}\n',
  'events.jsonl':
    '{"user_id":5,"content_id":100,"timestamp":"2021-01-01T10:00:00Z"}\n' +
    `{"user_id":6,"content_id":100,"timestamp":${T1}}\n` +
    '{"user_id":6,"content_id":101,"timestamp":"2021-02-01T10:00:00.000+01:00"}\n',
};

async function rows(sql: postgres.Sql) {
  const users = await sql`SELECT id::int, age, country, subscription_type, created_at FROM users ORDER BY id`;
  const content = await sql`
    SELECT id::int, title, genre, genres, release_year, popularity_score, created_at, hidden, subscription_tier
    FROM content ORDER BY id`;
  const events = await sql`SELECT user_id::int, content_id::int, watched_at FROM user_watch_history ORDER BY user_id, watched_at`;
  return { users, content, events };
}

async function fingerprint(sql: postgres.Sql): Promise<string> {
  const [row] = await sql<{ md5: string }[]>`
    SELECT md5((SELECT coalesce(string_agg(u::text, ',' ORDER BY u.id), '') FROM users u) ||
               (SELECT coalesce(string_agg(c::text, ',' ORDER BY c.id), '') FROM content c) ||
               (SELECT coalesce(string_agg(h::text, ',' ORDER BY h.id), '') FROM user_watch_history h) ||
               (SELECT version::text FROM dataset)) AS md5`;
  return row!.md5;
}

const at = (seconds: number) => new Date(seconds * 1000);

describe('MovieLens layouts', () => {
  it('100K: users with age, Latin-1 titles with every genre (first = genre), release dates, ratings as events', async () => {
    const r = await importDataset(db.sql, await movielensSource(folder(ML100K)));
    expect(r).toMatchObject({ layout: 'MovieLens 100K', users: { added: 2 }, titles: { added: 3 }, events: { added: 3, read: 3 } });
    const { users, content, events } = await rows(db.sql);
    expect(users).toEqual([
      { id: 1, age: 24, country: null, subscription_type: 'free', created_at: at(T1) },
      { id: 2, age: 53, country: null, subscription_type: 'free', created_at: at(T3) },
    ]);
    expect(content.map((c) => [c.id, c.title, c.genre, c.genres, c.release_year, c.created_at, c.popularity_score])).toEqual([
      [1, 'Toy Story (1995)', 'childrens', ['childrens', 'comedy'], 1995, new Date('1995-01-01T00:00:00Z'), 1],
      [2, 'Les Misérables (1995)', 'action', ['action', 'sci-fi'], 1996, new Date('1996-03-15T00:00:00Z'), 0.5],
      // No flag set: the one genre "unknown"; no release date, no year in the title, no event: the Unix epoch.
      [3, 'Nameless', 'unknown', ['unknown'], null, new Date(0), 0],
    ]);
    expect(events).toEqual([
      { user_id: 1, content_id: 1, watched_at: at(T1) },
      { user_id: 1, content_id: 2, watched_at: at(T2) },
      { user_id: 2, content_id: 1, watched_at: at(T3) },
    ]);
  });

  it('1M: `::` fields, CR LF lines, Latin-1, the age code, the year in the title', async () => {
    await importDataset(db.sql, await movielensSource(folder(ML1M)));
    const { users, content, events } = await rows(db.sql);
    expect(users.map((u) => [u.id, u.age])).toEqual([[1, 1], [2, 56]]);
    expect(content.map((c) => [c.id, c.title, c.genres, c.created_at])).toEqual([
      [1, 'Toy Story (1995)', ['animation', 'childrens', 'comedy'], new Date('1995-01-01T00:00:00Z')],
      [2, 'Café au Lait (1993)', ['drama'], new Date('1993-01-01T00:00:00Z')],
    ]);
    expect(events.map((e) => [e.user_id, e.content_id, e.watched_at])).toEqual([[1, 1, at(T1)], [2, 1, at(T3)], [2, 2, at(T2)]]);
  });

  it('CSV: quoted titles with commas and quotes, users from the ratings, no genres listed, no year', async () => {
    const r = await importDataset(db.sql, await movielensSource(folder(MLCSV)));
    expect(r).toMatchObject({ layout: 'MovieLens CSV', users: { added: 2 }, titles: { added: 5 }, events: { added: 4 } });
    const { users, content } = await rows(db.sql);
    expect(users.map((u) => [u.id, u.age, u.country, u.subscription_type])).toEqual([[1, null, null, 'free'], [7, null, null, 'free']]);
    expect(content.map((c) => [c.id, c.title, c.genre, c.genres, c.created_at])).toEqual([
      [1, 'Toy Story (1995)', 'adventure', ['adventure', 'animation', 'children'], new Date('1995-01-01T00:00:00Z')],
      [11, 'American President, The (1995)', 'comedy', ['comedy', 'drama', 'romance'], new Date('1995-01-01T00:00:00Z')],
      [12, 'Dracula: Dead and Loving It (1995)', 'comedy', ['comedy', 'horror'], new Date('1995-01-01T00:00:00Z')],
      [13, 'The "Quoted" One (2001)', 'unknown', ['unknown'], new Date('2001-01-01T00:00:00Z')],
      // No year and no event: the epoch; watched by nobody: popularity 0.
      [14, 'No Year At All', 'drama', ['drama'], new Date(0)],
    ]);
  });
});

describe('JSON Lines', () => {
  it("takes the API's fields; a title's absent popularity comes from the watch counts", async () => {
    await importDataset(db.sql, await jsonlSource(folder(JSONL)));
    const { users, content, events } = await rows(db.sql);
    expect(users).toEqual([
      { id: 5, age: 31, country: 'DE', subscription_type: 'premium', created_at: new Date('2020-01-02T03:04:05Z') },
      { id: 6, age: null, country: null, subscription_type: 'free', created_at: at(T1) },
    ]);
    expect(content.map((c) => [c.id, c.genre, c.genres, c.popularity_score, c.created_at, c.hidden, c.subscription_tier])).toEqual([
      [100, 'drama', ['drama', 'comedy'], 1, new Date('2019-05-01T00:00:00Z'), false, 'free'],
      [101, 'action', ['action'], 0.25, new Date('2021-02-01T09:00:00Z'), true, 'free'],
    ]);
    expect(events.map((e) => [e.user_id, e.content_id, e.watched_at])).toEqual([
      [5, 100, new Date('2021-01-01T10:00:00Z')],
      [6, 100, at(T1)],
      [6, 101, new Date('2021-02-01T09:00:00Z')],
    ]);
  });

  it('without users.jsonl takes the users of the events', async () => {
    const { 'users.jsonl': _, ...files } = JSONL;
    const r = await importDataset(db.sql, await jsonlSource(folder(files)));
    expect(r.users).toEqual({ added: 2, updated: 0 });
  });
});

describe('adding, idempotence, reset', () => {
  it('importing the same files twice changes nothing, not even the data set version', async () => {
    const dir = folder(ML100K);
    await importDataset(db.sql, await movielensSource(dir));
    const before = await fingerprint(db.sql);
    const again = await importDataset(db.sql, await movielensSource(dir));
    expect(again).toMatchObject({ users: { added: 0, updated: 0 }, titles: { added: 0, updated: 0 }, events: { added: 0, read: 3 } });
    expect(await fingerprint(db.sql)).toBe(before);
  });

  it('adds to what is there, updates what changed, keeps what the files do not say, and bumps the version once', async () => {
    await importDataset(db.sql, await jsonlSource(folder(JSONL)));
    await db.sql`UPDATE content SET subscription_tier = 'premium' WHERE id = 100`;
    const [{ v: before }] = await db.sql<{ v: number }[]>`SELECT version::int AS v FROM dataset`;
    const heard: string[] = [];
    const listener = await db.sql.listen('recsvc_dataset', (p) => void heard.push(p));
    const r = await importDataset(db.sql, await jsonlSource(folder({
      'items.jsonl': '{"content_id":100,"title":"Alpha (restored)","genre":"drama"}\n{"content_id":102,"title":"Gamma","genre":"drama"}\n',
      'events.jsonl': '{"user_id":5,"content_id":102,"timestamp":"2022-01-01T00:00:00Z"}\n{"user_id":9,"content_id":100,"timestamp":"2022-01-02T00:00:00Z"}\n',
    })));
    await new Promise((resolve) => setTimeout(resolve, 200));
    await listener.unlisten();
    expect(r).toMatchObject({ users: { added: 1, updated: 0 }, titles: { added: 1, updated: 1 }, events: { added: 2 } });
    const { users, content } = await rows(db.sql);
    expect(users.map((u) => [u.id, u.subscription_type])).toEqual([[5, 'premium'], [6, 'free'], [9, 'free']]);
    // 100: renamed, genres replaced, tier kept (absent), watched 3 times now: the most watched.
    expect(content.map((c) => [c.id, c.title, c.genres, c.subscription_tier, c.popularity_score])).toEqual([
      [100, 'Alpha (restored)', ['drama'], 'premium', 1],
      [101, 'Beta', ['action'], 'free', 0.25],
      [102, 'Gamma', ['drama'], 'free', 1 / 3],
    ]);
    const [{ v: after }] = await db.sql<{ v: number }[]>`SELECT version::int AS v FROM dataset`;
    expect(after).toBe(before + 1);
    expect(heard).toEqual([String(before + 1)]);
    // The sequences moved past the imported ids: the API's next title does not collide.
    const [{ next }] = await db.sql<{ next: number }[]>`SELECT nextval(pg_get_serial_sequence('content', 'id'))::int AS next`;
    expect(next).toBe(103);
  });

  it('--reset replaces a seeded data set, and leaves the schema as it found it', async () => {
    await seed(db.sql, { users: 30, content: 20, events: 100, reset: true });
    const r = await importDataset(db.sql, await movielensSource(folder(MLCSV)), { reset: true });
    expect(r.events.added).toBe(4);
    const [counts] = await db.sql<{ u: number; c: number; e: number; d: number; stats: number; off: number; ix: number }[]>`
      SELECT (SELECT count(*) FROM users)::int AS u, (SELECT count(*) FROM content)::int AS c,
             (SELECT count(*) FROM user_watch_history)::int AS e, (SELECT count(*) FROM user_dismissals)::int AS d,
             (SELECT sum(events) FROM user_activity)::int AS stats,
             (SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal AND tgenabled = 'D')::int AS off,
             (SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'idx\\_%')::int AS ix`;
    expect(counts).toEqual({ u: 2, c: 5, e: 4, d: 0, stats: 4, off: 0, ix: 11 });
    await expect(db.sql`INSERT INTO user_watch_history (user_id, content_id) VALUES (1, 999)`).rejects.toMatchObject({
      constraint_name: 'user_watch_history_content_id_fkey',
    });
  });
});

describe('bad input: refused by file and line, nothing imported', () => {
  const refused = async (files: Record<string, string | Buffer>, format: 'movielens' | 'jsonl', message: RegExp) => {
    await importDataset(db.sql, await jsonlSource(folder(JSONL))); // something to keep
    const before = await fingerprint(db.sql);
    const dir = folder(files);
    await expect((async () => {
      const source = format === 'movielens' ? await movielensSource(dir) : await jsonlSource(dir);
      await importDataset(db.sql, source);
    })()).rejects.toThrow(message);
    expect(await fingerprint(db.sql)).toBe(before);
    // And with --reset: the old data set is still all there.
    await expect((async () => {
      const source = format === 'movielens' ? await movielensSource(dir) : await jsonlSource(dir);
      await importDataset(db.sql, source, { reset: true });
    })()).rejects.toThrow(message);
    expect(await fingerprint(db.sql)).toBe(before);
  };

  it.each([
    ['a malformed rating line (100K)', { ...ML100K, 'u.data': `1\t1\t5\t${T1}\n1\t2\tfive\t${T2}\n` }, /u\.data line 2: rating "five" is not a number/],
    ['a short line (1M)', { ...ML1M, 'ratings.dat': `1::1::5::${T1}\n1::1::5\n` }, /ratings\.dat line 2: expected 4 fields/],
    ['an unknown title in the ratings (1M)', { ...ML1M, 'ratings.dat': `1::1::5::${T1}\n2::77::3::${T2}\n` }, /ratings\.dat line 2: unknown title 77/],
    ['an unknown user in the ratings (100K)', { ...ML100K, 'u.data': `1\t1\t5\t${T1}\n\n42\t1\t5\t${T1}\n` }, /u\.data line 3: unknown user 42/],
    ['an unclosed quote (CSV)', { ...MLCSV, 'movies.csv': 'movieId,title,genres\n1,"Open (1995),Drama\n' }, /movies\.csv line 2: malformed CSV/],
    ['a repeated movie id (CSV)', { ...MLCSV, 'movies.csv': 'movieId,title,genres\n1,A (1995),Drama\n1,B (1996),Drama\n' }, /movies\.csv line 3: id 1 already on line 2/],
    ['invalid UTF-8 (CSV)', { ...MLCSV, 'movies.csv': Buffer.concat([Buffer.from('movieId,title,genres\n1,Toy (1995),Drama\n11,Caf'), Buffer.from([0xe9]), Buffer.from(' (1993),Drama\n12,X (1990),Drama\n13,Y,Drama\n')]) }, /movies\.csv line 3: not valid UTF-8/],
    ['a missing file (100K without u.user)', { 'u.data': ML100K['u.data'], 'u.item': ML100K['u.item'], 'u.genre': ML100K['u.genre'] }, /u\.user: file not found/],
    ['a timestamp in the future', { ...MLCSV, 'ratings.csv': `userId,movieId,rating,timestamp\n1,1,4.0,${T1}\n1,11,4.0,99999999999\n` }, /ratings\.csv line 3: timestamp 99999999999 is in the future/],
  ])('MovieLens: %s', async (_, files, message) => {
    await refused(files as Record<string, string | Buffer>, 'movielens', message);
  });

  it.each([
    ['not JSON', { ...JSONL, 'events.jsonl': '{"user_id":5,"content_id":100,"timestamp":"2021-01-01T10:00:00Z"}\n{"user_id":5,\n' }, /events\.jsonl line 2: not valid JSON/],
    ['an unknown property', { ...JSONL, 'items.jsonl': '{"content_id":100,"title":"A","genre":"drama","rating":5}\n' }, /items\.jsonl line 1: unknown property "rating"/],
    ['a genre not in the API form', { ...JSONL, 'items.jsonl': '{"content_id":100,"title":"A","genre":"Sci Fi"}\n' }, /items\.jsonl line 1: genre must be/],
    ['an unknown user', { ...JSONL, 'events.jsonl': '{"user_id":5,"content_id":100,"timestamp":1}\n{"user_id":8,"content_id":100,"timestamp":2}\n' }, /events\.jsonl line 2: unknown user 8/],
    ['invalid UTF-8', { ...JSONL, 'users.jsonl': Buffer.concat([Buffer.from('{"user_id":5}\n{"user_id":6,"country":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}\n')]) }, /users\.jsonl line 2: not valid UTF-8/],
    ['a missing events file', { 'items.jsonl': JSONL['items.jsonl'] }, /events\.jsonl: file not found/],
  ])('JSON Lines: %s', async (_, files, message) => {
    await refused(files as Record<string, string | Buffer>, 'jsonl', message);
  });

  it('refuses a folder with no MovieLens ratings file', async () => {
    await expect(movielensSource(folder({ 'notes.txt': 'x' }))).rejects.toThrow(/no MovieLens ratings file found/);
  });
});

describe('API writes keep genres in step with genre (migration 0006)', () => {
  it('a write without a list gets [genre]; another genre replaces the list; the same genre keeps it', async () => {
    await importDataset(db.sql, await jsonlSource(folder(JSONL)));
    await db.sql`INSERT INTO content (id, title, genre) VALUES (500, 'Plain', 'drama')`;
    await db.sql`UPDATE content SET title = 'Alpha 2', genre = 'drama' WHERE id = 100`;
    await db.sql`UPDATE content SET genre = 'horror' WHERE id = 101`;
    const got = await db.sql`SELECT id::int, genre, genres FROM content WHERE id IN (100, 101, 500) ORDER BY id`;
    expect(got).toEqual([
      { id: 100, genre: 'drama', genres: ['drama', 'comedy'] },
      { id: 101, genre: 'horror', genres: ['horror'] },
      { id: 500, genre: 'drama', genres: ['drama'] },
    ]);
    await expect(db.sql`UPDATE content SET genres = '{comedy}' WHERE id = 500`).rejects.toThrow(/content_genres_check/);
  });
});
