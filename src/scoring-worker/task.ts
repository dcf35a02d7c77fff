/**
 * Piscina worker entry: one "remote model inference". The latency is a timer (the thread keeps serving
 * other tasks meanwhile, see concurrentTasksPerWorker); the scoring is real CPU work.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Recommendation, ScoringTask } from '../domain/types.js';
import { scoreCandidates } from './model.js';

export default async function score(task: ScoringTask): Promise<Recommendation[]> {
  const { latencyMinMs, latencyMaxMs, failureRate } = task;
  if (latencyMaxMs > 0) {
    const lo = Math.max(0, Math.min(latencyMinMs, latencyMaxMs));
    await sleep(lo + Math.random() * (latencyMaxMs - lo));
  }
  if (failureRate > 0 && Math.random() < failureRate) throw new Error('model inference failed');
  return scoreCandidates(task.signals, { keep: task.keep, nowMs: task.nowMs, noise: task.noise });
}
