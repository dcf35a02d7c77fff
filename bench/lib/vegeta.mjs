/**
 * Offered-rate loads driven by vegeta (Go, open loop): requests leave on a steady schedule, R per second
 * spread evenly, whatever the responses do. autocannon's `overallRate` is not that: each connection may send
 * its share of a second's budget back to back as soon as the second starts, then waits for the next second
 * (node_modules/autocannon/lib/httpClient.js, `reqsMadeThisSecond`), so "100 req/s" arrived as one burst per
 * second and a "10,000 req/s" probe saturated the service for the first part of every second.
 *
 * vegeta is found on PATH or in bench/.bin; when it is absent and Go is installed it is built there once
 * (`go install`, the pinned version below). Without either, rate loads stay on autocannon and say so.
 * Latencies are vegeta's (from the moment each request was sent, ns resolution); generator CPU as for wrk
 * (runGenerator in proc.mjs).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runGenerator } from './proc.mjs';

const MODULE = 'github.com/tsenart/vegeta/v12';
export const VEGETA_VERSION = 'v12.13.0';
const BIN_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '.bin');

function works(bin) {
  const r = spawnSync(bin, ['-version'], { encoding: 'utf8' });
  return !r.error && r.status === 0;
}

/** The vegeta binary (PATH, bench/.bin, or built into bench/.bin with Go), or undefined. */
export const VEGETA = (() => {
  if (process.env.BENCH_GENERATOR?.trim().toLowerCase() === 'autocannon') return undefined;
  if (works('vegeta')) return 'vegeta';
  const local = path.join(BIN_DIR, 'vegeta');
  if (existsSync(local) && works(local)) return local;
  if (spawnSync('go', ['version']).error) return undefined;
  mkdirSync(BIN_DIR, { recursive: true });
  process.stderr.write(`bench: building vegeta ${VEGETA_VERSION} into bench/.bin (go install)\n`);
  const r = spawnSync('go', ['install', `${MODULE}@${VEGETA_VERSION}`], { env: { ...process.env, GOBIN: BIN_DIR }, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (r.status !== 0) {
    process.stderr.write(`bench: could not build vegeta (${r.stderr?.trim().split('\n').at(-1)}); rate loads use autocannon\n`);
    return undefined;
  }
  return works(local) ? local : undefined;
})();

/** vegeta's http target format: one "METHOD url" line per request, cycled in order. */
function targets(url, requests) {
  const base = url.replace(/\/$/, '');
  const d = requests[0]?.distinct;
  if (d) return Array.from({ length: d.count }, (_, i) => `GET ${base}/users/${d.first + i}/recommendations?limit=${d.limit}`).join('\n\n');
  return requests.map((r) => `${r.method ?? 'GET'} ${base}${r.path}`).join('\n\n');
}

/**
 * One load at `overallRate` req/s for `duration` s. `connections` is not passed on: capping vegeta's
 * connections makes a request that finds them all busy wait for one, and that wait counts as latency
 * (p99 0.9 ms uncapped vs 2.7 ms at 16 against the bare-uWS ceiling at 2,000 req/s); open loop means a
 * request leaves on time. Resolves the shape of load() in load.mjs.
 */
export async function vegetaLoad({ url, duration, requests, overallRate, timeout = 10 }) {
  if (!VEGETA) throw new Error('vegeta is not available');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-vegeta-'));
  const targetFile = path.join(dir, 'targets.txt');
  const resultFile = path.join(dir, 'results.bin');
  writeFileSync(targetFile, `${targets(url, requests)}\n`);
  const args = [
    'attack', `-rate=${Math.round(overallRate)}/1s`, `-duration=${Math.max(1, Math.round(duration))}s`, `-targets=${targetFile}`,
    `-timeout=${timeout}s`, '-max-body=0', '-http2=false', `-output=${resultFile}`,
  ];
  try {
    const { code, stderr, wall, cpuSeconds } = await runGenerator(VEGETA, args);
    if (code !== 0) throw new Error(`vegeta exited with ${code}:\n${stderr}`.slice(0, 4000));
    const report = spawnSync(VEGETA, ['report', '-type=json', resultFile], { encoding: 'utf8', maxBuffer: 64 << 20 });
    if (report.status !== 0) throw new Error(`vegeta report failed: ${report.stderr}`);
    const r = JSON.parse(report.stdout);
    const codes = r.status_codes ?? {};
    const total = r.requests;
    const ok = Object.entries(codes).filter(([c]) => c.startsWith('2')).reduce((a, [, n]) => a + n, 0);
    const failed = codes['0'] ?? 0; // vegeta's code 0: no response (connection error, timeout)
    const seconds = r.duration / 1e9;
    return {
      rps: total / seconds,
      p50: r.latencies['50th'] / 1e6,
      p99: r.latencies['99th'] / 1e6,
      max: r.latencies.max / 1e6,
      non2xx: total - ok - failed,
      errors: failed,
      total,
      seconds,
      generator: 'vegeta',
      genCpu: cpuSeconds === undefined ? undefined : { seconds: cpuSeconds, wall, cores: cpuSeconds / wall },
      ...(total - ok - failed > 0 ? { statuses: Object.fromEntries(Object.entries(codes).filter(([c]) => !c.startsWith('2') && c !== '0')) } : {}),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
