/** `GET /openapi.json`: an OpenAPI 3.1 document built once from the schemas the handlers use. */
import { MAX_ID } from '../domain/constants.js';
import {
  BatchResponseSchema,
  BulkResultSchema,
  ContentItemSchema,
  ContentRecordSchema,
  DismissalSchema,
  EventsResultSchema,
  ExplanationSchema,
  UserSchema,
  ContentListResponseSchema,
  ErrorSchema,
  HealthSchema,
  JobAcceptedSchema,
  JobResultsSchema,
  JobSchema,
  NotReadySchema,
  ReadySchema,
  RecommendationSchema,
  RecommendationsResponseSchema,
  SimilarResponseSchema,
  WatchEventSchema,
} from '../domain/schemas.js';
import { CursorSchema, JobBodySchema, JobIdSchema, ResultsLimitSchema } from './job-params.js';
import { BulkContentBodySchema, ContentBodySchema, DismissalBodySchema, EventsBodySchema, UserBodySchema } from './ingest-params.js';
import {
  BatchLimitSchema,
  ContentIdSchema,
  ContentLimitSchema,
  ContentOffsetSchema,
  ExplainSchema,
  GenreSchema,
  LimitSchema,
  OffsetSchema,
  PageSchema,
  SimilarLimitSchema,
  UserIdSchema,
  WatchBodySchema,
} from './params.js';

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: unknown) => ({ 'application/json': { schema } });
const error = (description: string) => ({ description, content: json(ref('Error')) });

const URI_TOO_LONG = error('Query string over 1024 bytes');

const RATE_LIMITED = {
  description: 'Rate limit exceeded (only when RATE_LIMIT_POINTS is set)',
  headers: { 'Retry-After': { schema: { type: 'integer', minimum: 0 }, description: 'seconds' } },
  content: json(ref('Error')),
};

const userIdParam = {
  name: 'id',
  in: 'path',
  required: true,
  description: `User id: decimal digits, 1 … ${MAX_ID}`,
  schema: UserIdSchema,
};

const contentIdParam = (name: string) => ({
  name,
  in: 'path',
  required: true,
  description: `Content id: decimal digits, 1 … ${MAX_ID}`,
  schema: ContentIdSchema,
});

const genreParam = { name: 'genre', in: 'query', required: false, description: 'only titles of this genre', schema: GenreSchema };

const jobIdParam = { name: 'job_id', in: 'path', required: true, schema: JobIdSchema };

const BAD_BODY_TOO_LARGE = { 413: error('Body too large') };

export function openApiDocument(opts: { authRequiredForReads: boolean; authEnabled: boolean }): string {
  const security = [{ bearer: [] }];
  const readSecurity = opts.authEnabled && opts.authRequiredForReads ? { security } : {};
  const writeSecurity = opts.authEnabled ? { security } : {};
  const unauthorized = opts.authEnabled ? { 401: error('Missing or invalid API key') } : {};
  const unauthorizedReads = opts.authEnabled && opts.authRequiredForReads ? unauthorized : {};

  const contentList = (operationId: string, summary: string) => ({
    get: {
      operationId,
      summary,
      description: 'With `user_id`: without the titles that user watched or dismissed, and only titles available to them.',
      parameters: [
        { name: 'limit', in: 'query', required: false, schema: ContentLimitSchema },
        { name: 'offset', in: 'query', required: false, schema: ContentOffsetSchema },
        genreParam,
        { name: 'user_id', in: 'query', required: false, schema: UserIdSchema },
      ],
      ...readSecurity,
      responses: {
        200: { description: 'A page of titles', content: json(ref('ContentListResponse')) },
        400: error('Invalid limit, offset, genre or user_id'),
        ...unauthorizedReads,
        404: error('User not found'),
        414: URI_TOO_LONG,
        429: RATE_LIMITED,
        503: error('PostgreSQL unavailable or request deadline exceeded'),
      },
    },
  });

  const doc = {
    openapi: '3.1.0',
    info: {
      title: 'Recommendation service',
      version: '1.0.0',
      description: 'Personalized recommendations of titles a user has not watched yet.',
    },
    paths: {
      '/users/{id}/recommendations': {
        get: {
          operationId: 'getRecommendations',
          summary: "A user's recommendations (one cached top-50 list; `limit` slices it)",
          description:
            '`offset` pages through the same list (`offset + limit` ≤ 50). `genre` ranks only that genre\'s titles by the ' +
            'same formula (a list of its own, cached and invalidated like the main one); no eligible title: an empty list.',
          parameters: [
            userIdParam,
            { name: 'limit', in: 'query', required: false, schema: LimitSchema },
            { name: 'offset', in: 'query', required: false, description: 'offset + limit ≤ 50', schema: OffsetSchema },
            genreParam,
            {
              name: 'explain',
              in: 'query',
              required: false,
              description: '`true`: each item carries an `explanation` (why it is there); `true` or `false` only',
              schema: ExplainSchema,
            },
          ],
          ...readSecurity,
          responses: {
            200: { description: 'Recommendations', content: json(ref('RecommendationsResponse')) },
            400: error('Invalid user_id, limit, offset, genre or explain'),
            ...unauthorizedReads,
            404: error('User not found'),
            414: URI_TOO_LONG,
            429: RATE_LIMITED,
            503: error('PostgreSQL unavailable with nothing cached, load shed, or request deadline exceeded'),
          },
        },
      },
      '/recommendations/batch': {
        get: {
          operationId: 'getBatchRecommendations',
          summary: 'One page of users (ascending id), 10 recommendations each',
          parameters: [
            { name: 'page', in: 'query', required: false, schema: PageSchema },
            { name: 'limit', in: 'query', required: false, schema: BatchLimitSchema },
          ],
          ...readSecurity,
          responses: {
            200: { description: 'A page of results; per-user failures are reported inside', content: json(ref('BatchResponse')) },
            400: error('Invalid page or limit'),
            ...unauthorizedReads,
            414: URI_TOO_LONG,
            429: RATE_LIMITED,
            503: error('PostgreSQL unavailable or request deadline exceeded'),
          },
        },
      },
      '/recommendations/jobs': {
        post: {
          operationId: 'submitJob',
          summary: 'Start an asynchronous batch job: every listed user (or all) ranked in the background, across instances',
          description: 'Unknown users get a result with `status: "failed"` and `error: "user_not_found"`, not a 400.',
          ...writeSecurity,
          requestBody: { required: true, content: json(JobBodySchema) },
          responses: {
            202: {
              description: 'Queued',
              content: json(ref('JobAccepted')),
              // The job's id feeds its reads (Schemathesis' stateful phase follows links). Not cancelJob: its
              // "deleted resource still available" check takes DELETE for a removal; ours cancels, and the
              // job stays readable (status "cancelled") until JOB_RETENTION_S.
              links: Object.fromEntries(
                ['getJob', 'getJobResults'].map((operationId) => [operationId, { operationId, parameters: { job_id: '$response.body#/job_id' } }]),
              ),
            },
            400: error('Invalid body'),
            ...unauthorized,
            ...BAD_BODY_TOO_LARGE,
            429: RATE_LIMITED,
            503: error('PostgreSQL unavailable (nothing was created) or request deadline exceeded'),
          },
        },
      },
      '/recommendations/jobs/{job_id}': {
        get: {
          operationId: 'getJob',
          summary: "A job's status and progress (any instance answers for any job)",
          parameters: [jobIdParam],
          ...readSecurity,
          responses: {
            200: { description: 'The job', content: json(ref('Job')) },
            400: error('Invalid job_id'),
            ...unauthorizedReads,
            404: error('No such job, or it expired (JOB_RETENTION_S after it finished)'),
            414: URI_TOO_LONG,
            429: RATE_LIMITED,
            503: error('PostgreSQL unavailable or request deadline exceeded'),
          },
        },
        delete: {
          operationId: 'cancelJob',
          summary: 'Cancel the job: no chunk commits after this; a finished job is answered as it is',
          parameters: [jobIdParam],
          ...writeSecurity,
          responses: {
            202: { description: 'The job after the cancellation', content: json(ref('Job')) },
            400: error('Invalid job_id'),
            ...unauthorized,
            404: error('No such job, or it expired'),
            414: URI_TOO_LONG,
            429: RATE_LIMITED,
            503: error('PostgreSQL unavailable or request deadline exceeded'),
          },
        },
      },
      '/recommendations/jobs/{job_id}/results': {
        get: {
          operationId: 'getJobResults',
          summary: "A page of the job's results in user-id order, each user once; while it runs, the part done",
          parameters: [
            jobIdParam,
            { name: 'cursor', in: 'query', required: false, schema: CursorSchema },
            { name: 'limit', in: 'query', required: false, schema: ResultsLimitSchema },
          ],
          ...readSecurity,
          responses: {
            200: { description: 'Results', content: json(ref('JobResults')) },
            400: error('Invalid job_id, cursor or limit'),
            ...unauthorizedReads,
            404: error('No such job, or it expired'),
            414: URI_TOO_LONG,
            429: RATE_LIMITED,
            503: error('PostgreSQL unavailable or request deadline exceeded'),
          },
        },
      },
      '/users/{id}/watch-history': {
        post: {
          operationId: 'addWatchEvent',
          summary: "Record a watch event; the user's cached recommendations are invalidated before the answer",
          parameters: [userIdParam],
          ...writeSecurity,
          requestBody: { required: true, content: json(WatchBodySchema) },
          responses: {
            201: { description: 'Recorded', content: json(ref('WatchEvent')) },
            400: error('Invalid user_id or body'),
            ...unauthorized,
            404: error('User or content not found'),
            413: error('Body too large'),
            414: URI_TOO_LONG,
            429: RATE_LIMITED,
            503: error('PostgreSQL unavailable (nothing was written) or request deadline exceeded'),
          },
        },
      },
      '/events': {
        post: {
          operationId: 'addWatchEvents',
          summary: 'Record up to 10,000 watch events in one transaction (all or nothing); every affected user\'s cached recommendations are invalidated before the answer',
          ...writeSecurity,
          requestBody: { required: true, content: json(EventsBodySchema) },
          responses: {
            201: { description: 'Recorded', content: json(ref('EventsResult')) },
            400: error('Invalid body, a timestamp in the future, or an unknown user or title; the message names the first bad event by its 0-based index. Nothing was written'),
            ...unauthorized,
            413: error('Body over EVENTS_MAX_BODY_BYTES'),
            429: RATE_LIMITED,
            503: error('PostgreSQL unavailable (nothing was written)'),
          },
        },
      },
      '/users/{id}': {
        put: {
          operationId: 'putUser',
          summary: 'Create (201) or update (200) a user; omitted fields keep their value (on create: their default)',
          parameters: [userIdParam],
          ...writeSecurity,
          requestBody: { required: true, content: json(UserBodySchema) },
          responses: {
            200: { description: 'Updated', content: json(ref('User')) },
            201: { description: 'Created', content: json(ref('User')) },
            400: error('Invalid user_id or body'),
            ...unauthorized,
            ...BAD_BODY_TOO_LARGE,
            414: URI_TOO_LONG,
            429: RATE_LIMITED,
            503: error('PostgreSQL unavailable or request deadline exceeded'),
          },
        },
      },
      '/users/{id}/dismissals': {
        post: {
          operationId: 'dismissContent',
          summary: '"Not interested": the title is never recommended to the user again (all tiers, before the answer)',
          parameters: [userIdParam],
          ...writeSecurity,
          requestBody: { required: true, content: json(DismissalBodySchema) },
          responses: {
            201: { description: 'Dismissed', content: json(ref('Dismissal')) },
            400: error('Invalid user_id or body'),
            ...unauthorized,
            404: error('User or content not found'),
            ...BAD_BODY_TOO_LARGE,
            414: URI_TOO_LONG,
            429: RATE_LIMITED,
            503: error('PostgreSQL unavailable or request deadline exceeded'),
          },
        },
      },
      '/users/{id}/dismissals/{content_id}': {
        delete: {
          operationId: 'undoDismissal',
          summary: 'Undo a dismissal (also 204 when the title was not dismissed)',
          parameters: [userIdParam, contentIdParam('content_id')],
          ...writeSecurity,
          responses: {
            204: { description: 'Not dismissed any more' },
            400: error('Invalid user_id or content_id'),
            ...unauthorized,
            404: error('User or content not found'),
            414: URI_TOO_LONG,
            429: RATE_LIMITED,
            503: error('PostgreSQL unavailable or request deadline exceeded'),
          },
        },
      },
      '/content/popular': contentList('getPopularContent', 'Titles by popularity_score DESC, then id'),
      '/content/latest': contentList('getLatestContent', 'Titles by created_at DESC, then id'),
      '/content/bulk': {
        post: {
          operationId: 'putContentBulk',
          summary: 'Create or update up to 1,000 titles in one transaction: all or nothing',
          ...writeSecurity,
          requestBody: { required: true, content: json(BulkContentBodySchema) },
          responses: {
            200: { description: 'Written', content: json(ref('BulkResult')) },
            400: error('Invalid body; the message names the first bad item by its 0-based index'),
            ...unauthorized,
            ...BAD_BODY_TOO_LARGE,
            429: RATE_LIMITED,
            503: error('PostgreSQL unavailable (nothing was written) or request deadline exceeded'),
          },
        },
      },
      '/content/{id}': {
        get: {
          operationId: 'getContent',
          summary: 'One title (hidden titles do not exist for the API)',
          parameters: [contentIdParam('id')],
          ...readSecurity,
          responses: {
            200: { description: 'The title', content: json(ref('ContentItem')) },
            400: error('Invalid content_id'),
            ...unauthorizedReads,
            404: error('Content not found or hidden'),
            414: URI_TOO_LONG,
            429: RATE_LIMITED,
            503: error('PostgreSQL unavailable or request deadline exceeded'),
          },
        },
        put: {
          operationId: 'putContent',
          summary: 'Create (201) or update (200) a title; omitted optional fields keep their value (on create: their default)',
          parameters: [contentIdParam('id')],
          ...writeSecurity,
          requestBody: { required: true, content: json(ContentBodySchema) },
          responses: {
            200: { description: 'Updated', content: json(ref('ContentRecord')) },
            201: { description: 'Created', content: json(ref('ContentRecord')) },
            400: error('Invalid content_id or body'),
            ...unauthorized,
            ...BAD_BODY_TOO_LARGE,
            414: URI_TOO_LONG,
            429: RATE_LIMITED,
            503: error('PostgreSQL unavailable or request deadline exceeded'),
          },
        },
        delete: {
          operationId: 'hideContent',
          summary: 'Hide the title: no response of any route shows it once this is answered (its watch history stays)',
          parameters: [contentIdParam('id')],
          ...writeSecurity,
          responses: {
            204: { description: 'Hidden' },
            400: error('Invalid content_id'),
            ...unauthorized,
            404: error('Content not found'),
            414: URI_TOO_LONG,
            429: RATE_LIMITED,
            503: error('PostgreSQL unavailable or request deadline exceeded'),
          },
        },
      },
      '/content/{id}/similar': {
        get: {
          operationId: 'getSimilarContent',
          summary: 'Titles most often watched by the same users (cosine over users), or the genre\'s most popular ones',
          parameters: [contentIdParam('id'), { name: 'limit', in: 'query', required: false, schema: SimilarLimitSchema }],
          ...readSecurity,
          responses: {
            200: { description: 'Similar titles, best first', content: json(ref('SimilarResponse')) },
            400: error('Invalid content_id or limit'),
            ...unauthorizedReads,
            404: error('Content not found or hidden'),
            414: URI_TOO_LONG,
            429: RATE_LIMITED,
            503: error('PostgreSQL unavailable or request deadline exceeded'),
          },
        },
      },
      '/health': {
        get: {
          operationId: 'health',
          responses: { 200: { description: 'The process serves', content: json(ref('Health')) } },
        },
      },
      '/ready': {
        get: {
          operationId: 'ready',
          responses: {
            200: { description: 'PostgreSQL and a configured Redis are reachable', content: json(ReadySchema) },
            503: { description: 'A dependency is down', content: json(NotReadySchema) },
          },
        },
      },
      '/metrics': {
        get: {
          operationId: 'metrics',
          responses: {
            200: { description: 'Prometheus text format, summed over all workers', content: { 'text/plain': { schema: { type: 'string' } } } },
            503: error('Metrics aggregation unavailable'),
          },
        },
      },
    },
    components: {
      schemas: {
        Recommendation: RecommendationSchema,
        RecommendationsResponse: RecommendationsResponseSchema,
        Explanation: ExplanationSchema,
        BatchResponse: BatchResponseSchema,
        WatchEvent: WatchEventSchema,
        ContentItem: ContentItemSchema,
        ContentListResponse: ContentListResponseSchema,
        SimilarResponse: SimilarResponseSchema,
        ContentRecord: ContentRecordSchema,
        User: UserSchema,
        Dismissal: DismissalSchema,
        BulkResult: BulkResultSchema,
        EventsResult: EventsResultSchema,
        JobAccepted: JobAcceptedSchema,
        Job: JobSchema,
        JobResults: JobResultsSchema,
        Health: HealthSchema,
        Error: ErrorSchema,
      },
      ...(opts.authEnabled ? { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } } : {}),
    },
  };
  return JSON.stringify(doc);
}
