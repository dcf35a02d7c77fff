#!/usr/bin/env node
/**
 * Observability smoke test, end to end with real binaries: starts the service (embedded PostgreSQL, or
 * DATABASE_URL; REDIS_URL, else a private redis-server when one is on PATH, else no Redis), starts a real
 * `prometheus` scraping it every second on free ports,
 * drives mixed traffic, then asks Prometheus' HTTP API for the request rate (and a few other series the
 * dashboard shows) and prints them. Exits non-zero when the rate query returns nothing; stops every
 * process it started and removes its temporary files.
 *
 *   npm run obs:smoke
 *   npm run obs:smoke -- --seconds 120 --render docs/dashboard.png   # also plots the dashboard panels
 *
 * Needs `prometheus` on PATH (Debian: apt-get install prometheus) or PROMETHEUS_BIN.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : fallback;
};
const SECONDS = Number(option('seconds', process.env.OBS_SMOKE_SECONDS ?? '20'));
const RENDER = option('render', undefined);
const PROMETHEUS = process.env.PROMETHEUS_BIN ?? 'prometheus';
const CONCURRENCY = 8;

const children = [];
const tmp = mkdtempSync(path.join(os.tmpdir(), 'obs-smoke-'));
chmodSync(tmp, 0o755); // as root the embedded PostgreSQL runs as `postgres`, which must reach its data dir
let cleaning;

function log(message) {
  process.stderr.write(`[obs:smoke] ${message}\n`);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Starts a child, keeps its output for failure reports, resolves once `ready(output)` holds. */
function start(name, command, argv, env, ready, timeoutMs) {
  const child = spawn(command, argv, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const entry = { name, child, output: '' };
  children.push(entry);
  child.stdout.on('data', (d) => (entry.output += d));
  child.stderr.on('data', (d) => (entry.output += d));
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + timeoutMs;
    child.once('error', (err) => reject(new Error(`${name}: ${err.message}`)));
    const poll = async () => {
      if (child.exitCode !== null) return reject(new Error(`${name} exited with ${child.exitCode}:\n${entry.output.slice(-4000)}`));
      if (await ready(entry.output)) return resolve(entry);
      if (Date.now() > deadline) return reject(new Error(`${name} not ready after ${timeoutMs} ms:\n${entry.output.slice(-4000)}`));
      setTimeout(poll, 100);
    };
    poll();
  });
}

/** Stops children in reverse order: SIGTERM, then SIGKILL after 30 s. */
async function cleanup() {
  cleaning ??= (async () => {
    for (const { name, child } of children.reverse()) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      await new Promise((resolve) => {
        const force = setTimeout(() => {
          log(`${name} did not stop in 30 s: SIGKILL`);
          child.kill('SIGKILL');
        }, 30_000);
        child.once('exit', () => {
          clearTimeout(force);
          resolve();
        });
        child.kill('SIGTERM');
      });
    }
    rmSync(tmp, { recursive: true, force: true });
  })();
  return cleaning;
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    log(`${signal}: cleaning up`);
    cleanup().finally(() => process.exit(130));
  });
}

const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });

function request(port, method, urlPath, body, fresh = false) {
  return new Promise((resolve) => {
    const req = http.request(
      { host: '127.0.0.1', port, method, path: urlPath, agent: fresh ? false : agent, headers: body ? { 'content-type': 'application/json' } : {} },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        res.on('error', () => resolve({ status: 0, text: '' }));
      },
    );
    req.on('error', () => resolve({ status: 0, text: '' }));
    req.end(body);
  });
}

async function getJson(port, urlPath) {
  const r = await request(port, 'GET', urlPath, undefined, true);
  try {
    return JSON.parse(r.text);
  } catch {
    return undefined;
  }
}

/** Mixed traffic: mostly cache-friendly reads, some batch pages, writes, health checks and 404s. */
async function drive(port, seconds) {
  const until = Date.now() + seconds * 1000;
  const counts = new Map();
  let n = 0;
  const pick = (max) => 1 + Math.floor(Math.random() * max);
  const one = async () => {
    while (Date.now() < until) {
      n += 1;
      const roll = Math.random();
      // A fresh connection now and then spreads the load over both workers (SO_REUSEPORT hashes connections).
      const fresh = n % 50 === 0;
      let r;
      if (roll < 0.82) r = await request(port, 'GET', `/users/${pick(20)}/recommendations?limit=${pick(20)}`, undefined, fresh);
      else if (roll < 0.86) r = await request(port, 'GET', `/recommendations/batch?page=${pick(2)}&limit=10`, undefined, fresh);
      else if (roll < 0.90) r = await request(port, 'POST', `/users/${pick(20)}/watch-history`, JSON.stringify({ content_id: pick(50) }), fresh);
      else if (roll < 0.95) r = await request(port, 'GET', '/health', undefined, fresh);
      else if (roll < 0.98) r = await request(port, 'GET', `/users/${pick(20) + 1000}/recommendations`, undefined, fresh);
      else r = await request(port, 'GET', '/users/x/recommendations', undefined, fresh);
      counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, one));
  return Object.fromEntries([...counts].sort());
}

async function query(promPort, expr) {
  const body = await getJson(promPort, `/api/v1/query?query=${encodeURIComponent(expr)}`);
  return body?.status === 'success' ? body.data.result : [];
}

async function main() {
  if (spawnSync(PROMETHEUS, ['--version']).error) {
    log(`'${PROMETHEUS}' not found: install Prometheus (Debian: apt-get install prometheus) or set PROMETHEUS_BIN`);
    return 2;
  }
  const [port, promPort, pgPort, redisPort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  let redisUrl = process.env.REDIS_URL;
  if (!redisUrl && !spawnSync('redis-server', ['--version']).error) {
    log(`starting redis-server on 127.0.0.1:${redisPort}`);
    await start(
      'redis-server',
      'redis-server',
      ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { PATH: process.env.PATH ?? '' },
      (out) => out.includes('Ready to accept connections'),
      30_000,
    );
    redisUrl = `redis://127.0.0.1:${redisPort}`;
  }
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? tmp,
    TMPDIR: process.env.TMPDIR ?? os.tmpdir(),
    PORT: String(port),
    HOST: '127.0.0.1',
    WORKERS: process.env.WORKERS ?? '2',
    LOG_LEVEL: 'info', // "service ready" is an info line
    DATA_DIR: path.join(tmp, 'data'),
    EMBEDDED_PG_PORT: String(pgPort),
    ...(process.env.DATABASE_URL ? { DATABASE_URL: process.env.DATABASE_URL } : {}),
    ...(redisUrl ? { REDIS_URL: redisUrl } : {}),
  };
  log(`starting the service on 127.0.0.1:${port} (${env.DATABASE_URL ? 'DATABASE_URL' : 'embedded PostgreSQL'}, ${redisUrl ? 'Redis' : 'no Redis'})`);
  await start('service', process.execPath, [path.join(ROOT, 'dist/main.js')], env, (out) => out.includes('"service ready"'), 180_000);

  const config = path.join(tmp, 'prometheus.yml');
  writeFileSync(
    config,
    [
      'global:',
      '  scrape_interval: 1s',
      '  evaluation_interval: 1s',
      'scrape_configs:',
      '  - job_name: recommendation-service',
      '    scrape_interval: 1s',
      '    scrape_timeout: 900ms',
      '    metrics_path: /metrics',
      '    static_configs:',
      `      - targets: ['127.0.0.1:${port}']`,
      '',
    ].join('\n'),
  );
  log(`starting prometheus on 127.0.0.1:${promPort}`);
  await start(
    'prometheus',
    PROMETHEUS,
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${path.join(tmp, 'prometheus')}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
      '--log.level=warn',
    ],
    { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? tmp },
    async () => (await request(promPort, 'GET', '/-/ready', undefined, true)).status === 200,
    60_000,
  );

  const startedAt = Date.now() / 1000;
  log(`driving traffic for ${SECONDS} s`);
  const statuses = await drive(port, SECONDS);
  log(`responses by status: ${JSON.stringify(statuses)}`);

  // Two scrapes after the traffic at least, so rate() over 30 s sees it.
  const rateExpr = 'sum(rate(http_requests_total[30s]))';
  let rate = [];
  for (let i = 0; i < 30 && !(Number(rate[0]?.value?.[1]) > 0); i++) {
    await new Promise((r) => setTimeout(r, 1000));
    rate = await query(promPort, rateExpr);
  }
  const targets = await getJson(promPort, '/api/v1/targets');
  const target = targets?.data?.activeTargets?.[0];
  console.log(`target ${target?.scrapeUrl ?? '?'}: health=${target?.health ?? '?'} lastError=${JSON.stringify(target?.lastError ?? '')}`);
  console.log(`${rateExpr} = ${rate.length ? Number(rate[0].value[1]).toFixed(2) : '(no data)'}`);
  for (const expr of [
    'sum by (route) (rate(http_requests_total[30s]))',
    'sum by (tier) (rate(cache_lookups_total{result="hit"}[30s])) / sum by (tier) (rate(cache_lookups_total[30s]))',
    'histogram_quantile(0.95, sum by (le, route) (rate(http_request_duration_seconds_bucket[30s])))',
    'histogram_quantile(0.95, sum by (le) (rate(model_call_duration_seconds_bucket[30s])))',
    'sum by (result) (increase(model_calls_total[1m]))',
    'sum by (query) (rate(db_query_duration_seconds_count[30s]))',
    'sum by (status) (increase(batch_users_total[1m]))',
    'max by (worker) (nodejs_eventloop_lag_p99_seconds)',
  ]) {
    const result = await query(promPort, expr);
    const shown = result.map((s) => `${JSON.stringify(s.metric)}=${Number(s.value[1]).toPrecision(4)}`).join(' ');
    console.log(`${expr}\n  ${shown || '(no data)'}`);
  }

  if (RENDER) {
    const out = path.resolve(RENDER);
    log(`rendering the dashboard panels to ${out}`);
    const r = spawnSync(
      'python3',
      [
        path.join(ROOT, 'scripts/render-dashboard.py'),
        '--prometheus', `http://127.0.0.1:${promPort}`,
        '--dashboard', path.join(ROOT, 'grafana/dashboards/recommendation-service.json'),
        '--start', String(startedAt),
        '--end', String(Date.now() / 1000),
        '--out', out,
      ],
      { stdio: 'inherit' },
    );
    if (r.status !== 0) log('rendering failed (python3 with matplotlib is needed: pip install matplotlib)');
  }

  const ok = rate.length > 0 && Number(rate[0].value[1]) > 0;
  if (!ok) log(`FAILED: ${rateExpr} returned no data`);
  return ok ? 0 : 1;
}

let code = 1;
try {
  code = await main();
} catch (err) {
  log(`FAILED: ${err instanceof Error ? err.message : String(err)}`);
} finally {
  agent.destroy();
  await cleanup();
}
process.exit(code);
