/**
 * The node:cluster primary: never serves HTTP. It prepares the database (embedded PostgreSQL when no
 * DATABASE_URL, migrations under an advisory lock, default seed), forks the HTTP workers, restarts crashed
 * ones with backoff, replaces all of them one at a time on SIGUSR2 (zero-downtime rolling restart), relays
 * cache invalidations (API writes, PostgreSQL NOTIFY, write barriers with other instances), aggregates
 * metrics and shuts everything down in order on SIGTERM/SIGINT.
 */
import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { AggregatorRegistry } from 'prom-client';
import { RateLimiterClusterMaster } from 'rate-limiter-flexible';
import type { Config } from '../config.js';
import { connect, type Sql } from '../data/db.js';
import { embeddedLocation, startEmbeddedPostgres } from '../data/embedded-postgres.js';
import { migrate } from '../data/migrate.js';
import { invalidateSharedEntry } from '../data/recommendation-cache.js';
import { connectRedisFrom, redisConfigured, type RedisClient } from '../data/redis.js';
import { DATASET_CHANNEL, seedIfEmpty } from '../data/seed.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { isOurs, type PrimaryToWorker, type WorkerToPrimary } from './ipc.js';

const ACK_TIMEOUT_MS = 1500;
/** Redis Cluster: how long a NOTIFY invalidation waits for replicas (within the 1000 ms command timeout). */
const REPLICA_WAIT_MS = 500;
const STABLE_AFTER_MS = 30_000;

/** How long a rolling restart waits for a replacement worker to listen before it gives up. */
const ROLL_LISTEN_TIMEOUT_MS = 60_000;
const MAIN_SCRIPT = fileURLToPath(new URL('../main.js', import.meta.url));

interface Pending {
  waiting: Set<number>;
  done: () => void;
  timer: NodeJS.Timeout;
}

interface Tracked {
  worker: Worker;
  /** WORKER_INDEX: reused by the restarted or replacing worker (metrics label, log role). */
  index: number;
  startedAt: number;
  /** Told to drain by us (rolling restart): its exit is expected, not a crash. */
  retiring: boolean;
}

export async function runPrimary(config: Config): Promise<void> {
  const log = createLogger(config.LOG_LEVEL, 'primary');
  // SIGUSR2 would otherwise terminate the process: until the workers listen, a restart request is ignored.
  let rollingRestart = (): void => log.warn('rolling restart requested before the service was ready: ignored');
  process.on('SIGUSR2', () => rollingRestart());
  let stopEmbedded: (() => Promise<void>) | undefined;
  let databaseUrl = config.DATABASE_URL;
  if (!databaseUrl) {
    const { dataDir, port } = embeddedLocation(config);
    const pg = await startEmbeddedPostgres({ dataDir, port, log: (m) => log.info(m), lastOneOut: true });
    databaseUrl = pg.url;
    stopEmbedded = pg.stop;
    log.info({ dataDir, port }, 'DATABASE_URL unset: using embedded PostgreSQL');
  }
  if (!redisConfigured(config)) log.info('REDIS_URL and REDIS_CLUSTER_NODES unset: in-process (L1) cache only');

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

  const redis = await connectRedisFrom(config, { commandTimeoutMs: 1000, log, name: 'rec-primary' });
  const aggregator = new AggregatorRegistry();
  // Instance-wide rate-limit counts when there is no Redis to share them (workers use RateLimiterCluster).
  if (config.RATE_LIMIT_POINTS > 0 && !redisConfigured(config)) new RateLimiterClusterMaster();
  const supervisor = new Supervisor(config, databaseUrl, log);

  // Every writer (API, psql, ETL, other instances) invalidates through the trigger's NOTIFY.
  const relay = new InvalidationRelay(sql, databaseUrl, supervisor, redis, config, log);
  await relay.start();

  supervisor.onRequest = async (worker, message) => {
    if (message.op === 'metrics') {
      try {
        const body = await aggregator.clusterMetrics();
        reply(worker, { kind: 'rec:reply', id: message.id, ok: true, contentType: aggregator.contentType, body });
      } catch (err) {
        reply(worker, { kind: 'rec:reply', id: message.id, ok: false, error: (err as Error).message });
      }
    } else {
      await Promise.all([supervisor.broadcastInvalidation(message.userId, true, message.sharedPending), relay.afterWrite()]);
      reply(worker, { kind: 'rec:reply', id: message.id, ok: true });
    }
  };

  supervisor.start();
  await supervisor.allListening();
  log.info({ port: config.PORT, workers: config.WORKERS }, 'service ready');
  process.send?.('ready'); // pm2 wait_ready
  rollingRestart = () => void supervisor.rollingRestart();

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down: draining workers');
    await supervisor.stop(config.SHUTDOWN_TIMEOUT_MS + 2000);
    await relay.stop();
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

const LISTENER_PREFIX = 'recsvc-listener:';
const WRITES_CHANNEL = 'watch_history';
const BARRIER_CHANNEL = 'recsvc_barrier';
const BARRIER_ACK_CHANNEL = 'recsvc_barrier_ack';

/**
 * Cache invalidation from PostgreSQL, within this instance and across instances (README "Cache consistency").
 *
 * Every primary LISTENs on one dedicated connection, visible in pg_stat_activity as
 * `recsvc-listener:<instance>`. A `watch_history` notification (the trigger: any writer) is relayed to this
 * instance's workers and awaited to their acknowledgements. After an API write commits, `afterWrite()`
 * NOTIFYs a barrier when other instances listen. PostgreSQL delivers notifications in commit order, so a
 * peer receives the barrier after the write's own notification; it answers once every invalidation it
 * received before the barrier is acknowledged by its workers. The write is answered when every peer that
 * listened at that moment has answered: after a 201, no instance serves a list cached before the write.
 */
class InvalidationRelay {
  /** Names this instance's listener session; random, so restarts and hosts never collide. */
  readonly instance = randomBytes(6).toString('hex');
  private readonly listenSql: Sql;
  private readonly relaying = new Set<Promise<void>>();
  private readonly barriers = new Map<string, { waiting: Set<string>; done: () => void; timer: NodeJS.Timeout }>();
  private nextBarrier = 1;
  private listens = 0;

  constructor(
    private readonly sql: Sql,
    databaseUrl: string,
    private readonly supervisor: Supervisor,
    private readonly redis: RedisClient | null,
    private readonly config: Config,
    private readonly log: Logger,
  ) {
    this.listenSql = connect(databaseUrl, { max: 1, application: LISTENER_PREFIX + this.instance });
  }

  async start(): Promise<void> {
    try {
      // One connection carries the four channels, so their notifications keep their commit order.
      await this.listenSql.listen(WRITES_CHANNEL, (p) => this.onWrite(p), () => this.onListen());
      await this.listenSql.listen(BARRIER_CHANNEL, (p) => this.onBarrier(p));
      await this.listenSql.listen(BARRIER_ACK_CHANNEL, (p) => this.onBarrierAck(p));
      await this.listenSql.listen(DATASET_CHANNEL, (p) => this.onDataset(p));
      this.log.info({ instance: this.instance }, 'listening for watch-history writes');
    } catch (err) {
      this.log.error({ err }, 'LISTEN failed: only this instance\'s API writes invalidate its caches');
    }
  }

  async stop(): Promise<void> {
    await this.listenSql.end({ timeout: 1 }).catch(() => {});
  }

  /** Resolves once every other instance has dropped what it cached before the write that just committed. */
  async afterWrite(): Promise<void> {
    let peers: string[];
    try {
      const rows = await this.sql<{ name: string }[]>`
        SELECT DISTINCT application_name AS name FROM pg_stat_activity
        WHERE datname = current_database() AND application_name LIKE ${LISTENER_PREFIX + '%'}`;
      peers = rows.map((r) => r.name.slice(LISTENER_PREFIX.length)).filter((p) => p !== this.instance);
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'cannot list other instances: write acknowledged without them');
      return;
    }
    if (peers.length === 0) return;
    const id = String(this.nextBarrier++);
    await new Promise<void>((resolve) => {
      const waiting = new Set(peers);
      const timer = setTimeout(() => {
        this.barriers.delete(id);
        this.log.error({ missing: [...waiting] }, 'write not acknowledged by every instance');
        resolve();
      }, ACK_TIMEOUT_MS);
      this.barriers.set(id, { waiting, timer, done: resolve });
      this.sql.notify(BARRIER_CHANNEL, `${this.instance}:${id}`).catch((err: Error) => {
        this.log.error({ err: err.message }, 'barrier NOTIFY failed: write acknowledged without other instances');
        this.settle(id);
      });
    });
  }

  private onListen(): void {
    this.listens += 1;
    // Notifications sent while the connection was down are lost: any cached list may predate a write.
    if (this.listens > 1) {
      this.log.warn('LISTEN connection re-established: workers drop every cached list (invalidations may have been missed)');
      this.supervisor.broadcastInvalidateAll();
    }
  }

  private onWrite(payload: string): void {
    const userId = Number(payload);
    if (!Number.isSafeInteger(userId)) return;
    // Redis first, then the workers: a worker that dropped its L1 entry while the Redis entry still stood
    // would refill L1 from it at its next miss and serve the old list until the TTL.
    // Not landed (or not replicated: invalidateSharedEntry): each worker keeps the user pending until its own lands.
    const shared = this.redis
      ? invalidateSharedEntry(this.redis, userId, this.config.CACHE_TTL, REPLICA_WAIT_MS).then(
          () => false,
          (err: Error) => {
            this.log.warn({ userId, err: err.message }, 'redis invalidation from NOTIFY failed: workers retry it');
            return true;
          },
        )
      : Promise.resolve(false);
    const relayed: Promise<void> = shared
      .then((pending) => this.supervisor.broadcastInvalidation(userId, true, pending))
      .finally(() => this.relaying.delete(relayed));
    this.relaying.add(relayed);
  }

  /** One notification per reseed (never one per row: the seed pauses the row trigger). */
  private onDataset(version: string): void {
    this.log.info({ version }, 'data set replaced (reseed): workers reload the catalog and drop cached lists');
    this.supervisor.broadcastDataset(version);
  }

  private onBarrier(payload: string): void {
    if (payload.startsWith(`${this.instance}:`)) return; // ours: our workers are told directly
    const before = [...this.relaying];
    void Promise.all(before)
      .then(() => this.sql.notify(BARRIER_ACK_CHANNEL, `${payload}:${this.instance}`))
      .catch((err: Error) => this.log.warn({ err: err.message }, 'barrier acknowledgement failed'));
  }

  private onBarrierAck(payload: string): void {
    const [origin, id, peer] = payload.split(':');
    if (origin !== this.instance || id === undefined || peer === undefined) return;
    const entry = this.barriers.get(id);
    if (!entry) return;
    entry.waiting.delete(peer);
    if (entry.waiting.size === 0) this.settle(id);
  }

  private settle(id: string): void {
    const entry = this.barriers.get(id);
    if (!entry) return;
    this.barriers.delete(id);
    clearTimeout(entry.timer);
    entry.done();
  }
}

/** Linux ≥ 5.14 hands connections queued on a closing listen socket to another socket of its port. */
function migratesQueuedConnections(): boolean | undefined {
  try {
    return readFileSync('/proc/sys/net/ipv4/tcp_migrate_req', 'utf8').trim() !== '0';
  } catch {
    return undefined; // not Linux, or an older kernel: nothing to tell
  }
}

/**
 * Forks and watches the HTTP workers: restarts crashed ones (backoff), replaces all of them one at a time
 * on request (rolling restart), relays acknowledged invalidations, stops them in order.
 */
class Supervisor {
  onRequest: (worker: Worker, message: Extract<WorkerToPrimary, { kind: 'rec:request' }>) => Promise<void> = async () => {};
  private readonly workers = new Map<number, Tracked>();
  private readonly listening = new Set<number>();
  private readonly pending = new Map<number, Pending>();
  private nextAck = 1;
  private crashes = 0;
  private stopping = false;
  private rolling = false;
  private readyWaiters: (() => void)[] = [];

  constructor(
    private readonly config: Config,
    private readonly databaseUrl: string,
    private readonly log: Logger,
  ) {}

  start(): void {
    // Workers run main.js itself, not whatever launched the primary (pm2 starts it through its own wrapper).
    cluster.setupPrimary({ exec: MAIN_SCRIPT });
    for (let i = 0; i < this.config.WORKERS; i++) this.fork(i);
  }

  allListening(): Promise<void> {
    if (this.listening.size >= this.config.WORKERS) return Promise.resolve();
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  /** Tells every worker to drop the user's cached list; resolves when all listening workers confirmed. */
  broadcastInvalidation(userId: number, waitForAcks = true, sharedPending?: boolean): Promise<void> {
    const flag = sharedPending ? { sharedPending: true as const } : {};
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w && w.isConnected());
    if (!waitForAcks) {
      for (const w of workers) w.send({ kind: 'rec:invalidate', userId, ...flag } satisfies PrimaryToWorker);
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
      for (const w of workers) w.send({ kind: 'rec:invalidate', userId, id, ...flag } satisfies PrimaryToWorker);
      if (waiting.size === 0) this.ack(id, -1);
    });
  }

  /** Tells every worker to drop all its cached lists (invalidations may have been missed). */
  broadcastInvalidateAll(): void {
    this.broadcast({ kind: 'rec:invalidate-all' });
  }

  /** A reseed replaced the tables: every worker reloads its catalog and drops what it computed before. */
  broadcastDataset(version: string): void {
    this.broadcast({ kind: 'rec:dataset', version });
  }

  private broadcast(message: PrimaryToWorker): void {
    for (const w of Object.values(cluster.workers ?? {})) {
      if (w?.isConnected()) w.send(message);
    }
  }

  /**
   * Zero-downtime replacement of every worker, one at a time: fork the new one, wait until it listens
   * (SO_REUSEPORT: old and new share the port), then drain the old one and wait for its exit. A
   * replacement that fails to listen aborts the roll; the workers not yet replaced keep serving.
   */
  async rollingRestart(): Promise<void> {
    if (this.stopping) return;
    if (this.rolling) {
      this.log.warn('rolling restart already in progress: signal ignored');
      return;
    }
    this.rolling = true;
    const started = Date.now();
    const generation = [...this.workers.values()].filter((t) => !t.retiring).sort((a, b) => a.index - b.index);
    this.log.info({ workers: generation.length }, 'rolling restart started');
    if (migratesQueuedConnections() === false) {
      this.log.warn(
        'net.ipv4.tcp_migrate_req is 0: connections queued on a retiring worker\'s listen socket are reset; set it to 1',
      );
    }
    let replaced = 0;
    try {
      for (const old of generation) {
        if (this.stopping) return;
        if (!this.workers.has(old.worker.id)) continue; // exited meanwhile: its crash restart runs the new code
        const swapStarted = Date.now();
        const next = this.fork(old.index);
        if (!(await this.untilListening(next.worker))) {
          if (this.stopping) return;
          this.log.error(
            { index: old.index, replaced, remaining: generation.length - replaced },
            'replacement worker did not start listening: rolling restart aborted, the other workers keep serving',
          );
          if (!next.worker.isDead()) await this.retire(next);
          return;
        }
        await this.retire(old);
        replaced += 1;
        this.log.info(
          { index: old.index, oldPid: old.worker.process.pid, newPid: next.worker.process.pid, ms: Date.now() - swapStarted },
          'worker replaced',
        );
      }
      this.log.info({ replaced, ms: Date.now() - started }, 'rolling restart finished');
    } finally {
      this.rolling = false;
    }
  }

  async stop(timeoutMs: number): Promise<void> {
    this.stopping = true;
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w);
    await Promise.all(workers.map((w) => this.drain(w, timeoutMs)));
  }

  /** Asks a worker to drain and exit; SIGKILL if it has not exited within `timeoutMs`. */
  private drain(w: Worker, timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      if (w.isDead()) return resolve();
      const kill = setTimeout(() => w.process.kill('SIGKILL'), timeoutMs);
      w.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      if (w.isConnected()) w.send({ kind: 'rec:shutdown' } satisfies PrimaryToWorker);
      else w.process.kill('SIGKILL');
    });
  }

  /** Drains a worker we no longer want: its exit is not a crash and is never restarted. */
  private retire(t: Tracked): Promise<void> {
    t.retiring = true;
    return this.drain(t.worker, this.config.SHUTDOWN_TIMEOUT_MS + 2000);
  }

  /** True once the worker reports listening; false if it exits first or takes longer than the limit. */
  private untilListening(worker: Worker): Promise<boolean> {
    if (this.listening.has(worker.id)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const finish = (ok: boolean): void => {
        clearTimeout(timer);
        worker.off('message', onMessage);
        worker.off('exit', onExit);
        resolve(ok);
      };
      const onMessage = (m: unknown): void => {
        if (isOurs(m) && m.kind === 'rec:listening') finish(true);
      };
      const onExit = (): void => finish(false);
      const timer = setTimeout(() => finish(false), ROLL_LISTEN_TIMEOUT_MS);
      worker.on('message', onMessage);
      worker.once('exit', onExit);
    });
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

  /** A worker we have not retired that still runs for this index (e.g. the replacement during a roll). */
  private serves(index: number): boolean {
    for (const t of this.workers.values()) if (t.index === index && !t.retiring) return true;
    return false;
  }

  private fork(index: number): Tracked {
    const worker = cluster.fork({ WORKER_INDEX: String(index), RECSVC_DATABASE_URL: this.databaseUrl });
    const tracked: Tracked = { worker, index, startedAt: Date.now(), retiring: false };
    this.workers.set(worker.id, tracked);
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
      this.workers.delete(worker.id);
      this.listening.delete(worker.id);
      for (const [id] of this.pending) this.ack(id, worker.id);
      if (this.stopping || tracked.retiring) return;
      if (this.serves(index)) {
        // Its replacement (rolling restart) is already running: nothing to restart.
        this.log.warn({ index, code, signal }, 'worker exited while being replaced');
        return;
      }
      const lived = Date.now() - tracked.startedAt;
      this.crashes = lived > STABLE_AFTER_MS ? 1 : this.crashes + 1;
      const delay = Math.min(100 * 2 ** (this.crashes - 1), 10_000);
      this.log.error({ index, code, signal, restartInMs: delay }, 'worker exited; restarting');
      setTimeout(() => !this.stopping && !this.serves(index) && this.fork(index), delay);
    });
    return tracked;
  }
}
