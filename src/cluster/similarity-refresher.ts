/**
 * SIMILAR_REFRESH_S: the node:cluster primary recomputes the co-watch similarity lists in the background —
 * once right after start-up, then every interval — each time on a fresh worker thread
 * (startSimilarityThread) that exits when done, so nothing stays in memory between rounds.
 *
 * Rounds never overlap: the next is timed from the start of the previous one and never starts before it
 * ended. Across instances sharing the database a round skips when another instance is computing (the
 * job's advisory lock) or when the stored lists are younger than 0.9 × the interval (whoever computed them):
 * N instances with their own timers compute about once per interval between them, and a restart does not
 * recompute fresh lists.
 */
import { startSimilarityThread, type SimilarityOutcome, type SimilarityThread } from '../data/similarity-job.js';
import type { Logger } from '../observability/logger.js';

export interface SimilarityRefresherOptions {
  databaseUrl: string;
  /** Seconds between rounds; 0 = this instance never computes. */
  intervalS: number;
  log: Logger;
}

/** Stored lists younger than this share of the interval are fresh: a round skips them. */
const FRESH_SHARE = 0.9;

export class SimilarityRefresher {
  private timer: NodeJS.Timeout | undefined;
  private running: { thread: SimilarityThread; done: Promise<SimilarityOutcome | undefined> } | undefined;
  private stopped = false;
  /** The data set was replaced while a round ran (it read the old history): compute again after it. */
  private again = false;

  constructor(private readonly opts: SimilarityRefresherOptions) {}

  /** Schedules the first round at once (in the background: readiness never waits for it). */
  start(): void {
    if (this.opts.intervalS <= 0) {
      this.opts.log.info('SIMILAR_REFRESH_S=0: this instance does not compute similar titles');
      return;
    }
    this.schedule(0);
  }

  /**
   * One round now, or the running one's outcome if a round is under way. Undefined when the round failed or
   * was abandoned by stop() (both logged).
   */
  refresh(force = false): Promise<SimilarityOutcome | undefined> {
    if (this.running) return this.running.done;
    if (this.stopped) return Promise.resolve(undefined);
    const started = performance.now();
    // Forced (a reseed): lists written from the old history look fresh, so freshness must not skip it.
    const thread = startSimilarityThread(this.opts.databaseUrl, { freshForS: force ? 0 : this.opts.intervalS * FRESH_SHARE });
    const done = thread.result.then(
      (outcome) => {
        this.logOutcome(outcome);
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
    void done.finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        void this.refresh(true);
      } else {
        this.schedule(this.opts.intervalS * 1000 - (performance.now() - started));
      }
    });
    return done;
  }

  /**
   * A reseed replaced the history (the dataset NOTIFY): the seed emptied the lists, so compute them now —
   * or, if a round is running, once more after it, since it read the old history and may write it back.
   */
  datasetReplaced(): void {
    if (this.stopped || this.opts.intervalS <= 0) return;
    if (this.running) this.again = true;
    else void this.refresh(true);
  }

  /** No further rounds; a running one is terminated (its transaction rolls back) and awaited. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const running = this.running;
    if (!running) return;
    await running.thread.terminate();
    await running.done;
  }

  private schedule(delayMs: number): void {
    if (this.stopped || this.opts.intervalS <= 0) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.refresh(), Math.max(0, delayMs));
    this.timer.unref();
  }

  private logOutcome(outcome: SimilarityOutcome): void {
    if (!outcome.ran) {
      const why = outcome.reason === 'locked' ? 'another instance is computing them' : 'the stored lists are fresh';
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
      },
      'similar titles computed',
    );
  }
}
