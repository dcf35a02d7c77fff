/**
 * Dependencies a test may break on purpose: a PostgreSQL and a Redis of its own (not the shared ones),
 * and a request loop that records what clients saw while the fault is injected.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startEmbeddedPostgres } from '../../src/data/embedded-postgres.js';
import { freePort, type Reply, type RunningServer } from './server.js';

export interface OwnPostgres {
  url: string;
  stop(): Promise<void>;
  start(): Promise<void>;
  destroy(): Promise<void>;
}

/** A PostgreSQL that can be stopped and started again on the same port and data. */
export async function ownPostgres(): Promise<OwnPostgres> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'recsvc-fault-pg-'));
  await chmod(dir, 0o755);
  const port = await freePort();
  const dataDir = path.join(dir, 'pg');
  const flags = ['-c', 'fsync=off', '-c', 'synchronous_commit=off'];
  let running = await startEmbeddedPostgres({ dataDir, port, extraFlags: flags });
  const url = running.url;
  let up = true;
  return {
    url,
    async stop() {
      if (up) await running.stop();
      up = false;
    },
    async start() {
      if (!up) running = await startEmbeddedPostgres({ dataDir, port, extraFlags: flags });
      up = true;
    },
    async destroy() {
      if (up) await running.stop();
      up = false;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface OwnRedis {
  url: string;
  /** SIGKILL: an abrupt crash. */
  kill(): Promise<void>;
  start(): Promise<void>;
  /** SIGSTOP / SIGCONT: a server that accepts nothing and answers nothing (a hung Redis). */
  pause(): void;
  resume(): void;
  destroy(): Promise<void>;
}

export async function ownRedis(): Promise<OwnRedis> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: 'ignore',
    });
    for (let i = 0; i < 200; i++) {
      if (await answers(port)) return;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error('redis-server did not start');
  };
  const kill = async () => {
    const c = child;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await exited;
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    kill,
    start,
    pause: () => child?.kill('SIGSTOP'),
    resume: () => child?.kill('SIGCONT'),
    async destroy() {
      child?.kill('SIGCONT');
      await kill();
    },
  };
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.setTimeout(500);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (d) => {
      socket.destroy();
      resolve(d.toString().startsWith('+PONG'));
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

export interface Outcome {
  /** performance.now() when the request was sent, and when its answer (or error) came back. */
  at: number;
  end?: number;
  path: string;
  status: number;
  json: any;
  error?: string;
}

export interface Loop {
  /** Stops the loop and resolves every outcome recorded. */
  stop(): Promise<Outcome[]>;
  outcomes: Outcome[];
}

/** `clients` concurrent request loops (half on keep-alive connections, half on fresh ones). */
export function requestLoop(server: RunningServer, clients: number, nextPath: (i: number) => string): Loop {
  const outcomes: Outcome[] = [];
  let running = true;
  let n = 0;
  const client = async (fresh: boolean) => {
    while (running) {
      const p = nextPath(n++);
      const at = performance.now();
      try {
        const r: Reply = await server.get(p, fresh);
        outcomes.push({ at, end: performance.now(), path: p, status: r.status, json: r.json });
      } catch (err) {
        const error = (err as NodeJS.ErrnoException).code ?? String(err);
        outcomes.push({ at, end: performance.now(), path: p, status: 0, json: undefined, error });
        await new Promise((r) => setTimeout(r, 5));
      }
    }
  };
  const done = Promise.all(Array.from({ length: clients }, (_, i) => client(i % 2 === 0)));
  return {
    outcomes,
    async stop() {
      running = false;
      await done;
      return outcomes;
    },
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Status → count, for assertions and for docs/architecture.md's failure table. */
export function tally(outcomes: Outcome[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const o of outcomes) {
    const key = o.status === 0 ? `error:${o.error}` : String(o.status);
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}
