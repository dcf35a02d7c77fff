/** The one module that creates Redis clients (ioredis). A cache: it must never make a request wait. */
import { Redis } from 'ioredis';
import type { Logger } from '../observability/logger.js';

export type { Redis };

export function connectRedis(url: string, opts: { commandTimeoutMs: number; log: Logger; name: string }): Redis {
  const redis = new Redis(url, {
    connectionName: opts.name,
    // No offline queue: while disconnected a command fails at once (a cache miss), it never waits.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: opts.commandTimeoutMs,
    connectTimeout: 2000,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    reconnectOnError: () => false,
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
  return redis;
}
