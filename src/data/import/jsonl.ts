/**
 * The neutral format for anyone's data: `users.jsonl` (optional), `items.jsonl` and `events.jsonl` in one
 * folder, UTF-8, one JSON object per line, with the API's own field names (PUT /users, PUT /content) plus
 * an event's `timestamp`. Unknown properties are refused, as the API refuses them.
 */
import path from 'node:path';
import { Type, type TObject, type TSchema } from 'typebox';
import { Compile } from 'typebox/compile';
import { AGE_MAX, MAX_ID, TITLE_COUNTRIES_MAX, TITLE_MAX_CHARS } from '../../domain/constants.js';
import { CountryCodeSchema, SubscriptionTierSchema } from '../../domain/schemas.js';
import type { LoadProgress } from '../bulk-load.js';
import { isFile, lines, requireFile, type Line } from './text-files.js';
import { type ImportEvent, type ImportFile, ImportInputError, type ImportSource, type ImportTitle, type ImportUser } from './source.js';

const Id = Type.Integer({ minimum: 1, maximum: MAX_ID });
const DateTime = Type.String({ format: 'date-time' });
/** As the API stores and filters genres (src/http/params.ts GenreSchema). */
const Genre = Type.String({ pattern: '^[a-z0-9_-]{1,32}$' });

const UserLine = Type.Object({
  user_id: Id,
  age: Type.Optional(Type.Union([Type.Integer({ minimum: 0, maximum: AGE_MAX }), Type.Null()])),
  country: Type.Optional(Type.Union([CountryCodeSchema, Type.Null()])),
  subscription_type: Type.Optional(SubscriptionTierSchema),
  created_at: Type.Optional(DateTime),
}, { additionalProperties: false });

const ItemLine = Type.Object({
  content_id: Id,
  // No control characters, not blank: checked in code (as the API's pattern does).
  title: Type.String({ minLength: 1, maxLength: TITLE_MAX_CHARS }),
  genre: Type.Optional(Genre),
  genres: Type.Optional(Type.Array(Genre, { minItems: 1, uniqueItems: true })),
  popularity_score: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
  created_at: Type.Optional(DateTime),
  hidden: Type.Optional(Type.Boolean()),
  subscription_tier: Type.Optional(SubscriptionTierSchema),
  countries: Type.Optional(Type.Array(CountryCodeSchema, { maxItems: TITLE_COUNTRIES_MAX, uniqueItems: true })),
}, { additionalProperties: false });

const EventLine = Type.Object({
  user_id: Id,
  content_id: Id,
  timestamp: Type.Union([DateTime, Type.Integer({ minimum: 0 })]),
}, { additionalProperties: false });

/** What each property must be, said the way the error says it. */
const EXPECTED: Record<string, string> = {
  user_id: 'a positive integer',
  content_id: 'a positive integer',
  age: `an integer from 0 to ${AGE_MAX}, or null`,
  country: 'an ISO 3166-1 alpha-2 code (two capital letters), or null',
  subscription_type: 'free, basic or premium',
  created_at: 'an RFC 3339 date-time',
  title: `a string of 1 to ${TITLE_MAX_CHARS} characters`,
  genre: 'a genre of 1 to 32 characters of a-z, 0-9, _ and -',
  genres: 'a non-empty array of distinct genres (1 to 32 characters of a-z, 0-9, _ and -)',
  popularity_score: 'a number from 0 to 1',
  hidden: 'a boolean',
  subscription_tier: 'free, basic or premium',
  countries: 'an array of distinct ISO 3166-1 alpha-2 codes',
  timestamp: 'an RFC 3339 date-time or a Unix time in seconds',
};

type Obj = Record<string, unknown>;

/** A line parsed and checked against `schema`, or an error naming the first property at fault. */
function checker(schema: TObject): (file: string, l: Line) => Obj {
  const whole = Compile(schema);
  const required = new Set<string>((schema as { required?: string[] }).required ?? []);
  const properties = Object.entries(schema.properties as Record<string, TSchema>).map(([name, s]) => ({ name, check: Compile(s) }));
  return (file, l) => {
    let value: unknown;
    try {
      value = JSON.parse(l.text);
    } catch {
      throw new ImportInputError(file, l.line, 'not valid JSON');
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new ImportInputError(file, l.line, 'not a JSON object');
    }
    if (whole.Check(value)) return value as Obj;
    for (const key of Object.keys(value)) {
      if (!(key in schema.properties)) throw new ImportInputError(file, l.line, `unknown property ${JSON.stringify(key.slice(0, 32))}`);
    }
    for (const p of properties) {
      if (!(p.name in value)) {
        if (required.has(p.name)) throw new ImportInputError(file, l.line, `${p.name} is required`);
      } else if (!p.check.Check((value as Obj)[p.name])) {
        throw new ImportInputError(file, l.line, `${p.name} must be ${EXPECTED[p.name]}`);
      }
    }
    throw new ImportInputError(file, l.line, 'invalid object');
  };
}

/** Epoch ms of an RFC 3339 date-time (format already checked), within PostgreSQL's and Date's years. */
function instant(file: string, line: number, name: string, value: string): number {
  const ms = Date.parse(value);
  const year = new Date(ms).getUTCFullYear();
  if (Number.isNaN(ms) || year < 1 || year > 9999) throw new ImportInputError(file, line, `${name} must be ${EXPECTED[name]}`);
  return ms;
}

const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

function jsonlFile<Row>(file: string, schema: TObject, toRow: (o: Obj, line: number) => Row): ImportFile<Row> {
  const check = checker(schema);
  return {
    path: file,
    async *rows(progress: (p: LoadProgress) => void) {
      for await (const batch of lines(file, 'utf8', progress)) yield batch.map((l) => toRow(check(file, l), l.line));
    },
  };
}

export async function jsonlSource(dir: string): Promise<ImportSource> {
  const usersFile = path.join(dir, 'users.jsonl');
  const itemsFile = path.join(dir, 'items.jsonl');
  const eventsFile = path.join(dir, 'events.jsonl');
  await requireFile(itemsFile);
  await requireFile(eventsFile);

  const users = jsonlFile(usersFile, UserLine, (o, line): ImportUser => {
    const row: ImportUser = { id: o.user_id as number, line };
    if ('age' in o) row.age = o.age as number | null;
    if ('country' in o) row.country = o.country as string | null;
    if ('subscription_type' in o) row.subscription_type = o.subscription_type as string;
    if ('created_at' in o) row.createdAtMs = instant(usersFile, line, 'created_at', o.created_at as string);
    return row;
  });

  const titles = jsonlFile(itemsFile, ItemLine, (o, line): ImportTitle => {
    const title = o.title as string;
    if (CONTROL.test(title) || title.trim() === '') throw new ImportInputError(itemsFile, line, `title must be ${EXPECTED.title}, not blank, without control characters`);
    const genres = (o.genres as string[] | undefined) ?? (o.genre !== undefined ? [o.genre as string] : undefined);
    if (genres === undefined) throw new ImportInputError(itemsFile, line, 'genre or genres is required');
    if (o.genre !== undefined && genres[0] !== o.genre) {
      throw new ImportInputError(itemsFile, line, `genre ${JSON.stringify(o.genre)} must be the first of genres`);
    }
    const row: ImportTitle = { id: o.content_id as number, title, genres, line };
    if ('popularity_score' in o) row.popularity = o.popularity_score as number;
    if ('created_at' in o) row.createdAtMs = instant(itemsFile, line, 'created_at', o.created_at as string);
    if ('hidden' in o) row.hidden = o.hidden as boolean;
    if ('subscription_tier' in o) row.subscription_tier = o.subscription_tier as string;
    if ('countries' in o) row.countries = o.countries as string[];
    return row;
  });

  const events = jsonlFile(eventsFile, EventLine, (o, line): ImportEvent => {
    const t = o.timestamp as string | number;
    const watchedAtMs = typeof t === 'number' ? t * 1000 : instant(eventsFile, line, 'timestamp', t);
    if (watchedAtMs > Date.now()) throw new ImportInputError(eventsFile, line, 'timestamp is in the future');
    return { userId: o.user_id as number, contentId: o.content_id as number, watchedAtMs, line };
  });

  return { layout: 'JSON Lines', users: (await isFile(usersFile)) ? users : undefined, titles, events };
}
