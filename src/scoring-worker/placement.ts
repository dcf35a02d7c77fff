/**
 * Where a scoring task runs: on the HTTP worker's event loop (inline) or on a Piscina thread. A thread
 * hop costs the event loop a fixed amount (structured clone, postMessage, Piscina's bookkeeping, the
 * reply) and costs the task wall time outside its thread (the hand-off, waking an idle thread and then
 * this loop, any queue); scoring inline costs the event loop time per candidate. All three are measured on
 * this machine, not assumed: `calibrate` times them once at start-up, every inline task refines the
 * per-candidate cost and every pool task the wait.
 *
 * Rule (mode "adaptive"):
 * 1. a task cheaper to score than to hand off runs inline (the seed's 100 candidates: always);
 * 2. a task that would wait on the pool longer than scoring it here blocks the loop and delays the
 *    requests arriving meanwhile runs inline: the pool would add more latency to the task than it takes
 *    off the loop and its other requests. That delay grows with how busy the loop already is (below),
 *    so a busy loop hands off all but the tasks that delay little. The expected
 *    wait is the measured one (its mean plus WAIT_TAIL mean deviations), plus the queue ahead of it,
 *    plus what scoring it takes longer on a thread than here, tail included (the thread's mean time plus
 *    WAIT_TAIL mean deviations: the threads are preempted where the event loops and the threads
 *    outnumber the cores, first when niced, or where the host takes cycles). One task in
 *    POOL_SAMPLE_EVERY of those it keeps inline goes to the pool anyway, so the estimates follow the
 *    machine. The measured wait is a pool task's whole time outside its thread, its reply
 *    waiting for this loop included (an inline task waits for neither), from tasks during which this loop
 *    scored nothing inline: those waited for the rule's own doing, and counting them would feed back
 *    (inline tasks delay the pool's replies, which sends more tasks inline);
 * 3. otherwise the pool, whose own bound (SCORING_QUEUE_MAX) sheds the rest to the popularity fallback.
 */
import { performance } from 'node:perf_hooks';
import type { ScoringTask } from '../domain/types.js';
import { rankCatalog, taskSize } from '../recommenders/heuristic.js';
import type { ScoringPool } from './pool.js';

export type ScoringMode = 'adaptive' | 'pool' | 'inline';
export type Place = 'inline' | 'pool';

const LOOP_SAMPLE_MS = 250;
/** Weight of a new measurement in the per-candidate cost and the pool wait (exponential moving averages). */
const EWMA = 0.05;
/**
 * Rule 2 expects a pool task to wait the mean plus this many mean deviations: the scoring load's p99 is
 * what a caller sees, and a pool's tail (threads preempted on shared cores, first when niced) is
 * longer than inline scoring's. By the mean alone the rule split 10k-candidate tasks (mean wait and
 * inline cost both ~1 ms under load) and the pool's share took the scoring p99 from 6.9 to 30 ms.
 */
const WAIT_TAIL = 2;
/** A pool wait sample counts for at most this many times the current estimate (see timedPool). */
const WAIT_OUTLIER = 4;
/**
 * Rule 2 sends one task in this many of those it keeps inline to the pool anyway, to keep measuring the
 * pool's wait: fewer than the 1 % of tasks a p99 is made of, so the samples cannot set the scoring p99
 * themselves. At one in 32, the samples were 3 % of the 10k-candidate tasks at WORKERS=2 (96 of 3,000),
 * each ~1 ms slower than inline, and that load's p99 stood 6.49 ms against inline's 4.87.
 */
const POOL_SAMPLE_EVERY = 128;
/** Sequential one-candidate round trips timed for the initial pool wait. */
const WAIT_TRIPS = 16;
/** Inline tasks smaller than this are not timed: the clock's resolution would dominate. */
const MIN_TIMED_CANDIDATES = 2_000;
/** Each calibration phase (warm-up, measurement) runs at least this long. */
const CALIBRATION_MS = 15;
/** The per-candidate cost is measured over at least this many titles. */
const CALIBRATION_TITLES = 20_000;

/** The sample's user over synthetic columns of CALIBRATION_TITLES titles (same genres). */
function syntheticTask(sample: ScoringTask): ScoringTask {
  const n = CALIBRATION_TITLES;
  const genres = Math.max(1, sample.preference.length);
  const catalog = {
    size: n,
    ids: new Float64Array(n).map((_, i) => i + 1),
    popularity: new Float64Array(n).map((_, i) => 1 - i / n),
    createdAtMs: new Float64Array(n).map((_, i) => sample.nowMs - ((i * 7919) % 3650) * 86_400_000),
    genre: new Uint16Array(n).map((_, i) => (i * 31) % genres),
  };
  return { ...sample, catalog, watched: [], available: undefined, genre: -1, preference: sample.preference.length > 0 ? sample.preference : [0.1] };
}

export interface Costs {
  /** Event-loop time to score one candidate inline, ns. */
  nsPerCandidate: number;
  /** Event-loop time one pool round trip costs, ns (independent of the task's size: the catalog is shared). */
  handoffNs: number;
  /** Wall time a pool task spends outside its thread (hand-off, wake-ups, queue), ns; 0 until measured. */
  poolWaitNs: number;
  /** Mean absolute deviation of that wait, ns (0 until measured): rule 2 weighs its tail with it. */
  poolWaitDevNs?: number;
  /**
   * Wall time a thread takes per candidate, ns, preemptions included (undefined until measured: taken to
   * be nsPerCandidate). A niced thread on cores the event loops also need runs slower than inline.
   */
  threadNsPerCandidate?: number;
  /** Mean absolute deviation of that per-candidate time, ns (0 until measured): its tail, as the wait's. */
  threadDevNsPerCandidate?: number;
}

/** What the rule asks the pool: its queue length (cheap) and its thread count. */
export interface PoolLoad {
  queued(): number;
  readonly threads?: number;
}

export class Placement {
  /** Seconds this event loop has spent scoring inline (all tasks, timed or not): see timedPool. */
  inlineSeconds = 0;
  /** Requests this event loop served per second, measured every LOOP_SAMPLE_MS: those an inline task delays. */
  requestsPerSecond = 0;
  /** Loop samples taken so far: a test waits for whole samples instead of guessing when the timer fires. */
  samples = 0;
  private loopUtilization = 0;
  private sinceSampled = 0;
  /** Tasks past rule 1 placed since the last pool wait was measured: what that measurement stands for. */
  private sinceTimed = 0;
  private readonly timer: NodeJS.Timeout | undefined;

  constructor(
    readonly mode: ScoringMode,
    private readonly pool: PoolLoad,
    readonly costs: Costs,
    /** Counts each decision (the scoring_tasks_total counters). */
    private readonly placed: Record<Place, { inc(): void }> = { inline: { inc() {} }, pool: { inc() {} } },
    /** Requests this event loop has served so far (a running count; sampled with the utilization). */
    served: () => number = () => 0,
  ) {
    if (mode !== 'adaptive') return;
    let last = performance.eventLoopUtilization();
    let lastServed = served();
    let lastAt = performance.now();
    this.timer = setInterval(() => {
      const now = performance.eventLoopUtilization();
      this.loopUtilization = performance.eventLoopUtilization(now, last).utilization;
      last = now;
      const count = served();
      const at = performance.now();
      this.requestsPerSecond = ((count - lastServed) * 1000) / Math.max(1, at - lastAt);
      lastServed = count;
      lastAt = at;
      this.samples += 1;
    }, LOOP_SAMPLE_MS);
    this.timer.unref();
  }

  /** A thread's wall time per candidate, ns: measured, or the inline cost until a pool task has run. */
  get threadNsPerCandidate(): number {
    return this.costs.threadNsPerCandidate ?? this.costs.nsPerCandidate;
  }

  /** Tasks up to this many candidates run inline under rule 1 (what /metrics shows). */
  get inlineUpTo(): number {
    return Math.floor(this.costs.handoffNs / Math.max(this.costs.nsPerCandidate, 1e-3));
  }

  choose(task: ScoringTask): Place {
    const place = this.decide(task);
    this.placed[place].inc();
    return place;
  }

  /** An inline task took `ms` for `candidates`: count it, and refine the per-candidate cost. */
  timedInline(candidates: number, ms: number): void {
    this.inlineSeconds += ms / 1000;
    if (candidates < MIN_TIMED_CANDIDATES) return;
    this.costs.nsPerCandidate += EWMA * ((ms * 1e6) / candidates - this.costs.nsPerCandidate);
  }

  /**
   * A pool task waited `seconds` outside its thread while this event loop scored `inlineScoringSeconds`
   * inline: refine the pool wait with it, unless the loop scored inline meanwhile. The loop's other busy
   * time stays in: the reply really waited for it, and an inline task would not have. A wait that
   * overlapped inline scoring is dropped, not corrected: counting it feeds back (a first version did, and
   * sent 574 of 600 whole-catalog tasks inline), and so does subtracting the scoring alone, since the
   * requests queued behind an inline task then delay the reply too (that drove the estimate to 8 ms and
   * sent 241 of 270 whole-catalog tasks inline). A version that took out all of the loop's busy time
   * underestimated the wait instead: 10k-candidate tasks (~0.5 ms inline) went to a pool that kept them
   * ~0.6 ms outside the thread.
   */
  timedPool(seconds: number, inlineScoringSeconds = 0, run?: { candidates: number; seconds: number }): void {
    if (inlineScoringSeconds > 0) return;
    // One outlier (a reply held up by a one-off stall of this loop: 90 ms of estimate after one bench
    // warm-up) moves the estimate at most as far as a wait of WAIT_OUTLIER × the estimate would: with
    // only one task in POOL_SAMPLE_EVERY measured once the rule scores inline, it would take thousands of
    // tasks to decay. A lasting rise still gets through, by up to that factor per sample.
    const estimate = this.costs.poolWaitNs;
    const sample = estimate > 0 ? Math.min(seconds * 1e9, WAIT_OUTLIER * estimate) : seconds * 1e9;
    // A measurement weighs as much as the decisions it stands for: EWMA each while every task goes to the
    // pool, most of the estimate when one in POOL_SAMPLE_EVERY does. Else an estimate raised while the
    // pool took every task (a stall of the machine) decayed POOL_SAMPLE_EVERY times slower than it rose, and kept tasks
    // inline for thousands of misses (118 ms of estimate after a bench run with a half-second stall).
    const weight = 1 - (1 - EWMA) ** Math.max(1, this.sinceTimed);
    this.sinceTimed = 0;
    this.costs.poolWaitNs += weight * (sample - estimate);
    const dev = this.costs.poolWaitDevNs ?? 0;
    this.costs.poolWaitDevNs = dev + weight * (Math.abs(sample - estimate) - dev);
    // The thread's own time per candidate, under the same guards (dropped when this loop scored inline
    // meanwhile, whose CPU it competed with; one outlier moves it at most WAIT_OUTLIER × the estimate).
    if (run && run.candidates >= MIN_TIMED_CANDIDATES) {
      const perCandidate = this.threadNsPerCandidate;
      const measured = Math.min((run.seconds * 1e9) / run.candidates, WAIT_OUTLIER * perCandidate);
      this.costs.threadNsPerCandidate = perCandidate + weight * (measured - perCandidate);
      const runDev = this.costs.threadDevNsPerCandidate ?? 0;
      this.costs.threadDevNsPerCandidate = runDev + weight * (Math.abs(measured - perCandidate) - runDev);
    }
  }

  close(): void {
    clearInterval(this.timer);
  }

  private decide(task: ScoringTask): Place {
    if (this.mode !== 'adaptive') return this.mode;
    const size = taskSize(task);
    const inlineNs = size * this.costs.nsPerCandidate;
    if (inlineNs <= this.costs.handoffNs) return 'inline';
    this.sinceTimed += 1;
    // queued(), not stats(): a profile at 100 pool-sized misses/s found stats() (Piscina summarizing its
    // run-time histogram for `utilization`) costing the event loop more than the scoring it placed.
    // Each queued task is taken to cost the thread what this one will.
    const threadNs = size * this.threadNsPerCandidate;
    const threadTailNs = threadNs + WAIT_TAIL * size * (this.costs.threadDevNsPerCandidate ?? 0);
    // What the pool adds to this task's latency over scoring it here: the wait outside the thread, the
    // queue ahead of it, and what the thread takes beyond this loop's time (less, if it is faster).
    const poolExtraNs =
      this.costs.poolWaitNs +
      WAIT_TAIL * (this.costs.poolWaitDevNs ?? 0) +
      (threadTailNs - inlineNs) +
      (this.pool.queued() * threadNs) / Math.max(1, this.pool.threads ?? 1);
    // What scoring here adds to the other requests' latency. On a loop busy a share u of the time (its
    // utilization), work x pushes back every request until the loop has idled x more, which takes
    // x / (1 - u): rate × x / (1 - u) requests, delayed x/2 on average (the M/G/1 busy-period argument).
    // Whole-catalog scoring at 2,000 hits/s delays them ~36 ms in all per task on an idle loop, far more
    // than any pool wait: a rule that took the loop time x alone for the cost of inline sent, on a noisy
    // minute, a third of those tasks inline at WORKERS=1, where they stalled the hits and the pool's
    // replies both. The task's own x is no cost of inline (the pool's extra is counted beyond it): a rule
    // that added it to the hits' delay, and handed off whenever the loop was over half busy, sent 23-98 %
    // of 10k-candidate tasks (0.6 ms) to the pool at WORKERS=1, where each waited ~0.7 ms and ran 0.8 on
    // a thread, for a scoring p99 20-40 % over inline and hits no faster (interleaved runs, 2026-12-03).
    const idle = 1 - Math.min(this.loopUtilization, 1);
    const hitsDelayNs = idle > 0 ? (this.requestsPerSecond * 1e-9 * inlineNs * inlineNs) / (2 * idle) : Infinity;
    if (hitsDelayNs >= poolExtraNs) return 'pool';
    if (++this.sinceSampled < POOL_SAMPLE_EVERY) return 'inline';
    this.sinceSampled = 0;
    return 'pool';
  }
}

/**
 * Measures the three costs on this machine with the real catalog, before the worker takes traffic: scoring
 * the whole catalog inline (after a warm-up run, so the JIT has compiled it), the event-loop time of pool
 * round trips of one-candidate tasks (event-loop utilization while nothing else runs), and the wall time
 * of such trips made one at a time after a pause (both threads idle, as for a lone miss).
 */
export async function calibrate(pool: Pick<ScoringPool, 'run'>, sample: ScoringTask): Promise<Costs> {
  // The per-candidate cost is a marginal cost: on a small catalog the fixed cost of one call (keeping 50)
  // would dominate it, so it is measured on columns of at least CALIBRATION_TITLES titles.
  // With the service's noise setting: the noise draw (Math.random per candidate) is part of what a real task
  // costs (a micro-run over 100k titles: 45 ns per candidate without it, 56 with it).
  const whole: ScoringTask = { ...(sample.catalog.size >= CALIBRATION_TITLES ? sample : syntheticTask(sample)), pool: 0, keep: 50 };
  const size = Math.max(1, taskSize(whole));
  // Warm up until the JIT has compiled the loop (cold runs are interpreted, many times slower), then measure.
  const timeRuns = (budgetMs: number, minRuns: number): { ms: number; runs: number } => {
    let runs = 0;
    const started = performance.now();
    while (runs < minRuns || performance.now() - started < budgetMs) {
      rankCatalog(whole);
      runs += 1;
    }
    return { ms: performance.now() - started, runs };
  };
  timeRuns(CALIBRATION_MS, 3);
  const { ms, runs } = timeRuns(CALIBRATION_MS, 3);
  const nsPerCandidate = (ms * 1e6) / (runs * size);

  const tiny: ScoringTask = { ...sample, pool: 1, keep: 1, noise: false };
  for (let i = 0; i < 8; i++) await pool.run(tiny); // thread start-up and JIT, not measured
  const trips = 64;
  const before = performance.eventLoopUtilization();
  for (let i = 0; i < trips; i += 8) await Promise.all(Array.from({ length: 8 }, () => pool.run(tiny)));
  const { active } = performance.eventLoopUtilization(before);
  // active counts this loop's busy ms during the trips; one-candidate scoring itself is on the threads.
  const handoffNs = (active * 1e6) / trips;
  // One trip at a time, as a lone miss makes it: the thread and this loop both wake from idle. The median
  // wall time of a one-candidate trip is the wait (its scoring takes microseconds).
  const walls: number[] = [];
  for (let i = 0; i < WAIT_TRIPS; i++) {
    const started = performance.now();
    await pool.run(tiny);
    walls.push((performance.now() - started) * 1e6);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  walls.sort((a, b) => a - b);
  const poolWaitNs = walls[walls.length >> 1]!;
  const poolWaitDevNs = walls.reduce((sum, w) => sum + Math.abs(w - poolWaitNs), 0) / walls.length;
  return { nsPerCandidate, handoffNs, poolWaitNs, poolWaitDevNs };
}
