/**
 * Where the request path's reads go (DESIGN §14). Without replicas every read runs on the primary
 * (`primaryReads`). With `DATABASE_REPLICA_URLS`, a ReplicaSet holds a client per streaming replica, probes
 * each one and the primary every PROBE_INTERVAL_MS, and sends a read to a healthy replica that has replayed
 * the WAL position the read needs — the last write LSN of the users it reads (read-your-writes,
 * docs/design-decisions.md) — else to the primary. A replica that fails a read is taken out until its next good
 * probe and the read is retried on the primary: a replica failure costs latency, not errors.
 */
import type { Sql } from './db.js';
import { connect, isConnectionError } from './db.js';
import { parseLsn, WriteLsns, type Lsn } from './write-lsns.js';

export const PROBE_INTERVAL_MS = 250;
/** A probe slower than this takes the replica out (a hung server is down, not waited for). */
const PROBE_TIMEOUT_MS = 1000;
/** Primary flush positions remembered to date a replica's replay position (~4 minutes of probes). */
const HISTORY_MAX = 1024;

/** A read: a postgres.js query (cancellable) or any promise of a result. */
export type Cancellable<T> = Promise<T> & { cancel?: () => unknown };

export interface ReadRoute {
  /** True when reads may go to replicas (and writes must report their LSN). */
  readonly replicated: boolean;
  /** Runs `run` on a replica that has replayed what these users' reads need (none: shared data), else the primary. */
  read<T>(run: (sql: Sql) => Cancellable<T>, userIds?: readonly number[]): Cancellable<T>;
  /** The user's later reads need `lsn` (the text of a pg_lsn; undefined: unknown) replayed. */
  noteWrite(userId: number, lsn: string | undefined): void;
  /** Every later read needs `lsn` replayed (a reseed, missed notifications). */
  noteWriteAll(lsn: string | undefined): void;
}

/** No replicas: every read on the primary, nothing to remember. */
export function primaryReads(sql: Sql): ReadRoute {
  return {
    replicated: false,
    read: (run) => run(sql),
    noteWrite: () => {},
    noteWriteAll: () => {},
  };
}

export type ReplicaState = 'up' | 'lagging' | 'down';

/** What /ready shows per replica. */
export interface ReplicaStatus {
  /** host:port (never the URL: it holds the password). */
  replica: string;
  state: ReplicaState;
  /** How far its replayed data is behind the primary, ms (0 = caught up); null before the first probe. */
  lag_ms: number | null;
}

export type FallbackReason = 'not_replayed' | 'unhealthy' | 'error';

/** Counters the set adds to (the worker wires prebuilt metric children). */
export interface ReplicaCounters {
  reads: { primary: { inc(): void }; replica: { inc(): void } };
  fallbacks: Record<FallbackReason, { inc(): void }>;
}

export interface ReplicaSetOptions {
  /** Connections per replica (as DB_POOL_SIZE for the primary). */
  poolSize: number;
  statementTimeoutMs?: number;
  /** A replica further behind than this is skipped (REPLICA_MAX_LAG_MS). */
  maxLagMs: number;
  /** One read attempt on a replica longer than this is abandoned and retried on the primary (0 = no limit). */
  attemptTimeoutMs?: number;
  counters?: ReplicaCounters;
  log?: (fields: Record<string, unknown>, message: string) => void;
  application?: string;
  /** Per-user LSNs kept at most (beyond it the oldest fold into the floor). */
  maxTrackedUsers?: number;
}

interface Replica {
  name: string;
  sql: Sql;
  probe: Sql;
  state: ReplicaState;
  /** Replay position of the last good probe (a lower bound of the current one), 0 before. */
  replayed: Lsn;
  lagMs: number | null;
  /** Probes that succeeded: the first one after a restart of the replica re-reads its position. */
  seen: boolean;
}

/** `postgres://u:p@host:5433/db` → `host:5433`. */
export function replicaName(url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port || '5432'}`;
}

export class ReplicaSet implements ReadRoute {
  readonly replicated = true;
  readonly lsns: WriteLsns;
  private readonly replicas: Replica[];
  private readonly primaryProbe: Sql;
  /** Primary flush positions with when each probe that read it started, oldest first. */
  private readonly history: { at: number; lsn: Lsn }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private probing: Promise<void> | undefined;
  private next = 0;
  private closed = false;

  constructor(
    private readonly primary: Sql,
    primaryUrl: string,
    replicaUrls: readonly string[],
    private readonly opts: ReplicaSetOptions,
  ) {
    this.lsns = new WriteLsns(opts.maxTrackedUsers);
    // Start-up: the migrations and seed just written must be replayed before a replica answers anything.
    this.lsns.noteAll(undefined);
    const application = opts.application ?? 'recommendation-service';
    const names = new Set<string>();
    this.replicas = replicaUrls.map((url, i) => {
      let name = replicaName(url);
      if (names.has(name)) name = `${name}#${i}`;
      names.add(name);
      const replica: Replica = {
        name,
        sql: connect(url, { max: opts.poolSize, statementTimeoutMs: opts.statementTimeoutMs, application }),
        // Never idle-closed: when it closes, the server went away (or restarted, replaying from an older
        // position than we last saw): out until a probe reads its position again.
        probe: connect(url, { max: 1, application: `${application}-probe`, keepOpen: true, onclose: () => this.lost(replica) }),
        state: 'down',
        replayed: 0n,
        lagMs: null,
        seen: false,
      };
      return replica;
    });
    this.primaryProbe = connect(primaryUrl, { max: 1, application: `${application}-probe`, keepOpen: true });
  }

  /** Probes now and then every PROBE_INTERVAL_MS; resolves after the first round. */
  async start(): Promise<void> {
    await this.probeOnce();
    this.schedule();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.probing;
    await Promise.allSettled([
      this.primaryProbe.end({ timeout: 1 }),
      ...this.replicas.flatMap((r) => [r.sql.end({ timeout: 2 }), r.probe.end({ timeout: 1 })]),
    ]);
  }

  status(): ReplicaStatus[] {
    return this.replicas.map((r) => ({ replica: r.name, state: r.state, lag_ms: r.lagMs }));
  }

  noteWrite(userId: number, lsn: string | undefined): void {
    this.lsns.noteUser(userId, parseLsn(lsn));
  }

  noteWriteAll(lsn: string | undefined): void {
    this.lsns.noteAll(parseLsn(lsn));
  }

  /** A replica that is up and has replayed `minLsn` and the floor (round robin); undefined = the primary. */
  pick(minLsn: Lsn = 0n): { name: string; sql: Sql } | undefined {
    const floor = this.lsns.floor;
    return this.choose(minLsn > floor ? minLsn : floor).replica;
  }

  read<T>(run: (sql: Sql) => Cancellable<T>, userIds?: readonly number[]): Cancellable<T> {
    const { replica, reason } = this.choose(this.lsns.required(userIds));
    const counters = this.opts.counters;
    if (!replica) {
      counters?.reads.primary.inc();
      if (reason) counters?.fallbacks[reason].inc();
      return run(this.primary);
    }
    let current = run(replica.sql);
    let cancelled = false;
    const attempt = async (): Promise<T> => {
      try {
        const result = await within(current, this.opts.attemptTimeoutMs ?? 0);
        counters?.reads.replica.inc();
        return result;
      } catch (err) {
        if (cancelled) throw err;
        // Any failure on a replica is retried on the primary, the source of truth (a statement it cannot
        // run either fails there too). Only unreachable or hung replicas are taken out.
        if (isConnectionError(err)) this.markDown(replica, (err as Error).message);
        counters?.fallbacks.error.inc();
        counters?.reads.primary.inc();
        current = run(this.primary);
        return await current;
      }
    };
    const promise: Cancellable<T> = attempt();
    promise.cancel = () => {
      cancelled = true;
      return current.cancel?.();
    };
    return promise;
  }

  private choose(minLsn: Lsn): { replica?: Replica; reason?: FallbackReason } {
    let healthy = false;
    for (let i = 0; i < this.replicas.length; i++) {
      const r = this.replicas[(this.next + i) % this.replicas.length]!;
      if (r.state !== 'up') continue;
      healthy = true;
      if (r.replayed < minLsn) continue;
      this.next = (this.next + i + 1) % this.replicas.length;
      return { replica: r };
    }
    return { reason: healthy ? 'not_replayed' : 'unhealthy' };
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      void this.probeOnce().finally(() => this.schedule());
    }, PROBE_INTERVAL_MS);
    this.timer.unref();
  }

  private probeOnce(): Promise<void> {
    this.probing ??= this.probeRound().finally(() => (this.probing = undefined));
    return this.probing;
  }

  /** One round: the primary's positions and every replica's replay position, concurrently. */
  private async probeRound(): Promise<void> {
    const startedAt = performance.now();
    const sampledAt = Date.now();
    const [primary, ...replays] = await Promise.all([
      within(
        this.primaryProbe<{ flush: string; insert: string }[]>`
          SELECT pg_current_wal_flush_lsn()::text AS flush, pg_current_wal_insert_lsn()::text AS insert`,
        PROBE_TIMEOUT_MS,
      ).then(
        ([row]) => ({ flush: parseLsn(row?.flush), insert: parseLsn(row?.insert) }),
        () => undefined,
      ),
      ...this.replicas.map((r) =>
        within(
          r.probe<{ standby: boolean; replay: string | null }[]>`
            SELECT pg_is_in_recovery() AS standby, pg_last_wal_replay_lsn()::text AS replay`,
          PROBE_TIMEOUT_MS,
        ).then(
          ([row]) => (row?.standby ? (parseLsn(row.replay) ?? 0n) : new Error('not a standby (pg_is_in_recovery() is false)')),
          (err: Error) => err,
        ),
      ),
    ]);
    if (this.closed) return;
    const now = Date.now();
    if (primary?.flush !== undefined) this.remember(sampledAt, primary.flush);
    let replayedByAll: Lsn | undefined;
    this.replicas.forEach((r, i) => {
      const replay = replays[i] as Lsn | Error;
      if (replay instanceof Error) {
        this.markDown(r, replay.message);
      } else {
        r.replayed = replay;
        r.seen = true;
        r.lagMs = this.lagOf(replay, now);
        const state: ReplicaState = r.lagMs > this.opts.maxLagMs ? 'lagging' : 'up';
        if (state !== r.state) this.opts.log?.({ replica: r.name, state, lagMs: r.lagMs }, 'replica state changed');
        r.state = state;
      }
      // A replica never seen bounds nothing; a down one keeps its last position (it only grows while it runs).
      const known = r.seen ? r.replayed : 0n;
      replayedByAll = replayedByAll === undefined || known < replayedByAll ? known : replayedByAll;
    });
    this.lsns.settle(replayedByAll ?? 0n, primary?.insert !== undefined ? { lsn: primary.insert, startedAt } : undefined);
  }

  private remember(at: number, lsn: Lsn): void {
    this.history.push({ at, lsn });
    if (this.history.length > HISTORY_MAX) this.history.shift();
  }

  /**
   * How old the replica's data is: 0 when it has replayed what the primary had flushed at the last probe;
   * otherwise the time since the last probe that found the primary no further than the replica's position
   * now is (an upper bound, at most one probe interval high; with no such probe remembered, the age of the
   * oldest). Not `now() - pg_last_xact_replay_timestamp()`: that grows while the primary is idle.
   */
  private lagOf(replayed: Lsn, now: number): number {
    const h = this.history;
    if (h.length === 0 || replayed >= h[h.length - 1]!.lsn) return 0;
    let i = h.length - 1;
    while (i >= 0 && h[i]!.lsn > replayed) i--;
    return now - h[Math.max(i, 0)]!.at;
  }

  private lost(r: Replica): void {
    if (!this.closed) this.markDown(r, 'probe connection closed');
  }

  private markDown(r: Replica, reason: string): void {
    if (r.state !== 'down') this.opts.log?.({ replica: r.name, state: 'down', reason }, 'replica state changed');
    r.state = 'down';
  }
}

function within<T>(work: Cancellable<T>, ms: number): Promise<T> {
  if (!ms) return work;
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    work,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        work.cancel?.();
        reject(Object.assign(new Error(`replica did not answer within ${ms} ms`), { code: 'ETIMEDOUT' }));
      }, ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
