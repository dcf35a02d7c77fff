/** Request parameter rules: exactly which raw strings the API accepts. */
import { describe, expect, it } from 'vitest';
import { parseBatchLimit, parseExplain, parseLimit, parsePage, parseQuery, parseRecommendationQuery, parseUserId, parseWatchBody } from '../../src/http/params.js';

const rejects = (fn: () => unknown, code: string, message: string) => {
  try {
    fn();
  } catch (err) {
    expect(err).toMatchObject({ code, message });
    return;
  }
  throw new Error('expected a rejection');
};

describe('user id', () => {
  it.each([
    ['1', 1],
    ['42', 42],
    ['007', 7],
    ['9007199254740991', 9007199254740991],
  ])('accepts %s', (raw, value) => expect(parseUserId(raw)).toBe(value));

  it.each(['', '0', '-1', '+1', '1.0', '1e3', ' 1', '0x10', 'abc', '9007199254740992', '12345678901234567'])(
    'rejects %j',
    (raw) => rejects(() => parseUserId(raw), 'invalid_parameter', 'Invalid user_id parameter'),
  );
});

describe('limit, page and batch limit', () => {
  it('apply the defaults when absent', () => {
    expect(parseLimit(undefined)).toBe(10);
    expect(parsePage(undefined)).toBe(1);
    expect(parseBatchLimit(undefined)).toBe(20);
  });
  it.each([
    [parseLimit, '1', 1],
    [parseLimit, '50', 50],
    [parsePage, '10000', 10000],
    [parseBatchLimit, '100', 100],
  ])('accept the bounds', (parse, raw, value) => expect(parse(raw)).toBe(value));
  it.each([
    [parseLimit, '0', 'limit'],
    [parseLimit, '51', 'limit'],
    [parseLimit, '5.5', 'limit'],
    [parseLimit, '', 'limit'],
    [parsePage, '', 'page'],
    [parsePage, '0', 'page'],
    [parsePage, '10001', 'page'],
    [parseBatchLimit, '101', 'limit'],
    [parseBatchLimit, 'ten', 'limit'],
  ])('reject out-of-range or non-digit values', (parse, raw, name) =>
    rejects(() => parse(raw), 'invalid_parameter', `Invalid ${name} parameter`),
  );
});

describe('query string', () => {
  it('decodes percent escapes and plus', () => {
    const q = parseQuery('limit=%35&x=a+b&flag');
    expect(q.get('limit')).toBe('5');
    expect(q.get('x')).toBe('a b');
    expect(q.get('flag')).toBe('');
  });
  it('makes a repeated parameter invalid rather than picking one of its values', () => {
    rejects(() => parseLimit(parseQuery('limit=5&limit=9').get('limit')), 'invalid_parameter', 'Invalid limit parameter');
  });
  it('rejects a malformed escape', () => rejects(() => parseQuery('limit=%ZZ'), 'invalid_parameter', 'Invalid query parameter'));
});

describe('watch-history body', () => {
  it('accepts a positive integer content_id and ignores other fields', () => {
    expect(parseWatchBody(Buffer.from('{"content_id":42,"note":"x"}'))).toEqual({ content_id: 42 });
  });
  it.each([
    ['nope', 'Request body must be valid JSON'],
    ['"42"', 'Request body must be a JSON object'],
    ['{"contentId":4}', 'content_id is required'],
    ['{"content_id":true}', 'content_id must be a positive integer'],
    ['{"content_id":1e400}', 'content_id must be a positive integer'],
  ])('rejects %s', (body, message) => rejects(() => parseWatchBody(Buffer.from(body)), 'invalid_body', message));
});

describe('explain', () => {
  it('is false when absent, and takes exactly true or false', () => {
    expect(parseExplain(undefined)).toBe(false);
    expect(parseExplain('false')).toBe(false);
    expect(parseExplain('true')).toBe(true);
    expect(parseRecommendationQuery(parseQuery('limit=3&explain=true'))).toEqual({ limit: 3, offset: 0, genre: undefined, explain: true });
  });
  it.each(['', 'yes', '1', '0', 'TRUE', 'True', ' true', 'true '])('rejects %j', (raw) =>
    rejects(() => parseExplain(raw), 'invalid_parameter', 'Invalid explain parameter'),
  );
  it('rejects a repeated explain', () =>
    rejects(() => parseRecommendationQuery(parseQuery('explain=true&explain=true')), 'invalid_parameter', 'Invalid explain parameter'));
});
