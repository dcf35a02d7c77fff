/**
 * Piscina worker entry: one "remote model inference". The latency is a timer (the thread keeps serving
 * other tasks meanwhile, see concurrentTasksPerWorker); the scoring is real CPU work.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Recommendation, ScoringTask } from '../domain/types.js';
import { rankCandidates, scoreCandidates, toRecommendation } from './model.js';
import { isPacked, unpackCandidates, type PackedTask, type UnpackedCandidate } from './wire.js';

/** The ranking and how long the task ran on this thread (the pool derives queue time from it). */
export interface ScoredTask {
  items: Recommendation[];
  runMs: number;
  /** For a packed task: each item's position among the sent candidates (its title is filled in there). */
  indexOf?: Int32Array;
}

export default async function score(task: ScoringTask | PackedTask): Promise<ScoredTask> {
  const started = performance.now();
  const { latencyMinMs, latencyMaxMs, failureRate } = task;
  if (latencyMaxMs > 0) {
    const lo = Math.max(0, Math.min(latencyMinMs, latencyMaxMs));
    await sleep(lo + Math.random() * (latencyMaxMs - lo));
  }
  if (failureRate > 0 && Math.random() < failureRate) throw new Error('model inference failed');
  const options = { keep: task.keep, nowMs: task.nowMs, noise: task.noise };
  if (!isPacked(task)) return { items: scoreCandidates(task.signals, options), runMs: performance.now() - started };
  const kept = rankCandidates({ ...task.signals, candidates: unpackCandidates(task.packed) }, options);
  const indexOf = new Int32Array(kept.length);
  const items = kept.map(({ score, candidate }, i) => {
    indexOf[i] = (candidate as UnpackedCandidate).position;
    return toRecommendation(candidate, score); // title '' until the sender fills it in
  });
  return { items, runMs: performance.now() - started, indexOf };
}
