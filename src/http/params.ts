/**
 * Request parameters: parsed by hand from the raw strings uWS hands over (read synchronously), then
 * checked by TypeBox validators compiled once at start-up.
 */
import { Type } from 'typebox';
import { Compile } from 'typebox/compile';
import {
  BATCH_LIMIT_DEFAULT,
  BATCH_LIMIT_MAX,
  BATCH_PAGE_MAX,
  CONTENT_LIMIT_MAX,
  CONTENT_OFFSET_MAX,
  LIMIT_DEFAULT,
  LIMIT_MAX,
  MAX_ID,
  SIMILAR_LIMIT_MAX,
} from '../domain/constants.js';
import { Errors } from '../domain/errors.js';

export const UserIdSchema = Type.Integer({ minimum: 1, maximum: MAX_ID });
export const LimitSchema = Type.Integer({ minimum: 1, maximum: LIMIT_MAX, default: LIMIT_DEFAULT });
export const PageSchema = Type.Integer({ minimum: 1, maximum: BATCH_PAGE_MAX, default: 1 });
export const BatchLimitSchema = Type.Integer({ minimum: 1, maximum: BATCH_LIMIT_MAX, default: BATCH_LIMIT_DEFAULT });
export const WatchBodySchema = Type.Object({ content_id: Type.Integer({ minimum: 1, maximum: MAX_ID }) });
export const ContentIdSchema = Type.Integer({ minimum: 1, maximum: MAX_ID });
/** A genre name as stored and filtered by: lower-case letters, digits, `_` and `-`. */
export const GenreSchema = Type.String({ pattern: '^[a-z0-9_-]{1,32}$' });
/** Recommendations: `offset + limit` stays within the cached top-50 list. */
export const OffsetSchema = Type.Integer({ minimum: 0, maximum: LIMIT_MAX - 1, default: 0 });
export const ContentLimitSchema = Type.Integer({ minimum: 1, maximum: CONTENT_LIMIT_MAX, default: LIMIT_DEFAULT });
export const ContentOffsetSchema = Type.Integer({ minimum: 0, maximum: CONTENT_OFFSET_MAX, default: 0 });
export const SimilarLimitSchema = Type.Integer({ minimum: 1, maximum: SIMILAR_LIMIT_MAX, default: LIMIT_DEFAULT });
/** Recommendations: `explain=true` adds each item's explanation; only the words `true` and `false`. */
export const ExplainSchema = Type.Boolean({ default: false });

const userId = Compile(UserIdSchema);
const limit = Compile(LimitSchema);
const page = Compile(PageSchema);
const batchLimit = Compile(BatchLimitSchema);
const watchBody = Compile(WatchBodySchema);
const contentId = Compile(ContentIdSchema);
const genre = Compile(GenreSchema);
const offset = Compile(OffsetSchema);
const contentLimit = Compile(ContentLimitSchema);
const contentOffset = Compile(ContentOffsetSchema);
const similarLimit = Compile(SimilarLimitSchema);

/** Our queries hold two short numbers; a longer query string is refused before it is parsed. */
export const MAX_QUERY_BYTES = 1024;

/** Only plain decimal digits; 16 of them already exceed the largest id, so longer input is rejected early. */
const DIGITS = /^[0-9]{1,16}$/;

function integer(raw: string | undefined, fallback: number): number | undefined {
  if (raw === undefined) return fallback;
  return DIGITS.test(raw) ? Number(raw) : undefined;
}

type Validator = { Check(value: unknown): boolean };

function checked(validator: Validator, raw: string | undefined, fallback: number, name: string): number {
  const value = integer(raw, fallback);
  if (value === undefined || !validator.Check(value)) throw Errors.invalidParameter(name);
  return value;
}

export function parseUserId(raw: string): number {
  const value = DIGITS.test(raw) ? Number(raw) : undefined;
  if (value === undefined || !userId.Check(value)) throw Errors.invalidParameter('user_id');
  return value;
}

export const parseLimit = (raw: string | undefined) => checked(limit, raw, LIMIT_DEFAULT, 'limit');

export function parseContentId(raw: string): number {
  const value = DIGITS.test(raw) ? Number(raw) : undefined;
  if (value === undefined || !contentId.Check(value)) throw Errors.invalidParameter('content_id');
  return value;
}

/** An optional genre filter; absent is undefined. */
export function parseGenre(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  if (!genre.Check(raw)) throw Errors.invalidParameter('genre');
  return raw;
}

export interface RecommendationQuery {
  limit: number;
  offset: number;
  genre: string | undefined;
  explain: boolean;
}

/** `limit`, `offset` (`offset + limit` ≤ 50: a page of the cached list), `genre` and `explain`. */
export function parseRecommendationQuery(query: Map<string, string>): RecommendationQuery {
  const limitValue = parseLimit(query.get('limit'));
  const offsetValue = checked(offset, query.get('offset'), 0, 'offset');
  if (offsetValue + limitValue > LIMIT_MAX) throw Errors.invalidParameter('offset');
  return { limit: limitValue, offset: offsetValue, genre: parseGenre(query.get('genre')), explain: parseExplain(query.get('explain')) };
}

/** `true` or `false` (absent: false); anything else is refused rather than read as false (`explain=1`, `yes`). */
export function parseExplain(raw: string | undefined): boolean {
  if (raw === undefined || raw === 'false') return false;
  if (raw === 'true') return true;
  throw Errors.invalidParameter('explain');
}

export interface ContentListParams {
  limit: number;
  offset: number;
  genre: string | undefined;
  userId: number | undefined;
}

/** `/content/popular` and `/content/latest`: `limit`, `offset`, `genre`, `user_id`. */
export function parseContentListQuery(query: Map<string, string>): ContentListParams {
  const user = query.get('user_id');
  return {
    limit: checked(contentLimit, query.get('limit'), LIMIT_DEFAULT, 'limit'),
    offset: checked(contentOffset, query.get('offset'), 0, 'offset'),
    genre: parseGenre(query.get('genre')),
    userId: user === undefined ? undefined : parseUserId(user),
  };
}

export const parseSimilarLimit = (raw: string | undefined) => checked(similarLimit, raw, LIMIT_DEFAULT, 'limit');
export const parsePage = (raw: string | undefined) => checked(page, raw, 1, 'page');
export const parseBatchLimit = (raw: string | undefined) => checked(batchLimit, raw, BATCH_LIMIT_DEFAULT, 'limit');

/** A key given twice: its value reads as empty, which no parameter accepts (an array is not a number). */
const REPEATED = '';

/**
 * `a=1&b=2` → Map. Percent-decoding is ours (uWS's getQuery(key) decodes in place); a malformed escape
 * makes the whole query invalid, and a repeated key makes that parameter invalid.
 */
export function parseQuery(raw: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (!raw) return out;
  if (raw.length > MAX_QUERY_BYTES) throw Errors.uriTooLong(MAX_QUERY_BYTES);
  for (const pair of raw.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const key = decode(eq === -1 ? pair : pair.slice(0, eq));
    const value = eq === -1 ? '' : decode(pair.slice(eq + 1));
    out.set(key, out.has(key) ? REPEATED : value);
  }
  return out;
}

function decode(text: string): string {
  if (text.indexOf('%') === -1 && text.indexOf('+') === -1) return text;
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    throw Errors.invalidParameter('query');
  }
}

export interface WatchBody {
  content_id: number;
}

export function parseWatchBody(body: Buffer): WatchBody {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    throw Errors.invalidBody('Request body must be valid JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw Errors.invalidBody('Request body must be a JSON object');
  }
  if (!('content_id' in value)) throw Errors.invalidBody('content_id is required');
  if (!watchBody.Check(value)) throw Errors.invalidBody('content_id must be a positive integer');
  return { content_id: (value as WatchBody).content_id };
}
