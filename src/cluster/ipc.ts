/**
 * Messages between the primary and its HTTP workers (node:cluster IPC). Every message of ours carries
 * `kind` starting with `rec:` so it never collides with prom-client's aggregation messages.
 *
 * `lsn` (with DATABASE_REPLICA_URLS): the primary's WAL position (pg_lsn text) at or past the write's commit;
 * the user's reads (every read, for `invalidate-all` and `dataset`) then need a replica that replayed it.
 * Absent with replicas configured: a write whose position is unknown, read from the primary until known.
 */
export type WorkerToPrimary =
  | { kind: 'rec:listening' }
  | { kind: 'rec:request'; id: number; op: 'invalidate'; userId: number; sharedPending?: true; lsn?: string }
  /** A bulk write's users in one message; `sharedPending`: those whose Redis invalidation is owed. */
  | { kind: 'rec:request'; id: number; op: 'invalidate-many'; userIds: number[]; sharedPending?: number[]; lsn?: string }
  | { kind: 'rec:request'; id: number; op: 'metrics' }
  /** Titles written by this worker: `hidden` ones must be unservable everywhere before the write is answered. */
  | { kind: 'rec:request'; id: number; op: 'content'; hidden: number[]; visible: number[] }
  | { kind: 'rec:ack'; id: number };

export type PrimaryToWorker =
  | { kind: 'rec:reply'; id: number; ok: true; contentType?: string; body?: string }
  | { kind: 'rec:reply'; id: number; ok: false; error: string }
  /**
   * `sharedPending`: the user's Redis invalidation is owed; the worker must land its own before reading Redis.
   * `lsn`: the primary's WAL position at or past the write's commit, which replica reads must have replayed.
   */
  | { kind: 'rec:invalidate'; userId: number; id?: number; sharedPending?: true; lsn?: string }
  /** `rec:invalidate` for each of `userIds`, acknowledged once; `sharedPending` lists those it applies to. */
  | { kind: 'rec:invalidate-many'; userIds: number[]; id?: number; sharedPending?: number[]; lsn?: string }
  | { kind: 'rec:invalidate-all'; lsn?: string }
  /** Titles changed: stop serving `hidden` at once, reload the catalog; acknowledge when `id` is set. */
  | { kind: 'rec:content'; hidden: number[]; visible: number[]; id?: number }
  /** A reseed committed: reload the catalog (which drops what was computed from the old data). */
  | { kind: 'rec:dataset'; version: string; lsn?: string }
  /** A newer trained model to load (its id), or a training run that failed (the current one stays). */
  | { kind: 'rec:model'; id?: number; failed?: true }
  | { kind: 'rec:shutdown' };

/** Users whose cached lists a write made stale, and those of them whose Redis invalidation is owed. */
export interface UsersInvalidation {
  userIds: number[];
  sharedPending: number[];
  lsn?: string;
}

/** Titles that became hidden (or were deleted) and titles written visible, by content id. */
export interface ContentChange {
  hidden: number[];
  visible: number[];
}

export function isOurs(message: unknown): message is { kind: string } {
  return typeof message === 'object' && message !== null && typeof (message as { kind?: unknown }).kind === 'string' &&
    (message as { kind: string }).kind.startsWith('rec:');
}

/** Worker side: request/response over process.send with ids and a timeout. */
export class PrimaryChannel {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (m: PrimaryToWorker) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();

  constructor(private readonly timeoutMs: number) {}

  /** Feed every primary→worker reply here. */
  settle(message: PrimaryToWorker & { kind: 'rec:reply' }): void {
    const entry = this.pending.get(message.id);
    if (!entry) return;
    this.pending.delete(message.id);
    clearTimeout(entry.timer);
    if (message.ok) entry.resolve(message);
    else entry.reject(new Error(message.error));
  }

  request(op: 'invalidate', userId: number, opts?: { sharedPending?: boolean; lsn?: string }): Promise<PrimaryToWorker>;
  request(op: 'metrics'): Promise<PrimaryToWorker>;
  request(op: 'content', change: ContentChange): Promise<PrimaryToWorker>;
  request(op: 'invalidate-many', users: UsersInvalidation): Promise<PrimaryToWorker>;
  request(
    op: 'invalidate' | 'metrics' | 'content' | 'invalidate-many',
    target?: number | ContentChange | UsersInvalidation,
    opts: { sharedPending?: boolean; lsn?: string } = {},
  ): Promise<PrimaryToWorker> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`primary did not answer ${op} within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      const message: WorkerToPrimary =
        op === 'invalidate'
          ? {
              kind: 'rec:request', id, op, userId: target as number,
              ...(opts.sharedPending ? { sharedPending: true as const } : {}),
              ...(opts.lsn !== undefined ? { lsn: opts.lsn } : {}),
            }
          : op === 'content'
            ? { kind: 'rec:request', id, op, ...(target as ContentChange) }
            : op === 'invalidate-many'
              ? { kind: 'rec:request', id, op, ...invalidateMany(target as UsersInvalidation) }
              : { kind: 'rec:request', id, op };
      send(message);
    });
  }
}

/** The fields of an `invalidate-many` message: the optional ones only when they say something. */
export function invalidateMany({ userIds, sharedPending, lsn }: UsersInvalidation): {
  userIds: number[];
  sharedPending?: number[];
  lsn?: string;
} {
  return { userIds, ...(sharedPending.length > 0 ? { sharedPending } : {}), ...(lsn !== undefined ? { lsn } : {}) };
}

export function send(message: WorkerToPrimary): void {
  process.send?.(message);
}
