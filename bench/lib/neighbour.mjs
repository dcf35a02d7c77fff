/**
 * A neighbour process for the big-catalog "neighbour" rows: BUSY_MS of CPU every PERIOD_MS (streaming a
 * catalog-sized array, as scoring does), at the priority it was started with. It stands for the scoring
 * threads' CPU with none of the service in the way: no pool, no hand-off, no placement. What it costs a
 * hit beside it is what scoring this much costs hits on this machine, wherever it runs.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Starts the neighbour; resolves once it runs. stop() ends it. */
export async function startNeighbour({ busyMs, periodMs }) {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url)], {
    env: { ...process.env, NEIGHBOUR_BUSY_MS: String(busyMs), NEIGHBOUR_PERIOD_MS: String(periodMs) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise((resolve, reject) => {
    child.once('error', reject);
    child.stdout.once('data', resolve);
  });
  return {
    pid: child.pid,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', resolve);
        child.kill('SIGTERM');
      }),
  };
}

if (process.env.NEIGHBOUR_BUSY_MS !== undefined && process.argv[1] === fileURLToPath(import.meta.url)) {
  const busy = Number(process.env.NEIGHBOUR_BUSY_MS);
  const period = Number(process.env.NEIGHBOUR_PERIOD_MS);
  // 100k titles × 4 float64 columns, like the catalog a whole-catalog task reads.
  const columns = new Float64Array(400_000).map((_, i) => i % 97);
  let sink = 0;
  let next = performance.now();
  const tick = () => {
    const end = performance.now() + busy;
    while (performance.now() < end) for (let i = 0; i < columns.length; i += 8) sink += columns[i];
    // Evenly spaced like the misses (vegeta's open loop): the next burst at a fixed period from the last.
    next += period;
    setTimeout(tick, Math.max(0, next - performance.now()));
  };
  setTimeout(tick, period);
  process.on('SIGTERM', () => process.exit(sink > 0 ? 0 : 0));
  process.stdout.write('ready\n');
}
