/**
 * Who may call, and how often: the optional API key (constant-time check) and the optional per-client
 * rate limit (rate-limiter-flexible: cluster-wide through Redis when configured, else instance-wide
 * through the primary). Both are off unless configured; when off the request path pays nothing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import {
  RateLimiterCluster,
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
  type RateLimiterAbstract,
} from 'rate-limiter-flexible';
import type { RedisClient } from '../data/redis.js';
import { Errors, type ServiceError } from '../domain/errors.js';
import type { Exchange } from './exchange.js';
import type { HttpRequest, HttpResponse } from './uws.js';

export interface GuardOptions {
  apiKey: string | undefined;
  apiKeyForReads: boolean;
  rateLimitPoints: number;
  rateLimitDurationSec: number;
  trustProxy: boolean;
  workers: number;
  /** One Redis or a Redis Cluster: RateLimiterRedis takes either (one key per client, ioredis commands). */
  redis: RedisClient | null;
}

export type Access = 'read' | 'write';

export interface Guards {
  /** Synchronous API-key check; undefined when the call may proceed. */
  authorize(access: Access, authorization: string): ServiceError | undefined;
  /** Present only when rate limiting is on: resolves undefined when admitted, else seconds to wait. */
  limit: ((client: string) => Promise<number | undefined>) | undefined;
  /** The client identity a limit applies to; read synchronously from the request. */
  clientOf(res: HttpResponse, req: HttpRequest): string;
}

const digest = (text: string) => createHash('sha256').update(text).digest();

export function createGuards(opts: GuardOptions): Guards {
  const expected = opts.apiKey === undefined ? undefined : digest(opts.apiKey);
  const authorize = (access: Access, authorization: string): ServiceError | undefined => {
    if (!expected || (access === 'read' && !opts.apiKeyForReads)) return undefined;
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    // Equal-length digests: the comparison time says nothing about the key.
    if (!match || !timingSafeEqual(digest(match[1]!), expected)) return Errors.unauthorized();
    return undefined;
  };

  const limiter = opts.rateLimitPoints > 0 ? buildLimiter(opts) : undefined;
  const limit = limiter
    ? async (client: string): Promise<number | undefined> => {
        try {
          await limiter.consume(client);
          return undefined;
        } catch (rejection) {
          if (rejection instanceof RateLimiterRes) return Math.max(1, Math.ceil(rejection.msBeforeNext / 1000));
          return undefined; // the limiter itself failed (and so did its insurance): admit rather than fail
        }
      }
    : undefined;

  return {
    authorize,
    limit,
    clientOf(res, req) {
      if (opts.trustProxy) {
        const forwarded = req.getHeader('x-forwarded-for');
        if (forwarded) return forwarded.split(',')[0]!.trim().slice(0, 64);
      }
      return Buffer.from(res.getRemoteAddressAsText()).toString();
    },
  };
}

function buildLimiter(opts: GuardOptions): RateLimiterAbstract {
  const common = { points: opts.rateLimitPoints, duration: opts.rateLimitDurationSec, keyPrefix: 'rl' };
  if (opts.redis) {
    // Redis down: each worker limits alone with its share of the points, rather than not at all.
    const insurance = new RateLimiterMemory({
      ...common,
      points: Math.max(1, Math.ceil(opts.rateLimitPoints / opts.workers)),
    });
    return new RateLimiterRedis({ ...common, storeClient: opts.redis, insuranceLimiter: insurance });
  }
  // No Redis: the primary keeps the counts for the whole instance (RateLimiterClusterMaster).
  return new RateLimiterCluster({ ...common, timeoutMs: 1000 });
}

/**
 * Runs `next` once the caller is authorized and within its rate limit; answers 401/429 otherwise.
 * Synchronous when rate limiting is off, so a cache hit still answers in the same tick.
 */
export function admit(
  ex: Exchange,
  guards: Guards,
  access: Access,
  authorization: string,
  client: string,
  next: () => void,
): void {
  const denied = guards.authorize(access, authorization);
  if (denied) return ex.fail(denied);
  if (!guards.limit) return next();
  ex.deadline();
  guards.limit(client).then(
    (wait) => (wait === undefined ? ex.finished || next() : ex.fail(Errors.tooManyRequests(wait))),
    (err: unknown) => ex.fail(err),
  );
}
