/**
 * Read-your-writes bookkeeping of one process: per user, the WAL position (LSN) a replica must have replayed
 * before it may answer a read of that user's data, and a floor every read must wait for (a reseed, missed
 * notifications, start-up). Bounded: evicting a user raises the floor to its LSN, so forgetting is never unsafe,
 * only conservative. An LSN not known yet ("pending": a write whose position could not be read) is settled by
 * the first primary position read after it was noted; until then the reads go to the primary.
 */

/** A PostgreSQL LSN (pg_lsn) as a 64-bit integer. */
export type Lsn = bigint;

/** Larger than any LSN: "not known yet", only the primary qualifies. */
export const UNKNOWN_LSN: Lsn = (1n << 64n) - 1n;

const LSN_TEXT = /^([0-9A-F]{1,8})\/([0-9A-F]{1,8})$/i;

/** `16/B374D848` → bigint; undefined for anything else. */
export function parseLsn(text: string | undefined | null): Lsn | undefined {
  const m = text ? LSN_TEXT.exec(text) : null;
  return m ? (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`) : undefined;
}

export function formatLsn(lsn: Lsn): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

export class WriteLsns {
  /** Known LSN per user, oldest write first (the eviction order); 0n while only a pending one is known. */
  private readonly users = new Map<number, Lsn>();
  /** Users with a write of unknown position, with when the latest one was noted (performance.now()). */
  private readonly pendingUsers = new Map<number, number>();
  private floorLsn: Lsn = 0n;
  private floorPendingSince: number | undefined;

  constructor(private readonly maxUsers = 100_000) {}

  /** What every read needs replayed (UNKNOWN_LSN while a floor write of unknown position is pending). */
  get floor(): Lsn {
    return this.floorPendingSince === undefined ? this.floorLsn : UNKNOWN_LSN;
  }

  get size(): number {
    return this.users.size;
  }

  /** The user's next reads need `lsn` replayed; `undefined` = a write whose position is unknown. */
  noteUser(userId: number, lsn: Lsn | undefined, now = performance.now()): void {
    const known = this.users.get(userId) ?? 0n;
    if (lsn === undefined) this.pendingUsers.set(userId, now);
    else if (lsn <= known && this.users.has(userId)) return;
    this.users.delete(userId); // re-insert: the map's order is the eviction order (oldest write first)
    this.users.set(userId, lsn !== undefined && lsn > known ? lsn : known);
    if (this.users.size > this.maxUsers) {
      const [oldest, oldestLsn] = this.users.entries().next().value as [number, Lsn];
      const since = this.pendingUsers.get(oldest);
      this.users.delete(oldest);
      this.pendingUsers.delete(oldest);
      this.noteAll(oldestLsn);
      if (since !== undefined) this.noteAll(undefined, since);
    }
  }

  /** Every read needs `lsn` replayed; `undefined` = unknown (until the next primary position is read). */
  noteAll(lsn: Lsn | undefined, now = performance.now()): void {
    if (lsn === undefined) this.floorPendingSince = Math.max(this.floorPendingSince ?? 0, now);
    else if (lsn > this.floorLsn) this.floorLsn = lsn;
  }

  /** The LSN a replica must have replayed to answer a read of these users (none: shared data). */
  required(userIds?: readonly number[]): Lsn {
    let min = this.floor;
    if (userIds && min !== UNKNOWN_LSN) {
      for (const id of userIds) {
        if (this.pendingUsers.has(id)) return UNKNOWN_LSN;
        const lsn = this.users.get(id);
        if (lsn !== undefined && lsn > min) min = lsn;
      }
    }
    return min;
  }

  /**
   * After a probe: `primary.lsn` is the primary's WAL insert position read by a statement that started at
   * `startedAt` — at least the end of every commit before then, so it settles what was pending since earlier.
   * `replayedByAll` is a position every replica has replayed: it becomes the floor (no replica below it is
   * used again, not even one that restarts from an older position), and user entries at or below the floor
   * are dropped.
   */
  settle(replayedByAll: Lsn, primary?: { lsn: Lsn; startedAt: number }): void {
    if (primary) {
      for (const [id, since] of this.pendingUsers) {
        if (since >= primary.startedAt) continue;
        this.pendingUsers.delete(id);
        if (primary.lsn > (this.users.get(id) ?? 0n)) this.users.set(id, primary.lsn);
      }
      if (this.floorPendingSince !== undefined && this.floorPendingSince < primary.startedAt) {
        this.floorPendingSince = undefined;
        this.noteAll(primary.lsn);
      }
    }
    this.noteAll(replayedByAll);
    // Oldest writes first: stop at the first one above the floor or pending (one left behind is only
    // conservative), so a probe costs what it prunes, not the size of the map.
    for (const [id, lsn] of this.users) {
      if (lsn > this.floorLsn || this.pendingUsers.has(id)) break;
      this.users.delete(id);
    }
  }
}
