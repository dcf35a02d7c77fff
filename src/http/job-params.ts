/**
 * The batch-job routes' inputs: the POST body and the path and query parameters, as TypeBox schemas (the
 * OpenAPI document is generated from them) compiled once at start-up.
 */
import { Type } from 'typebox';
import { Compile } from 'typebox/compile';
import { LIMIT_DEFAULT, LIMIT_MAX, MAX_ID } from '../domain/constants.js';
import { Errors } from '../domain/errors.js';
import type { JobRequest } from '../service/batch-jobs.js';
import { json } from './ingest-params.js';
import { UserIdSchema } from './params.js';

export const JOB_USERS_MAX = 100_000;
export const JOB_RESULTS_LIMIT_MAX = 1000;
export const JOB_RESULTS_LIMIT_DEFAULT = 100;
/** The largest body: JOB_USERS_MAX ids of 16 digits with commas, plus room for spaces and the other fields. */
export const JOB_MAX_BODY_BYTES = 2 * JOB_USERS_MAX * 18 + 1024;

const properties = {
  users: Type.Union([Type.Literal('all'), Type.Array(UserIdSchema, { minItems: 1, maxItems: JOB_USERS_MAX })], {
    description: `"all" (every user at submission) or 1 to ${JOB_USERS_MAX} user ids (a repeated id counts once)`,
  }),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: LIMIT_MAX, default: LIMIT_DEFAULT, description: 'recommendations per user' })),
  warm: Type.Optional(Type.Boolean({ default: true, description: 'also store every computed list in the caches (L1 and Redis), as a request would' })),
};
export const JobBodySchema = Type.Object(properties, { required: ['users'], additionalProperties: false });
export const JobIdSchema = Type.String({
  pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$',
  description: 'the job_id returned by POST /recommendations/jobs',
});
export const CursorSchema = Type.String({ pattern: '^[0-9]{0,16}$', description: 'next_cursor of the previous page (opaque); absent or empty: the first page' });
export const ResultsLimitSchema = Type.Integer({ minimum: 1, maximum: JOB_RESULTS_LIMIT_MAX, default: JOB_RESULTS_LIMIT_DEFAULT });

const whole = Compile(JobBodySchema);
const users = Compile(properties.users);
const limit = Compile(properties.limit);
const warm = Compile(properties.warm);
const jobId = Compile(JobIdSchema);

/** POST /recommendations/jobs: the request, or the 400 of the first property at fault. */
export function parseJobBody(body: Buffer): JobRequest {
  const value = json(body);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw Errors.invalidBody('Request body must be a JSON object');
  const v = value as Record<string, unknown>;
  if (!whole.Check(v)) {
    const unknown = Object.keys(v).find((k) => !(k in properties));
    if (unknown !== undefined) throw Errors.invalidBody(`unknown property ${JSON.stringify(unknown.slice(0, 32))}`);
    if (!('users' in v)) throw Errors.invalidBody('users is required');
    if (!users.Check(v.users)) throw Errors.invalidBody(`users must be "all" or an array of 1 to ${JOB_USERS_MAX} user ids (integers 1 … ${MAX_ID})`);
    if (!limit.Check(v.limit)) throw Errors.invalidBody(`limit must be an integer from 1 to ${LIMIT_MAX}`);
    if (!warm.Check(v.warm)) throw Errors.invalidBody('warm must be a boolean');
    throw Errors.invalidBody('Request body is invalid');
  }
  return { users: v.users as JobRequest['users'], limit: (v.limit as number | undefined) ?? LIMIT_DEFAULT, warm: (v.warm as boolean | undefined) ?? true };
}

export function parseJobId(raw: string): string {
  if (!jobId.Check(raw)) throw Errors.invalidParameter('job_id');
  return raw.toLowerCase();
}

/** `cursor` (absent or empty: from the start) and `limit` of GET …/results. */
export function parseResultsQuery(query: Map<string, string>): { cursor: number; limit: number } {
  const rawCursor = query.get('cursor') ?? '';
  if (!/^[0-9]{0,16}$/.test(rawCursor) || Number(rawCursor) > MAX_ID) throw Errors.invalidParameter('cursor');
  const rawLimit = query.get('limit');
  const n = rawLimit === undefined ? JOB_RESULTS_LIMIT_DEFAULT : /^[0-9]{1,5}$/.test(rawLimit) ? Number(rawLimit) : 0;
  if (n < 1 || n > JOB_RESULTS_LIMIT_MAX) throw Errors.invalidParameter('limit');
  return { cursor: Number(rawCursor), limit: n };
}
