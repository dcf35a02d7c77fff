/** Configuration: defaults, conversions, and a start that stops with the variable's name on bad input. */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';

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
    [{ MODEL_NOISE: 'maybe' }, /MODEL_NOISE/],
  ])('rejects %j naming the variable', (env, name) => {
    expect(() => loadConfig(env)).toThrow(name);
  });
});
