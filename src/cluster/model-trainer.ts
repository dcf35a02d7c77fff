/**
 * The primary's schedule for training (docs/quality.md "Training"): a check at start-up, then every
 * MODEL_CHECK_S, and at once when the data set is replaced; a check that finds the newest stored model stale
 * (model-training.ts staleReason) starts a run on a thread of its own at the lowest CPU priority, which
 * exits when done. Runs never overlap here, and across instances the run's advisory lock lets one train.
 */
import type { Sql } from '../data/db.js';
import { currentData, newestModelInfo } from '../data/model-repo.js';
import type { Logger } from '../observability/logger.js';
import { startThread, type BackgroundThread } from './background-thread.js';
import { staleReason, type TrainingOutcome } from './model-training.js';
import type { TrainingThreadInput } from './training-thread.js';

export interface ModelTrainerOptions {
  sql: Sql;
  databaseUrl: string;
  /** MODEL_RETRAIN_SHARE. */
  share: number;
  /** MODEL_CHECK_S in ms: how often the data is compared with the newest model (a few cheap aggregate reads). */
  checkMs: number;
  log: Logger;
  /** Off (MODEL=heuristic or popularity, which need no training): never trains. */
  enabled: boolean;
}

export class ModelTrainer {
  private timer: NodeJS.Timeout | undefined;
  private running: BackgroundThread<TrainingOutcome> | undefined;
  private again = false;
  private stopped = false;

  constructor(private readonly opts: ModelTrainerOptions) {}

  start(): void {
    if (!this.opts.enabled) return;
    void this.check();
  }

  /** The data set was replaced (reseed, import): check now, or again right after the run under way. */
  datasetReplaced(): void {
    if (!this.opts.enabled) return;
    if (this.running) this.again = true;
    else void this.check();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running?.terminate().catch(() => {});
  }

  private schedule(): void {
    clearTimeout(this.timer);
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.check(), this.opts.checkMs);
    this.timer.unref();
  }

  private async check(): Promise<void> {
    if (this.running || this.stopped) return;
    try {
      const reason = staleReason(await newestModelInfo(this.opts.sql), await currentData(this.opts.sql), this.opts.share);
      if (reason) await this.train(reason);
    } catch (err) {
      this.opts.log.warn({ err: (err as Error).message }, 'model training check failed; retried at the next check');
    } finally {
      if (this.again && !this.stopped) {
        this.again = false;
        void this.check();
      } else {
        this.schedule();
      }
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
