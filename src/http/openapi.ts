/** `GET /openapi.json`: an OpenAPI 3.1 document built once from the schemas the handlers use. */
import { MAX_ID } from '../domain/constants.js';
import {
  BatchResponseSchema,
  ErrorSchema,
  HealthSchema,
  NotReadySchema,
  ReadySchema,
  RecommendationSchema,
  RecommendationsResponseSchema,
  WatchEventSchema,
} from '../domain/schemas.js';
import { BatchLimitSchema, LimitSchema, PageSchema, UserIdSchema, WatchBodySchema } from './params.js';

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

export function openApiDocument(opts: { authRequiredForReads: boolean; authEnabled: boolean }): string {
  const security = [{ bearer: [] }];
  const readSecurity = opts.authEnabled && opts.authRequiredForReads ? { security } : {};
  const writeSecurity = opts.authEnabled ? { security } : {};
  const unauthorized = opts.authEnabled ? { 401: error('Missing or invalid API key') } : {};
  const unauthorizedReads = opts.authEnabled && opts.authRequiredForReads ? unauthorized : {};

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
          parameters: [userIdParam, { name: 'limit', in: 'query', required: false, schema: LimitSchema }],
          ...readSecurity,
          responses: {
            200: { description: 'Recommendations', content: json(ref('RecommendationsResponse')) },
            400: error('Invalid user_id or limit'),
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
        BatchResponse: BatchResponseSchema,
        WatchEvent: WatchEventSchema,
        Health: HealthSchema,
        Error: ErrorSchema,
      },
      ...(opts.authEnabled ? { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } } : {}),
    },
  };
  return JSON.stringify(doc);
}
