/**
 * The co-watch similarity job: reads every user's recent watch events from PostgreSQL, computes each
 * title's similar titles (similarity.ts) and replaces content_similarity in one transaction, so readers see
 * the old lists until the new ones are all there (DELETE + COPY: MVCC, no lock a reader waits on).
 *
 * It skips when the stored lists are fresh (computed by any instance less than `freshForS` ago, or from
 * history read after `freshSince`). One computation at a time across instances is the scheduler's
 * (cluster/scheduler.ts: the job engine runs one refresh at a time).
 *
 * startSimilarityThread runs it on a worker thread at the lowest CPU priority (similarity-thread.ts):
 * parsing ~19M recent events (1M users) and the co-counts are ~25 s of CPU that must not sit on an event
 * loop (docs/architecture.md "Similar titles").
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { HISTORY_WINDOW } from '../domain/constants.js';
import type { Sql } from './db.js';
import { coWatchSimilarity, type SimilarLists, type SimilarityOptions, type WatchLists } from '../recommenders/co-watch.js';

/**
 * Each user's HISTORY_WINDOW most recent content ids (the request path's order: watched_at, then id),
 * newest first, one row per user in user order. One array per user rather than one row per event: 20M rows
 * cost more to produce and to receive than the data itself.
 */
export const RECENT_EVENTS_SQL = `
SELECT user_id, (array_agg(content_id ORDER BY watched_at DESC, id DESC))[1:${HISTORY_WINDOW}]
FROM user_watch_history
GROUP BY user_id
ORDER BY user_id`;

export interface SimilarityJobOptions {
  /** Skip when the stored lists were computed less than this many seconds ago (0 = always compute). */
  freshForS?: number;
  /** Skip when the stored lists describe history read after this instant (a run asked for then is served). */
  freshSince?: Date;
  /** The algorithm's bounds (defaults: similarity.ts). */
  similarity?: SimilarityOptions;
}

export interface SimilarityJobStats {
  /** Rows written: titles with at least one similar title. */
  titles: number;
  /** Similar titles written over all rows. */
  pairs: number;
  /** Events read: each user's most recent, at most HISTORY_WINDOW per user. */
  events: number;
  users: number;
  /** Co-count increments (the cost the bounds cap). */
  work: number;
  /** When the history was read (the snapshot the lists describe): every row's computed_at. */
  computedAt: string;
  readMs: number;
  computeMs: number;
  writeMs: number;
  ms: number;
  /** CPU of the whole process (user + system) over the job; in a thread, the job is most of it. */
  cpuMs: number;
  /** The process's peak resident set size so far (getrusage maxRSS): an upper bound for the job's. */
  peakRssBytes: number;
  /** The job's largest V8 heap + array buffers, sampled after each phase. */
  peakHeapBytes: number;
}

export type SimilarityOutcome = { ran: true; stats: SimilarityJobStats } | { ran: false; reason: 'fresh' };

/** Runs the job on one reserved connection of `sql`. */
export async function runSimilarityJob(sql: Sql, opts: SimilarityJobOptions = {}): Promise<SimilarityOutcome> {
  const conn = await sql.reserve();
  try {
    if (await isFresh(conn, opts)) return { ran: false, reason: 'fresh' };
    return { ran: true, stats: await compute(conn, opts.similarity) };
  } finally {
    conn.release();
  }
}

/** Every row of a run carries the run's computed_at, so one row tells the age of all. */
async function isFresh(conn: Sql, opts: SimilarityJobOptions): Promise<boolean> {
  if (!opts.freshForS && !opts.freshSince) return false;
  const [row] = await conn<{ fresh: boolean }[]>`
    SELECT computed_at > now() - make_interval(secs => ${opts.freshForS ?? 0}) AND ${opts.freshForS ?? 0}::float8 > 0
           OR computed_at > ${opts.freshSince ?? null}::timestamptz AS fresh
    FROM content_similarity LIMIT 1`;
  return row?.fresh === true;
}

async function compute(conn: Sql, similarity: SimilarityOptions | undefined): Promise<SimilarityJobStats> {
  const started = performance.now();
  const cpu = process.cpuUsage();
  let peakHeapBytes = 0;
  const sample = (): void => {
    const m = process.memoryUsage();
    peakHeapBytes = Math.max(peakHeapBytes, m.heapUsed + m.arrayBuffers);
  };

  const { lists, events, computedAt } = await readRecentEvents(conn);
  const users = lists.userIds.length;
  const read = performance.now();
  sample();
  const result = coWatchSimilarity(lists, similarity);
  const computed = performance.now();
  sample();
  await replaceLists(conn, lists.titleIds, result, computedAt);
  sample();
  const done = performance.now();
  const used = process.cpuUsage(cpu);
  return {
    titles: result.titles.length,
    pairs: result.similar.length,
    events,
    users,
    work: result.work,
    computedAt,
    readMs: Math.round(read - started),
    computeMs: Math.round(computed - read),
    writeMs: Math.round(done - computed),
    ms: Math.round(done - started),
    cpuMs: Math.round((used.user + used.system) / 1000),
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
    peakHeapBytes,
  };
}

/** A typed array that doubles when full (the event count is known only at the end of the stream). */
class Growable<A extends Int32Array | Float64Array> {
  length = 0;
  constructor(
    public array: A,
    private readonly make: (n: number) => A,
  ) {}
  push(v: number): void {
    if (this.length === this.array.length) {
      const bigger = this.make(Math.max(1024, this.array.length * 2));
      bigger.set(this.array);
      this.array = bigger;
    }
    this.array[this.length++] = v;
  }
  /** The filled part, without a copy. */
  view(): A {
    return this.array.subarray(0, this.length) as A;
  }
}

const COMMA = 44;
const OPEN = 123; // {
const CLOSE = 125; // }
const ZERO = 48;
const NINE = 57;

/**
 * The recent events in one READ ONLY REPEATABLE READ transaction (its start is the lists' computed_at),
 * parsed straight from each row's text bytes (`user_id`, `{content_id,…}`) into CSR arrays as rows arrive.
 *
 * Rows, not `COPY … TO STDOUT`: postgres.js 3.4 pauses its socket when a COPY chunk fills the readable's
 * buffer and resumes it only on the next read, so a COPY whose last chunks arrive with its end leaves the
 * connection paused and the next statement never answers (seen here at scale; porsager/postgres#1016).
 * `.raw().forEach()` hands over each row's bytes synchronously, without buffering or parsing them.
 */
async function readRecentEvents(conn: Sql): Promise<{ lists: WatchLists; events: number; computedAt: string }> {
  await conn`BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`;
  try {
    await conn`SET LOCAL statement_timeout = 0`;
    const [clock] = await conn<{ at: string; estimate: number }[]>`
      SELECT now()::text AS at, greatest(reltuples, 0)::float8 AS estimate
      FROM pg_class WHERE oid = 'user_watch_history'::regclass`;
    // The planner's row estimate sizes the largest array once instead of doubling it into place.
    const estimate = Math.min(Math.ceil((clock?.estimate ?? 0) * 1.05), 2 ** 31 - 1);
    const userTitles = new Growable(new Int32Array(estimate), (n) => new Int32Array(n));
    const userIds = new Growable(new Float64Array(0), (n) => new Float64Array(n));
    const userStart = new Growable(new Int32Array(0), (n) => new Int32Array(n));
    const titleIds = new Growable(new Float64Array(0), (n) => new Float64Array(n));
    const titleIndex = new Map<number, number>();

    await conn.unsafe(RECENT_EVENTS_SQL).raw().forEach((row) => {
      const [user, titles] = row as unknown as [Buffer, Buffer];
      userStart.push(userTitles.length);
      userIds.push(Number(user.toString('latin1')));
      let value = 0;
      let digits = 0;
      for (let p = 0; p < titles.length; p++) {
        const b = titles[p]!;
        if (b >= ZERO && b <= NINE) {
          value = value * 10 + (b - ZERO);
          digits += 1;
          continue;
        }
        if (b !== COMMA && b !== OPEN && b !== CLOSE) throw new Error(`similarity: unexpected byte ${b} in a content id array`);
        if (digits > 0) {
          let t = titleIndex.get(value);
          if (t === undefined) {
            t = titleIds.length;
            titleIndex.set(value, t);
            titleIds.push(value);
          }
          userTitles.push(t);
        }
        value = 0;
        digits = 0;
      }
    });
    userStart.push(userTitles.length);
    await conn`COMMIT`;
    return {
      lists: { titleIds: titleIds.view(), userIds: userIds.view(), userStart: userStart.view(), userTitles: userTitles.view() },
      events: userTitles.length,
      computedAt: clock!.at,
    };
  } catch (err) {
    await conn`ROLLBACK`.catch(() => {});
    throw err;
  }
}

/** Rows per COPY chunk: ~1 MB of text at 50 similar titles a row. */
const ROWS_PER_CHUNK = 2_000;

/** DELETE + COPY in one transaction: readers see the previous lists until COMMIT, and never wait. */
async function replaceLists(conn: Sql, titleIds: Float64Array, result: SimilarLists, computedAt: string): Promise<void> {
  function* rows(): Generator<string> {
    let text = '';
    for (let r = 0; r < result.titles.length; r++) {
      const ids: number[] = [];
      const scores: number[] = [];
      for (let p = result.start[r]!; p < result.start[r + 1]!; p++) {
        ids.push(titleIds[result.similar[p]!]!);
        scores.push(result.milli[p]! / 1000);
      }
      text += `${titleIds[result.titles[r]!]!}\t{${ids.join(',')}}\t{${scores.join(',')}}\t${computedAt}\n`;
      if ((r + 1) % ROWS_PER_CHUNK === 0) {
        yield text;
        text = '';
      }
    }
    if (text) yield text;
  }
  await conn`BEGIN`;
  try {
    await conn`SET LOCAL statement_timeout = 0`;
    await conn`DELETE FROM content_similarity`;
    const sink = await conn`COPY content_similarity (content_id, similar_ids, scores, computed_at) FROM STDIN`.writable();
    await pipeline(Readable.from(rows()), sink);
    await conn`COMMIT`;
  } catch (err) {
    await conn`ROLLBACK`.catch(() => {});
    throw err;
  }
}

/** A job on its own thread; `terminate()` abandons it (its connection closes: PostgreSQL rolls back). */
export interface SimilarityThread {
  result: Promise<SimilarityOutcome>;
  terminate(): Promise<void>;
}

/** What the thread is started with (workerData) and answers (one message). */
export interface SimilarityThreadInput {
  databaseUrl: string;
  options: SimilarityJobOptions;
  /** OS niceness the thread sets for itself (0-19). */
  nice: number;
}
export type SimilarityThreadReply = { ok: true; outcome: SimilarityOutcome } | { ok: false; message: string; code?: string };

export function startSimilarityThread(databaseUrl: string, options: SimilarityJobOptions = {}, nice = 19): SimilarityThread {
  const workerData: SimilarityThreadInput = { databaseUrl, options, nice };
  // Resolved next to this file: the thread loads compiled JS from dist/.
  const worker = new Worker(fileURLToPath(new URL('./similarity-thread.js', import.meta.url)), { workerData });
  let terminated = false;
  const result = new Promise<SimilarityOutcome>((resolve, reject) => {
    let reply: SimilarityThreadReply | undefined;
    worker.once('message', (m: SimilarityThreadReply) => (reply = m));
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (reply?.ok) resolve(reply.outcome);
      else if (reply) reject(Object.assign(new Error(reply.message), { code: reply.code }));
      else if (terminated) reject(Object.assign(new Error('similarity job terminated'), { code: 'ABORTED' }));
      else reject(new Error(`similarity thread exited with code ${code} before answering`));
    });
  });
  return {
    result,
    terminate: async () => {
      terminated = true;
      await worker.terminate();
    },
  };
}
