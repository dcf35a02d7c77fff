/**
 * The scheduler (src/cluster/scheduler.ts) on the real job engine: two "instances" (two engine clients,
 * each with its own scheduler, as two primaries would have) share one database. A periodic job runs once
 * per period slot across both, never two runs at once even when a run outlasts its period, and runNow
 * adds runs that wait for the running one.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Scheduler, type RunTrigger } from '../../src/cluster/scheduler.js';
import { JobQueue } from '../../src/data/job-queue.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

let db: TestDatabase;
let queues: JobQueue[] = [];
let schedulers: Scheduler[] = [];
const log = pino({ level: 'silent' });

beforeAll(async () => {
  db = await createTestDatabase();
  // One after the other: the first creates the engine's schema.
  for (let i = 0; i < 2; i++) {
    queues.push(await JobQueue.start({ databaseUrl: db.url, role: 'primary', maintenanceIntervalS: 1, poolSize: 3, onError: () => {} }));
  }
  schedulers = queues.map((q) => new Scheduler(q, log));
}, 60_000);

afterAll(async () => {
  for (const s of schedulers) s.stop();
  await Promise.all(queues.map((q) => q.stop(1000)));
  await db?.drop();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Run {
  instance: number;
  trigger: RunTrigger;
}

/** A job on every instance whose runs take `runMs` and are recorded, with the most ever running at once. */
async function register(name: string, periodS: number, runMs: number) {
  const runs: Run[] = [];
  let active = 0;
  let mostAtOnce = 0;
  await Promise.all(
    schedulers.map((s, instance) =>
      s.register({
        name,
        periodS,
        timeoutS: 60,
        run: async (trigger) => {
          active += 1;
          mostAtOnce = Math.max(mostAtOnce, active);
          runs.push({ instance, trigger });
          await sleep(runMs);
          active -= 1;
        },
      }),
    ),
  );
  return { runs, mostAtOnce: () => mostAtOnce };
}

const engineJobs = (name: string) =>
  db.sql<{ slot: string | null; state: string; forced: boolean }[]>`
    SELECT singleton_on::text AS slot, state::text, coalesce((data->>'forced')::bool, false) AS forced
    FROM pgboss.job WHERE name = ${name} ORDER BY created_on`;

it('runs a periodic job once per slot across two instances, never two runs at once', async () => {
  // Each run (1.5 s) outlasts its period (1 s): the next slot's run waits for it instead of overlapping.
  const { runs, mostAtOnce } = await register('test-periodic', 1, 1500);
  while (runs.length < 3) await sleep(100);
  expect(mostAtOnce()).toBe(1);
  const jobs = await engineJobs('test-periodic');
  // Both instances offered every slot; the engine kept one job per slot.
  const slots = jobs.map((j) => j.slot);
  expect(new Set(slots).size).toBe(slots.length);
  expect(jobs.filter((j) => j.state !== 'created').length).toBeGreaterThanOrEqual(runs.length);
  expect(runs.every((r) => !r.trigger.forced)).toBe(true);
}, 60_000);

it('runNow from both instances adds forced runs that queue behind the running one', async () => {
  const { runs, mostAtOnce } = await register('test-on-demand', 0, 500);
  expect(await engineJobs('test-on-demand')).toEqual([]); // period 0: nothing until asked
  await Promise.all(schedulers.map((s) => s.runNow('test-on-demand')));
  while (runs.length < 2) await sleep(50);
  await sleep(600);
  expect(runs).toHaveLength(2);
  expect(runs.every((r) => r.trigger.forced && r.trigger.requestedAt instanceof Date)).toBe(true);
  expect(mostAtOnce()).toBe(1);
  expect((await engineJobs('test-on-demand')).map((j) => [j.state, j.forced])).toEqual([
    ['completed', true],
    ['completed', true],
  ]);
}, 60_000);
