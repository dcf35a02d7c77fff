/**
 * CPU time and memory of processes from /proc (Linux only; elsewhere every reading is `undefined` and the
 * bench leaves the columns empty). Used for the load generator, the service (primary + cluster workers,
 * their threads included: a process's stat sums its threads), the ceiling server and PostgreSQL.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** Whether this kernel has `file` (a /proc feature probe). */
function readable(file) {
  try {
    readFileSync(file, 'utf8');
    return true;
  } catch {
    return false;
  }
}

const HAS_PROC = readable('/proc/self/stat');
/** Per-thread scheduler statistics (CONFIG_SCHEDSTATS or CONFIG_SCHED_INFO). */
const HAS_SCHEDSTAT = readable('/proc/self/schedstat');

/** Clock ticks per second of the utime/stime fields (`getconf CLK_TCK`, normally 100). */
export const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/**
 * One /proc/<pid>/stat: ppid, nice (field 19) and CPU seconds. `self` = utime + stime (fields 14, 15: the
 * process and all its threads, live or exited); `children` = cutime + cstime (16, 17: children it has
 * reaped). The comm field may hold spaces and parentheses, so fields are counted from the last ')'.
 */
export function procStat(pid) {
  return readStat(`/proc/${pid}/stat`, pid);
}

/** A stat file of the procStat() format: a process's, or one thread's (/proc/<pid>/task/<tid>/stat). */
function readStat(file, pid) {
  if (!HAS_PROC) return undefined;
  let text;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const f = text.slice(text.lastIndexOf(')') + 2).split(' '); // f[0] is field 3 (state)
  return {
    pid: Number(pid),
    state: f[0],
    ppid: Number(f[1]),
    self: (Number(f[11]) + Number(f[12])) / CLK_TCK,
    children: (Number(f[13]) + Number(f[14])) / CLK_TCK,
  };
}

/** Every live process's stat, keyed by pid (one scan of /proc). */
function allStats() {
  const out = new Map();
  if (!HAS_PROC) return out;
  for (const name of readdirSync('/proc')) {
    if (name.charCodeAt(0) < 48 || name.charCodeAt(0) > 57) continue;
    const s = procStat(name);
    if (s) out.set(s.pid, s);
  }
  return out;
}

/** `root` and all its live descendants (pids), found through the ppid of every process in /proc. */
export function processTree(root, stats = allStats()) {
  const kids = new Map();
  for (const s of stats.values()) {
    if (!kids.has(s.ppid)) kids.set(s.ppid, []);
    kids.get(s.ppid).push(s.pid);
  }
  const out = [];
  const todo = stats.has(root) ? [root] : [];
  while (todo.length) {
    const pid = todo.pop();
    out.push(pid);
    todo.push(...(kids.get(pid) ?? []));
  }
  return out;
}

/**
 * CPU seconds used so far by `root`'s process tree: utime + stime of every live member plus cutime + cstime
 * of each (so a child that exited and was reaped, e.g. a PostgreSQL backend, still counts). Differences of
 * two readings give the tree's CPU over an interval. `undefined` when `root` is gone or there is no /proc.
 */
export function treeCpu(root) {
  if (!HAS_PROC || !root) return undefined;
  const stats = allStats();
  const pids = processTree(root, stats);
  if (pids.length === 0) return undefined;
  let seconds = 0;
  for (const pid of pids) {
    const s = stats.get(pid);
    seconds += s.self + s.children;
  }
  return { seconds, processes: pids.length, at: performance.now() };
}

/** A tree's CPU between two treeCpu() readings, as seconds and as cores (CPU seconds / wall seconds). */
export function cpuDelta(before, after) {
  if (!before || !after) return undefined;
  const seconds = Math.max(0, after.seconds - before.seconds);
  const wall = (after.at - before.at) / 1000;
  return { seconds, wall, cores: wall > 0 ? seconds / wall : NaN };
}

/** VmRSS of one process, bytes (undefined when it is gone). */
export function rssBytes(pid) {
  if (!HAS_PROC) return undefined;
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** RSS of a primary and each of its direct children (the cluster workers): { primary, workers: [bytes] }. */
export function clusterRss(primary) {
  if (!HAS_PROC || !primary) return undefined;
  const stats = allStats();
  const workers = [...stats.values()].filter((s) => s.ppid === primary).map((s) => s.pid).sort((a, b) => a - b);
  return { primary: rssBytes(primary), workers: workers.map((pid) => ({ pid, bytes: rssBytes(pid) })) };
}

/** The pid of the postmaster that owns a PostgreSQL data dir (first line of postmaster.pid), if live. */
export function postmasterPid(dataDir) {
  try {
    const pid = Number(readFileSync(`${dataDir}/postmaster.pid`, 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 && procStat(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * CPU seconds the whole machine has been busy (user + nice + system + irq + softirq over all cores, from
 * the first line of /proc/stat; steal and iowait excluded), for the "rest of the machine" share of a load.
 */
export function machineBusy() {
  if (!HAS_PROC) return undefined;
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, , , irq, softirq] = f;
    return { seconds: (user + nice + system + irq + softirq) / CLK_TCK, at: performance.now() };
  } catch {
    return undefined;
  }
}

/** The direct children of `primary` (the cluster's HTTP workers). */
function workerPids(primary) {
  return [...allStats().values()].filter((s) => s.ppid === primary).map((s) => s.pid);
}

/**
 * CPU seconds of the HTTP workers' main threads only (the event loops): /proc/<pid>/task/<pid>/stat of each
 * direct child of `primary`, whose tid equals its pid. Scoring threads, GC helpers and libuv's pool are
 * left out, so the difference of two readings is what the load cost the event loops themselves.
 */
export function eventLoopCpu(primary) {
  if (!HAS_PROC || !primary) return undefined;
  const workers = workerPids(primary);
  let seconds = 0;
  // A worker that exited between the scan and the read has no stat: it adds nothing.
  for (const pid of workers) seconds += readStat(`/proc/${pid}/task/${pid}/stat`, pid)?.self ?? 0;
  return { seconds, processes: workers.length, at: performance.now() };
}

/**
 * Scheduler time of the HTTP workers' threads (/proc/<pid>/task/<tid>/schedstat: ns on a CPU, ns runnable
 * but waiting for one), in two groups: the event loops (tid = pid) and the scoring threads (named
 * "scoring" by src/scoring-worker/task.ts, whatever SCORING_THREAD_NICE gave them). The waiting time is
 * what preemption took from them: a thread's wall time beyond its CPU time that was not its own sleeping.
 * Undefined without schedstats.
 */
export function schedTimes(primary) {
  if (!HAS_SCHEDSTAT || !primary) return undefined;
  const out = { loop: { run: 0, wait: 0 }, scoring: { run: 0, wait: 0 }, at: performance.now() };
  for (const pid of workerPids(primary)) {
    let tids;
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue; // exited since the scan
    }
    for (const tid of tids) {
      try {
        const group = Number(tid) === pid ? out.loop : readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim() === 'scoring' ? out.scoring : undefined;
        if (!group) continue;
        const [run, wait] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').trim().split(' ').map(Number);
        group.run += run / 1e9;
        group.wait += wait / 1e9;
      } catch {
        // A thread that ended since the listing adds nothing (the scoring threads and event loops live on).
      }
    }
  }
  return out;
}

/** Seconds on a CPU and runnable-but-waiting of each group between two schedTimes readings. */
export function schedDelta(before, after) {
  if (!before || !after) return undefined;
  const d = (g) => ({ run: after[g].run - before[g].run, wait: after[g].wait - before[g].wait });
  return { loop: d('loop'), scoring: d('scoring'), wall: (after.at - before.at) / 1000 };
}

let generatorsInFlight = 0;
const reapedCpu = () => procStat('self')?.children;

/**
 * Runs a load generator (wrk, vegeta) as a child process to its end and measures its CPU: read from
 * /proc/<pid>/stat while it runs and, exactly, from this process's cutime/cstime once it has been reaped —
 * unless another generator ran meanwhile (one count for every kind: their reaped CPU lands in the same
 * field). Resolves { code, stdout, stderr, wall (s), cpuSeconds, exact }.
 */
export async function runGenerator(bin, args) {
  generatorsInFlight += 1;
  const alone = generatorsInFlight === 1;
  const reapedBefore = reapedCpu();
  const started = performance.now();
  let stdout = '';
  let stderr = '';
  let lastSample; // CPU seconds of the child, last reading before it exited
  try {
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const sampler = setInterval(() => {
      const s = procStat(child.pid);
      if (s && s.state !== 'Z') lastSample = s.self;
    }, 100);
    const code = await new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (c, signal) => resolve(c ?? signal));
    }).finally(() => clearInterval(sampler));
    const wall = (performance.now() - started) / 1000;
    const reaped = alone && generatorsInFlight === 1 && reapedBefore !== undefined ? reapedCpu() - reapedBefore : undefined;
    const cpuSeconds = reaped !== undefined && reaped >= (lastSample ?? 0) ? reaped : lastSample;
    return { code, stdout, stderr, wall, cpuSeconds, exact: cpuSeconds !== undefined && cpuSeconds === reaped };
  } finally {
    generatorsInFlight -= 1;
  }
}
