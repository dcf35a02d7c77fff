/**
 * The invalidation relay: turns PostgreSQL notifications (the `watch_history` trigger, reseeds) and write
 * barriers with other instances into invalidations of this instance's caches (Redis and every worker's L1).
 */
import { randomBytes } from 'node:crypto';
import type { Config } from '../config.js';
import { connect, type Sql } from '../data/db.js';
import { invalidateSharedEntries } from '../data/recommendation-cache.js';
import type { RedisClient } from '../data/redis.js';
import { DATASET_CHANNEL } from '../data/bulk-load.js';
import { MODEL_CHANNEL } from '../data/model-repo.js';
import type { Logger } from '../observability/logger.js';
import type { ContentChange, UsersInvalidation } from './ipc.js';

/** How long a write waits for the other instances' barrier acknowledgements. */
const ACK_TIMEOUT_MS = 1500;
/** Redis Cluster: how long a NOTIFY invalidation waits for replicas (within the 1000 ms command timeout). */
const REPLICA_WAIT_MS = 500;

const LISTENER_PREFIX = 'recsvc-listener:';
const WRITES_CHANNEL = 'watch_history';
/** Migration 0005's content trigger: `<id>:h` (hidden or deleted) or `<id>:v` (visible). */
const CONTENT_CHANNEL = 'content_changes';
const BARRIER_CHANNEL = 'recsvc_barrier';
const BARRIER_ACK_CHANNEL = 'recsvc_barrier_ack';

/**
 * What the relay needs from the processes it invalidates (the Supervisor provides it). `lsn`: a WAL position
 * at or past the write's commit, which the workers' replica reads must have replayed (ipc.ts).
 */
export interface InvalidationOptions {
  /** The primary's WAL position at or past the write's commit (read replicas, see above). */
  lsn?: string;
  /** The Redis invalidation did not land or was not replicated (Redis Cluster): workers keep the user pending. */
  sharedPending?: boolean;
  /** Wait for every listening worker's acknowledgement (default true). */
  waitForAcks?: boolean;
}

export interface WorkerBroadcast {
  /**
   * Every worker drops the user's cached list; resolves when all listening workers confirmed.
   * `sharedPending`: the Redis invalidation did not land (or was not replicated): each worker keeps the
   * user pending until its own lands. `lsn`: see above.
   */
  broadcastInvalidation(userId: number, opts?: InvalidationOptions): Promise<void>;
  /** broadcastInvalidation for many users in one message (acknowledged); `sharedPending` lists those it applies to. */
  broadcastInvalidations(users: UsersInvalidation): Promise<void>;
  /** Every worker drops all its cached lists. */
  broadcastInvalidateAll(lsn?: string): void;
  /** Every worker reloads its catalog and drops what it computed before. */
  broadcastDataset(version: string, lsn?: string): void;
  /** A model notification's payload (an id, or `failed`): every worker loads it or reports it. */
  broadcastModel(payload: string): void;
  /** Every worker stops serving the hidden titles and reloads its catalog; resolves when all confirmed. */
  broadcastContent(change: ContentChange): Promise<void>;
}

/** `42` or `42:<anything>` (a trigger that appends more, e.g. an LSN) → 42; undefined otherwise. */
export function notifiedUserId(payload: string): number | undefined {
  const colon = payload.indexOf(':');
  const text = colon < 0 ? payload : payload.slice(0, colon);
  if (!/^\d{1,16}$/.test(text)) return undefined;
  const userId = Number(text);
  return Number.isSafeInteger(userId) ? userId : undefined;
}

/**
 * Cache invalidation from PostgreSQL, within this instance and across instances (docs/architecture.md "Cache consistency").
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
  /** A WAL position read not sent yet: callers until it is sent share it (walPosition). */
  private unsentPosition: Promise<string | undefined> | undefined;
  private lastPosition: Promise<unknown> = Promise.resolve();
  /** Called on every reseed notification, after the workers were told (the similar-titles refresher). */
  onDatasetReplaced: () => void = () => {};
  /** Users notified in this event-loop turn, relayed together (a bulk write sends one per user). */
  private writeBatch: Set<number> | undefined;
  /** Content notifications of this event-loop turn, relayed together (a bulk write sends one per title). */
  private contentBatch: ContentChange | undefined;

  constructor(
    private readonly sql: Sql,
    databaseUrl: string,
    private readonly supervisor: WorkerBroadcast,
    private readonly redis: RedisClient | null,
    private readonly config: Config,
    private readonly log: Logger,
    /** This instance reads from replicas: every relayed invalidation carries a WAL position. */
    private readonly withPositions = false,
  ) {
    this.listenSql = connect(databaseUrl, { max: 1, application: LISTENER_PREFIX + this.instance });
  }

  async start(): Promise<void> {
    try {
      // One connection carries the five channels, so their notifications keep their commit order.
      await this.listenSql.listen(WRITES_CHANNEL, (p) => this.onWrite(p), () => this.onListen());
      await this.listenSql.listen(CONTENT_CHANNEL, (p) => this.onContent(p));
      await this.listenSql.listen(BARRIER_CHANNEL, (p) => this.onBarrier(p));
      await this.listenSql.listen(BARRIER_ACK_CHANNEL, (p) => this.onBarrierAck(p));
      await this.listenSql.listen(DATASET_CHANNEL, (p) => this.onDataset(p));
      await this.listenSql.listen(MODEL_CHANNEL, (p) => this.supervisor.broadcastModel(p));
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
      void this.walPosition().then((lsn) => this.supervisor.broadcastInvalidateAll(lsn));
    }
  }

  private onWrite(payload: string): void {
    const userId = notifiedUserId(payload);
    if (userId === undefined) return;
    if (!this.writeBatch) {
      const batch = (this.writeBatch = new Set<number>());
      // Registered now, so a barrier that arrives later in this turn waits for this batch too.
      const relayed: Promise<void> = new Promise<void>((resolve) => setImmediate(resolve))
        .then(() => {
          this.writeBatch = undefined;
          return this.relayWrites([...batch]);
        })
        .finally(() => this.relaying.delete(relayed));
      this.relaying.add(relayed);
    }
    this.writeBatch.add(userId);
  }

  /**
   * With replicas, the workers learn the write's WAL position BEFORE this instance bumps the user's Redis
   * generation. A computation takes its ticket (the generation) before it reads its data, and may read a
   * replica that has not replayed the write unless its process knows the position. Had the bump come first,
   * a worker of this instance could take the bumped generation, read a replica without the write and store
   * the old list under that generation before the relay reached it: no later bump of this write would come
   * to delete it, and every instance would serve it until its TTL. Every relay bumps only after its own
   * workers know, so whichever bump of the write is last, a ticket taken after it is in a process that knows.
   * (The writing worker noted the position before its own bump: recordWatch.)
   *
   * Then Redis, then the workers again: a worker that dropped its L1 entry while the Redis entry still stood
   * would refill L1 from it at its next miss and serve the old list until the TTL. Not landed (or not
   * replicated: invalidateSharedEntry): each worker keeps the user pending until its own lands.
   *
   * The users notified in one event-loop turn (a bulk write notifies once per user) go together: one WAL
   * position read after all of them committed, one Redis pass (invalidateSharedEntries), one message per worker.
   */
  private async relayWrites(userIds: number[]): Promise<void> {
    const lsn = await this.walPosition();
    if (this.withPositions) await this.supervisor.broadcastInvalidations({ userIds, sharedPending: [], lsn });
    const sharedPending = this.redis ? await invalidateSharedEntries(this.redis, userIds, this.config.CACHE_TTL, REPLICA_WAIT_MS) : [];
    if (sharedPending.length > 0) {
      this.log.warn({ users: sharedPending.length, first: sharedPending[0] }, 'redis invalidation from NOTIFY failed: workers retry it');
    }
    await this.supervisor.broadcastInvalidations({ userIds, sharedPending, lsn });
  }

  /**
   * A title changed (any writer: the trigger). Hidden ones are relayed like a user's invalidation, tracked
   * until every worker acknowledged, so a barrier after the hiding write waits for them.
   */
  private onContent(payload: string): void {
    const match = /^(\d{1,16}):([hv])$/.exec(payload);
    if (!match) return;
    const id = Number(match[1]);
    if (!this.contentBatch) {
      const batch: ContentChange = (this.contentBatch = { hidden: [], visible: [] });
      // Registered now, so a barrier that arrives later in this turn waits for this batch too.
      const relayed: Promise<void> = new Promise<void>((resolve) => setImmediate(resolve))
        .then(() => {
          this.contentBatch = undefined;
          return this.supervisor.broadcastContent(batch);
        })
        .finally(() => this.relaying.delete(relayed));
      this.relaying.add(relayed);
    }
    (match[2] === 'h' ? this.contentBatch.hidden : this.contentBatch.visible).push(id);
  }

  /**
   * With replicas: the primary's WAL insert position, read by a statement sent after this call. A
   * notification is delivered only once its transaction has committed, i.e. after its commit record was
   * inserted into the WAL; the insert position read after that is at or past the end of that record, so a
   * replica that has replayed it shows the write (docs/design-decisions.md: read-your-writes). A position
   * inside the trigger would not do: it precedes the commit record. Concurrent callers share one statement
   * as long as it has not been sent; undefined (no replicas, or the primary did not answer: the workers then
   * read the user from the primary until their next probe of it).
   */
  private walPosition(): Promise<string | undefined> {
    if (!this.withPositions) return Promise.resolve(undefined);
    if (this.unsentPosition) return this.unsentPosition;
    const position = this.lastPosition.then(async () => {
      this.unsentPosition = undefined; // sent now: later callers need a later read
      try {
        const [row] = await this.sql<{ lsn: string }[]>`SELECT pg_current_wal_insert_lsn()::text AS lsn`;
        return row?.lsn;
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'WAL position unavailable: relayed invalidation carries none');
        return undefined;
      }
    });
    this.unsentPosition = position;
    this.lastPosition = position;
    return position;
  }

  /** One notification per reseed (never one per row: the seed pauses the row trigger). */
  private onDataset(version: string): void {
    this.log.info({ version }, 'data set replaced (reseed): workers reload the catalog and drop cached lists');
    void this.walPosition().then((lsn) => this.supervisor.broadcastDataset(version, lsn));
    this.onDatasetReplaced();
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
