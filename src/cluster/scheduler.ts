/**
 * Background work that runs on a period, once across every instance sharing the database, never two runs
 * of one job at a time: each job is a queue of the job engine with the `singleton` policy (one active job
 * per queue, across instances). Every instance offers a run for the current period slot (a throttled send:
 * the engine keeps one job per slot, whoever sent it); whichever instance fetches it runs it, and a run
 * that outlives its period makes the next one wait, not overlap. `runNow` asks for an extra run (queued
 * behind a running one). A run whose instance died is failed by the engine after `timeoutS` (its
 * maintenance), which frees the queue for the next slot.
 *
 * Used by the primary for the co-watch refresh and the batch jobs' retention sweep; register any other
 * periodic work (model training) the same way.
 */
import type { EngineJob, JobQueue } from '../data/job-queue.js';
import type { Logger } from '../observability/logger.js';

export interface RunTrigger {
  /** Asked for by runNow (rather than by the period). */
  forced: boolean;
  /** When the run was asked for, by the database's clock (the engine job's creation). */
  requestedAt: Date;
}

export interface ScheduledJob {
  /** The engine queue's name: the same on every instance. */
  name: string;
  /** Seconds between runs (one per aligned slot of this length, across instances); 0 = only runNow. */
  periodS: number;
  /** A run still active after this long is taken as dead (its instance crashed) and failed. Below 24 h. */
  timeoutS: number;
  run: (trigger: RunTrigger) => Promise<void>;
}

/** How often each instance offers the current slot's run: a few times per period, at least once a minute. */
const offerEveryMs = (periodS: number) => Math.min(60, Math.max(1, periodS / 4)) * 1000;
/** How often an idle instance asks the engine for a due run (a run starts at most this late). */
const POLLING_S = 2;

export class Scheduler {
  private readonly timers: NodeJS.Timeout[] = [];
  private stopped = false;

  constructor(
    private readonly queue: JobQueue,
    private readonly log: Logger,
  ) {}

  /** Creates the job's queue, starts taking its runs, and offers the current slot's run. */
  async register(job: ScheduledJob): Promise<void> {
    await this.queue.ensureQueue(job.name, { policy: 'singleton', expireInS: job.timeoutS, retryLimit: 0, retryDelayS: 0 });
    await this.queue.work<{ forced?: boolean }>(job.name, 1, POLLING_S, (engineJob) => this.runOne(job, engineJob));
    if (job.periodS <= 0) return;
    const offer = (): void => {
      if (this.stopped) return;
      this.queue.send(job.name, {}, { throttleS: job.periodS }).catch((err: Error) =>
        this.log.warn({ job: job.name, err: err.message }, 'scheduled run not offered; offered again later'),
      );
    };
    offer();
    const timer = setInterval(offer, offerEveryMs(job.periodS));
    timer.unref();
    this.timers.push(timer);
  }

  /** One more run as soon as no run of the job is active (on whichever instance fetches it). */
  async runNow(name: string): Promise<void> {
    await this.queue.send(name, { forced: true });
  }

  /** No more offers; the engine's workers stop with the queue (JobQueue.stop). */
  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
  }

  private async runOne(job: ScheduledJob, engineJob: EngineJob<{ forced?: boolean }>): Promise<void> {
    const trigger = { forced: engineJob.data?.forced === true, requestedAt: engineJob.createdOn };
    try {
      await job.run(trigger);
    } catch (err) {
      this.log.warn({ job: job.name, err: (err as Error).message }, 'scheduled run failed; next one as scheduled');
      throw err;
    }
  }
}
