#!/usr/bin/env node
/**
 * Checks the claim behind L1_MAX_BYTES: with L1 full at the bound, a worker's RSS stays within the bound
 * plus its idle footprint, +20 %. Two measurements:
 *
 * 1. Per list (a child `node --expose-gc`): heap retained per cached list, built the way the service
 *    builds them (a model list cloned back from the scoring thread with titles shared with the catalog,
 *    or a list parsed from Redis with strings of its own), stored in the real RecommendationCache, with
 *    the bodies the wire layer (src/http/bodies.ts) attaches: none, limits 10 and 50, four small limits,
 *    or every limit from 50 down to 1.
 *    Printed beside estimateBytes() of the same lists.
 * 2. The real service (`node dist/main.js`, WORKERS=1, L1_MAX_ENTRIES far above what the bytes admit,
 *    MODEL_LATENCY_MS=0) for each bound: the worker's RSS once idle (catalog loaded, miss path run on
 *    unknown users, nothing cached), then after enough distinct users to overfill L1 `--overfill` times
 *    (each asked limit=10 twice and limit=50 once, so the miss, the fragments and two hit bodies exist),
 *    read from /proc/<pid>/status and /metrics. Nothing is forced (no GC).
 *
 * Database: DATABASE_URL if set; else the bench's 1M-user database (bench/.data under L1_BENCH_ROOT,
 * default this checkout, e.g. L1_BENCH_ROOT=/work/main) when it is seeded and nothing listens on its
 * port; else a temporary embedded PostgreSQL seeded with --users/--content/--events (removed afterwards).
 *
 *   npm run build && node scripts/l1-bound.mjs [--mib 32,128] [--overfill 3] [--trace-gc] [--node-flags '…']
 *   node scripts/l1-bound.mjs --per-list-only [--samples lists.json]   (a JSON array of limit=50 responses)
 *
 * --trace-gc logs the worker's own full GCs (it causes none) and prints the last ones: the live heap then.
 * --node-flags: V8/node flags for the service (the cluster worker inherits them), e.g. a heap growing cap.
 *
 * A measurement, not a benchmark: 8 connections, one worker; it takes a minute or two.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import { freePort } from '../bench/lib/service.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MiB = 1024 * 1024;

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
const flag = (name) => process.argv.includes(`--${name}`);
const mib = (bytes) => (bytes / MiB).toFixed(1);

if (flag('child-per-list')) {
  await perListChild(arg('samples'), Number(arg('n', '3000')));
  process.exit(0);
}

const BOUNDS_MIB = arg('mib', '32,128').split(',').map(Number);
const OVERFILL = Number(arg('overfill', '3'));
const CONCURRENCY = 8;
/** Lists per bound: OVERFILL × bound / this. Below any list's real size, so L1 overfills at least OVERFILL times. */
const MIN_LIST_BYTES = 8 * 1024;

if (flag('per-list-only') && arg('samples')) {
  await perList(arg('samples'));
  process.exit(0);
}

const db = await database();
const samples = path.join(mkdtempSync(path.join(os.tmpdir(), 'l1-bound-')), 'lists.json');
try {
  const results = [];
  for (const boundMib of BOUNDS_MIB) {
    results.push(await serviceRun(db.url, boundMib * MiB, boundMib === BOUNDS_MIB[0] ? samples : undefined));
    if (flag('per-list-only')) break;
  }
  console.log('\nper-list heap (node --expose-gc, real RecommendationCache + bodies.ts):');
  await perList(samples);
  if (!flag('per-list-only')) {
    console.log('\nservice (WORKERS=1, L1 full at the bound, nothing forced; MiB):');
    console.log(
      'bound | idle RSS | after RSS | settled RSS (+20 s) | idle + 1.2×bound | after ok | settled ok | heapUsed idle → after → settled' +
        (flag('trace-gc') ? ' | live at own full GC: idle → last (Δ/bound)' : '') +
        ' | non-200',
    );
    for (const r of results) {
      const limit = r.idle.rss + 1.2 * r.bound;
      const row = [
        mib(r.bound),
        mib(r.idle.rss),
        mib(r.after.rss),
        mib(r.settled.rss),
        mib(limit),
        r.after.rss <= limit ? 'yes' : 'NO',
        r.settled.rss <= limit ? 'yes' : 'NO',
        `${mib(r.idle.heapUsed)} → ${mib(r.after.heapUsed)} → ${mib(r.settled.heapUsed)}`,
      ];
      if (flag('trace-gc')) {
        row.push(
          r.live ? `${r.live.idle.toFixed(1)} → ${r.live.last.toFixed(1)} (${((r.live.last - r.live.idle) * MiB / r.bound).toFixed(2)})` : 'no full GC',
        );
      }
      row.push(r.failures);
      console.log(row.join(' | '));
    }
  }
} finally {
  rmSync(path.dirname(samples), { recursive: true, force: true });
  await db.stop();
}

// ---------------------------------------------------------------------------------------------------------

async function database() {
  if (process.env.DATABASE_URL) return { url: process.env.DATABASE_URL, stop: async () => {} };
  const benchRoot = process.env.L1_BENCH_ROOT ?? ROOT;
  const port = Number(process.env.BENCH_PG_PORT ?? 54339);
  const marker = path.join(benchRoot, `bench/.data/dataset-127.0.0.1-${port}-recommendations.json`);
  if (existsSync(marker) && !(await listening(port))) {
    console.log(`database: the bench database ${readFileSync(marker, 'utf8')} (${benchRoot}/bench/.data, port ${port})`);
    const { benchPostgres } = await import(path.join(benchRoot, 'bench/lib/pg.mjs'));
    return benchPostgres(() => {});
  }
  if (existsSync(marker)) console.log(`database: port ${port} is in use (someone runs the bench database): seeding one of our own`);
  const users = Number(arg('users', '300000'));
  const content = Number(arg('content', '1000'));
  const events = Number(arg('events', '3000000'));
  const { startEmbeddedPostgres } = await import(path.join(ROOT, 'dist/data/embedded-postgres.js'));
  const { migrate } = await import(path.join(ROOT, 'dist/data/migrate.js'));
  const { seed } = await import(path.join(ROOT, 'dist/data/seed.js'));
  const { default: postgres } = await import('postgres');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'l1-bound-pg-'));
  chmodSync(dir, 0o755); // as root, PostgreSQL runs as `postgres` and must reach it
  const pg = await startEmbeddedPostgres({
    dataDir: path.join(dir, 'pg'),
    port: await freePort(),
    extraFlags: ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'],
  });
  const sql = postgres(pg.url, { max: 2, onnotice: () => {} });
  try {
    await migrate(sql, 'up');
    console.log(`database: seeding ${users} users, ${content} titles, ${events} events into a temporary PostgreSQL`);
    await seed(sql, { users, content, events });
  } finally {
    await sql.end({ timeout: 5 });
  }
  return {
    url: pg.url,
    async stop() {
      await pg.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function listening(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

/** One service per bound; `samplesPath`: where to write real 50-item lists for the per-list measurement. */
async function serviceRun(databaseUrl, bound, samplesPath) {
  const port = await freePort();
  let output = '';
  // --trace-gc (inherited by the cluster worker): its own full GCs, logged, not caused.
  const execArgs = [...(flag('trace-gc') ? ['--trace-gc'] : []), ...arg('node-flags', '').split(' ').filter(Boolean)];
  const child = spawn(process.execPath, [...execArgs, path.join(ROOT, 'dist/main.js')], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      PORT: String(port),
      HOST: '127.0.0.1',
      DATABASE_URL: databaseUrl,
      WORKERS: '1',
      L1_MAX_ENTRIES: '1000000',
      L1_MAX_BYTES: String(bound),
      MODEL_LATENCY_MS: '0',
      MODEL_FAILURE_RATE: '0',
      SEED_ON_START: 'false',
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    const deadline = Date.now() + 120_000;
    while (!output.includes('"service ready"')) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`service did not start:\n${output}`);
      await sleep(100);
    }
    const pid = Number(/"pid":(\d+),"role":"worker-0".*"msg":"worker listening"/.exec(output)[1]);
    const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    const get = (p) =>
      new Promise((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port, path: p, agent }, (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        });
        req.on('error', reject);
      });
    const parallel = async (n, fn) => {
      let next = 0;
      await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
        while (next < n) await fn(next++);
      }));
    };
    // Idle: catalog loaded, the miss path compiled, nothing cached (unknown users are 404s, never stored).
    await parallel(2000, (i) => get(`/users/${2_000_000_000 + i}/recommendations?limit=10`));
    await get('/metrics');
    await sleep(3000);
    const idle = await reading(pid, get);
    const idleOutput = output.length;

    const users = Math.ceil((OVERFILL * bound) / MIN_LIST_BYTES);
    let failures = 0;
    const samples = [];
    await parallel(users, async (i) => {
      const user = i + 1;
      for (const limit of [10, 10, 50]) {
        const r = await get(`/users/${user}/recommendations?limit=${limit}`);
        if (r.status !== 200) failures += 1;
        else if (limit === 50 && samplesPath && samples.length < 500) samples.push(JSON.parse(r.text));
      }
    });
    if (samplesPath) writeFileSync(samplesPath, JSON.stringify(samples));
    await sleep(3000);
    const after = await reading(pid, get);
    // Quiet for a while: V8's memory reducer may collect and give pages back on its own.
    await sleep(20_000);
    const settled = await reading(pid, get);
    console.log(
      `L1_MAX_BYTES=${mib(bound)} MiB: ${users} users × 3 requests; idle RSS ${mib(idle.rss)} MiB, after ${mib(after.rss)} MiB, ` +
        `settled ${mib(settled.rss)} MiB; heapUsed ${mib(idle.heapUsed)} → ${mib(after.heapUsed)} → ${mib(settled.heapUsed)} MiB`,
    );
    const live = flag('trace-gc') ? liveHeap(output, pid, idleOutput) : undefined;
    agent.destroy();
    return { bound, idle, after, settled, live, failures };
  } finally {
    if (child.exitCode === null) child.kill('SIGTERM');
    await exited;
  }
}

/**
 * Live heap (MB, V8's "-> X" of a Mark-Compact) of the worker's main isolate at its last full GC before
 * the idle reading and at its last full GC overall; undefined when it did none during the fill.
 */
function liveHeap(output, pid, idleAt) {
  const gcs = [];
  const re = new RegExp(`^\\[${pid}:(0x[0-9a-f]+)\\][^\\n]*Mark-Compact[^\\n]*?-> ([\\d.]+) \\(`, 'gm');
  for (const m of output.matchAll(re)) gcs.push({ isolate: m[1], live: Number(m[2]), at: m.index });
  // The main isolate is the one with the biggest heap (the scoring thread's is a few MB).
  const biggest = gcs.reduce((a, b) => (b.live > a.live ? b : a), gcs[0]);
  const main = gcs.filter((g) => g.isolate === biggest?.isolate);
  const before = main.filter((g) => g.at < idleAt).at(-1);
  const last = main.at(-1);
  return before && last && last.at > idleAt ? { idle: before.live, last: last.live } : undefined;
}

/** The worker's resident memory from the kernel, and its heap as /metrics reports it. */
async function reading(pid, get) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)[1]) * 1024;
  const metrics = (await get('/metrics')).text;
  const sample = (name) => Number(new RegExp(`^${name}\\{[^}]*worker="0"[^}]*\\} (\\S+)$`, 'm').exec(metrics)?.[1] ?? NaN);
  return {
    rss: kb('VmRSS'),
    hwm: kb('VmHWM'),
    heapUsed: sample('nodejs_heap_size_used_bytes'),
    heapTotal: sample('nodejs_heap_size_total_bytes'),
    external: sample('nodejs_external_memory_bytes'),
  };
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

async function perList(samples) {
  const child = spawn(
    process.execPath,
    ['--expose-gc', fileURLToPath(import.meta.url), '--child-per-list', '--samples', samples, '--n', '3000'],
    { cwd: ROOT, stdio: 'inherit' },
  );
  const code = await new Promise((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`per-list measurement exited with ${code}`);
}

/**
 * Heap retained per list. `samples`: real responses (limit=50). Each variant builds `n` lists into a fresh
 * RecommendationCache (no byte bound in the way) and measures heapUsed after full GCs, before and after.
 */
async function perListChild(samplesPath, n) {
  const { RecommendationCache, estimateBytes } = await import(path.join(ROOT, 'dist/data/recommendation-cache.js'));
  const { recommendationsBody } = await import(path.join(ROOT, 'dist/http/bodies.js'));
  const { createMetrics } = await import(path.join(ROOT, 'dist/observability/metrics.js'));
  const samples = JSON.parse(readFileSync(samplesPath, 'utf8'));
  if (samples.length === 0) throw new Error('no sample lists');
  // The catalog: one title string per content id, shared by every computed list that names it.
  const catalog = new Map();
  for (const s of samples) for (const item of s.recommendations) catalog.set(item.content_id, `${item.title}`);

  const computed = (s) => {
    // As the scoring thread answers: cloned items (title '' on the thread), titles filled in from the catalog.
    const items = v8.deserialize(v8.serialize(s.recommendations.map((r) => ({ ...r, title: '' }))));
    for (const item of items) item.title = catalog.get(item.content_id);
    const now = Date.now();
    return { items, source: 'model', generatedAt: new Date(now).toISOString(), freshUntil: now + 600_000 };
  };
  const fromRedis = (s) => {
    const now = Date.now();
    const text = JSON.stringify({ e: now + 600_000, s: 'model', g: new Date(now).toISOString(), i: s.recommendations });
    const stored = JSON.parse(text);
    return { items: stored.i, source: stored.s, generatedAt: stored.g, freshUntil: stored.e };
  };
  // A body as uWS sends it: the native side reads the string as UTF-8, which flattens the concatenation.
  const send = (body) => Buffer.byteLength(body);
  const bodies = {
    none: () => {},
    'limits 10+50': (user, list) => {
      send(recommendationsBody(user, list, 10, false)); // the miss
      send(recommendationsBody(user, list, 10, true));
      send(recommendationsBody(user, list, 50, true));
    },
    '50; 15…12': (user, list) => {
      send(recommendationsBody(user, list, 50, false)); // every fragment, then four bodies of 54 items
      for (const limit of [15, 14, 13, 12]) send(recommendationsBody(user, list, limit, true));
    },
    '50…1': (user, list) => {
      send(recommendationsBody(user, list, 50, false));
      for (let limit = 50; limit >= 1; limit--) send(recommendationsBody(user, list, limit, true));
    },
  };

  const metrics = createMetrics('l1-bound');
  console.log('list built as      | bodies       | retained B/list | estimateBytes | retained/estimate');
  // After a catalog reload a model list no longer shares its titles: it is the only holder of the old ones.
  const ownTitles = (s) => {
    const list = computed(s);
    for (const item of list.items) item.title = ` ${item.title}`.slice(1);
    return list;
  };
  const kinds = [
    ['model (pool)', computed],
    ['model, own titles', ownTitles],
    ['read from Redis', fromRedis],
  ];
  for (const [kind, build] of kinds) {
    for (const [name, attach] of Object.entries(bodies)) {
      const cache = new RecommendationCache(
        null,
        { ttlSec: 600, fallbackTtlSec: 15, staleTtlSec: 3600, l1MaxEntries: n + 1, l1MaxBytes: 16 * 1024 ** 3 },
        metrics,
      );
      const ticket = { epoch: 0, sharedGen: undefined };
      const heap = () => {
        for (let i = 0; i < 4; i++) globalThis.gc();
        return process.memoryUsage().heapUsed;
      };
      const before = heap();
      let estimated = 0;
      for (let i = 0; i < n; i++) {
        const list = build(samples[i % samples.length]);
        estimated += estimateBytes(list);
        cache.store(i + 1, list, ticket);
        attach(i + 1, cache.peekLocal(i + 1));
      }
      const retained = (heap() - before) / n;
      console.log(
        `${kind.padEnd(18)} | ${name.padEnd(12)} | ${retained.toFixed(0).padStart(15)} | ${(estimated / n).toFixed(0).padStart(13)} | ` +
          (retained / (estimated / n)).toFixed(2),
      );
      cache.invalidateAllLocal();
    }
  }
}
