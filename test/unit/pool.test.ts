import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelError as ModelErrorClass } from '../../src/domain/errors.js';
import type { Candidate, ScoringTask } from '../../src/domain/types.js';
import { scoreCandidates } from '../../src/scoring-worker/model.js';
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

function task(overrides: Partial<ScoringTask> = {}): ScoringTask {
  return {
    signals: { userId: 1, recentGenres: ['action', 'action', 'drama'], candidates },
    keep: 50,
    nowMs: NOW,
    noise: false,
    latencyMinMs: 0,
    latencyMaxMs: 0,
    failureRate: 0,
    ...overrides,
  };
}

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
    pool = createScoringPool({ threads: 2, maxQueue: 100, concurrentTasksPerThread: 4 });
  });
  afterAll(() => pool.close());

  it('returns exactly what scoreCandidates computes', async () => {
    const t = task();
    const expected = scoreCandidates(t.signals, { keep: t.keep, nowMs: t.nowMs, noise: false });
    expect(expected).toHaveLength(50);
    expect(await pool.run(t)).toEqual(expected);
  });

  it('runs many tasks concurrently with simulated latency', async () => {
    const t = task({ latencyMinMs: 5, latencyMaxMs: 15, keep: 10 });
    const expected = scoreCandidates(t.signals, { keep: 10, nowMs: NOW, noise: false });
    const results = await Promise.all(Array.from({ length: 20 }, () => pool.run(t)));
    for (const r of results) expect(r).toEqual(expected);
    expect(pool.stats().completed).toBeGreaterThanOrEqual(21);
  });

  it('turns a model failure into ModelError "failure"', async () => {
    const err = await pool.run(task({ failureRate: 1 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelError);
    expect((err as ModelErrorClass).reason).toBe('failure');
    expect((err as ModelErrorClass).message).toContain('model inference failed');
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
    const pool = createScoringPool({ threads: 1, maxQueue: 2, concurrentTasksPerThread: 1 });
    try {
      await pool.run(task()); // the thread is up and idle
      const slow = task({ latencyMinMs: 200, latencyMaxMs: 200, keep: 5 });
      const settled = await Promise.allSettled(Array.from({ length: 12 }, () => pool.run(slow)));
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

  it('interleaves concurrentTasksPerThread tasks on one thread while their latency is awaited', async () => {
    // No queue at all: only the thread's own slots accept work, so the count shows how many it interleaves.
    const pool = createScoringPool({ threads: 1, maxQueue: 0, concurrentTasksPerThread: 4 });
    try {
      await pool.run(task());
      const slow = task({ latencyMinMs: 100, latencyMaxMs: 100, keep: 5 });
      const settled = await Promise.allSettled(Array.from({ length: 6 }, () => pool.run(slow)));
      expect(settled.map((s) => s.status)).toEqual([...Array(4).fill('fulfilled'), 'rejected', 'rejected']);
      expect(pool.stats().completed).toBe(5);
    } finally {
      await pool.close();
    }
  });

  it('close() finishes in-flight work, then refuses new tasks with "rejected"', async () => {
    const pool = createScoringPool({ threads: 1, maxQueue: 10, concurrentTasksPerThread: 2 });
    const inFlight = pool.run(task({ latencyMinMs: 50, latencyMaxMs: 50, keep: 3 }));
    await new Promise((r) => setTimeout(r, 10));
    await pool.close();
    expect(await inFlight).toHaveLength(3);
    expect(await reasonOf(pool.run(task()))).toBe('rejected');
  });
});

describe('scoring pool timings and stats', () => {
  it('reports wait and run time of every completed task, and tasks in flight against capacity', async () => {
    const timings: [number, number][] = [];
    const pool = createScoringPool({
      threads: 1,
      maxQueue: 10,
      concurrentTasksPerThread: 2,
      onTimings: (wait, run) => timings.push([wait, run]),
    });
    try {
      await pool.run(task()); // the thread is up
      timings.length = 0;
      const slow = task({ latencyMinMs: 60, latencyMaxMs: 60, keep: 3 });
      const running = Array.from({ length: 3 }, () => pool.run(slow));
      // Two interleave on the thread, the third waits in the queue for a slot.
      expect(pool.stats()).toMatchObject({ inFlight: 3, capacity: 2 });
      await Promise.all(running);
      expect(pool.stats()).toMatchObject({ inFlight: 0, capacity: 2, queueSize: 0 });
      await pool.run(task({ failureRate: 1 })).catch(() => undefined); // a failed task has no timings
      expect(timings).toHaveLength(3);
      for (const [wait, run] of timings) {
        expect(wait).toBeGreaterThanOrEqual(0);
        expect(run).toBeGreaterThanOrEqual(0.055); // the simulated latency runs on the thread
      }
      // The queued task waited for a slot at least as long as a task runs.
      expect(Math.max(...timings.map(([wait]) => wait))).toBeGreaterThanOrEqual(0.055);
    } finally {
      await pool.close();
    }
  });
});
