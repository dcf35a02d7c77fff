/**
 * docs/operations.md's "Running it locally" flow on the embedded default, as a new user runs it: `npm run seed` /
 * `migrate` with DATA_DIR, then `npm start` on that data, then a reseed from a second process while the
 * service serves. The CLI uses the server the service runs (and leaves it running); the service picks the
 * new data up without a restart, drops every list computed from the old data, and keeps answering.
 * Stale postmaster.pid files follow PostgreSQL's rules and never cost data.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emptyRedisDb } from '../support/redis.js';
import { run } from '../support/run.js';
import { freePort, isAlive, startServer, type RunningServer } from '../support/server.js';

let tmp: string;
let env: Record<string, string>;
let pgDir: string;
let server: RunningServer | undefined;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'recsvc-operating-'));
  await chmod(tmp, 0o755); // as root the server runs as `postgres`, which must traverse this folder
  env = { DATA_DIR: path.join(tmp, 'data'), EMBEDDED_PG_PORT: String(await freePort()) };
  pgDir = path.join(tmp, 'data', 'pg');
});
afterAll(async () => {
  await server?.stop();
  const pid = postmasterPid();
  if (pid !== undefined && isAlive(pid)) process.kill(pid, 'SIGINT');
  for (let i = 0; i < 100 && pid !== undefined && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 50));
  await rm(tmp, { recursive: true, force: true });
});

/** A CLI command as a user types it: no DATABASE_URL, DATA_DIR and EMBEDDED_PG_PORT set. */
const cli = (command: 'seed' | 'migrate', ...args: string[]) => run(process.execPath, [`dist/cli/${command}.js`, ...args], env);

function postmasterPid(): number | undefined {
  try {
    return Number(readFileSync(path.join(pgDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    return undefined;
  }
}

function appUrl(): string {
  const password = readFileSync(path.join(pgDir, 'app-password'), 'utf8').trim();
  return `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${env.EMBEDDED_PG_PORT}/recommendations`;
}

describe('the embedded PostgreSQL shared by the CLI and the service', () => {
  it('seed and migrate use DATA_DIR, and stop the server they started', async () => {
    const up = await cli('migrate', 'up');
    expect(up.code, up.stderr).toBe(0);
    expect(existsSync(path.join(pgDir, 'PG_VERSION'))).toBe(true);
    const seeded = await cli('seed', '--users', '60', '--content', '30', '--events', '600');
    expect(seeded.code, seeded.stderr).toBe(0);
    expect(seeded.stderr).toContain(`data ${pgDir}`);
    expect(postmasterPid()).toBeUndefined(); // nobody else used it: stopped
  });

  it('npm start on the same DATA_DIR serves what the CLI seeded (Redis as the shared tier)', async () => {
    server = await startServer({ ...env, CATALOG_REFRESH_S: '3600', REDIS_URL: await emptyRedisDb(13) });
    const r = await server.get('/users/55/recommendations?limit=5'); // the default seed has 20 users
    expect(r.status).toBe(200);
    expect(r.json.recommendations).toHaveLength(5);
  });

  it('a CLI command beside the running service uses its server and leaves it running', async () => {
    const pid = postmasterPid()!;
    const status = await cli('migrate', 'status');
    expect(status.code, status.stderr).toBe(0);
    expect(status.stderr).toContain('already running');
    expect(status.stderr).toContain('leaving embedded PostgreSQL running');
    expect(postmasterPid()).toBe(pid);
    expect(isAlive(pid)).toBe(true);
    expect((await server!.get('/users/55/recommendations')).status).toBe(200);
  });

  it('a reseed while serving: one notification, no crash, the new users served and no list of the old data', async () => {
    const s = server!;
    const sql = postgres(appUrl(), { max: 1, onnotice: () => {} });
    try {
      // Cached on both workers (fresh connections spread over them).
      for (let i = 0; i < 6; i++) expect((await s.get('/users/10/recommendations?limit=10', true)).status).toBe(200);
      const cached = await s.get('/users/10/recommendations?limit=10');
      expect(cached.json.metadata.cache_hit).toBe(true);

      const notes = { watch_history: 0, recsvc_dataset: 0 };
      await sql.listen('watch_history', () => void notes.watch_history++);
      await sql.listen('recsvc_dataset', () => void notes.recsvc_dataset++);

      // Readers on every user id of both data sets for the whole reseed.
      const statuses = new Map<number, number>();
      const failures: string[] = [];
      let reading = true;
      const reader = async (): Promise<void> => {
        while (reading) {
          const user = 1 + Math.floor(Math.random() * 3000);
          try {
            const r = await s.get(`/users/${user}/recommendations?limit=5`, true);
            statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
          } catch (err) {
            failures.push((err as Error).message);
          }
        }
      };
      const readers = Array.from({ length: 8 }, () => reader());
      const reseed = await cli('seed', '--users', '3000', '--content', '200', '--events', '60000', '--seed', '7', '--reset');
      await new Promise((r) => setTimeout(r, 500));
      reading = false;
      await Promise.all(readers);
      expect(reseed.code, reseed.stderr).toBe(0);
      expect(reseed.stderr).toContain('already running');

      expect(failures).toEqual([]);
      expect([...statuses.keys()].every((code) => code === 200 || code === 404 || code === 503), JSON.stringify([...statuses])).toBe(true);
      expect(statuses.get(200) ?? 0).toBeGreaterThan(0);
      expect(s.output()).not.toContain('worker exited');
      expect(notes).toEqual({ watch_history: 0, recsvc_dataset: 1 }); // one for the reseed, none per row

      // The new users, on every worker.
      for (let i = 0; i < 6; i++) expect((await s.get('/users/2500/recommendations', true)).status).toBe(200);

      // User 10 is someone else now: whatever any worker serves is computed from the new data.
      const titles = new Map<number, string>();
      for (const row of await sql<{ id: number; title: string }[]>`SELECT id::int AS id, title FROM content`) titles.set(row.id, row.title);
      const watched = new Set((await sql<{ id: number }[]>`SELECT content_id::int AS id FROM user_watch_history WHERE user_id = 10`).map((r) => r.id));
      for (let i = 0; i < 6; i++) {
        const r = await s.get('/users/10/recommendations?limit=10', true);
        expect(r.status).toBe(200);
        for (const item of r.json.recommendations as { content_id: number; title: string }[]) {
          expect(item.title).toBe(titles.get(item.content_id));
          expect(watched.has(item.content_id)).toBe(false);
        }
        // 200 titles now instead of 30, another history: the old cached list is not the answer.
        expect(r.json.recommendations.map((x: { content_id: number }) => x.content_id)).not.toEqual(
          cached.json.recommendations.map((x: { content_id: number }) => x.content_id),
        );
      }
    } finally {
      await sql.end({ timeout: 1 });
    }
  });

  it('the last user out stops the server: the service, when no CLI uses it', async () => {
    const pid = postmasterPid()!;
    expect(await server!.stop()).toBe(0);
    server = undefined;
    for (let i = 0; i < 100 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 50));
    expect(isAlive(pid)).toBe(false);
  });
});

describe('a stale postmaster.pid', () => {
  /** postmaster.pid as PostgreSQL writes it (pid, data dir, start time, port, ...), naming `pid`. */
  const writePidFile = (pid: number): void =>
    writeFileSync(path.join(pgDir, 'postmaster.pid'), `${pid}\n${pgDir}\n1700000000\n${env.EMBEDDED_PG_PORT}\n\n127.0.0.1\n  5432001    32768\nready   \n`);
  const notEmpty = 'database is not empty'; // seed without --reset: the data is still there

  it('naming a dead process: PostgreSQL replaces it, the data is intact', async () => {
    const dead = spawn('true');
    await new Promise((r) => dead.once('exit', r));
    writePidFile(dead.pid!);
    const r = await cli('seed', '--users', '5');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(notEmpty);
    expect(postmasterPid()).toBeUndefined();
  });

  it('naming a live process that is not PostgreSQL (a recycled pid): started anyway, the data is intact', async () => {
    const other = spawn('sleep', ['60']);
    try {
      writePidFile(other.pid!);
      const r = await cli('seed', '--users', '5');
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(notEmpty);
    } finally {
      other.kill();
    }
  });

  it('while a process still works in the data dir (an orphaned backend): refused, nothing removed', async () => {
    const other = spawn('sleep', ['60']);
    let orphan: ChildProcess | undefined;
    try {
      writePidFile(other.pid!);
      orphan = spawn('sleep', ['60'], { cwd: pgDir });
      await new Promise((r) => orphan!.once('spawn', r));
      const r = await cli('migrate', 'status');
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('still work in');
      expect(postmasterPid()).toBe(other.pid);
    } finally {
      other.kill();
      orphan?.kill();
    }
  });
});
