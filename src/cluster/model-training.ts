/**
 * One training run (docs/quality.md "Training"): the engine schedules one at a time across instances, and a
 * session advisory lock keeps a second one out even when the engine gave a slow run up (it has no heartbeat); a run that
 * finds it taken skips), only when the data changed enough since the newest stored model (staleReason),
 * then every event read, the models trained (recommenders/training.ts) and the result saved and announced
 * in one transaction. A failure is recorded and announced; the stored model keeps serving.
 */
import type { Sql } from '../data/db.js';
import { readTrainingData } from '../data/interactions-repo.js';
import { currentData, MODEL_CHANNEL, newestModelInfo, recordTrainingFailure, saveModel, type DataMark, type StoredModelInfo } from '../data/model-repo.js';
import { describe } from '../recommenders/evaluation.js';
import { trainModel } from '../recommenders/training.js';

/** Arbitrary fixed key (migrate, seed and similarity use …001 to …003). */
const TRAINING_LOCK_KEY = '7283462919304417004';

export type TrainingOutcome =
  | { ran: true; id: number; reason: string; serves: string; trainMs: number; events: number; peakRssBytes: number }
  | { ran: false; reason: 'locked' | 'fresh' | 'no events' };

/** Why the newest model no longer describes the data, or undefined when it still does. */
export function staleReason(model: StoredModelInfo | undefined, now: DataMark, share: number): string | undefined {
  if (now.events === 0) return undefined;
  if (!model) return 'no model trained yet';
  if (model.datasetVersion !== now.datasetVersion) return 'data set replaced (reseed or import)';
  if (share > 0 && now.maxEventId - model.maxEventId >= share * Math.max(1, model.events)) return `watch events grew by ${Math.round(share * 100)} % or more`;
  if (share > 0 && Math.abs(now.titles - model.titles) >= share * Math.max(1, model.titles)) return `titles changed by ${Math.round(share * 100)} % or more`;
  return undefined;
}

/** `sql` needs two connections: one holds the lock for the run, the other reads and saves. */
export async function runTraining(sql: Sql, share: number, log: (message: string) => void = () => {}): Promise<TrainingOutcome> {
  const conn = await sql.reserve();
  try {
    const [{ locked } = { locked: false }] = await conn<{ locked: boolean }[]>`SELECT pg_try_advisory_lock(${TRAINING_LOCK_KEY}::bigint) AS locked`;
    if (!locked) return { ran: false, reason: 'locked' };
    try {
      // Measured before the read: events written while it trains count as new for the next check.
      const now = await currentData(conn);
      if (now.events === 0) return { ran: false, reason: 'no events' };
      const reason = staleReason(await newestModelInfo(conn), now, share);
      if (!reason) return { ran: false, reason: 'fresh' };
      try {
        const started = performance.now();
        const data = await readTrainingData(sql);
        const model = trainModel(data.events, { onProgress: log });
        const id = await saveModel(sql, model, now);
        return {
          ran: true, id, reason, serves: describe(model), trainMs: Math.round(performance.now() - started),
          events: data.events.items.length, peakRssBytes: process.resourceUsage().maxRSS * 1024,
        };
      } catch (err) {
        const message = (err as Error).message ?? String(err);
        await recordTrainingFailure(sql, message).catch(() => {});
        await conn`SELECT pg_notify(${MODEL_CHANNEL}, 'failed')`.catch(() => {});
        throw err;
      }
    } finally {
      await conn`SELECT pg_advisory_unlock(${TRAINING_LOCK_KEY}::bigint)`.catch(() => {});
    }
  } finally {
    conn.release();
  }
}
