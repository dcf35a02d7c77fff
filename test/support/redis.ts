/** Each test file uses its own database index of the shared test Redis, emptied before it starts. */
import { Redis } from 'ioredis';
import { inject } from 'vitest';

export async function emptyRedisDb(index: number): Promise<string> {
  const url = `${inject('redisUrl')}/${index}`;
  const redis = new Redis(url);
  try {
    await redis.flushdb();
  } finally {
    redis.disconnect();
  }
  return url;
}
