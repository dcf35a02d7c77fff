/**
 * SIMILAR_REFRESH_S: the co-watch similarity lists are recomputed in the background, as a scheduled job
 * of the job engine (scheduler.ts): one run per interval across every instance sharing the database, never
 * two at once, on whichever primary takes it. Each run is a fresh worker thread (startSimilarityThread)
 * that exits when done, so nothing stays in memory between rounds.
 *
 * Freshness as before: a scheduled run skips when the stored lists are younger than 0.9 × the interval
 * (whoever computed them), so a restart does not recompute fresh lists. A reseed (the dataset NOTIFY, heard
 * by every instance) asks for a forced run: it skips only lists computed from history read after the
 * request, so the instances' N requests compute once, and a round that read the old history does not count.
 */
import { startSimilarityThread, type SimilarityOutcome, type SimilarityThread } from '../data/similarity-job.js';
import type { Logger } from '../observability/logger.js';
import type { RunTrigger, Scheduler } from './scheduler.js';

export const SIMILARITY_JOB = 'similarity-refresh';

export interface SimilarityRefresherOptions {
  databaseUrl: string;
  /** Seconds between rounds; 0 = this instance never computes. */
  intervalS: number;
  log: Logger;
}

/** Stored lists younger than this share of the interval are fresh: a round skips them. */
const FRESH_SHARE = 0.9;
/** A round still running after this long is taken as dead (its instance crashed): the next may start. */
const MIN_TIMEOUT_S = 3600;
const MAX_TIMEOUT_S = 23 * 3600;

export class SimilarityRefresher {
  private running: { thread: SimilarityThread; done: Promise<SimilarityOutcome | undefined> } | undefined;
  private stopped = false;

  constructor(private readonly opts: SimilarityRefresherOptions) {}

  /** Registers the scheduled job (its first round at once, in the background: readiness never waits for it). */
  async start(scheduler: Scheduler): Promise<void> {
    if (this.opts.intervalS <= 0) {
      this.opts.log.info('SIMILAR_REFRESH_S=0: this instance does not compute similar titles');
      return;
    }
    await scheduler.register({
      name: SIMILARITY_JOB,
      periodS: this.opts.intervalS,
      timeoutS: Math.min(MAX_TIMEOUT_S, Math.max(MIN_TIMEOUT_S, this.opts.intervalS)),
      run: async (trigger) => {
        await this.refresh(trigger);
      },
    });
  }

  /**
   * One round now on a worker thread. Undefined when the round failed or was abandoned by stop() (both
   * logged). Not re-entrant: a second call while one runs returns the running one's outcome.
   */
  refresh(trigger: RunTrigger = { forced: false, requestedAt: new Date() }): Promise<SimilarityOutcome | undefined> {
    if (this.running) return this.running.done;
    if (this.stopped) return Promise.resolve(undefined);
    const thread = startSimilarityThread(
      this.opts.databaseUrl,
      trigger.forced ? { freshSince: trigger.requestedAt } : { freshForS: this.opts.intervalS * FRESH_SHARE },
    );
    const done = thread.result.then(
      (outcome) => {
        this.logOutcome(outcome, trigger.forced);
        return outcome;
      },
      (err: unknown) => {
        const e = err as { message?: string; code?: string };
        if (e.code === 'ABORTED') this.opts.log.info('similar titles: computation abandoned (shutting down)');
        else this.opts.log.warn({ err: e.message, code: e.code }, 'similar titles: computation failed; next round as scheduled');
        return undefined;
      },
    );
    this.running = { thread, done };
    void done.finally(() => (this.running = undefined));
    return done;
  }

  /** A reseed replaced the history (the dataset NOTIFY): one forced round, after any running one. */
  datasetReplaced(scheduler: Scheduler): void {
    if (this.stopped || this.opts.intervalS <= 0) return;
    scheduler.runNow(SIMILARITY_JOB).catch((err: Error) =>
      this.opts.log.warn({ err: err.message }, 'similar titles: recomputation after the reseed not queued; next round as scheduled'),
    );
  }

  /** No further rounds here; a running one is terminated (its transaction rolls back) and awaited. */
  async stop(): Promise<void> {
    this.stopped = true;
    const running = this.running;
    if (!running) return;
    await running.thread.terminate();
    await running.done;
  }

  private logOutcome(outcome: SimilarityOutcome, forced: boolean): void {
    if (!outcome.ran) {
      const why = forced ? 'they were computed after the reseed' : 'the stored lists are fresh';
      this.opts.log.info({ reason: outcome.reason }, `similar titles: round skipped, ${why}`);
      return;
    }
    const s = outcome.stats;
    this.opts.log.info(
      {
        titles: s.titles,
        pairs: s.pairs,
        events: s.events,
        users: s.users,
        ms: s.ms,
        readMs: s.readMs,
        computeMs: s.computeMs,
        writeMs: s.writeMs,
        cpuMs: s.cpuMs,
        peakRssMb: Math.round(s.peakRssBytes / 2 ** 20),
        forced,
      },
      'similar titles computed',
    );
  }
}
