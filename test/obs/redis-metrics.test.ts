/**
 * Redis metrics from the one module that owns ioredis: every failed command counts once (whoever sent
 * it), successful ones never, and the connection state gauge follows the client. Real redis-server.
 */
import net from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { connectRedis, type Redis } from '../../src/data/redis.js';
import { createMetrics } from '../../src/observability/metrics.js';

const log = pino({ level: 'silent' });
const clients: Redis[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.disconnect();
});

async function connect(url: string) {
  const metrics = createMetrics('0');
  const redis = await connectRedis(url, { commandTimeoutMs: 500, log, name: 'metrics-test', metrics });
  clients.push(redis);
  return { redis, metrics };
}

async function ready(redis: Redis): Promise<void> {
  if (redis.status !== 'ready') await new Promise((resolve) => redis.once('ready', resolve));
}

describe('redis metrics', () => {
  it('counts failed commands and reports the connection as ready', async () => {
    const { redis, metrics } = await connect(`${inject('redisUrl')}/9`);
    await ready(redis);
    expect(metrics.sources.redisReady?.()).toBe(true);
    await redis.set('metrics-test', '1');
    expect(await redis.get('metrics-test')).toBe('1');
    await redis.mget('a', 'b');
    expect(metrics.redisCommandErrors.value).toBe(0);

    await expect(redis.call('NO_SUCH_COMMAND')).rejects.toThrow(/unknown command/i);
    await expect(redis.hincrby('metrics-test', 'f', 1)).rejects.toThrow(/WRONGTYPE/); // a string, not a hash
    expect(metrics.redisCommandErrors.value).toBe(2);
  });

  it('counts commands refused while disconnected, and reports the connection as down', async () => {
    const port = await new Promise<number>((resolve) => {
      const srv = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = srv.address() as net.AddressInfo;
        srv.close(() => resolve(port));
      });
    });
    const { redis, metrics } = await connect(`redis://127.0.0.1:${port}`);
    for (let i = 0; i < 3; i++) await expect(redis.get('k')).rejects.toThrow();
    expect(metrics.redisCommandErrors.value).toBe(3);
    expect(metrics.sources.redisReady?.()).toBe(false);
    expect(await metrics.registry.metrics()).toContain('redis_connected{worker="0"} 0');
  });
});
