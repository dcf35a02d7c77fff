/**
 * The one module that owns Piscina: a fixed set of scoring threads with a bounded queue.
 * Errors leave as ModelError: 'rejected' when the pool had no room (or is closing), 'failure' otherwise.
 */
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { ModelError } from '../domain/errors.js';
import type { Recommendation, ScoringTask } from '../domain/types.js';

export interface ScoringPoolOptions {
  threads: number;
  /** Tasks that may wait for a thread; beyond that run() rejects at once (backpressure, not a backlog). */
  maxQueue: number;
  /** Tasks one thread interleaves: most of a task is an awaited timer, so one per thread would idle it. */
  concurrentTasksPerThread: number;
  /** Pool-level errors (a thread crashing with no task on it, a close timeout); they must not go unheard. */
  onError?: (err: Error) => void;
}

export interface ScoringPoolStats {
  queueSize: number;
  utilization: number;
  threads: number;
  completed: number;
}

export interface ScoringPool {
  run(task: ScoringTask): Promise<Recommendation[]>;
  close(): Promise<void>;
  stats(): ScoringPoolStats;
}

/** Piscina's own rejections when it has no capacity: plain Errors, recognisable only by message/name. */
const NO_CAPACITY = new Set(['Task queue is at limit', 'No task queue available and all Workers are busy']);

export function createScoringPool(opts: ScoringPoolOptions): ScoringPool {
  const threads = Math.max(1, Math.floor(opts.threads));
  const pool = new Piscina<ScoringTask, Recommendation[]>({
    // Resolved next to this file so it works from dist/ (and the worker loads compiled JS).
    filename: fileURLToPath(new URL('./task.js', import.meta.url)),
    minThreads: threads,
    maxThreads: threads,
    // Threads stay up for the life of the process: the first requests never pay a thread start-up.
    idleTimeout: Infinity,
    maxQueue: Math.max(0, Math.floor(opts.maxQueue)),
    concurrentTasksPerWorker: Math.max(1, Math.floor(opts.concurrentTasksPerThread)),
  });
  // Without a listener an 'error' event would crash the process; in-flight tasks already reject on their own.
  pool.on('error', (err: Error) => opts.onError?.(err));

  // Piscina would quietly spawn fresh threads for a run() after close(); a closed pool stays closed.
  let closed = false;
  return {
    run: (task) =>
      closed
        ? Promise.reject(new ModelError('rejected', 'scoring pool is closed'))
        : pool.run(task).catch((err: unknown) => Promise.reject(toModelError(err))),
    close: () => {
      closed = true;
      return pool.close();
    },
    stats: () => ({
      queueSize: pool.queueSize,
      utilization: pool.utilization,
      threads: pool.threads.length,
      completed: pool.completed,
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
