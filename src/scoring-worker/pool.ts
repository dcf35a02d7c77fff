/**
 * The one module that owns Piscina: a fixed set of scoring threads with a bounded queue. A task is CPU
 * only (the simulated model wait happens before, on the caller's event loop: it holds no thread), so each
 * thread runs one task at a time. Errors leave as ModelError: 'rejected' when the pool had no room (or is
 * closing), 'failure' otherwise.
 */
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { ModelError } from '../domain/errors.js';
import type { Ranking, ScoringTask } from '../domain/types.js';
import type { ScoredTask } from './task.js';

export interface ScoringPoolOptions {
  threads: number;
  /** Tasks that may wait for a thread; beyond that run() rejects at once (backpressure, not a backlog). */
  maxQueue: number;
  /** Pool-level errors (a thread crashing with no task on it, a close timeout); they must not go unheard. */
  onError?: (err: Error) => void;
  /**
   * Added to the scoring threads' OS niceness (0-19): when the cores are busy, the kernel then runs the
   * HTTP event loops first and the scoring threads with what is left (the point of moving work off the
   * event loop). 0 = same priority.
   */
  niceIncrement?: number;
  /** Per completed task: seconds outside the thread (queue, hand-off, wake-ups) and on it. Called synchronously. */
  onTimings?: (waitSeconds: number, runSeconds: number) => void;
}

/** A task's ranking and where its time went: outside its thread (queue, hand-off, wake-ups) and on it. */
export interface PoolRanking extends Ranking {
  waitSeconds: number;
  runSeconds: number;
}

export interface ScoringPoolStats {
  /** Tasks waiting for a thread slot (every slot of every thread is taken). */
  queueSize: number;
  /** Piscina's estimate: threads' run time since start over (elapsed time x threads). */
  utilization: number;
  threads: number;
  completed: number;
  /** Tasks submitted and not yet settled (queued or running). */
  inFlight: number;
  /** Tasks the pool runs at once: one per thread. */
  capacity: number;
  /** OS niceness added to the threads (SCORING_THREAD_NICE, as resolved). */
  nice: number;
}

export interface ScoringPool {
  run(task: ScoringTask): Promise<PoolRanking>;
  /**
   * Tasks waiting for a thread: what the placement rule asks per task. Cheap, unlike stats(), whose
   * `utilization` makes Piscina summarize its run-time histogram (mean, stddev, 20 percentiles).
   */
  queued(): number;
  /** Threads in the pool (fixed for its life). */
  readonly threads: number;
  close(): Promise<void>;
  stats(): ScoringPoolStats;
}

/** Piscina's own rejections when it has no capacity: plain Errors, recognisable only by message/name. */
const NO_CAPACITY = new Set(['Task queue is at limit', 'No task queue available and all Workers are busy']);

export function createScoringPool(opts: ScoringPoolOptions): ScoringPool {
  const threads = Math.max(1, Math.floor(opts.threads));
  const nice = Math.max(0, Math.min(19, Math.floor(opts.niceIncrement ?? 0)));
  const pool = new Piscina<ScoringTask, ScoredTask>({
    // Resolved next to this file so it works from dist/ (and the worker loads compiled JS).
    filename: fileURLToPath(new URL('./task.js', import.meta.url)),
    minThreads: threads,
    maxThreads: threads,
    // Threads stay up for the life of the process: the first requests never pay a thread start-up.
    idleTimeout: Infinity,
    maxQueue: Math.max(0, Math.floor(opts.maxQueue)),
    concurrentTasksPerWorker: 1,
    niceIncrement: nice,
  });
  // Without a listener an 'error' event would crash the process; in-flight tasks already reject on their own.
  pool.on('error', (err: Error) => opts.onError?.(err));

  // Piscina would quietly spawn fresh threads for a run() after close(); a closed pool stays closed.
  let closed = false;
  let inFlight = 0;
  const onTimings = opts.onTimings;
  const run = async (task: ScoringTask): Promise<PoolRanking> => {
    if (closed) throw new ModelError('rejected', 'scoring pool is closed');
    const submitted = performance.now();
    inFlight += 1;
    try {
      // The catalog columns are shared memory: posting them copies nothing.
      const { runMs, ...ranking } = await pool.run(task);
      // The thread measured its own run time; everything else since submission was outside it.
      const waitSeconds = Math.max(0, performance.now() - submitted - runMs) / 1000;
      const runSeconds = runMs / 1000;
      onTimings?.(waitSeconds, runSeconds);
      return { ...ranking, waitSeconds, runSeconds };
    } catch (err) {
      throw toModelError(err);
    } finally {
      inFlight -= 1;
    }
  };
  return {
    run,
    queued: () => pool.queueSize,
    threads,
    close: () => {
      closed = true;
      return pool.close();
    },
    stats: () => ({
      queueSize: pool.queueSize,
      utilization: pool.utilization,
      threads: pool.threads.length,
      completed: pool.completed,
      inFlight,
      capacity: threads,
      nice,
    }),
  };
}

function toModelError(err: unknown): ModelError {
  if (err instanceof ModelError) return err;
  const e = err instanceof Error ? err : new Error(String(err));
  // AbortError: the pool is closing and refused or dropped the task.
  if (NO_CAPACITY.has(e.message) || e.name === 'AbortError') return new ModelError('rejected', e.message);
  return new ModelError('failure', e.message);
}
