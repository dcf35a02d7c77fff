/**
 * The one module that creates Redis clients (ioredis): one Redis (`REDIS_URL`) or a Redis Cluster
 * (`REDIS_CLUSTER_NODES`), behind one type the rest of the code uses. A cache: it must never make a
 * request wait. ioredis is loaded only when Redis is configured: it costs each process ~12 MB (measured).
 */
import type { Cluster, Redis } from 'ioredis';
import type { Config } from '../config.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

export type { Redis, Cluster };
/** What every user of Redis receives: a single node or a cluster, same commands, same failure rules. */
export type RedisClient = Redis | Cluster;

export interface RedisOptions {
  commandTimeoutMs: number;
  log: Logger;
  name: string;
  /** Counts failed commands and reports the connection state at scrape time. */
  metrics?: Pick<Metrics, 'redisCommandErrors' | 'sources'>;
}

/** Whether the configuration names a Redis (one node or a cluster). */
export function redisConfigured(config: Pick<Config, 'REDIS_URL' | 'REDIS_CLUSTER_NODES'>): boolean {
  return config.REDIS_URL !== undefined || config.REDIS_CLUSTER_NODES !== undefined;
}

/** The configured Redis (REDIS_URL or REDIS_CLUSTER_NODES, never both: config.ts), or null when none is. */
export async function connectRedisFrom(
  config: Pick<Config, 'REDIS_URL' | 'REDIS_CLUSTER_NODES'>,
  opts: RedisOptions,
): Promise<RedisClient | null> {
  if (config.REDIS_CLUSTER_NODES !== undefined) return connectRedisCluster(parseNodes(config.REDIS_CLUSTER_NODES), opts);
  if (config.REDIS_URL !== undefined) return connectRedis(config.REDIS_URL, opts);
  return null;
}

/** Per-node settings shared by both modes. */
function nodeOptions(opts: RedisOptions) {
  return {
    connectionName: opts.name,
    maxRetriesPerRequest: 0,
    commandTimeout: opts.commandTimeoutMs,
    connectTimeout: 2000,
    // CLIENT SETINFO fails on Redis < 7.2 (ignored by ioredis, but a failed command on every connect).
    disableClientInfo: true,
  };
}

export async function connectRedis(url: string, opts: RedisOptions): Promise<Redis> {
  const { Redis } = await import('ioredis');
  const redis = new Redis(url, {
    ...nodeOptions(opts),
    // No offline queue: while disconnected a command fails at once (a cache miss), it never waits.
    enableOfflineQueue: false,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 1000),
    reconnectOnError: () => false,
    // Commands issued in the same event-loop turn (concurrent misses' lookups and stores) go out as one
    // pipeline: one write and one read syscall for all of them instead of one each.
    enableAutoPipelining: true,
  });
  watch(redis, opts);
  return redis;
}

async function connectRedisCluster(nodes: { host: string; port: number }[], opts: RedisOptions): Promise<Cluster> {
  const { Cluster, Command } = await import('ioredis');
  keySlot ??= (key) => new Command('exists', [key]).getSlot()!;
  const cluster = new Cluster(nodes, {
    // As with one node: a command for a slot whose master is unreachable fails at once (a miss).
    enableOfflineQueue: false,
    redisOptions: nodeOptions(opts),
    enableAutoPipelining: true,
    // Replicas are asynchronous: a read from one may predate an invalidation. Masters only.
    scaleReads: 'master',
    // The slot map is re-read on MOVED, when a node connection ends, and every 2 s (each read is one
    // short-lived connection and CLUSTER SLOTS): a promoted replica is used within ~2 s. Never hangs.
    slotsRefreshTimeout: 1000,
    slotsRefreshInterval: 2000,
    // A command for a dead master, or refused with CLUSTERDOWN while its replica is being promoted, fails
    // at once (a miss) instead of being retried after a delay: ioredis's retries (default 100 ms each, up
    // to 16) would make every such request wait. Resharding's TRYAGAIN is short: one quick retry.
    retryDelayOnFailover: 0,
    retryDelayOnClusterDown: 0,
    retryDelayOnTryAgain: 20,
    maxRedirections: 4,
    // Every seed unreachable: keep trying, at most once a second (commands fail meanwhile: misses).
    clusterRetryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 1000),
  });
  // A master's connection ended (crashed, failing over): learn the new owner now, not at the next interval.
  cluster.on('-node', () => cluster.refreshSlotsCache());
  watch(cluster, opts);
  return cluster;
}

/** `h:p,h:p` (validated by config.ts) → seed nodes. */
export function parseNodes(list: string): { host: string; port: number }[] {
  return list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((node) => {
      const at = node.lastIndexOf(':');
      return { host: node.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(node.slice(at + 1)) };
    });
}

function watch(redis: RedisClient, opts: RedisOptions): void {
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
}

/** Cluster hash slot of a key (set when the first Cluster client is created: ioredis is loaded then). */
let keySlot: ((key: string) => number) | undefined;

/**
 * Replicas a write to `key` must reach before it can survive a failover: every replica the client's
 * slot map (CLUSTER SLOTS, which leaves out replicas the cluster marked failed) lists for the key's slot.
 * 0 for a single Redis (no failover to survive) or a master without replicas (nothing to promote).
 */
export function replicasFor(redis: RedisClient, key: string): number {
  if (!('slots' in redis) || !keySlot) return 0;
  const keys = redis.slots[keySlot(key)];
  if (!keys || keys.length < 2) return 0;
  // A MOVED rewrites entry 0 in place, so the new master may also be listed as its own replica.
  const replicas = new Set(keys.slice(1));
  replicas.delete(keys[0]!);
  return replicas.size;
}

const COUNTED = Symbol('counted');
type CountedCommand = Parameters<Redis['sendCommand']>[0] & { [COUNTED]?: true };

/**
 * ioredis has no per-command error event, and every command (scripts, pipelines, timeouts, "connection
 * down" refusals) passes through sendCommand: one rejection handler there sees every failure, whoever
 * the caller is. The flag keeps a command resent after a reconnect (or a MOVED) from being counted twice.
 */
function countCommandErrors(redis: RedisClient, metrics: NonNullable<RedisOptions['metrics']>): void {
  const errors = metrics.redisCommandErrors;
  const countError = (): void => errors.inc();
  const client = redis as { sendCommand: (command: CountedCommand, ...rest: unknown[]) => unknown };
  const send = client.sendCommand.bind(redis);
  client.sendCommand = (command: CountedCommand, ...rest: unknown[]) => {
    const result = send(command, ...rest);
    if (command[COUNTED] === undefined) {
      command[COUNTED] = true;
      command.promise.then(undefined, countError);
    }
    return result;
  };
  metrics.sources.redisReady = () => redis.status === 'ready';
}
