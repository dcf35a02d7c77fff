/** Child processes of a bench run: the service (dist/main.js), the ceiling server, redis-server. */
import { spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { ROOT } from './pg.mjs';

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Spawns `args` with node and waits until its output contains `readyText`. */
async function spawnUntil(args, env, readyText, label) {
  let output = '';
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', (d) => (output = (output + d).slice(-200_000)));
  child.stderr.on('data', (d) => (output = (output + d).slice(-200_000)));
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
  const deadline = Date.now() + 180_000;
  while (!output.includes(readyText)) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${label} exited early:\n${output.slice(-4000)}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${label} did not become ready:\n${output.slice(-4000)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    child,
    output: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

/** The real service, clustered, against the bench database. `env` overrides the bench defaults. */
export async function startService({ databaseUrl, workers, env = {}, execArgv = [] }) {
  const port = await freePort();
  // Node flags go on the command line (NODE_OPTIONS refuses --cpu-prof); cluster workers inherit them.
  const proc = await spawnUntil(
    [...execArgv, path.join(ROOT, 'dist/main.js')],
    {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      PORT: String(port),
      HOST: '127.0.0.1',
      WORKERS: String(workers),
      DATABASE_URL: databaseUrl,
      SEED_ON_START: 'false',
      LOG_LEVEL: 'warn',
      // The similar-titles job (the primary, ~37 s and a core at 1M users) would run beside every scenario:
      // a scenario's service lives shorter than the job, so it never finishes and restarts each time.
      SIMILAR_REFRESH_S: '0',
      ...env,
    },
    // LOG_LEVEL=warn hides the "service ready" line: the primary tells readiness by IPC to pm2 only, so
    // the bench polls /ready instead (below) after the process is up.
    '',
    'service',
  );
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 180_000;
  for (;;) {
    const r = await get(`${url}/ready`).catch(() => undefined);
    if (r?.status === 200 && (await allWorkersAnswer(url, workers))) break;
    if (proc.child.exitCode !== null) throw new Error(`service exited early:\n${proc.output().slice(-4000)}`);
    if (Date.now() > deadline) {
      await proc.stop();
      throw new Error(`service did not become ready:\n${proc.output().slice(-4000)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  await trainedModel(url, env.MODEL ?? 'auto', proc);
  return { ...proc, url, port, pid: proc.child.pid };
}

/**
 * A learned MODEL trains in the background on a fresh bench database (once: the model is stored, and later
 * services load it): measuring before it is in would time the seed's formula beside a training run.
 */
async function trainedModel(url, model, proc) {
  if (model === 'heuristic' || model === 'popularity') return;
  const deadline = Date.now() + 30 * 60_000;
  let said = false;
  for (;;) {
    const r = await get(`${url}/metrics`).catch(() => undefined);
    const versions = [...(r?.text ?? '').matchAll(/^model_version\{[^}]*\} (\d+)/gm)].map((m) => Number(m[1]));
    if (versions.length > 0 && versions.every((v) => v > 0)) return;
    if (proc.child.exitCode !== null) throw new Error(`service exited while training:\n${proc.output().slice(-4000)}`);
    if (Date.now() > deadline) throw new Error('no trained model after 30 minutes');
    if (!said) process.stderr.write(`  waiting for MODEL=${model} to be trained (first run on this database only)\n`);
    said = true;
    await new Promise((res) => setTimeout(res, 1000));
  }
}

/** Every worker listens once the primary says ready; /metrics shows one process series per worker. */
async function allWorkersAnswer(url, workers) {
  const r = await get(`${url}/metrics`).catch(() => undefined);
  if (!r || r.status !== 200) return false;
  const seen = new Set([...r.text.matchAll(/^process_resident_memory_bytes\{[^}]*worker="(\d+)"/gm)].map((m) => m[1]));
  return seen.size >= workers;
}

/** The bare-uWS ceiling: same binary, same worker count, a fixed body. */
export async function startCeiling({ workers, bodyFile }) {
  const port = await freePort();
  const proc = await spawnUntil(
    [path.join(ROOT, 'bench/ceiling.mjs')],
    { PATH: process.env.PATH ?? '', CEILING_PORT: String(port), CEILING_WORKERS: String(workers), CEILING_BODY_FILE: bodyFile },
    'ceiling ready',
    'ceiling',
  );
  return { ...proc, url: `http://127.0.0.1:${port}` };
}

/** A throwaway redis-server (no persistence) for the scenarios that use Redis. */
export async function startRedis() {
  const port = await freePort();
  let output = '';
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const failed = new Promise((resolve) => {
    child.once('error', resolve);
    child.once('exit', () => resolve(new Error(`redis-server exited:\n${output}`)));
  });
  const deadline = Date.now() + 10_000;
  while (!output.includes('Ready to accept connections')) {
    const early = await Promise.race([failed, new Promise((r) => setTimeout(() => r(undefined), 50))]);
    if (early) throw early;
    if (Date.now() > deadline) throw new Error(`redis-server did not start:\n${output}`);
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    pid: child.pid,
    async flush() {
      await new Promise((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1', () => s.write('FLUSHALL\r\n'));
        s.on('data', () => (s.destroy(), resolve()));
        s.on('error', reject);
      });
    },
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

const agent = new http.Agent({ keepAlive: false });

/** One plain GET (a fresh connection each time: spreads over the workers like new clients do). */
export function get(url, { method = 'GET', body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent, headers: body ? { 'content-type': 'application/json' } : {} }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(30_000, () => req.destroy(new Error(`timeout: ${url}`)));
    if (body) req.write(body);
    req.end();
  });
}

/** Prometheus text → { 'name{labels}': value }. */
export async function scrape(url) {
  const r = await get(`${url}/metrics`);
  const out = new Map();
  for (const line of r.text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

/** Sum of every series of `name` (any labels) whose labels include all of `match`. */
export function sum(metrics, name, match = {}) {
  let total = 0;
  for (const [key, value] of metrics) {
    const brace = key.indexOf('{');
    const n = brace < 0 ? key : key.slice(0, brace);
    if (n !== name) continue;
    if (Object.entries(match).every(([k, v]) => key.includes(`${k}="${v}"`))) total += value;
  }
  return total;
}

/** Per-worker values of a gauge labelled `worker`. */
export function perWorker(metrics, name) {
  const out = {};
  for (const [key, value] of metrics) {
    if (!key.startsWith(`${name}{`)) continue;
    const m = /worker="([^"]+)"/.exec(key);
    if (m) out[m[1]] = value;
  }
  return out;
}
