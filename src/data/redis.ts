/**
 * The one module that creates Redis clients (ioredis). A cache: it must never make a request wait.
 * ioredis is loaded only when Redis is configured: it costs each process ~12 MB of memory (measured).
 */
import type { Redis } from 'ioredis';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

export type { Redis };

export interface RedisOptions {
  commandTimeoutMs: number;
  log: Logger;
  name: string;
  /** Counts failed commands and reports the connection state at scrape time. */
  metrics?: Pick<Metrics, 'redisCommandErrors' | 'sources'>;
}

export async function connectRedis(url: string, opts: RedisOptions): Promise<Redis> {
  const { Redis } = await import('ioredis');
  const redis = new Redis(url, {
    connectionName: opts.name,
    // No offline queue: while disconnected a command fails at once (a cache miss), it never waits.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: opts.commandTimeoutMs,
    connectTimeout: 2000,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 1000),
    reconnectOnError: () => false,
    // Commands issued in the same event-loop turn (concurrent misses' lookups and stores) go out as one
    // pipeline: one write and one read syscall for all of them instead of one each.
    enableAutoPipelining: true,
    // CLIENT SETINFO fails on Redis < 7.2 (ignored by ioredis, but a failed command on every connect).
    disableClientInfo: true,
  });
  let up = false;
  redis.on('ready', () => {
    if (!up) opts.log.info('redis connected');
    up = true;
  });
  redis.on('error', (err: Error) => {
    // One line per outage, not one per reconnect attempt.
    if (up) opts.log.warn({ err: err.message }, 'redis unavailable; serving from L1 and PostgreSQL');
    up = false;
  });
  redis.on('end', () => {
    up = false;
  });
  if (opts.metrics) countCommandErrors(redis, opts.metrics);
  return redis;
}

const COUNTED = Symbol('counted');
type CountedCommand = Parameters<Redis['sendCommand']>[0] & { [COUNTED]?: true };

/**
 * ioredis has no per-command error event, and every command (scripts, pipelines, timeouts, "connection
 * down" refusals) passes through sendCommand: one rejection handler there sees every failure, whoever
 * the caller is. The flag keeps a command resent after a reconnect from being counted twice.
 */
function countCommandErrors(redis: Redis, metrics: NonNullable<RedisOptions['metrics']>): void {
  const errors = metrics.redisCommandErrors;
  const countError = (): void => errors.inc();
  const send = redis.sendCommand.bind(redis);
  redis.sendCommand = (command: CountedCommand, stream?) => {
    const result = send(command, stream);
    if (command[COUNTED] === undefined) {
      command[COUNTED] = true;
      command.promise.then(undefined, countError);
    }
    return result;
  };
  metrics.sources.redisReady = () => redis.status === 'ready';
}
