/**
 * The node:cluster primary: never serves HTTP. It prepares the database (embedded PostgreSQL when no
 * DATABASE_URL, migrations under an advisory lock, default seed), forks the HTTP workers, restarts crashed
 * ones with backoff, relays cache invalidations (API writes and PostgreSQL NOTIFY), aggregates metrics and
 * shuts everything down in order on SIGTERM/SIGINT.
 */
import cluster, { type Worker } from 'node:cluster';
import path from 'node:path';
import { AggregatorRegistry } from 'prom-client';
import type { Config } from '../config.js';
import { connect, type Sql } from '../data/db.js';
import { resolveDataDir, startEmbeddedPostgres } from '../data/embedded-postgres.js';
import { migrate } from '../data/migrate.js';
import { invalidateSharedEntry } from '../data/recommendation-cache.js';
import { connectRedis, type Redis } from '../data/redis.js';
import { seedIfEmpty } from '../data/seed.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { isOurs, type PrimaryToWorker, type WorkerToPrimary } from './ipc.js';

const ACK_TIMEOUT_MS = 1500;
const STABLE_AFTER_MS = 30_000;

interface Pending {
  waiting: Set<number>;
  done: () => void;
  timer: NodeJS.Timeout;
}

export async function runPrimary(config: Config): Promise<void> {
  const log = createLogger(config.LOG_LEVEL, 'primary');
  let stopEmbedded: (() => Promise<void>) | undefined;
  let databaseUrl = config.DATABASE_URL;
  if (!databaseUrl) {
    const dataDir = resolveDataDir(path.resolve(config.DATA_DIR, 'pg'));
    const pg = await startEmbeddedPostgres({ dataDir, port: config.EMBEDDED_PG_PORT, log: (m) => log.info(m) });
    databaseUrl = pg.url;
    stopEmbedded = pg.stop;
    log.info({ dataDir, port: config.EMBEDDED_PG_PORT }, 'DATABASE_URL unset: started embedded PostgreSQL');
  }
  if (!config.REDIS_URL) log.info('REDIS_URL unset: in-process (L1) cache only');

  const sql = connect(databaseUrl, { max: 2, application: 'recommendation-service-primary' });
  try {
    const { ran } = await migrate(sql, 'up', { log: (m) => log.info(m) });
    if (ran.length) log.info({ ran }, 'migrations applied');
    if (config.SEED_ON_START && (await seedIfEmpty(sql, (m) => log.info(m)))) log.info('seeded default data set');
  } catch (err) {
    log.fatal({ err }, 'database preparation failed');
    await sql.end({ timeout: 1 });
    await stopEmbedded?.();
    process.exit(1);
  }

  const redis = config.REDIS_URL
    ? connectRedis(config.REDIS_URL, { commandTimeoutMs: 1000, log, name: 'rec-primary' })
    : null;
  const aggregator = new AggregatorRegistry();
  const supervisor = new Supervisor(config, databaseUrl, log);

  // Writers other than our API (psql, ETL) invalidate through the trigger's NOTIFY.
  const listener = await listenForWrites(sql, redis, config, supervisor, log);

  supervisor.onRequest = async (worker, message) => {
    if (message.op === 'metrics') {
      try {
        const body = await aggregator.clusterMetrics();
        reply(worker, { kind: 'rec:reply', id: message.id, ok: true, contentType: aggregator.contentType, body });
      } catch (err) {
        reply(worker, { kind: 'rec:reply', id: message.id, ok: false, error: (err as Error).message });
      }
    } else {
      await supervisor.broadcastInvalidation(message.userId);
      reply(worker, { kind: 'rec:reply', id: message.id, ok: true });
    }
  };

  supervisor.start();
  await supervisor.allListening();
  log.info({ port: config.PORT, workers: config.WORKERS }, 'service ready');
  process.send?.('ready'); // pm2 wait_ready

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down: draining workers');
    await supervisor.stop(config.SHUTDOWN_TIMEOUT_MS + 2000);
    await listener?.unlisten().catch(() => {});
    await Promise.allSettled([sql.end({ timeout: 2 }), redis?.quit()]);
    await stopEmbedded?.();
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

function reply(worker: Worker, message: PrimaryToWorker): void {
  if (worker.isConnected()) worker.send(message);
}

async function listenForWrites(sql: Sql, redis: Redis | null, config: Config, supervisor: Supervisor, log: Logger) {
  try {
    return await sql.listen('watch_history', (payload) => {
      const userId = Number(payload);
      if (!Number.isSafeInteger(userId)) return;
      supervisor.broadcastInvalidation(userId, false);
      if (redis) {
        invalidateSharedEntry(redis, userId, config.CACHE_TTL).catch((err: Error) =>
          log.warn({ userId, err: err.message }, 'redis invalidation from NOTIFY failed'),
        );
      }
    });
  } catch (err) {
    log.error({ err }, 'LISTEN watch_history failed: only API writes invalidate caches');
    return undefined;
  }
}

/** Forks and watches the HTTP workers. */
class Supervisor {
  onRequest: (worker: Worker, message: Extract<WorkerToPrimary, { kind: 'rec:request' }>) => Promise<void> = async () => {};
  private readonly listening = new Set<number>();
  private readonly pending = new Map<number, Pending>();
  private readonly startedAt = new Map<number, number>();
  private nextAck = 1;
  private crashes = 0;
  private stopping = false;
  private readyWaiters: (() => void)[] = [];

  constructor(
    private readonly config: Config,
    private readonly databaseUrl: string,
    private readonly log: Logger,
  ) {}

  start(): void {
    for (let i = 0; i < this.config.WORKERS; i++) this.fork(i);
  }

  allListening(): Promise<void> {
    if (this.listening.size >= this.config.WORKERS) return Promise.resolve();
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  /** Tells every worker to drop the user's cached list; resolves when all listening workers confirmed. */
  broadcastInvalidation(userId: number, waitForAcks = true): Promise<void> {
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w && w.isConnected());
    if (!waitForAcks) {
      for (const w of workers) w.send({ kind: 'rec:invalidate', userId } satisfies PrimaryToWorker);
      return Promise.resolve();
    }
    const id = this.nextAck++;
    return new Promise((resolve) => {
      const waiting = new Set(workers.filter((w) => this.listening.has(w.id)).map((w) => w.id));
      const timer = setTimeout(() => {
        this.log.error({ userId, missing: [...waiting] }, 'invalidation not acknowledged by every worker');
        this.pending.delete(id);
        resolve();
      }, ACK_TIMEOUT_MS);
      const entry: Pending = { waiting, timer, done: resolve };
      this.pending.set(id, entry);
      for (const w of workers) w.send({ kind: 'rec:invalidate', userId, id } satisfies PrimaryToWorker);
      if (waiting.size === 0) this.ack(id, -1);
    });
  }

  async stop(timeoutMs: number): Promise<void> {
    this.stopping = true;
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w);
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.isDead()) return resolve();
            const kill = setTimeout(() => w.process.kill('SIGKILL'), timeoutMs);
            w.once('exit', () => {
              clearTimeout(kill);
              resolve();
            });
            if (w.isConnected()) w.send({ kind: 'rec:shutdown' } satisfies PrimaryToWorker);
            else w.process.kill('SIGKILL');
          }),
      ),
    );
  }

  private ack(id: number, workerId: number): void {
    const entry = this.pending.get(id);
    if (!entry) return;
    entry.waiting.delete(workerId);
    if (entry.waiting.size > 0) return;
    clearTimeout(entry.timer);
    this.pending.delete(id);
    entry.done();
  }

  private fork(index: number): void {
    const worker = cluster.fork({ WORKER_INDEX: String(index), RECSVC_DATABASE_URL: this.databaseUrl });
    this.startedAt.set(worker.id, Date.now());
    worker.on('message', (message: unknown) => {
      if (!isOurs(message)) return;
      const m = message as WorkerToPrimary;
      if (m.kind === 'rec:listening') {
        this.listening.add(worker.id);
        if (this.listening.size >= this.config.WORKERS) for (const w of this.readyWaiters.splice(0)) w();
      } else if (m.kind === 'rec:ack') {
        this.ack(m.id, worker.id);
      } else if (m.kind === 'rec:request') {
        void this.onRequest(worker, m);
      }
    });
    worker.on('exit', (code, signal) => {
      this.listening.delete(worker.id);
      for (const [id] of this.pending) this.ack(id, worker.id);
      if (this.stopping) return;
      const lived = Date.now() - (this.startedAt.get(worker.id) ?? 0);
      this.startedAt.delete(worker.id);
      this.crashes = lived > STABLE_AFTER_MS ? 1 : this.crashes + 1;
      const delay = Math.min(100 * 2 ** (this.crashes - 1), 10_000);
      this.log.error({ index, code, signal, restartInMs: delay }, 'worker exited; restarting');
      setTimeout(() => !this.stopping && this.fork(index), delay);
    });
  }
}
