/**
 * The one module that uses the job engine (pg-boss, PostgreSQL-backed: docs/jobs.md says why). Everything
 * else sees JobQueue: queues, sending, working, cancelling, and the engine's statements run inside one of
 * our own postgres.js transactions (`inTx`), so a job row and its engine work commit or roll back together.
 *
 * The primary's instance migrates the engine's schema and runs its maintenance (expiring active jobs whose
 * process died, archiving); the HTTP workers' instances only fetch and complete.
 */
import PgBoss from 'pg-boss';
import type { Sql } from './db.js';

/** A postgres.js client or transaction: the engine's statements run through its `unsafe`. */
export type Tx = Pick<Sql, 'unsafe'>;

export type QueuePolicy = PgBoss.QueuePolicy;
export type EngineJob<T> = PgBoss.JobWithMetadata<T>;

export interface JobQueueOptions {
  databaseUrl: string;
  /** The primary migrates the engine's schema and supervises (expiry, archive); workers do not. */
  role: 'primary' | 'worker';
  /** Seconds between two expiry sweeps (the engine's maintenance; once per interval across instances). */
  maintenanceIntervalS: number;
  /** Connections of the engine's own pool (fetch, complete, send outside our transactions). */
  poolSize: number;
  onError: (err: Error) => void;
}

export interface QueueSettings {
  policy: QueuePolicy;
  /** A job active longer than this is failed (and retried while retries remain): a crashed worker's job. */
  expireInS: number;
  retryLimit: number;
  retryDelayS: number;
  /** Where a job goes once it has failed for good. */
  deadLetter?: string;
}

/**
 * The engine's statement runner over one of our transactions (postgres.js `unsafe` takes `$n` parameters).
 * The engine passes json parameters as JSON text, which postgres.js would encode again (as a JSON string):
 * they go as the values they encode. Its text parameters (queue names, ids) never start with `[` or `{`.
 */
function inTx(tx: Tx): PgBoss.Db {
  const param = (v: unknown): unknown => {
    if (v === undefined) return null;
    if (typeof v === 'string' && (v.startsWith('[') || v.startsWith('{'))) return JSON.parse(v);
    return v;
  };
  return { executeSql: async (text, values) => ({ rows: await tx.unsafe(text, (values ?? []).map(param) as never[]) }) };
}

const DEADLOCK = '40P01';

export class JobQueue {
  private boss: PgBoss;
  private stopping = false;

  private constructor(private readonly opts: JobQueueOptions) {
    this.boss = JobQueue.engine(opts);
  }

  private static engine(opts: JobQueueOptions): PgBoss {
    const primary = opts.role === 'primary';
    const boss = new PgBoss({
      connectionString: opts.databaseUrl,
      max: opts.poolSize,
      application_name: `recommendation-service-jobs-${opts.role}`,
      migrate: primary,
      supervise: primary,
      // No cron: our schedules are throttled sends (scheduler.ts), which take periods in seconds.
      schedule: false,
      maintenanceIntervalSeconds: opts.maintenanceIntervalS,
    });
    boss.on('error', opts.onError);
    return boss;
  }

  /** Connected, or the error (the primary: it cannot serve without its database anyway). */
  static async start(opts: JobQueueOptions): Promise<JobQueue> {
    const queue = new JobQueue(opts);
    await queue.boss.start();
    return queue;
  }

  /**
   * An HTTP worker's client: usable at once for the statements it runs inside our transactions, while its
   * own connection (fetching) is made in the background and tried again every `retryMs` — a worker starts
   * and serves requests while PostgreSQL is down. `ready` resolves once connected (never, if stopped first).
   */
  static connecting(opts: JobQueueOptions, retryMs: number): { queue: JobQueue; ready: Promise<void> } {
    const queue = new JobQueue(opts);
    const ready = (async () => {
      for (;;) {
        try {
          await queue.boss.start();
          return;
        } catch (err) {
          opts.onError(err as Error);
          // A failed start leaves the client half started: the next attempt gets a new one.
          await queue.boss.stop({ graceful: false }).catch(() => {});
          if (queue.stopping) return new Promise<void>(() => {});
          await new Promise((r) => setTimeout(r, retryMs));
          queue.boss = JobQueue.engine(opts);
        }
      }
    })();
    return { queue, ready };
  }

  /** Creates the queue, or updates its settings when it exists (several instances start at once). */
  async ensureQueue(name: string, settings: QueueSettings): Promise<void> {
    const options = {
      name,
      policy: settings.policy,
      expireInSeconds: settings.expireInS,
      retryLimit: settings.retryLimit,
      retryDelay: settings.retryDelayS,
      retryBackoff: settings.retryDelayS > 0,
      ...(settings.deadLetter ? { deadLetter: settings.deadLetter } : {}),
    };
    for (let attempt = 1; ; attempt++) {
      try {
        if (await this.boss.getQueue(name)) return await this.boss.updateQueue(name, options);
        return await this.boss.createQueue(name, options);
      } catch (err) {
        // Instances starting together create the same queue (its partition: DDL) at once, and PostgreSQL
        // may pick one as a deadlock victim: look again, the other one has created it.
        if ((err as { code?: string }).code !== DEADLOCK || attempt >= 5) throw err;
        await new Promise((r) => setTimeout(r, 50 * attempt * Math.random()));
      }
    }
  }

  /** One job; `throttleS`: at most one job of this queue per aligned slot of that many seconds (else null). */
  send(name: string, data: object, opts: { throttleS?: number } = {}): Promise<string | null> {
    return this.boss.send(name, data, opts.throttleS ? { singletonSeconds: opts.throttleS } : {});
  }

  /** Many jobs (with ids of ours) in one statement, inside our transaction `tx`. */
  insertInTx(tx: Tx, name: string, jobs: readonly { id: string; data: object }[]): Promise<void> {
    return this.boss.insert(
      jobs.map((j) => ({ id: j.id, name, data: j.data })),
      { db: inTx(tx) },
    );
  }

  /** Marks the job done inside `tx`: with our writes, or not at all. Nothing happens when it is no longer active. */
  async completeInTx(tx: Tx, name: string, id: string): Promise<void> {
    await this.boss.complete(name, id, { db: inTx(tx) });
  }

  /** Jobs not yet finished are cancelled (never fetched again), inside `tx`. */
  async cancelInTx(tx: Tx, name: string, ids: readonly string[]): Promise<void> {
    if (ids.length) await this.boss.cancel(name, [...ids], { db: inTx(tx) });
  }

  /**
   * `loops` independent fetch loops, each running one job at a time: the bound on this process's share of
   * the queue's work. A handler that throws fails the job (retried while retries remain).
   */
  async work<T extends object>(name: string, loops: number, pollingS: number, handler: (job: EngineJob<T>) => Promise<void>): Promise<void> {
    for (let i = 0; i < loops; i++) {
      await this.boss.work<T>(name, { batchSize: 1, includeMetadata: true, pollingIntervalSeconds: pollingS }, async ([job]) => {
        if (job) await handler(job);
      });
    }
  }

  /** Stops fetching; running handlers get `timeoutMs` to finish, the rest are failed (so retried elsewhere). */
  stop(timeoutMs: number): Promise<void> {
    this.stopping = true;
    return this.boss.stop({ graceful: true, wait: true, timeout: Math.max(1000, timeoutMs) });
  }
}
