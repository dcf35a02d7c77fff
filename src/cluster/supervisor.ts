/**
 * The worker supervisor: forks the HTTP workers, restarts crashed ones with backoff, replaces all of them
 * one at a time on request (rolling restart), delivers acknowledged broadcasts to them, stops them in order.
 */
import cluster, { type Worker } from 'node:cluster';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Config } from '../config.js';
import type { Logger } from '../observability/logger.js';
import { invalidateMany, isOurs, type ContentChange, type PrimaryToWorker, type UsersInvalidation, type WorkerToPrimary } from './ipc.js';
import type { InvalidationOptions, WorkerBroadcast } from './invalidation-relay.js';

/** How long a broadcast waits for the workers' acknowledgements. */
const ACK_TIMEOUT_MS = 1500;
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

/** A request a worker sends to the primary (metrics aggregation, an API write's invalidation). */
export type WorkerRequest = Extract<WorkerToPrimary, { kind: 'rec:request' }>;

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
export class Supervisor implements WorkerBroadcast {
  onRequest: (worker: Worker, message: WorkerRequest) => Promise<void> = async () => {};
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
  broadcastInvalidation(userId: number, opts: InvalidationOptions = {}): Promise<void> {
    const { lsn, sharedPending, waitForAcks = true } = opts;
    const flag = sharedPending ? { sharedPending: true as const } : {};
    const at = lsn !== undefined ? { lsn } : {};
    return this.deliver(
      (id) => ({ kind: 'rec:invalidate', userId, ...(id !== undefined ? { id } : {}), ...flag, ...at }),
      waitForAcks,
      { userId },
      'invalidation not acknowledged by every worker',
    );
  }

  /** broadcastInvalidation for many users in one message per worker; resolves when all listening workers confirmed. */
  broadcastInvalidations(users: UsersInvalidation): Promise<void> {
    const fields = invalidateMany(users);
    return this.deliver(
      (id) => ({ kind: 'rec:invalidate-many', ...fields, ...(id !== undefined ? { id } : {}) }),
      true,
      { users: users.userIds.length },
      'invalidation not acknowledged by every worker',
    );
  }

  /** Tells every worker which titles changed; resolves when all listening workers confirmed. */
  broadcastContent(change: ContentChange): Promise<void> {
    return this.deliver(
      (id) => ({ kind: 'rec:content', ...change, ...(id !== undefined ? { id } : {}) }),
      true,
      { hidden: change.hidden.length, visible: change.visible.length },
      'content change not acknowledged by every worker',
    );
  }

  /** Sends a message to every connected worker; with `waitForAcks`, resolves once each listening one acknowledged it. */
  private deliver(
    make: (id: number | undefined) => PrimaryToWorker,
    waitForAcks: boolean,
    context: Record<string, unknown>,
    timeoutMessage: string,
  ): Promise<void> {
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w && w.isConnected());
    if (!waitForAcks) {
      const message = make(undefined);
      for (const w of workers) w.send(message);
      return Promise.resolve();
    }
    const id = this.nextAck++;
    return new Promise((resolve) => {
      const waiting = new Set(workers.filter((w) => this.listening.has(w.id)).map((w) => w.id));
      const timer = setTimeout(() => {
        this.log.error({ ...context, missing: [...waiting] }, timeoutMessage);
        this.pending.delete(id);
        resolve();
      }, ACK_TIMEOUT_MS);
      const entry: Pending = { waiting, timer, done: resolve };
      this.pending.set(id, entry);
      const message = make(id);
      for (const w of workers) w.send(message);
      if (waiting.size === 0) this.ack(id, -1);
    });
  }

  /** Tells every worker to drop all its cached lists (invalidations may have been missed). */
  broadcastInvalidateAll(lsn?: string): void {
    this.broadcast({ kind: 'rec:invalidate-all', ...(lsn !== undefined ? { lsn } : {}) });
  }

  /** A reseed replaced the tables: every worker reloads its catalog and drops what it computed before. */
  broadcastDataset(version: string, lsn?: string): void {
    this.broadcast({ kind: 'rec:dataset', version, ...(lsn !== undefined ? { lsn } : {}) });
  }

  /** A model was trained (its id) or a training run failed: every worker loads it, or says so. */
  broadcastModel(payload: string): void {
    if (payload === 'failed') this.broadcast({ kind: 'rec:model', failed: true });
    else if (/^\d{1,16}$/.test(payload)) this.broadcast({ kind: 'rec:model', id: Number(payload) });
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
