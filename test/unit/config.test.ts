/** Configuration: defaults, conversions, and a start that stops with the variable's name on bad input. */
import { describe, expect, it } from 'vitest';
import { loadConfig, replicaUrls } from '../../src/config.js';
import { parseNodes } from '../../src/data/redis.js';

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      PORT: 8080,
      CACHE_TTL: 600,
      CANDIDATE_POOL: 100,
      MODEL_LATENCY_MIN_MS: 30,
      MODEL_LATENCY_MAX_MS: 50,
      MODEL_FAILURE_RATE: 0.015,
      MODEL_NOISE: true,
      BATCH_CONCURRENCY: 10,
      DB_POOL_SIZE: 20,
    });
    expect(c.DATABASE_URL).toBeUndefined();
    expect(c.REDIS_URL).toBeUndefined();
  });

  it('niceness for the scoring threads: 0 (the event loops\' priority) unless set; 0-19 only', () => {
    expect(loadConfig({}).SCORING_THREAD_NICE).toBe(0);
    expect(loadConfig({ WORKERS: '1', SCORING_THREAD_NICE: '5' }).SCORING_THREAD_NICE).toBe(5);
    expect(() => loadConfig({ SCORING_THREAD_NICE: '20' })).toThrow(/SCORING_THREAD_NICE/);
    expect(() => loadConfig({ SCORING_THREAD_NICE: 'auto' })).toThrow(/SCORING_THREAD_NICE/);
    expect(() => loadConfig({ SCORING_THREAD_NICE: 'low' })).toThrow(/SCORING_THREAD_NICE/);
    expect(() => loadConfig({ WORKERS: 'many' })).toThrow(/WORKERS/);
  });

  it('reads DATABASE_REPLICA_URLS as a comma-separated list of postgres URLs; unset is none', () => {
    expect(replicaUrls(loadConfig({}))).toEqual([]);
    expect(loadConfig({}).REPLICA_MAX_LAG_MS).toBe(1000);
    const c = loadConfig({ DATABASE_REPLICA_URLS: 'postgres://u:p@r1:5433/db , postgresql://r2/db' });
    expect(replicaUrls(c)).toEqual(['postgres://u:p@r1:5433/db', 'postgresql://r2/db']);
  });

  it('leaves LOG_FORMAT unset (decided by the terminal) unless json or pretty', () => {
    expect(loadConfig({}).LOG_FORMAT).toBeUndefined();
    expect(loadConfig({ LOG_FORMAT: 'pretty' }).LOG_FORMAT).toBe('pretty');
    expect(loadConfig({ LOG_FORMAT: 'json' }).LOG_FORMAT).toBe('json');
  });

  it('converts values', () => {
    const c = loadConfig({ PORT: '9000', MODEL_LATENCY_MS: '0', MODEL_NOISE: 'false', MODEL_FAILURE_RATE: '1' });
    expect(c).toMatchObject({ PORT: 9000, MODEL_LATENCY_MIN_MS: 0, MODEL_LATENCY_MAX_MS: 0, MODEL_NOISE: false, MODEL_FAILURE_RATE: 1 });
  });

  it.each([
    [{ PORT: 'eighty' }, /PORT/],
    [{ PORT: '70000' }, /PORT/],
    [{ WORKERS: '0' }, /WORKERS/],
    [{ MODEL_FAILURE_RATE: '1.5' }, /MODEL_FAILURE_RATE/],
    [{ MODEL_LATENCY_MS: '50-30' }, /MODEL_LATENCY_MS/],
    [{ MODEL_LATENCY_MS: 'fast' }, /MODEL_LATENCY_MS/],
    [{ DATABASE_URL: 'mysql://x' }, /DATABASE_URL/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL/],
    [{ LOG_FORMAT: 'text' }, /LOG_FORMAT/],
    [{ MODEL_NOISE: 'maybe' }, /MODEL_NOISE/],
    [{ DATABASE_REPLICA_URLS: 'mysql://x' }, /DATABASE_REPLICA_URLS/],
    [{ DATABASE_REPLICA_URLS: 'postgres://a/db,,postgres://b/db' }, /DATABASE_REPLICA_URLS/],
    [{ DATABASE_REPLICA_URLS: 'postgres://a/db postgres://b/db' }, /DATABASE_REPLICA_URLS/],
    [{ DATABASE_REPLICA_URLS: 'postgres://[::1/db' }, /DATABASE_REPLICA_URLS entry 1 is not a valid URL/],
    [{ REPLICA_MAX_LAG_MS: '-1' }, /REPLICA_MAX_LAG_MS/],
  ])('rejects %j naming the variable', (env, name) => {
    expect(() => loadConfig(env)).toThrow(name);
  });
});

describe('REDIS_CLUSTER_NODES', () => {
  it('accepts seed nodes as host:port, comma-separated (names, IPv4, bracketed IPv6)', () => {
    const c = loadConfig({ REDIS_CLUSTER_NODES: '127.0.0.1:7000, redis-a:7001,[::1]:7002' });
    expect(c.REDIS_CLUSTER_NODES).toBe('127.0.0.1:7000, redis-a:7001,[::1]:7002');
    expect(parseNodes(c.REDIS_CLUSTER_NODES!)).toEqual([
      { host: '127.0.0.1', port: 7000 },
      { host: 'redis-a', port: 7001 },
      { host: '::1', port: 7002 },
    ]);
    expect(c.REDIS_URL).toBeUndefined();
  });

  it.each(['127.0.0.1', '127.0.0.1:', 'redis://127.0.0.1:7000', '127.0.0.1:7000,', 'a:0', 'a:65536', 'a:7000;b:7001', 'a b:7000'])(
    'rejects %j naming the variable',
    (nodes) => {
      expect(() => loadConfig({ REDIS_CLUSTER_NODES: nodes })).toThrow(/REDIS_CLUSTER_NODES/);
    },
  );

  it('is exclusive with REDIS_URL, and says so', () => {
    expect(() => loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379', REDIS_CLUSTER_NODES: '127.0.0.1:7000' })).toThrow(
      'REDIS_URL and REDIS_CLUSTER_NODES are exclusive',
    );
  });
});
