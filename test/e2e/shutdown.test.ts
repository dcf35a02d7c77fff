/** Graceful shutdown: SIGTERM lets an in-flight request finish, then every process exits 0. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase } from '../support/db.js';
import { startServer, type RunningServer } from '../support/server.js';

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let server: RunningServer;

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startServer({ DATABASE_URL: db.url, MODEL_LATENCY_MS: '1500', MODEL_TIMEOUT_MS: '5000' });
});

afterAll(async () => {
  await server?.stop('SIGKILL');
  await db?.drop();
});

it('completes a request that is in flight when SIGTERM arrives, then exits 0 and stops listening', async () => {
  const inFlight = server.get('/users/2/recommendations?limit=3', true);
  await new Promise((r) => setTimeout(r, 300));
  const code = server.stop('SIGTERM');
  const r = await inFlight;
  expect(r.status).toBe(200);
  expect(r.json.metadata.source).toBe('model');
  expect(r.json.recommendations).toHaveLength(3);
  expect(await code).toBe(0);
  await expect(server.get('/health', true)).rejects.toThrow(/ECONNREFUSED/);
  expect(server.output()).toContain('"msg":"stopped"');
});
