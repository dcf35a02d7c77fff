/**
 * The model call as the service makes it: the simulated remote-model wait holds no scoring thread, and
 * the placement rule puts each task inline or on the pool from measured costs and load.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { catalogSnapshot } from '../../src/domain/catalog-columns.js';
import type { ModelError as ModelErrorClass } from '../../src/domain/errors.js';
import type { ScoringTask } from '../../src/domain/types.js';
import { scoringTask } from '../../src/recommenders/heuristic.js';
import { rankTask } from '../../src/recommenders/ranking.js';
import type * as PlacementModule from '../../src/scoring-worker/placement.js';
import type { ScoringPool, createScoringPool as CreateScoringPool } from '../../src/scoring-worker/pool.js';
import type { createScorer as CreateScorer } from '../../src/scoring-worker/scorer.js';

// Real threads load compiled JS: the pool (and ModelError, for instanceof) come from dist/.
let createScoringPool: typeof CreateScoringPool;
let createScorer: typeof CreateScorer;
let Placement: typeof PlacementModule.Placement;
let calibrate: typeof PlacementModule.calibrate;
let ModelError: typeof ModelErrorClass;
beforeAll(async () => {
  const dist = '../../dist';
  ({ createScoringPool } = await import(`${dist}/scoring-worker/pool.js`));
  ({ createScorer } = await import(`${dist}/scoring-worker/scorer.js`));
  ({ Placement, calibrate } = await import(`${dist}/scoring-worker/placement.js`));
  ({ ModelError } = await import(`${dist}/domain/errors.js`));
});

const NOW = Date.UTC(2025, 0, 1);
function catalogOf(n: number) {
  return catalogSnapshot(
    Array.from({ length: n }, (_, i) => ({ id: i + 1, title: `T${i + 1}`, genre: `g${i % 5}`, popularity: (n - i) / n, createdAtMs: NOW - i * 3_600_000 })),
  );
}
const small = catalogOf(200);
const large = catalogOf(50_000);
const taskOn = (catalog = small, pool = 100): ScoringTask =>
  scoringTask({ userId: 1, catalog, recent: [1, 2], watched: [1, 2], dismissed: [], audience: { tier: 0, country: null } }, { pool, keep: 50, nowMs: NOW, noise: false });
const idlePool: Pick<ScoringPool, 'queued'> = { queued: () => 0 };

/**
 * A running request count that grows at `perSecond` of the clock, not per timer tick: the rate a Placement
 * measures from it is exact however late this loop's timers fire on a loaded machine.
 */
function servedByClock() {
  let base = 0;
  let since = performance.now();
  let perSecond = 0;
  const count = () => base + ((performance.now() - since) * perSecond) / 1000;
  return {
    count,
    rate(next: number) {
      base = count();
      since = performance.now();
      perSecond = next;
    },
  };
}

/**
 * The measured rate is the served one: within 5 %, the room for the loop being preempted between the
 * sampler's two clock reads (its count, then the time), which a loaded machine may do for a few ms.
 */
function expectRate(placement: PlacementModule.Placement, perSecond: number): void {
  expect(placement.requestsPerSecond).toBeGreaterThan(perSecond * 0.95);
  expect(placement.requestsPerSecond).toBeLessThan(perSecond * 1.05);
}

/** Until the placement has taken `n` more loop samples (the first may straddle what came before). */
async function sampled(placement: PlacementModule.Placement, n: number): Promise<void> {
  const from = placement.samples;
  while (placement.samples < from + n) await new Promise((resolve) => setTimeout(resolve, 5));
}

describe('the simulated remote-model wait', () => {
  let pool: ScoringPool;
  beforeAll(() => {
    pool = createScoringPool({ threads: 1, maxQueue: 1000 });
  });
  afterAll(() => pool.close());

  it('holds no scoring thread: hundreds of calls wait at once, none of them on the pool', async () => {
    const placement = new Placement('pool', pool, { nsPerCandidate: 1, handoffNs: 1, poolWaitNs: 0 });
    const score = createScorer({ latencyMinMs: 150, latencyMaxMs: 150, failureRate: 0 }, pool, placement);
    const calls = Array.from({ length: 400 }, () => score(taskOn()));
    await new Promise((r) => setTimeout(r, 50));
    // Every call is inside its model wait now; the pool has nothing: a wait takes no slot or queue place.
    expect(pool.stats()).toMatchObject({ inFlight: 0, queueSize: 0 });
    const results = await Promise.all(calls);
    // The scorer runs the ranking step every model goes through (the seed's formula here, with its reasons).
    const expected = rankTask(taskOn());
    for (const r of results) expect(r).toEqual(expected);
    placement.close();
  });

  it('fails with ModelError "failure" at the configured rate, before any scoring', async () => {
    const placement = new Placement('pool', pool, { nsPerCandidate: 1, handoffNs: 1, poolWaitNs: 0 });
    const score = createScorer({ latencyMinMs: 0, latencyMaxMs: 0, failureRate: 1 }, pool, placement);
    const completed = pool.stats().completed;
    const err = await score(taskOn()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelError);
    expect((err as ModelErrorClass).reason).toBe('failure');
    expect(pool.stats().completed).toBe(completed);
    placement.close();
  });
});

describe('a full scoring queue', () => {
  it('refuses the overflow with ModelError "rejected" (the breaker\'s overload, answered by the fallback)', async () => {
    const pool = createScoringPool({ threads: 1, maxQueue: 1 });
    const placement = new Placement('pool', pool, { nsPerCandidate: 1, handoffNs: 1, poolWaitNs: 0 });
    try {
      await pool.run(taskOn()); // the thread is up
      const score = createScorer({ latencyMinMs: 0, latencyMaxMs: 0, failureRate: 0 }, pool, placement);
      const settled = await Promise.allSettled(Array.from({ length: 20 }, () => score(taskOn(large, 0))));
      // One on the thread, one in the queue; the other 18 are refused at once.
      expect(settled.filter((s) => s.status === 'fulfilled')).toHaveLength(2);
      for (const s of settled.filter((x): x is PromiseRejectedResult => x.status === 'rejected')) {
        expect(s.reason).toBeInstanceOf(ModelError);
        expect((s.reason as ModelErrorClass).reason).toBe('rejected');
      }
    } finally {
      placement.close();
      await pool.close();
    }
  });
});

describe('placement (adaptive)', () => {
  it('scores a task inline when it costs less than the hand-off, on the pool when it costs more', () => {
    const placed = { inline: 0, pool: 0 };
    const counters = { inline: { inc: () => (placed.inline += 1) }, pool: { inc: () => (placed.pool += 1) } };
    // 10 ns per candidate, 50 µs per hand-off: up to 5,000 candidates inline.
    const placement = new Placement('adaptive', idlePool, { nsPerCandidate: 10, handoffNs: 50_000, poolWaitNs: 0 }, counters);
    expect(placement.inlineUpTo).toBe(5_000);
    expect(placement.choose(taskOn(small, 100))).toBe('inline');
    expect(placement.choose(taskOn(large, 4_000))).toBe('inline');
    expect(placement.choose(taskOn(large, 10_000))).toBe('pool');
    expect(placement.choose(taskOn(large, 0))).toBe('pool');
    expect(placed).toEqual({ inline: 2, pool: 2 });
    placement.close();
  });

  it('scores inline a task the busy threads would make wait', () => {
    const backlog = { queued: () => 3, threads: 1 };
    const placement = new Placement('adaptive', backlog, { nsPerCandidate: 10, handoffNs: 50_000, poolWaitNs: 0 });
    expect(placement.choose(taskOn(large, 10_000))).toBe('inline');
    // Two threads drain the same queue twice as fast: 3 × 100 µs / 2 still exceeds the task's 100 µs.
    const twoThreads = new Placement('adaptive', { queued: () => 3, threads: 2 }, { nsPerCandidate: 10, handoffNs: 50_000, poolWaitNs: 0 });
    expect(twoThreads.choose(taskOn(large, 10_000))).toBe('inline');
    placement.close();
    twoThreads.close();
  });

  it('scores inline a task the pool would delay more than scoring it here delays the loop\'s requests, sampling the pool now and then', () => {
    // 10k candidates at 60 ns: 0.6 ms inline, delaying the ~1.2 requests that arrive meanwhile at 2,000 a
    // second by 0.3 ms each (0.36 ms in all); an idle pool measured at 1 ms of wait (wake-ups, hand-off).
    const placement = new Placement('adaptive', idlePool, { nsPerCandidate: 60, handoffNs: 150_000, poolWaitNs: 1_000_000 });
    placement.requestsPerSecond = 2_000;
    const places = Array.from({ length: 256 }, () => placement.choose(taskOn(large, 10_000)));
    // One in 128 keeps the wait measured: fewer than the 1 % of tasks a p99 is made of.
    expect(places.filter((p) => p === 'pool')).toHaveLength(2);
    // The whole catalog (50k candidates: 3 ms) delays ~6 requests 1.5 ms each: worth the wait.
    expect(placement.choose(taskOn(large, 0))).toBe('pool');
    // Pool tasks that waited 0.1 ms bring the estimate down: the 10k task goes to the pool again.
    for (let i = 0; i < 200; i++) placement.timedPool(0.000_1);
    expect(placement.costs.poolWaitNs).toBeLessThan(200_000);
    expect(placement.choose(taskOn(large, 10_000))).toBe('pool');
    // A wait that overlapped inline scoring is not the pool's: 5 ms of wait with 4.9 ms of inline scoring
    // in it leaves the estimate where it was.
    const estimate = placement.costs.poolWaitNs;
    for (let i = 0; i < 200; i++) placement.timedPool(0.005, 0.004_9);
    expect(placement.costs.poolWaitNs).toBe(estimate);
    placement.close();
  });

  it('lets one outlying pool wait move the estimate a little, and a lasting rise all the way', () => {
    const placement = new Placement('adaptive', idlePool, { nsPerCandidate: 60, handoffNs: 150_000, poolWaitNs: 500_000 });
    placement.timedPool(2); // a reply held up once by a 2 s stall of this loop
    expect(placement.costs.poolWaitNs).toBeLessThan(700_000);
    for (let i = 0; i < 300; i++) placement.timedPool(0.01); // the pool really is 10 ms away now
    expect(placement.costs.poolWaitNs).toBeGreaterThan(9_500_000);
    placement.close();
  });

  it('lets a rare measurement (one task in 128 on the pool) weigh for the tasks placed since the last one', () => {
    // 10k candidates at 60 ns: 0.6 ms inline (0.36 ms of delay to 2,000 requests a second); an estimate
    // of 2 ms (raised during a stall) keeps them inline.
    const placement = new Placement('adaptive', idlePool, { nsPerCandidate: 60, handoffNs: 150_000, poolWaitNs: 2_000_000 });
    placement.requestsPerSecond = 2_000;
    const places = Array.from({ length: 128 }, () => placement.choose(taskOn(large, 10_000)));
    expect(places.filter((p) => p === 'pool')).toHaveLength(1);
    placement.timedPool(0.000_1); // the sampled task: the pool is 0.1 ms away again
    // One measurement for 128 decisions moves the estimate nearly all the way (1 - 0.95^128 ≈ 0.999), not 5 %.
    expect(placement.costs.poolWaitNs).toBeLessThan(200_000);
    // The jump itself is a deviation (the tail is uncertain): the task stays inline until the next sample
    // settles it, and then goes to the pool again.
    expect(placement.choose(taskOn(large, 10_000))).toBe('inline');
    for (let i = 0; i < 127; i++) placement.choose(taskOn(large, 10_000));
    placement.timedPool(0.000_1);
    expect(placement.choose(taskOn(large, 10_000))).toBe('pool');
    placement.close();
  });

  it("weighs the pool's tail: the same mean wait with a long tail keeps a task inline", () => {
    // 10k candidates at 60 ns: 0.6 ms inline, 0.54 ms of delay to 3,000 requests a second; the pool's
    // mean wait 0.4 ms.
    const steady = new Placement('adaptive', idlePool, { nsPerCandidate: 60, handoffNs: 150_000, poolWaitNs: 400_000, poolWaitDevNs: 0 });
    steady.requestsPerSecond = 3_000;
    expect(steady.choose(taskOn(large, 10_000))).toBe('pool');
    // Waits of 0.4 ms on average but ±0.2 ms (mean deviation): 0.4 + 2 × 0.2 = 0.8 ms expected, over 0.54.
    const tailed = new Placement('adaptive', idlePool, { nsPerCandidate: 60, handoffNs: 150_000, poolWaitNs: 400_000, poolWaitDevNs: 200_000 });
    tailed.requestsPerSecond = 3_000;
    expect(tailed.choose(taskOn(large, 10_000))).toBe('inline');
    // The whole catalog (3 ms inline) is still worth it.
    expect(tailed.choose(taskOn(large, 0))).toBe('pool');
    steady.close();
    tailed.close();
  });

  it('weighs a thread slower than this loop: what scoring takes longer there counts as wait', () => {
    // The whole catalog (50k candidates) at 60 ns: 3 ms inline, delaying 500 requests a second by 2.25 ms
    // in all; the pool 0.5 ms away.
    const placement = new Placement('adaptive', idlePool, { nsPerCandidate: 60, handoffNs: 150_000, poolWaitNs: 500_000, poolWaitDevNs: 0 });
    placement.requestsPerSecond = 500;
    expect(placement.choose(taskOn(large, 0))).toBe('pool');
    // Pool tasks report 150 ns per candidate on the thread (preempted by event loops on shared cores):
    // 7.5 ms there against 3 ms here, 4.5 ms more than inline on top of the wait, more than the delay.
    for (let i = 0; i < 100; i++) placement.timedPool(0.000_5, 0, { candidates: 50_000, seconds: 0.007_5 });
    expect(placement.costs.threadNsPerCandidate).toBeGreaterThan(140);
    expect(placement.choose(taskOn(large, 0))).toBe('inline');
    // Measurements that overlapped inline scoring on this loop (whose CPU the thread competed with) are
    // dropped; a thread that runs as fast as the loop again brings the task back to the pool.
    const slow = placement.costs.threadNsPerCandidate;
    for (let i = 0; i < 100; i++) placement.timedPool(0.000_5, 0.002, { candidates: 50_000, seconds: 0.003 });
    expect(placement.costs.threadNsPerCandidate).toBe(slow);
    for (let i = 0; i < 100; i++) placement.timedPool(0.000_5, 0, { candidates: 50_000, seconds: 0.003 });
    expect(placement.choose(taskOn(large, 0))).toBe('pool');
    placement.close();
  });

  it("weighs the thread's tail: the same mean time on the thread with a long tail keeps a task inline", () => {
    // The whole catalog (50k candidates) at 60 ns: 3 ms inline, delaying 500 requests a second by 2.25 ms
    // in all; the pool 0.5 ms away.
    const costs = () => ({ nsPerCandidate: 60, handoffNs: 150_000, poolWaitNs: 500_000, poolWaitDevNs: 0 });
    const steady = new Placement('adaptive', idlePool, costs());
    const tailed = new Placement('adaptive', idlePool, costs());
    steady.requestsPerSecond = tailed.requestsPerSecond = 500;
    // Both threads take 3 ms per task on average, as long as inline; one every time, the other 1 or 5 ms
    // (preempted now and then): 3 + 2 × 2 ms expected, 4 ms more than inline on top of the wait, more
    // than the 2.25 ms of delay scoring here would cost.
    for (let i = 0; i < 200; i++) {
      steady.timedPool(0.000_5, 0, { candidates: 50_000, seconds: 0.003 });
      tailed.timedPool(0.000_5, 0, { candidates: 50_000, seconds: i % 2 === 0 ? 0.001 : 0.005 });
    }
    expect(tailed.threadNsPerCandidate).toBeCloseTo(steady.threadNsPerCandidate, -1);
    expect(tailed.costs.threadDevNsPerCandidate).toBeGreaterThan(30);
    expect(steady.choose(taskOn(large, 0))).toBe('pool');
    expect(tailed.choose(taskOn(large, 0))).toBe('inline');
    steady.close();
    tailed.close();
  });

  it('weighs the requests an inline task would delay: a loop serving many sends the same task to the pool', async () => {
    // The whole catalog (50k candidates) at 60 ns: 3 ms inline. The pool: 1 ms away ±1 ms, and its threads
    // 40 % slower than this loop: 1 + 2 + 1.2 = 4.2 ms more than scoring here, where, serving nothing
    // else, the task delays no one.
    const served = servedByClock();
    const costs = { nsPerCandidate: 60, handoffNs: 150_000, poolWaitNs: 1_000_000, poolWaitDevNs: 1_000_000, threadNsPerCandidate: 84 };
    const placement = new Placement('adaptive', idlePool, costs, undefined, served.count);
    expect(placement.choose(taskOn(large, 0))).toBe('inline');
    // 2,000 requests a second on this loop: scoring inline would hold ~6 of them 1.5 ms each on average.
    // The count follows the clock, so the rate measured is 2,000/s however late the sampling timer fires.
    served.rate(2_000);
    await sampled(placement, 2);
    expectRate(placement, 2_000);
    expect(placement.choose(taskOn(large, 0))).toBe('pool');
    // The 10k-candidate task (0.6 ms) delays them too little: it stays inline.
    expect(placement.choose(taskOn(large, 10_000))).toBe('inline');
    placement.close();
  });

  it('weighs those requests by how busy the loop is: a busy loop serving many hands off, one serving few keeps the task', async () => {
    // 10k candidates at 60 ns: 0.6 ms inline, against a pool 1 ms away (no tail, threads as fast as this
    // loop). At 2,000 requests a second an idle loop delays them 0.36 ms in all: inline. Busy 80 % of the
    // time, the same work holds them five times as long (1.8 ms): the pool. A loop as busy serving 50 a
    // second delays them little (0.05 ms): inline, busy or not.
    const served = servedByClock();
    const costs = { nsPerCandidate: 60, handoffNs: 150_000, poolWaitNs: 1_000_000, poolWaitDevNs: 0, threadNsPerCandidate: 60 };
    const placement = new Placement('adaptive', idlePool, costs, undefined, served.count);
    // The request rate follows the clock (exact whatever the scheduling). The loop's busy share is real
    // (event-loop utilization): the busy phase spins 40 ms of every ~42, so a loaded machine that stretches
    // the 2 ms gaps still leaves it far over the ~64 % at which this task goes to the pool; the last phase
    // spins 8 ms of every ~10, and a loaded machine only makes it idler (more inline still).
    const phase = async (perSecond: number, spinMs: number, gapMs: number): Promise<void> => {
      served.rate(perSecond);
      const from = placement.samples;
      let spinning = true;
      const spin = (async () => {
        while (spinning) {
          const until = performance.now() + spinMs;
          while (performance.now() < until); // this loop busy spinMs, then idle gapMs
          await new Promise((resolve) => setTimeout(resolve, gapMs));
        }
      })();
      // Two whole samples inside the phase: the first may straddle the phase before.
      while (placement.samples < from + 2) await new Promise((resolve) => setTimeout(resolve, 5));
      spinning = false;
      await spin;
    };
    await phase(2_000, 0, 10);
    expectRate(placement, 2_000);
    expect(placement.choose(taskOn(large, 10_000))).toBe('inline');
    await phase(2_000, 40, 2);
    expectRate(placement, 2_000);
    expect(placement.choose(taskOn(large, 10_000))).toBe('pool');
    await phase(50, 8, 2);
    expect(placement.choose(taskOn(large, 10_000))).toBe('inline');
    placement.close();
  });

  describe("a pool task's measured wait", () => {
    let pool: ScoringPool;
    let placement: PlacementModule.Placement;
    let score: ReturnType<typeof CreateScorer>;
    const waits: number[] = [];
    const runs: number[] = [];
    beforeAll(async () => {
      pool = createScoringPool({ threads: 1, maxQueue: 100, onTimings: (wait, run) => void (waits.push(wait), runs.push(run)) });
      // Free hand-offs, dear inline scoring (50 s a task, which would hold up the loop's ten requests a
      // second for hours): every whole-catalog task goes to the pool.
      placement = new Placement('adaptive', pool, { nsPerCandidate: 1e6, handoffNs: 0, poolWaitNs: 0 }, undefined, () => performance.now() / 100);
      await new Promise((resolve) => setTimeout(resolve, 300)); // the request rate sampled once
      score = createScorer({ latencyMinMs: 0, latencyMaxMs: 0, failureRate: 0 }, pool, placement);
      for (let i = 0; i < 10; i++) await score(taskOn(large, 0)); // the thread is up and its scoring compiled
    });
    afterAll(async () => {
      placement.close();
      await pool.close();
    });

    it("counts the time the reply waited for this loop's other work (an inline task would not have)", async () => {
      placement.costs.poolWaitNs = 0;
      waits.length = 0;
      runs.length = 0;
      const done = score(taskOn(large, 0));
      const until = performance.now() + 50;
      while (performance.now() < until); // 50 ms of other work on this loop (serving hits, say)
      await done;
      // The reply waited for the loop: all of the 50 ms not spent scoring on the thread is wait.
      expect(waits[0]! + runs[0]!).toBeGreaterThanOrEqual(0.049);
      expect(waits[0]).toBeGreaterThan(0.02);
      expect(placement.costs.poolWaitNs).toBeCloseTo(0.05 * waits[0]! * 1e9, -3); // one EWMA step, all of it
      // The thread's run time reached the rule too: well under the 1 ms per candidate it started from.
      expect(placement.costs.threadNsPerCandidate).toBeLessThan(0.9e6);
    });

    it('drops the wait of a task during which this loop scored inline (the rule\'s own doing)', async () => {
      placement.costs.poolWaitNs = 0;
      waits.length = 0;
      runs.length = 0;
      const inlineBefore = placement.inlineSeconds;
      const done = score(taskOn(large, 0));
      // Scoring cheaper than a hand-off runs inline (rule 1): ten whole-catalog tasks while the first is out.
      placement.costs.handoffNs = 1e12;
      for (let i = 0; i < 10; i++) await score(taskOn(large, 0));
      placement.costs.handoffNs = 0;
      await done;
      const inline = placement.inlineSeconds - inlineBefore;
      expect(inline).toBeGreaterThan(0.005);
      expect(waits[0]! + runs[0]!).toBeGreaterThanOrEqual(inline * 0.9); // its reply came after them
      expect(placement.costs.poolWaitNs).toBe(0);
    });
  });

  it('obeys a fixed mode whatever the costs', () => {
    const pool = new Placement('pool', idlePool, { nsPerCandidate: 10, handoffNs: 1e9, poolWaitNs: 0 });
    const inline = new Placement('inline', idlePool, { nsPerCandidate: 1e6, handoffNs: 1, poolWaitNs: 0 });
    expect(pool.choose(taskOn())).toBe('pool');
    expect(inline.choose(taskOn(large, 0))).toBe('inline');
  });

  it('refines the per-candidate cost from timed inline tasks', () => {
    const placement = new Placement('adaptive', idlePool, { nsPerCandidate: 10, handoffNs: 50_000, poolWaitNs: 0 });
    for (let i = 0; i < 200; i++) placement.timedInline(10_000, 1); // 100 ns per candidate measured
    expect(placement.costs.nsPerCandidate).toBeGreaterThan(90);
    expect(placement.inlineUpTo).toBeLessThan(600);
  });

  it('measures both costs on this machine with a real pool', async () => {
    const pool = createScoringPool({ threads: 1, maxQueue: 100 });
    try {
      const costs = await calibrate(pool, taskOn(large, 0));
      expect(costs.nsPerCandidate).toBeGreaterThan(0);
      expect(costs.handoffNs).toBeGreaterThan(0);
      expect(costs.poolWaitNs).toBeGreaterThan(0);
      expect(Number.isFinite(costs.nsPerCandidate) && Number.isFinite(costs.handoffNs) && Number.isFinite(costs.poolWaitNs)).toBe(true);
    } finally {
      await pool.close();
    }
  });
});
