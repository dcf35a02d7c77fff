/**
 * Process lifecycle of the clustered server: config validation at start, deadlines, crash recovery,
 * graceful shutdown.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../support/db.js';
import { isAlive, startServer, type RunningServer } from '../support/server.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
let db: Awaited<ReturnType<typeof createTestDatabase>>;

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});


function workerPids(output: string): number[] {
  return [...output.matchAll(/"pid":(\d+),"role":"worker-\d+".*"msg":"worker listening"/g)].map((m) => Number(m[1]));
}

describe('start-up', () => {
  it.each([
    ['PORT', 'eighty'],
    ['MODEL_FAILURE_RATE', '2'],
    ['WORKERS', '0'],
  ])('refuses to start with %s=%s and names the variable', (name, value) => {
    const r = spawnSync(process.execPath, ['dist/main.js'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, DATABASE_URL: db.url, [name]: value },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`Invalid configuration: ${name}`);
  });
});

describe('running', () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer({
      DATABASE_URL: db.url,
      MODEL_LATENCY_MS: '1500',
      MODEL_TIMEOUT_MS: '5000',
      REQUEST_TIMEOUT_MS: '3000',
    });
  });
  afterAll(async () => {
    await server?.stop('SIGKILL');
  });

  it('answers 503 request_timeout when a request outlives REQUEST_TIMEOUT_MS', async () => {
    const slow = await startServer({
      DATABASE_URL: db.url,
      MODEL_LATENCY_MS: '2000',
      MODEL_TIMEOUT_MS: '10000',
      REQUEST_TIMEOUT_MS: '300',
      SEED_ON_START: 'false',
    });
    try {
      const r = await slow.get('/users/1/recommendations');
      expect(r.status).toBe(503);
      expect(r.json).toEqual({ error: 'request_timeout', message: 'Request did not complete within its deadline' });
      expect((await slow.get('/health')).status).toBe(200);
    } finally {
      await slow.stop();
    }
  });

  it('replaces a crashed worker while the other keeps serving', async () => {
    const pids = workerPids(server.output());
    expect(pids).toHaveLength(2);
    process.kill(pids[0]!, 'SIGKILL');
    // Connections the kernel had already queued on the dead worker's socket may reset; once it is gone,
    // the survivor answers every new connection, and soon a new worker listens in the dead one's place.
    for (let i = 0; i < 100 && isAlive(pids[0]!); i++) await new Promise((r) => setTimeout(r, 20));
    expect(isAlive(pids[0]!)).toBe(false);
    expect((await server.get('/health', true)).status).toBe(200);
    let replaced: number[] = [];
    for (let i = 0; i < 200 && replaced.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
      replaced = workerPids(server.output()).filter((p) => !pids.includes(p));
    }
    expect(replaced).toHaveLength(1);
    expect(server.output()).toContain('"msg":"worker exited; restarting"');
    for (let i = 0; i < 10; i++) expect((await server.get('/health', true)).status).toBe(200);
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
});
