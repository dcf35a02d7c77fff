/**
 * The invalidation relay: turns PostgreSQL notifications (the `watch_history` trigger, reseeds) and write
 * barriers with other instances into invalidations of this instance's caches (Redis and every worker's L1).
 */
import { randomBytes } from 'node:crypto';
import type { Config } from '../config.js';
import { connect, type Sql } from '../data/db.js';
import { invalidateSharedEntry } from '../data/recommendation-cache.js';
import type { RedisClient } from '../data/redis.js';
import { DATASET_CHANNEL } from '../data/seed.js';
import type { Logger } from '../observability/logger.js';

/** How long a write waits for the other instances' barrier acknowledgements. */
const ACK_TIMEOUT_MS = 1500;
/** Redis Cluster: how long a NOTIFY invalidation waits for replicas (within the 1000 ms command timeout). */
const REPLICA_WAIT_MS = 500;

const LISTENER_PREFIX = 'recsvc-listener:';
const WRITES_CHANNEL = 'watch_history';
const BARRIER_CHANNEL = 'recsvc_barrier';
const BARRIER_ACK_CHANNEL = 'recsvc_barrier_ack';

/** What the relay needs from the processes it invalidates (the Supervisor provides it). */
export interface WorkerBroadcast {
  /**
   * Every worker drops the user's cached list; resolves when all listening workers confirmed.
   * `sharedPending`: the Redis invalidation did not land (or was not replicated): each worker keeps the
   * user pending until its own lands.
   */
  broadcastInvalidation(userId: number, waitForAcks?: boolean, sharedPending?: boolean): Promise<void>;
  /** Every worker drops all its cached lists. */
  broadcastInvalidateAll(): void;
  /** Every worker reloads its catalog and drops what it computed before. */
  broadcastDataset(version: string): void;
}

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
export class InvalidationRelay {
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
    private readonly supervisor: WorkerBroadcast,
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
