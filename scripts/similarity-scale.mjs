#!/usr/bin/env node
/**
 * Runs the co-watch similarity job once against DATABASE_URL, as the service does (its own thread, nice 19),
 * and prints what it cost: titles written, events read, wall and CPU time, peak RSS, the calling thread's
 * event-loop delay (5 s idle first, then during the job) and, when PostgreSQL runs on this machine, the CPU
 * of the job's backend.
 *
 *   npm run build && DATABASE_URL=postgres://… node scripts/similarity-scale.mjs
 *
 * It replaces content_similarity in that database (ignoring freshness).
 */
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { connect } from '../dist/data/db.js';
import { startSimilarityThread } from '../dist/data/similarity-job.js';

const url = process.env.DATABASE_URL;
if (!url) {
  console.error('DATABASE_URL is required');
  process.exit(2);
}

const monitor = connect(url, { max: 1, application: 'similarity-scale-monitor' });
/** utime + stime of a local process in ms, or undefined (not local, gone). */
function cpuMsOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // USER_HZ is 100 on Linux
  } catch {
    return undefined;
  }
}
let backendCpuMs;
let backendPid;
const poll = setInterval(async () => {
  try {
    if (backendPid === undefined) {
      const [row] = await monitor`SELECT pid FROM pg_stat_activity WHERE application_name = 'recommendation-service-similarity'`;
      backendPid = row?.pid;
    }
    if (backendPid !== undefined) backendCpuMs = cpuMsOf(backendPid) ?? backendCpuMs;
  } catch {
    // monitoring only
  }
}, 200);

const [before] = await monitor`SELECT count(*)::int AS events FROM user_watch_history`;
// The caller's event-loop delay for 5 s before the job (what the machine's load alone costs), then during it.
const idle = monitorEventLoopDelay({ resolution: 10 });
idle.enable();
await new Promise((resolve) => setTimeout(resolve, 5000));
idle.disable();
const delay = monitorEventLoopDelay({ resolution: 10 });
delay.enable();
const started = performance.now();
const outcome = await startSimilarityThread(url, {}).result;
const wallMs = Math.round(performance.now() - started);
delay.disable();
clearInterval(poll);
await monitor.end();

if (!outcome.ran) {
  console.log(`skipped: ${outcome.reason}`);
  process.exit(1);
}
const s = outcome.stats;
const loopDelay = (h) => `${(h.percentile(99) / 1e6).toFixed(1)} / ${(h.max / 1e6).toFixed(1)} ms`;
const mb = (bytes) => `${Math.round(bytes / 2 ** 20)} MB`;
const rows = [
  ['events in user_watch_history', before.events],
  ['events read (≤ 50 most recent per user)', s.events],
  ['users', s.users],
  ['titles written', s.titles],
  ['similar titles written', s.pairs],
  ['co-count increments', s.work],
  ['wall ms (thread start to answer)', wallMs],
  ['  read ms (one row per user, parsed as it arrives)', s.readMs],
  ['  compute ms', s.computeMs],
  ['  write ms (DELETE + COPY in, commit)', s.writeMs],
  ['CPU ms (this process)', s.cpuMs],
  ['CPU ms (PostgreSQL backend)', backendCpuMs === undefined ? 'n/a (not local)' : Math.round(backendCpuMs)],
  ['peak RSS (this process)', mb(s.peakRssBytes)],
  ['peak heap + array buffers (job thread)', mb(s.peakHeapBytes)],
  ['caller event-loop delay p99 / max, idle', loopDelay(idle)],
  ['caller event-loop delay p99 / max, job', loopDelay(delay)],
];
for (const [name, value] of rows) console.log(`${name.padEnd(42)} ${value}`);
