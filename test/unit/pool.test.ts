import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelError as ModelErrorClass } from '../../src/domain/errors.js';
import { catalogSnapshot } from '../../src/domain/catalog-columns.js';
import type { Candidate, ScoringTask } from '../../src/domain/types.js';
import { rankCatalog, scoringTask } from '../../src/recommenders/heuristic.js';
import type { ScoringPool, createScoringPool as CreateScoringPool } from '../../src/scoring-worker/pool.js';

// The pool starts real threads from compiled JS, so it is loaded from dist/ (npm test builds first) —
// and so is ModelError: instanceof needs the class the compiled pool throws.
let createScoringPool: typeof CreateScoringPool;
let ModelError: typeof ModelErrorClass;
beforeAll(async () => {
  const dist = '../../dist';
  ({ createScoringPool } = (await import(`${dist}/scoring-worker/pool.js`)) as { createScoringPool: typeof CreateScoringPool });
  ({ ModelError } = (await import(`${dist}/domain/errors.js`)) as { ModelError: typeof ModelErrorClass });
});

const NOW = Date.UTC(2025, 0, 1);
const candidates: Candidate[] = Array.from({ length: 200 }, (_, i) => ({
  id: i + 1,
  title: `Title ${i + 1}`,
  genre: ['action', 'drama', 'comedy'][i % 3]!,
  popularity: Math.round((1 - i / 200) * 1000) / 1000,
  createdAtMs: NOW - (i % 17) * 40 * 86_400_000,
}));
const catalog = catalogSnapshot(candidates);
/** A catalog large enough that scoring all of it keeps a thread busy for a while (milliseconds). */
const big = catalogSnapshot(
  Array.from({ length: 300_000 }, (_, i) => ({ id: i + 1, title: '', genre: `g${i % 7}`, popularity: (i % 1000) / 1000, createdAtMs: NOW - i * 1000 })),
);

function task(overrides: Partial<ScoringTask> = {}, on = catalog): ScoringTask {
  const user = { userId: 1, catalog: on, recent: [1, 2, 4], watched: [1, 2, 4], dismissed: [], audience: { tier: 0, country: null } };
  return { ...scoringTask(user, { pool: 0, keep: 50, nowMs: NOW, noise: false }), ...overrides };
}
const slow = (keep = 5) => task({ keep }, big);

async function reasonOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ModelError);
    return (err as ModelErrorClass).reason;
  }
  throw new Error('expected a rejection');
}

describe('scoring pool', () => {
  let pool: ScoringPool;
  beforeAll(() => {
    pool = createScoringPool({ threads: 2, maxQueue: 100 });
  });
  afterAll(() => pool.close());

  it('returns exactly what rankCatalog computes on this thread', async () => {
    const t = task();
    const expected = rankCatalog(t);
    expect(expected.positions).toHaveLength(50);
    expect(await pool.run(t)).toMatchObject(expected);
  });

  it('reads the catalog columns from shared memory: a task carries only the user', () => {
    const t = task();
    for (const column of [t.catalog.ids, t.catalog.popularity, t.catalog.createdAtMs, t.catalog.genre]) {
      expect(column.buffer).toBeInstanceOf(SharedArrayBuffer);
    }
    expect(t.watched.length + t.preference.length).toBeLessThan(10); // 3 watched positions, 3 genres
  });

  it('runs many tasks concurrently', async () => {
    const t = task({ keep: 10 });
    const expected = rankCatalog(t);
    const results = await Promise.all(Array.from({ length: 20 }, () => pool.run(t)));
    for (const r of results) expect(r).toMatchObject(expected);
    expect(pool.stats().completed).toBeGreaterThanOrEqual(21);
  });

  it('turns a task that throws into ModelError "failure"', async () => {
    const broken = { ...task(), catalog: null } as unknown as ScoringTask;
    expect(await reasonOf(pool.run(broken))).toBe('failure');
  });

  it('reports its threads', () => {
    const stats = pool.stats();
    expect(stats.threads).toBe(2);
    expect(stats.queueSize).toBeGreaterThanOrEqual(0);
    expect(stats.utilization).toBeGreaterThanOrEqual(0);
  });
});

describe('scoring pool backpressure', () => {
  it('rejects the overflow of a full queue with ModelError "rejected" and serves the rest', async () => {
    const pool = createScoringPool({ threads: 1, maxQueue: 2 });
    try {
      await pool.run(task()); // the thread is up and idle
      const settled = await Promise.allSettled(Array.from({ length: 12 }, () => pool.run(slow())));
      // One running + maxQueue (2) waiting are served, in order; everything else is refused at once.
      expect(settled.map((s) => s.status)).toEqual([...Array(3).fill('fulfilled'), ...Array(9).fill('rejected')]);
      const refused = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected');
      for (const r of refused) {
        expect(r.reason).toBeInstanceOf(ModelError);
        expect((r.reason as ModelErrorClass).reason).toBe('rejected');
      }
    } finally {
      await pool.close();
    }
  });

  it('runs one task per thread: CPU work does not interleave', async () => {
    // No queue at all: only an idle thread accepts work.
    const pool = createScoringPool({ threads: 1, maxQueue: 0 });
    try {
      await pool.run(task());
      const settled = await Promise.allSettled(Array.from({ length: 3 }, () => pool.run(slow())));
      expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'rejected']);
      expect(pool.stats().capacity).toBe(1);
    } finally {
      await pool.close();
    }
  });

  it('close() finishes in-flight work, then refuses new tasks with "rejected"', async () => {
    const pool = createScoringPool({ threads: 1, maxQueue: 10 });
    const inFlight = pool.run(slow(3));
    await new Promise((r) => setTimeout(r, 1));
    await pool.close();
    expect((await inFlight).positions).toHaveLength(3);
    expect(await reasonOf(pool.run(task()))).toBe('rejected');
  });
});

/** This process's threads: tid → [name, niceness] (Linux /proc; nice is field 19, counted past the comm's ')'). */
function threads(): Map<string, [string, number]> {
  const out = new Map<string, [string, number]>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(tid, [readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim(), Number(fields[16])]);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return out;
}

describe('scoring pool threads', () => {
  it.runIf(process.platform === 'linux')('run at the niceness they were given, named "scoring" for top -H and the bench', async () => {
    const before = threads();
    const pool = createScoringPool({ threads: 2, maxQueue: 10, niceIncrement: 3 });
    await Promise.all([pool.run(slow()), pool.run(slow())]);
    const added = [...threads()].filter(([tid]) => !before.has(tid)).map(([, t]) => t);
    expect(added.filter(([name]) => name === 'scoring')).toEqual([['scoring', 3], ['scoring', 3]]);
    expect(pool.stats().nice).toBe(3);
    await pool.close();
  });
});

describe('scoring pool timings and stats', () => {
  it('reports wait and run time of every completed task, and tasks in flight against capacity', async () => {
    const timings: [number, number][] = [];
    const pool = createScoringPool({ threads: 1, maxQueue: 10, onTimings: (wait, run) => timings.push([wait, run]) });
    try {
      await pool.run(task()); // the thread is up
      timings.length = 0;
      const running = Array.from({ length: 3 }, () => pool.run(slow(3)));
      // One runs on the thread, two wait in the queue.
      expect(pool.stats()).toMatchObject({ inFlight: 3, capacity: 1 });
      await Promise.all(running);
      expect(pool.stats()).toMatchObject({ inFlight: 0, capacity: 1, queueSize: 0 });
      await pool.run({ ...task(), catalog: null } as unknown as ScoringTask).catch(() => undefined); // a failed task has no timings
      expect(timings).toHaveLength(3);
      for (const [wait, run] of timings) {
        expect(wait).toBeGreaterThanOrEqual(0);
        expect(run).toBeGreaterThan(0);
      }
      // The last task waited for the two before it to run.
      const [first, second, third] = timings;
      expect(third![0]).toBeGreaterThanOrEqual(first![1] + second![1] - 0.001);
    } finally {
      await pool.close();
    }
  });

  it('resolves each task with its wait and run time, the wait including its reply waiting for this loop', async () => {
    const timings: number[][] = [];
    const pool = createScoringPool({ threads: 1, maxQueue: 10, onTimings: (wait, run) => timings.push([wait, run]) });
    try {
      await pool.run(task()); // the thread is up
      timings.length = 0;
      const done = pool.run(task());
      const until = performance.now() + 30;
      while (performance.now() < until); // this loop is busy for 30 ms while the thread answers
      const ranked = await done;
      expect(ranked.waitSeconds).toBeGreaterThanOrEqual(0.029); // the reply could only be taken afterwards
      expect(ranked.runSeconds).toBeGreaterThan(0);
      expect(timings).toEqual([[ranked.waitSeconds, ranked.runSeconds]]);
    } finally {
      await pool.close();
    }
  });
});
