/**
 * One measured load, its summary in the bench's units, driven by the cheapest generator that can run it:
 *
 * - wrk (bench/lib/wrk.mjs) when it is on PATH, for every load that is a fixed list of requests or distinct
 *   users: a C client in its own process, 2 threads;
 * - vegeta (bench/lib/vegeta.mjs) for an offered rate (`overallRate`) when it is on PATH or Go can build it:
 *   requests spread evenly over each second (autocannon's rate sends each second's budget in a burst);
 * - autocannon otherwise, or for loads that need what wrk cannot do here: an offered rate (`overallRate`), a
 *   request count (`amount`), or per-response JavaScript (`onResponse`, a custom `setupRequest`). It runs with
 *   2 worker threads (`workers`) unless the load needs its callbacks to share state with the bench's own
 *   thread (a closure `onResponse`/`setupRequest`), which only the main thread can run.
 *
 * BENCH_GENERATOR=wrk|autocannon forces one (wrk still cannot run the loads above: they stay on autocannon).
 * Every result carries `generator` and `genCpu` ({ seconds, wall, cores }): the generator's CPU over the load.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { VEGETA, vegetaLoad } from './vegeta.mjs';
import { WRK, wrkLoad } from './wrk.mjs';

const FORCED = process.env.BENCH_GENERATOR?.trim().toLowerCase() || undefined;
if (FORCED && FORCED !== 'wrk' && FORCED !== 'autocannon') throw new Error(`BENCH_GENERATOR must be wrk or autocannon (got "${FORCED}")`);
if (FORCED === 'wrk' && !WRK) throw new Error('BENCH_GENERATOR=wrk, but wrk is not on PATH (Debian/Ubuntu: apt-get install wrk)');
/** The generator of every load wrk can run: 'wrk' or 'autocannon'. */
export const GENERATOR = FORCED ?? (WRK ? 'wrk' : 'autocannon');
export const WRK_VERSION = WRK?.version;
export { VEGETA };
/** Worker threads of autocannon runs that allow them. */
const AUTOCANNON_WORKERS = 2;
const DISTINCT_MODULE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'distinct-users.cjs');

/** Response times, ms as floats: autocannon's own histogram keeps whole milliseconds only. */
class Latencies {
  values = new Float64Array(1 << 16);
  n = 0;
  add(ms) {
    if (this.n === this.values.length) {
      const grown = new Float64Array(this.values.length * 2);
      grown.set(this.values);
      this.values = grown;
    }
    this.values[this.n++] = ms;
  }
  percentiles() {
    const sorted = this.values.subarray(0, this.n).sort();
    const at = (q) => (this.n === 0 ? NaN : sorted[Math.min(this.n - 1, Math.floor(q * this.n))]);
    return { p50: at(0.5), p99: at(0.99), max: this.n ? sorted[this.n - 1] : NaN };
  }
}

/** Why a load cannot run on wrk, or undefined when it can. */
function needsAutocannon({ amount, overallRate, requests }) {
  if (amount) return 'amount';
  if (overallRate) return 'overallRate';
  if (requests.some((r) => typeof r.onResponse === 'function')) return 'onResponse';
  if (requests.some((r) => typeof r.setupRequest === 'function' && !r.distinct)) return 'setupRequest';
  if (requests.some((r) => r.distinct) && requests.length > 1) return 'mixed requests';
  return undefined;
}

/**
 * `requests`: request objects cycled through (autocannon: by each connection; wrk: by each thread), or
 * distinctUsers(); `overallRate` caps the offered load (req/s); `amount` ends the load after that many
 * requests; `mainThread` keeps an autocannon load on this thread (when the moment requests leave matters more than
 * what the generator costs). Resolves { rps, p50, p99, max (ms), non2xx, errors, total, seconds, generator, genCpu }.
 */
export function load(opts) {
  const why = needsAutocannon(opts);
  if (why === 'overallRate' && VEGETA && !opts.requests.some((r) => typeof r.onResponse === 'function')) return vegetaLoad(opts);
  if (GENERATOR === 'wrk' && !why) {
    const distinct = opts.requests[0].distinct;
    return wrkLoad({ ...opts, distinct });
  }
  const threadsShareState = why === 'onResponse' || why === 'setupRequest';
  return autocannonLoad({ ...opts, workers: threadsShareState || opts.mainThread ? 0 : Math.min(AUTOCANNON_WORKERS, opts.connections) });
}

let acInFlight = 0;

/**
 * autocannon in this process: on the main thread (`workers` 0; latencies of every response at microsecond
 * resolution) or on `workers` worker threads (connections, amount and rate split between them; autocannon
 * then reports its own histogram: whole milliseconds, 2xx responses only). Generator CPU is this process's
 * (main thread + autocannon's threads) over the load; `shared` when another autocannon load ran meanwhile.
 */
function autocannonLoad({ url, connections, duration, amount, requests, timeout = 10, overallRate, workers }) {
  return new Promise((resolve, reject) => {
    const latencies = new Latencies();
    const inWorkers = workers > 1;
    const reqs = inWorkers
      ? requests.map((r) => {
          const { setupRequest, onResponse, distinct, ...plain } = r;
          return distinct ? { ...plain, distinct: { ...distinct, workers }, setupRequest: DISTINCT_MODULE } : plain;
        })
      : requests;
    acInFlight += 1;
    let shared = acInFlight > 1;
    const sharing = setInterval(() => (shared ||= acInFlight > 1), 100);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const instance = autocannon(
      {
        url,
        connections,
        ...(amount ? { amount } : { duration }),
        requests: reqs,
        timeout,
        pipelining: 1,
        ...(overallRate ? { overallRate: inWorkers ? Math.max(1, Math.round(overallRate / workers)) : overallRate } : {}),
        ...(inWorkers ? { workers } : {}),
      },
      (err, result) => {
        const cpu = process.cpuUsage(cpu0);
        const wall = (performance.now() - t0) / 1000;
        clearInterval(sharing);
        shared ||= acInFlight > 1;
        acInFlight -= 1;
        if (err) return reject(err);
        const total = result['1xx'] + result['2xx'] + result['3xx'] + result['4xx'] + result['5xx'];
        const seconds = result.duration;
        const cpuSeconds = (cpu.user + cpu.system) / 1e6;
        resolve({
          rps: total / seconds,
          ...(inWorkers ? { p50: result.latency.p50, p99: result.latency.p99, max: result.latency.max } : latencies.percentiles()),
          non2xx: result.non2xx,
          errors: result.errors + result.timeouts,
          total,
          seconds,
          generator: inWorkers ? `autocannon×${workers}` : 'autocannon×1',
          genCpu: { seconds: cpuSeconds, wall, cores: cpuSeconds / wall, shared },
          ...(result.non2xx > 0
            ? { statuses: Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).filter(([code]) => !code.startsWith('2')).map(([code, v]) => [code, v.count])) }
            : {}),
          ...(inWorkers ? { latencyResolution: 'ms' } : {}),
        });
      },
    );
    instance.on('error', () => {});
    if (!inWorkers) instance.on('response', (_client, _status, _bytes, ms) => latencies.add(ms));
  });
}

/** Paths cycled through: the seed's single-user mix, users × limits. */
export function userMix(users, limits) {
  const out = [];
  for (const u of users) for (const l of limits) out.push({ method: 'GET', path: `/users/${u}/recommendations?limit=${l}` });
  return out;
}

/**
 * One request object that asks for a different user every time (ids from `first` upward, wrapping after
 * `count`). `distinct` describes it to wrk and to autocannon's worker threads; `setupRequest` is the same
 * rule for autocannon on the main thread.
 */
export function distinctUsers(first, count, limit = 10) {
  let next = 0;
  return [
    {
      method: 'GET',
      path: `/users/${first}/recommendations?limit=${limit}`,
      distinct: { first, count, limit },
      setupRequest: (req) => {
        const user = first + (next++ % count);
        return { ...req, path: `/users/${user}/recommendations?limit=${limit}` };
      },
    },
  ];
}
