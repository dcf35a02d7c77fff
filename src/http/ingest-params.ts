/**
 * Request bodies of the ingestion routes (PUT /users/{id}, PUT /content/{id}, POST /content/bulk,
 * POST /users/{id}/dismissals): TypeBox schemas (the OpenAPI document is generated from them) compiled once
 * at start-up, whole and per property. A valid body costs one compiled check; an invalid one is checked
 * property by property, in schema order, to name the first property at fault. Unknown properties are
 * refused (a misspelt optional field would otherwise be silently ignored and the value kept).
 */
import { Type, type TObject, type TSchema } from 'typebox';
import { Compile } from 'typebox/compile';
import {
  AGE_MAX,
  BULK_MAX_ITEMS,
  EVENT_CLOCK_SKEW_MS,
  EVENTS_MAX_ITEMS,
  MAX_ID,
  SUBSCRIPTION_TIERS,
  TITLE_COUNTRIES_MAX,
  TITLE_MAX_CHARS,
} from '../domain/constants.js';
import { Errors } from '../domain/errors.js';
import { CountryCodeSchema, SubscriptionTierSchema } from '../domain/schemas.js';
import type { ContentFields, ContentItem, UserFields, WatchEventInput } from '../domain/types.js';

const Id = Type.Integer({ minimum: 1, maximum: MAX_ID });
const TIERS = SUBSCRIPTION_TIERS.join(', ');

/**
 * Not blank, and no control characters (C0, DEL, C1: PostgreSQL cannot store NUL, and none belongs in a
 * displayed title) or lone UTF-16 surrogates (they cannot be encoded as UTF-8). JSON Schema patterns are
 * Unicode regular expressions, so a surrogate pair is one code point and passes.
 */
const ALLOWED = '[^\\u0000-\\u001f\\u007f-\\u009f]';
/** An allowed character that is not white space (JavaScript's \\s, spelled out so other regex engines agree). */
const VISIBLE = '[^\\u0000-\\u0020\\u007f-\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff]';
/**
 * No look-ahead and no surrogate range: fuzzers that generate from the pattern (Schemathesis) cannot use
 * either. Lone surrogates are refused in code (contentFields); JSON text from a conforming client has none.
 */
const TITLE_PATTERN = `^${ALLOWED}*${VISIBLE}${ALLOWED}*$`;
/** In Unicode mode a surrogate range matches only unpaired halves. */
const LONE_SURROGATE = /[\ud800-\udfff]/u;

const contentProperties = {
  title: Type.String({ minLength: 1, maxLength: TITLE_MAX_CHARS, pattern: TITLE_PATTERN, description: 'code points' }),
  genre: Type.String({ pattern: '^[a-z0-9_-]{1,32}$' }),
  popularity_score: Type.Number({ minimum: 0, maximum: 1 }),
  created_at: Type.Optional(
    Type.String({ format: 'date-time', description: 'RFC 3339, years 0001-9999 in UTC; stored to the millisecond (default: now)' }),
  ),
  hidden: Type.Optional(Type.Boolean({ description: 'never served while true (default false)' })),
  subscription_tier: Type.Optional(SubscriptionTierSchema),
  countries: Type.Optional(
    Type.Array(CountryCodeSchema, {
      maxItems: TITLE_COUNTRIES_MAX,
      uniqueItems: true,
      description: 'available only to users in these countries; empty (default): everywhere',
    }),
  ),
};

export const UserBodySchema = Type.Object(
  {
    age: Type.Optional(Type.Union([Type.Integer({ minimum: 0, maximum: AGE_MAX }), Type.Null()], { description: 'null clears it' })),
    country: Type.Optional(Type.Union([CountryCodeSchema, Type.Null()], { description: 'null clears it' })),
    subscription_type: Type.Optional(SubscriptionTierSchema),
  },
  { additionalProperties: false, description: 'An absent field is unchanged; on create: age null, country null, subscription_type free' },
);

export const ContentBodySchema = Type.Object(contentProperties, {
  additionalProperties: false,
  description: 'An absent optional field is unchanged; on create it takes its default',
});

export const ContentItemSchema = Type.Object({ content_id: Id, ...contentProperties }, { additionalProperties: false });

export const BulkContentBodySchema = Type.Array(ContentItemSchema, {
  minItems: 1,
  maxItems: BULK_MAX_ITEMS,
  description: 'Written in one transaction, all or nothing; each content_id at most once',
});

export const DismissalBodySchema = Type.Object({ content_id: Id }, { additionalProperties: false });

export const EventSchema = Type.Object(
  {
    user_id: Id,
    content_id: Id,
    timestamp: Type.Optional(
      Type.String({
        format: 'date-time',
        description: `RFC 3339, when it was watched (default: now); at most ${EVENT_CLOCK_SKEW_MS / 1000} s ahead of the server's clock (then recorded as now)`,
      }),
    ),
  },
  { additionalProperties: false },
);

export const EventsBodySchema = Type.Array(EventSchema, {
  minItems: 1,
  maxItems: EVENTS_MAX_ITEMS,
  description: 'Written in one transaction, all or nothing; the same event may repeat (each is a watch)',
});

/** What a property must be, said the way the 400 says it. */
const MESSAGES: Record<string, string> = {
  content_id: 'content_id must be a positive integer',
  user_id: 'user_id must be a positive integer',
  timestamp: 'timestamp must be an RFC 3339 date-time (years 0001 to 9999 in UTC)',
  title: `title must be a string of 1 to ${TITLE_MAX_CHARS} characters, not blank, without control characters`,
  genre: 'genre must be 1 to 32 characters of a-z, 0-9, _ and -',
  popularity_score: 'popularity_score must be a number from 0 to 1',
  created_at: 'created_at must be an RFC 3339 date-time (years 0001 to 9999 in UTC)',
  hidden: 'hidden must be a boolean',
  subscription_tier: `subscription_tier must be one of ${TIERS}`,
  countries: `countries must be an array of at most ${TITLE_COUNTRIES_MAX} distinct ISO 3166-1 alpha-2 codes (two capital letters)`,
  age: `age must be an integer from 0 to ${AGE_MAX}, or null`,
  country: 'country must be an ISO 3166-1 alpha-2 code (two capital letters), or null',
  subscription_type: `subscription_type must be one of ${TIERS}`,
};

type Validator = { Check(value: unknown): boolean };
type Body = Record<string, unknown>;

interface ObjectRules {
  whole: Validator;
  properties: { name: string; check: Validator; required: boolean; message: string }[];
  known: ReadonlySet<string>;
}

function rulesOf(schema: TObject): ObjectRules {
  const required = new Set<string>((schema as { required?: string[] }).required ?? []);
  const properties = Object.entries(schema.properties as Record<string, TSchema>).map(([name, property]) => ({
    name,
    check: Compile(property),
    required: required.has(name),
    message: MESSAGES[name] ?? `${name} is invalid`,
  }));
  return { whole: Compile(schema), properties, known: new Set(properties.map((p) => p.name)) };
}

const userRules = rulesOf(UserBodySchema);
const contentRules = rulesOf(ContentBodySchema);
const itemRules = rulesOf(ContentItemSchema);
const dismissalRules = rulesOf(DismissalBodySchema);
const eventRules = rulesOf(EventSchema);

/** The body as JSON, or the 400 every body route answers for text that is not JSON. */
export function json(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw Errors.invalidBody('Request body must be valid JSON');
  }
}

const isObject = (value: unknown): value is Body => value !== null && typeof value === 'object' && !Array.isArray(value);

/** A client's property name in a message: quoted, and never more than 32 characters of it. */
const nameOf = (key: string): string => JSON.stringify(key.length > 32 ? `${key.slice(0, 32)}…` : key);

/** Throws the 400 of the first property at fault (`at`: "items[3]: " inside a bulk body). */
function check(value: unknown, rules: ObjectRules, at: string, what: string): asserts value is Body {
  if (!isObject(value)) throw Errors.invalidBody(`${at}${what} must be a JSON object`);
  if (rules.whole.Check(value)) return;
  for (const key of Object.keys(value)) {
    if (!rules.known.has(key)) throw Errors.invalidBody(`${at}unknown property ${nameOf(key)}`);
  }
  for (const p of rules.properties) {
    if (!(p.name in value)) {
      if (p.required) throw Errors.invalidBody(`${at}${p.name} is required`);
    } else if (!p.check.Check(value[p.name])) {
      throw Errors.invalidBody(`${at}${p.message}`);
    }
  }
  throw Errors.invalidBody(`${at}${what} is invalid`); // unreachable while the per-property rules cover the schema
}

/**
 * An RFC 3339 date-time (already format-checked) as the UTC ISO string stored: what JavaScript's Date parses
 * (a leap second :60 counts as the next second, as PostgreSQL reads it), in the years PostgreSQL stores
 * and Date prints as four digits. Undefined when out of range or not parseable (an RFC 9557 [suffix]).
 */
function instant(value: string): string | undefined {
  let ms = Date.parse(value);
  if (Number.isNaN(ms) && /[Tt]\d\d:\d\d:60/.test(value)) ms = Date.parse(value.replace(/([Tt]\d\d:\d\d:)60/, '$159')) + 1000;
  if (Number.isNaN(ms)) return undefined;
  const date = new Date(ms);
  const year = date.getUTCFullYear();
  return year >= 1 && year <= 9999 ? date.toISOString() : undefined;
}

function contentFields(value: Body, at: string): ContentFields {
  if (LONE_SURROGATE.test(value.title as string)) throw Errors.invalidBody(`${at}${MESSAGES.title}`);
  const fields: ContentFields = {
    title: value.title as string,
    genre: value.genre as string,
    popularity_score: value.popularity_score as number,
  };
  if ('created_at' in value) {
    const createdAt = instant(value.created_at as string);
    if (createdAt === undefined) throw Errors.invalidBody(`${at}${MESSAGES.created_at}`);
    fields.created_at = createdAt;
  }
  if ('hidden' in value) fields.hidden = value.hidden as boolean;
  if ('subscription_tier' in value) fields.subscription_tier = value.subscription_tier as ContentFields['subscription_tier'];
  if ('countries' in value) fields.countries = [...(value.countries as string[])];
  return fields;
}

/** PUT /users/{id}: only the fields present (null included) are returned. */
export function parseUserBody(body: Buffer): UserFields {
  const value = json(body);
  check(value, userRules, '', 'Request body');
  const fields: UserFields = {};
  if ('age' in value) fields.age = value.age as number | null;
  if ('country' in value) fields.country = value.country as string | null;
  if ('subscription_type' in value) fields.subscription_type = value.subscription_type as UserFields['subscription_type'];
  return fields;
}

/** PUT /content/{id}. */
export function parseContentBody(body: Buffer): ContentFields {
  const value = json(body);
  check(value, contentRules, '', 'Request body');
  return contentFields(value, '');
}

/** POST /content/bulk: every item valid and each content_id once, else a 400 naming the first bad item. */
export function parseBulkContentBody(body: Buffer): ContentItem[] {
  const value = json(body);
  if (!Array.isArray(value) || value.length === 0 || value.length > BULK_MAX_ITEMS) {
    throw Errors.invalidBody(`Request body must be a JSON array of 1 to ${BULK_MAX_ITEMS} content items`);
  }
  const items: ContentItem[] = [];
  const firstAt = new Map<number, number>();
  for (const [i, raw] of value.entries()) {
    const at = `items[${i}]: `;
    check(raw, itemRules, at, 'item');
    const contentId = raw.content_id as number;
    const first = firstAt.get(contentId);
    if (first !== undefined) throw Errors.invalidBody(`${at}content_id ${contentId} repeats items[${first}]`);
    firstAt.set(contentId, i);
    items.push({ content_id: contentId, ...contentFields(raw, at) });
  }
  return items;
}

/** POST /users/{id}/dismissals {"content_id": N}. */
export function parseDismissalBody(body: Buffer): { content_id: number } {
  const value = json(body);
  check(value, dismissalRules, '', 'Request body');
  return { content_id: value.content_id as number };
}

/**
 * POST /events: every event valid, else a 400 naming the first bad one by its index (users and titles are
 * checked by the write). A timestamp more than EVENT_CLOCK_SKEW_MS ahead of `nowMs` is refused as future.
 */
export function parseEventsBody(body: Buffer, nowMs = Date.now()): WatchEventInput[] {
  const value = json(body);
  if (!Array.isArray(value) || value.length === 0 || value.length > EVENTS_MAX_ITEMS) {
    throw Errors.invalidBody(`Request body must be a JSON array of 1 to ${EVENTS_MAX_ITEMS} events`);
  }
  const latest = nowMs + EVENT_CLOCK_SKEW_MS;
  const events: WatchEventInput[] = new Array(value.length);
  for (const [i, raw] of value.entries()) {
    const at = `events[${i}]: `;
    check(raw, eventRules, at, 'event');
    const event: WatchEventInput = { user_id: raw.user_id as number, content_id: raw.content_id as number };
    if ('timestamp' in raw) {
      const timestamp = instant(raw.timestamp as string);
      if (timestamp === undefined) throw Errors.invalidBody(`${at}${MESSAGES.timestamp}`);
      if (Date.parse(timestamp) > latest) {
        throw Errors.invalidBody(`${at}timestamp is in the future (more than ${EVENT_CLOCK_SKEW_MS / 1000} s ahead of the server's clock)`);
      }
      event.timestamp = timestamp;
    }
    events[i] = event;
  }
  return events;
}

/**
 * POST /content/bulk's largest body: twice the compact JSON of BULK_MAX_ITEMS maximal items with their
 * commas and brackets (about 4.6 MB), so the same items indented by two spaces (JSON.stringify(items, null,
 * 2), 4.1 MB) fit too (test/unit/ingest-params.test.ts). Maximal item: the largest id; 200 four-byte (UTF-8)
 * characters of title, the longest a code point gets (JSON escapes only quote and backslash, two bytes,
 * once control characters are refused); a 32-character genre; a 17-significant-digit score at its longest
 * (0.0000012345678901234567); a date-time to the nanosecond with an offset; "premium"; 250 countries. Not
 * covered: numbers padded with extra digits, deeper indentation. One such item (PUT /content/{id}) is 2.3 KB
 * compact and 3.5 KB indented: the default MAX_BODY_BYTES (4096) holds it.
 */
const MAXIMAL_ITEM: ContentItem = {
  content_id: MAX_ID,
  title: '\u{1F600}'.repeat(TITLE_MAX_CHARS),
  genre: 'g'.repeat(32),
  popularity_score: 0.0000012345678901234567,
  created_at: '2026-12-31T23:59:59.123456789+14:00',
  hidden: false,
  subscription_tier: 'premium',
  countries: Array.from({ length: TITLE_COUNTRIES_MAX }, (_, i) => String.fromCharCode(65 + Math.floor(i / 26), 65 + (i % 26))),
};

export const BULK_MAX_BODY_BYTES = 2 * (BULK_MAX_ITEMS * (Buffer.byteLength(JSON.stringify(MAXIMAL_ITEM)) + 1) + 1);
