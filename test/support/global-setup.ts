/**
 * One real PostgreSQL and one real Redis for the whole run (DESIGN §10). Test files get their own database
 * (test/support/db.ts) or Redis db index. TEST_DATABASE_URL / TEST_REDIS_URL point at existing servers instead.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres } from '../../src/data/embedded-postgres.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Superuser URL of the `postgres` maintenance database: create and drop test databases with it. */
    databaseUrl: string;
    redisUrl: string;
  }
}

type Cleanup = () => Promise<void>;

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const cleanups: Cleanup[] = [];
  const teardown = async (): Promise<void> => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      await cleanup().catch((err: unknown) => console.error('test teardown:', err));
    }
  };
  try {
    project.provide('databaseUrl', process.env.TEST_DATABASE_URL ?? (await startPostgres(cleanups)));
    project.provide('redisUrl', process.env.TEST_REDIS_URL ?? (await startRedis(cleanups)));
  } catch (err) {
    await teardown();
    throw err;
  }
  return teardown;
}

async function startPostgres(cleanups: Cleanup[]): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'recsvc-test-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  await chmod(dir, 0o755); // as root the server runs as `postgres`, which must traverse this folder
  const pg = await startEmbeddedPostgres({
    dataDir: path.join(dir, 'pg'),
    port: await freePort(),
    // Throwaway cluster: durability buys nothing and costs a sync per commit and per CREATE DATABASE.
    extraFlags: ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'],
  });
  cleanups.push(pg.stop);
  const admin = new URL(pg.url);
  admin.pathname = '/postgres';
  return admin.toString();
}

async function startRedis(cleanups: Cleanup[]): Promise<string> {
  const port = await freePort();
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<Error>((resolve) => {
    child.once('error', (err: NodeJS.ErrnoException) =>
      resolve(
        err.code === 'ENOENT'
          ? new Error('redis-server is not on PATH: install it (apt-get install redis-server) or set TEST_REDIS_URL')
          : err,
      ),
    );
    child.once('exit', (code, signal) =>
      resolve(new Error(`redis-server exited early (code ${code}, signal ${signal}):\n${output}`)),
    );
  });
  cleanups.push(() => stopChild(child));

  const failure = await Promise.race([waitForPong(port, 10_000).then(() => undefined), exited]);
  if (failure) throw failure;
  return `redis://127.0.0.1:${port}`;
}

/** Ready means answering PING, not merely accepting connections. */
async function waitForPong(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await ping(port)) return;
    if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer PING within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let reply = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => {
      reply += d.toString();
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}
