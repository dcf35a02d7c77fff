/**
 * Training as a scheduled job of the engine (scheduler.ts): every MODEL_CHECK_S, once across instances and never
 * overlapping, the run compares the data with the newest stored model (model-training.ts staleReason); a
 * stale model is retrained on a thread of its own at the lowest CPU priority, which exits when done. A
 * reseed or import asks for a run at once (runNow); so does start-up, when the model predates the data.
 */
import type { Sql } from '../data/db.js';
import { currentData, newestModelInfo } from '../data/model-repo.js';
import type { Logger } from '../observability/logger.js';
import { startThread, type BackgroundThread } from './background-thread.js';
import type { Scheduler } from './scheduler.js';
import { staleReason, type TrainingOutcome } from './model-training.js';
import type { TrainingThreadInput } from './training-thread.js';

const TRAINING_JOB = 'model-training';
/** A run older than this counts as dead and frees the queue (the engine has no heartbeat). */
const TIMEOUT_S = 3 * 3600;

export interface ModelTrainerOptions {
  sql: Sql;
  databaseUrl: string;
  /** MODEL_RETRAIN_SHARE. */
  share: number;
  /** MODEL_CHECK_S, in ms: how often the data is compared with the newest model (a few cheap aggregate reads). */
  checkMs: number;
  log: Logger;
  /** Off (MODEL=heuristic or popularity, which need no training): never trains. */
  enabled: boolean;
}

export class ModelTrainer {
  private running: BackgroundThread<TrainingOutcome> | undefined;
  private stopped = false;

  constructor(private readonly opts: ModelTrainerOptions) {}

  async start(scheduler: Scheduler): Promise<void> {
    if (!this.opts.enabled) return;
    await scheduler.register({ name: TRAINING_JOB, periodS: Math.max(1, Math.round(this.opts.checkMs / 1000)), timeoutS: TIMEOUT_S, run: () => this.check() });
    // Not a minute after start-up: a stale or missing model is retrained at once.
    await scheduler.runNow(TRAINING_JOB);
  }

  /** The data set was replaced (reseed, import): a run now (queued behind one under way). */
  datasetReplaced(scheduler: Scheduler): void {
    if (!this.opts.enabled || this.stopped) return;
    scheduler.runNow(TRAINING_JOB).catch((err: Error) => this.opts.log.warn({ err: err.message }, 'training after the new data set not queued; next check as scheduled'));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.running?.terminate().catch(() => {});
  }

  private async check(): Promise<void> {
    if (this.running || this.stopped) return;
    try {
      const reason = staleReason(await newestModelInfo(this.opts.sql), await currentData(this.opts.sql), this.opts.share);
      if (reason) await this.train(reason);
    } catch (err) {
      this.opts.log.warn({ err: (err as Error).message }, 'model training check failed; retried at the next check');
    }
  }

  private async train(reason: string): Promise<void> {
    const { log } = this.opts;
    log.info({ reason }, 'training the recommendation models in the background');
    const input: TrainingThreadInput = { databaseUrl: this.opts.databaseUrl, share: this.opts.share, nice: 19 };
    this.running = startThread<TrainingThreadInput, TrainingOutcome>(
      new URL('./training-thread.js', import.meta.url),
      input,
      'training',
      (message) => log.info({ training: message }, 'training progress'),
    );
    try {
      const outcome = await this.running.result;
      if (outcome.ran) {
        log.info({ id: outcome.id, serves: outcome.serves, trainMs: outcome.trainMs, events: outcome.events, peakRssMiB: Math.round(outcome.peakRssBytes / 2 ** 20) }, 'model trained and announced');
      } else {
        log.info({ reason: outcome.reason }, 'training skipped');
      }
    } catch (err) {
      const e = err as { message?: string; code?: string };
      if (e.code === 'ABORTED') log.info('training abandoned (shutting down)');
      else log.error({ err: e.message }, 'model training failed: the previous model keeps serving');
    } finally {
      this.running = undefined;
    }
  }
}
