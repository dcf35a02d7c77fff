/** Ingestion request bodies: exactly which JSON the API accepts, what it hands on, and each 400's message. */
import { describe, expect, it } from 'vitest';
import {
  BULK_MAX_BODY_BYTES,
  parseBulkContentBody,
  parseContentBody,
  parseDismissalBody,
  parseEventsBody,
  parseUserBody,
} from '../../src/http/ingest-params.js';
import { VARIABLES } from '../../src/config.js';

const body = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value));

const rejects = (fn: () => unknown, message: string) => {
  try {
    fn();
  } catch (err) {
    expect(err).toMatchObject({ code: 'invalid_body', status: 400, message });
    return;
  }
  throw new Error('expected a rejection');
};

const title = { title: 'Iron Protocol', genre: 'action', popularity_score: 0.42 };
const US = ['US'];
/** `n` distinct two-letter codes: AA, AB, … */
const codes = (n: number) => Array.from({ length: n }, (_, i) => String.fromCharCode(65 + Math.floor(i / 26), 65 + (i % 26)));

describe('PUT /users/{id} body', () => {
  it.each([
    [{}, {}],
    [{ age: 0 }, { age: 0 }],
    [{ age: 150, country: 'GB', subscription_type: 'premium' }, { age: 150, country: 'GB', subscription_type: 'premium' }],
    [{ age: null, country: null }, { age: null, country: null }],
    [{ subscription_type: 'basic' }, { subscription_type: 'basic' }],
    [{ age: 3.0e1 }, { age: 30 }],
  ])('accepts %j, handing on exactly the fields present', (input, fields) => {
    expect(parseUserBody(body(input))).toStrictEqual(fields);
  });

  it.each([
    ['nope', 'Request body must be valid JSON'],
    ['[]', 'Request body must be a JSON object'],
    ['null', 'Request body must be a JSON object'],
    ['{"age":-1}', 'age must be an integer from 0 to 150, or null'],
    ['{"age":151}', 'age must be an integer from 0 to 150, or null'],
    ['{"age":30.5}', 'age must be an integer from 0 to 150, or null'],
    ['{"age":"30"}', 'age must be an integer from 0 to 150, or null'],
    ['{"country":"us"}', 'country must be an ISO 3166-1 alpha-2 code (two capital letters), or null'],
    ['{"country":"USA"}', 'country must be an ISO 3166-1 alpha-2 code (two capital letters), or null'],
    ['{"subscription_type":"gold"}', 'subscription_type must be one of free, basic, premium'],
    ['{"subscription_type":null}', 'subscription_type must be one of free, basic, premium'],
    ['{"age":30,"subscriptionType":"free"}', 'unknown property "subscriptionType"'],
    ['{"__proto__":{"age":1}}', 'unknown property "__proto__"'],
  ])('rejects %s', (input, message) => rejects(() => parseUserBody(body(input)), message));

  it('never echoes a long property name back', () => {
    rejects(() => parseUserBody(body({ ['x'.repeat(10_000)]: 1 })), `unknown property "${'x'.repeat(32)}…"`);
  });
});

describe('PUT /content/{id} body', () => {
  it('accepts the three required fields alone (the optional ones stay absent: unchanged on update)', () => {
    expect(parseContentBody(body(title))).toStrictEqual(title);
  });

  it('accepts every optional field, created_at normalised to UTC milliseconds', () => {
    const full = { ...title, created_at: '2026-03-01T10:00:00.123456+02:00', hidden: true, subscription_tier: 'basic', countries: ['US', 'GB'] };
    expect(parseContentBody(body(full))).toStrictEqual({ ...full, created_at: '2026-03-01T08:00:00.123Z' });
  });

  it.each([
    ['2026-01-01t00:00:00z', '2026-01-01T00:00:00.000Z'],
    ['2016-12-31T23:59:60Z', '2017-01-01T00:00:00.000Z'],
    ['0001-01-01T00:00:00Z', '0001-01-01T00:00:00.000Z'],
    ['9999-12-31T23:59:59.999Z', '9999-12-31T23:59:59.999Z'],
  ])('reads created_at %s as %s', (raw, stored) => {
    expect(parseContentBody(body({ ...title, created_at: raw })).created_at).toBe(stored);
  });

  it.each([
    ['a title of 200 characters', 'x'.repeat(200)],
    ['200 characters outside the BMP (400 UTF-16 units)', '😀'.repeat(200)],
    ['a title with inner and outer spaces', ' Déjà  vu '],
  ])('accepts %s', (_name, t) => expect(parseContentBody(body({ ...title, title: t })).title).toBe(t));

  it('accepts score bounds, every tier and 250 distinct countries', () => {
    const countries = codes(250);
    for (const popularity_score of [0, 1]) expect(parseContentBody(body({ ...title, popularity_score })).popularity_score).toBe(popularity_score);
    for (const tier of ['free', 'basic', 'premium']) {
      expect(parseContentBody(body({ ...title, subscription_tier: tier })).subscription_tier).toBe(tier);
    }
    expect(parseContentBody(body({ ...title, countries })).countries).toEqual(countries);
    expect(parseContentBody(body({ ...title, countries: [] })).countries).toEqual([]);
  });

  const TITLE = 'title must be a string of 1 to 200 characters, not blank, without control characters';
  const GENRE = 'genre must be 1 to 32 characters of a-z, 0-9, _ and -';
  const SCORE = 'popularity_score must be a number from 0 to 1';
  const CREATED = 'created_at must be an RFC 3339 date-time (years 0001 to 9999 in UTC)';
  const COUNTRIES = 'countries must be an array of at most 250 distinct ISO 3166-1 alpha-2 codes (two capital letters)';
  it.each([
    ['{"genre":"action","popularity_score":0.5}', 'title is required'],
    ['{"title":"A","popularity_score":0.5}', 'genre is required'],
    ['{"title":"A","genre":"action"}', 'popularity_score is required'],
    [{ ...title, title: '' }, TITLE],
    [{ ...title, title: ' \t ' }, TITLE],
    [{ ...title, title: 'x'.repeat(201) }, TITLE],
    [{ ...title, title: 'a\u0000b' }, TITLE],
    [{ ...title, title: 'line\nbreak' }, TITLE],
    ['{"title":"lone \\ud800 surrogate","genre":"action","popularity_score":0.5}', TITLE],
    [{ ...title, title: 42 }, TITLE],
    [{ ...title, genre: 'Sci-Fi' }, GENRE],
    [{ ...title, genre: '' }, GENRE],
    [{ ...title, genre: 'g'.repeat(33) }, GENRE],
    [{ ...title, genre: 'sci fi' }, GENRE],
    [{ ...title, popularity_score: 1.0001 }, SCORE],
    [{ ...title, popularity_score: -0.1 }, SCORE],
    [{ ...title, popularity_score: '0.5' }, SCORE],
    [{ ...title, popularity_score: null }, SCORE],
    ['{"title":"A","genre":"action","popularity_score":1e400}', SCORE],
    [{ ...title, created_at: '2026-01-01' }, CREATED],
    [{ ...title, created_at: '2026-01-01T00:00:00' }, CREATED],
    [{ ...title, created_at: '2026-02-30T00:00:00Z' }, CREATED],
    [{ ...title, created_at: '2026-01-01T00:00:00Z[Europe/Paris]' }, CREATED],
    [{ ...title, created_at: '0000-01-01T00:00:00Z' }, CREATED],
    [{ ...title, created_at: '0001-01-01T00:00:00+01:00' }, CREATED],
    [{ ...title, created_at: '9999-12-31T23:59:59-01:00' }, CREATED],
    [{ ...title, created_at: null }, CREATED],
    [{ ...title, hidden: 'true' }, 'hidden must be a boolean'],
    [{ ...title, hidden: null }, 'hidden must be a boolean'],
    [{ ...title, subscription_tier: 'Premium' }, 'subscription_tier must be one of free, basic, premium'],
    [{ ...title, countries: 'US' }, COUNTRIES],
    [{ ...title, countries: ['US', 'US'] }, COUNTRIES],
    [{ ...title, countries: ['us'] }, COUNTRIES],
    [{ ...title, countries: [...US, null] }, COUNTRIES],
    [{ ...title, countries: codes(251) }, COUNTRIES],
    [{ ...title, content_id: 5 }, 'unknown property "content_id"'],
    [{ ...title, popularity: 0.5 }, 'unknown property "popularity"'],
  ])('rejects %j', (input, message) => rejects(() => parseContentBody(body(input)), message));

  it('names an unknown property before a bad value, and the first bad property in schema order', () => {
    rejects(() => parseContentBody(body({ genre: 'BAD', extra: 1 })), 'unknown property "extra"');
    rejects(() => parseContentBody(body({ popularity_score: 5, genre: 'BAD', title: 'ok' })), GENRE);
  });
});

const item = (content_id: number, extra: Record<string, unknown> = {}) => ({ content_id, ...title, ...extra });

describe('POST /content/bulk body', () => {
  it('accepts 1 to 1000 items, in order, each with its content_id', () => {
    expect(parseBulkContentBody(body([item(7, { hidden: true })]))).toStrictEqual([item(7, { hidden: true })]);
    const thousand = Array.from({ length: 1000 }, (_, i) => item(i + 1));
    expect(parseBulkContentBody(body(thousand))).toStrictEqual(thousand);
  });

  it.each([
    ['{}', 'Request body must be a JSON array of 1 to 1000 content items'],
    ['[]', 'Request body must be a JSON array of 1 to 1000 content items'],
    [JSON.stringify(Array.from({ length: 1001 }, (_, i) => item(i + 1))), 'Request body must be a JSON array of 1 to 1000 content items'],
    [[item(1), 5], 'items[1]: item must be a JSON object'],
    [[item(1), item(2), item(3), item(4, { popularity_score: 2 })], 'items[3]: popularity_score must be a number from 0 to 1'],
    [[{ ...title }], 'items[0]: content_id is required'],
    [[item(0)], 'items[0]: content_id must be a positive integer'],
    [[item(2 ** 53)], 'items[0]: content_id must be a positive integer'],
    [[item(1.5)], 'items[0]: content_id must be a positive integer'],
    [[item(1, { created_at: 'yesterday' })], 'items[0]: created_at must be an RFC 3339 date-time (years 0001 to 9999 in UTC)'],
    [[item(1), item(2), item(1)], 'items[2]: content_id 1 repeats items[0]'],
    [[item(1), item(1), item(2, { genre: 'BAD' })], 'items[1]: content_id 1 repeats items[0]'],
    [[item(1), item(2, { note: 'x' })], 'items[1]: unknown property "note"'],
  ])('rejects %s', (input, message) => rejects(() => parseBulkContentBody(body(input)), message));
});

describe('POST /users/{id}/dismissals body', () => {
  it('accepts a positive integer content_id', () => {
    expect(parseDismissalBody(body({ content_id: 42 }))).toStrictEqual({ content_id: 42 });
  });
  it.each([
    ['{}', 'content_id is required'],
    ['{"content_id":"42"}', 'content_id must be a positive integer'],
    ['{"content_id":0}', 'content_id must be a positive integer'],
    ['{"content_id":42,"reason":"boring"}', 'unknown property "reason"'],
    ['[42]', 'Request body must be a JSON object'],
  ])('rejects %s', (input, message) => rejects(() => parseDismissalBody(body(input)), message));
});

describe('body size limits', () => {
  const countries = codes(250);
  const maximal = (content_id: number) => ({
    content_id: Number.MAX_SAFE_INTEGER - content_id,
    title: '😀'.repeat(200),
    genre: 'g'.repeat(32),
    popularity_score: 0.0000012345678901234567,
    created_at: '2026-12-31T23:59:59.123456789+14:00',
    hidden: false,
    subscription_tier: 'premium',
    countries,
  });

  it('BULK_MAX_BODY_BYTES fits 1000 maximal items, compact or indented by two spaces, and they parse', () => {
    const items = Array.from({ length: 1000 }, (_, i) => maximal(i));
    const compact = Buffer.byteLength(JSON.stringify(items));
    const indented = Buffer.byteLength(JSON.stringify(items, null, 2));
    expect(indented).toBeLessThanOrEqual(BULK_MAX_BODY_BYTES);
    expect(compact).toBeLessThan(indented);
    expect(BULK_MAX_BODY_BYTES).toBeLessThan(5 * 1024 * 1024);
    expect(parseBulkContentBody(body(JSON.stringify(items, null, 2)))).toHaveLength(1000);
  });

  it('one maximal item fits the default MAX_BODY_BYTES (4096) of PUT /content/{id}, compact or indented', () => {
    const { content_id: _, ...one } = maximal(0);
    expect(Buffer.byteLength(JSON.stringify(one, null, 2))).toBeLessThanOrEqual(4096);
    expect(parseContentBody(body(JSON.stringify(one, null, 2))).title).toBe(one.title);
  });
});

describe('POST /events body', () => {
  const NOW = Date.parse('2026-06-01T12:00:00.000Z');
  const events = (value: unknown) => parseEventsBody(body(value), NOW);

  it('hands on each event, its timestamp in UTC to the millisecond, absent when not given', () => {
    expect(
      events([
        { user_id: 1, content_id: 2 },
        { user_id: 1, content_id: 2 },
        { content_id: 3, user_id: 9007199254740991, timestamp: '2024-01-31T23:30:00.1239+02:00' },
      ]),
    ).toStrictEqual([
      { user_id: 1, content_id: 2 },
      { user_id: 1, content_id: 2 },
      { user_id: 9007199254740991, content_id: 3, timestamp: '2024-01-31T21:30:00.123Z' },
    ]);
  });

  it('accepts a timestamp up to 60 s ahead of the server clock (clock skew), and not one beyond', () => {
    expect(events([{ user_id: 1, content_id: 2, timestamp: '2026-06-01T12:01:00Z' }])[0]!.timestamp).toBe('2026-06-01T12:01:00.000Z');
    rejects(
      () => events([{ user_id: 1, content_id: 2 }, { user_id: 1, content_id: 2, timestamp: '2026-06-01T12:01:00.001Z' }]),
      "events[1]: timestamp is in the future (more than 60 s ahead of the server's clock)",
    );
  });

  it.each([
    ['{"user_id":1', 'Request body must be valid JSON'],
    [{ user_id: 1, content_id: 2 }, 'Request body must be a JSON array of 1 to 10000 events'],
    [[], 'Request body must be a JSON array of 1 to 10000 events'],
    [Array.from({ length: 10_001 }, () => ({ user_id: 1, content_id: 2 })), 'Request body must be a JSON array of 1 to 10000 events'],
    [[{ user_id: 1, content_id: 2 }, 7], 'events[1]: event must be a JSON object'],
    [[{ content_id: 2 }], 'events[0]: user_id is required'],
    [[{ user_id: 1 }], 'events[0]: content_id is required'],
    [[{ user_id: '1', content_id: 2 }], 'events[0]: user_id must be a positive integer'],
    [[{ user_id: 1, content_id: 0 }], 'events[0]: content_id must be a positive integer'],
    [[{ user_id: 1, content_id: 2, watched_at: '2024-01-01T00:00:00Z' }], 'events[0]: unknown property "watched_at"'],
    [[{ user_id: 1, content_id: 2, timestamp: '2024-01-01' }], 'events[0]: timestamp must be an RFC 3339 date-time (years 0001 to 9999 in UTC)'],
    [[{ user_id: 1, content_id: 2, timestamp: null }], 'events[0]: timestamp must be an RFC 3339 date-time (years 0001 to 9999 in UTC)'],
  ])('refuses %j: %s', (input, message) => {
    rejects(() => events(input), message);
  });

  it('the default EVENTS_MAX_BODY_BYTES fits 10,000 maximal events indented by four spaces, and they parse', () => {
    const maximal = { user_id: 9007199254740991, content_id: 9007199254740991, timestamp: '2025-12-31T23:59:59.123456789+14:00' };
    const text = JSON.stringify(Array.from({ length: 10_000 }, () => maximal), null, 4);
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(Number(VARIABLES.EVENTS_MAX_BODY_BYTES!.default));
    expect(parseEventsBody(Buffer.from(text), NOW)).toHaveLength(10_000);
  });
});
