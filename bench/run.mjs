#!/usr/bin/env node
/**
 * `npm run bench`: the service under load, scenario by scenario, each row a ratio to a reference
 * measured in the same run (a bare-uWS ceiling server, or `pgbench -S` for the cold path), so other load
 * on the machine moves both sides alike. Markdown table on stdout, JSON under bench/results/.
 *
 * The load generator is wrk (bench/lib/wrk.mjs) when it is on PATH, else autocannon; loads wrk cannot run
 * (an offered rate, a request count, per-response JavaScript) use autocannon, on 2 worker threads where the
 * load allows it. Every row says which generator drove it and what CPU it, the service and PostgreSQL used
 * (from /proc), so a row limited by its generator rather than by the service shows as such.
 *
 * Environment:
 *   BENCH_SCENARIOS   comma list (default all but big-catalog-full):
 *                     hot,redis,cold,model,coalesce,batch,jobs,write-mix,big-catalog; big-catalog-full adds
 *                     CANDIDATE_POOL=0 (every title scored per miss) at WORKERS=1 and WORKERS=cores; each
 *                     runs the pool (adaptive), inline, the floor (nothing to score) and the neighbour row
 *                     (the floor beside a process burning the pool threads' CPU)
 *   BENCH_GENERATOR   wrk | autocannon: force the generator (default wrk when installed)
 *   BENCH_DURATION    seconds per measured load (default 10)
 *   BENCH_CONNECTIONS connections of the hot/redis/cold loads (default 64)
 *   BENCH_WORKERS     HTTP workers of the service and the ceiling (default: cores)
 *   BENCH_PROFILE     1: run the hot and cold services under `node --cpu-prof` (workers inherit it) and print the top
 *                     self-time functions of their HTTP workers and scoring threads (slower: profile runs);
 *                     or a comma list of the services to profile, e.g. big-catalog-pool-w2,model-redis
 *   BENCH_ENV         extra service settings for every scenario, `NAME=value,NAME=value` (a scenario's
 *                     own settings win), e.g. BENCH_ENV=DB_POOL_SIZE=4
 *   BENCH_PROBE_RATE  big-catalog: offer the hot probe at this rate (req/s) instead of saturating it
 *   BENCH_SCORING_THREADS big-catalog: SCORING_THREADS of every row (default 1 at WORKERS=1, else the service's)
 *   BENCH_REPEAT      big-catalog: run each (probe alone, probe during scoring) pair this many times and show
 *                     the run with the median p99 of each row (default 1)
 *   BENCH_SCORING_RATE offered rate of the big-catalog scoring load (default 300 req/s; big-catalog-full:
 *                     BENCH_SCORING_RATE_FULL, default a tenth of it, for 10× the candidates per miss)
 *   BENCH_URL         measure a running service instead of starting one per scenario (its configuration
 *                     is then whatever it runs with; scenarios that need metrics or env switches say so)
 *   BENCH_USERS / BENCH_CONTENT / BENCH_EVENTS   data set (default 1,000,000 / 100,000 / 20,000,000),
 *                     seeded once into bench/.data/pg and reused; BENCH_DATABASE_URL uses your own database
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import postgres from 'postgres';
import { BENCH_DATA_DIR, benchPostgres, ensureDataset, ROOT } from './lib/pg.mjs';
import { distinctUsers, GENERATOR, load, userMix, VEGETA, WRK_VERSION } from './lib/load.mjs';
import { VEGETA_VERSION } from './lib/vegeta.mjs';
import { clusterRss, cpuDelta, eventLoopCpu, machineBusy, postmasterPid, procStat, schedDelta, schedTimes, treeCpu } from './lib/proc.mjs';
import { startNeighbour } from './lib/neighbour.mjs';
import { get, perWorker, scrape, startCeiling, startRedis, startService, sum } from './lib/service.mjs';
import { formatSummary, summarize } from './profile-summary.mjs';

const run = promisify(execFile);
const ALL = ['hot', 'redis', 'cold', 'model', 'coalesce', 'batch', 'jobs', 'write-mix', 'big-catalog'];
const KNOWN = [...ALL, 'big-catalog-full'];
const selected = new Set((process.env.BENCH_SCENARIOS || ALL.join(',')).split(',').map((s) => s.trim()).filter(Boolean));
for (const s of selected) if (!KNOWN.includes(s)) throw new Error(`unknown scenario "${s}"; known: ${KNOWN.join(', ')}`);
const NPROC = os.availableParallelism();
const DURATION = Number(process.env.BENCH_DURATION || 10);
const WARMUP = Math.max(1, Math.min(3, Math.round(DURATION / 4)));
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS || 64);
const WORKERS = Number(process.env.BENCH_WORKERS || NPROC);
/** BENCH_PROFILE=1 profiles the hot and cold services; a comma list names the services to profile. */
const PROFILE = /^(1|true|yes)$/i.test(process.env.BENCH_PROFILE ?? '')
  ? ['hot', 'cold']
  : (process.env.BENCH_PROFILE ?? '').split(',').map((s) => s.trim()).filter(Boolean);
const TARGET = process.env.BENCH_URL?.replace(/\/$/, '');
const EXTRA_ENV = Object.fromEntries(
  (process.env.BENCH_ENV ?? '').split(',').filter((kv) => kv.includes('=')).map((kv) => [kv.slice(0, kv.indexOf('=')).trim(), kv.slice(kv.indexOf('=') + 1)]),
);
const DATASET = {
  users: Number(process.env.BENCH_USERS || 1_000_000),
  content: Number(process.env.BENCH_CONTENT || 100_000),
  events: Number(process.env.BENCH_EVENTS || 20_000_000),
};
const HOT_USERS = Array.from({ length: 20 }, (_, i) => i + 1);
const HOT_LIMITS = [5, 10, 15, 20];
const RESULTS = path.join(ROOT, 'bench/results');
const log = (m) => process.stderr.write(`${m}\n`);

/**
 * User id ranges per scenario: disjoint, so no scenario finds another's lists or writes, nor pages of the
 * database another warmed. cold 200k; big-catalog 25k per configuration (12); model 50k per row (4);
 * warm-ups 50k (caches off or flushed after them); coalesce one user; write-mix 200 users.
 */
const RANGE = { cold: 100_001, bigCatalog: 300_001, model: 600_001, warm: 800_001, coalesce: 850_001, writeMix: 900_001 };
const at = (first) => Math.min(first, Math.max(21, DATASET.users - 50_000)); // small data sets still work

const rows = [];
const notes = [];
let databaseUrl;
const service = (name, env, fn, workers) => withService(name, databaseUrl, env, fn, workers);
const profiles = [];
const rss = [];
let pgbenchTps;
let ceiling;
/** The bench's embedded PostgreSQL (`ours`: this run started it; else it attached to a running one). */
let pgServer;

/**
 * Runs `fn` (one load, or several at once resolving to an array) and reads the CPU the service's process
 * tree (primary + workers, every thread), PostgreSQL's (postmaster + backends) and the whole machine used
 * meanwhile. Returns the load result(s) with `cpu` attached; concurrent loads share one reading.
 */
async function measured(target, fn) {
  const pgPid = pgServer?.pid;
  const s0 = treeCpu(target?.pid);
  const l0 = eventLoopCpu(target?.pid);
  const t0 = schedTimes(target?.pid);
  const p0 = treeCpu(pgPid);
  const m0 = machineBusy();
  const result = await fn();
  const s1 = treeCpu(target?.pid);
  const l1 = eventLoopCpu(target?.pid);
  const t1 = schedTimes(target?.pid);
  const p1 = treeCpu(pgPid);
  const m1 = machineBusy();
  const list = Array.isArray(result) ? result : [result];
  const cpu = {
    svc: cpuDelta(s0, s1),
    loop: cpuDelta(l0, l1),
    sched: schedDelta(t0, t1),
    pg: cpuDelta(p0, p1),
    machine: cpuDelta(m0, m1),
    requests: list.reduce((a, r) => a + r.total, 0),
    shared: list.length > 1,
    gens: list.map((r) => r.genCpu),
  };
  for (const r of list) r.cpu = cpu;
  return result;
}

function row(scenario, connections, r, extra = {}) {
  const { genCpu, cpu, ...rest } = r;
  const entry = { scenario, connections, ...rest, ...extra };
  entry.generator = r.generator;
  entry.genCores = genCpu?.cores;
  entry.genCpuSeconds = genCpu?.seconds;
  if (genCpu?.shared) entry.genShared = true;
  const flags = [];
  if (cpu) {
    entry.svcCores = cpu.svc?.cores;
    entry.loopCores = cpu.loop?.cores;
    entry.loopCpuSeconds = cpu.loop?.seconds;
    entry.svcCpuMsPer1k = cpu.svc && cpu.requests > 0 ? (1000 * cpu.svc.seconds) / (cpu.requests / 1000) : undefined;
    entry.pgCores = cpu.pg?.cores;
    // Everything else on the machine: other engineers' work, redis-server, the bench's own thread.
    if (cpu.machine) {
      const gens = cpu.gens.filter(Boolean);
      const genSeconds = gens.some((g) => g.shared) ? Math.max(...gens.map((g) => g.seconds)) : gens.reduce((a, g) => a + g.seconds, 0);
      entry.otherCores = Math.max(0, (cpu.machine.seconds - (cpu.svc?.seconds ?? 0) - (cpu.pg?.seconds ?? 0) - genSeconds) / cpu.machine.wall);
    }
    if (cpu.shared) {
      entry.cpuShared = true;
      flags.push('svc/pg CPU: both concurrent loads together');
    }
  }
  // On a machine of NPROC cores, a generator over half a core while the server had cores to spare may
  // have been what limited the row.
  const server = entry.svcCores ?? entry.pgCores;
  if (entry.genCores > 0.5 && server !== undefined && server < NPROC) flags.push('⚠ generator-bound?');
  if (entry.genShared) flags.push('gen cores: the bench process, shared by concurrent autocannon loads');
  if (entry.otherCores > 0.25) flags.push(`rest of machine ${entry.otherCores.toFixed(2)} cores`);
  if (r.statuses && Object.keys(r.statuses).length) flags.push(`non-2xx: ${Object.entries(r.statuses).map(([code, n]) => `${code} ×${fmt(n)}`).join(', ')}`);
  if (flags.length) entry.flags = flags;
  rows.push(entry);
  log(
    `bench: ${scenario}: ${r.rps.toFixed(0)} req/s, p50 ${ms(r.p50)} ms, p99 ${ms(r.p99)} ms, non-2xx ${r.non2xx}, errors ${r.errors}; ` +
      `${entry.generator} ${cores(entry.genCores)} cores, service ${cores(entry.svcCores)}, pg ${cores(entry.pgCores)}` +
      (flags.length ? ` (${flags.join('; ')})` : ''),
  );
  return entry;
}

const loadavg = () => os.loadavg().map((x) => x.toFixed(2)).join(' ');
const cpuModel = () => /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? os.cpus()[0]?.model ?? '?';

async function main() {
  mkdirSync(RESULTS, { recursive: true });
  const startedAt = new Date();
  const machine = {
    nproc: NPROC, cpu: cpuModel(), memGiB: Math.round(os.totalmem() / 2 ** 30), loadStart: loadavg(), node: process.version,
    generator: GENERATOR, wrk: WRK_VERSION, rateGenerator: VEGETA ? `vegeta ${VEGETA_VERSION}` : 'autocannon (bursts: see bench/lib/vegeta.mjs)',
  };
  log(`bench: ${machine.nproc} cores (${machine.cpu}), load ${machine.loadStart}; scenarios ${[...selected].join(',')}; ${DURATION} s each; generator ${GENERATOR}${GENERATOR === 'wrk' ? ` ${WRK_VERSION}` : ''}`);

  let pg;
  if (!TARGET || process.env.BENCH_DATABASE_URL) {
    pg = await benchPostgres(log);
    databaseUrl = pg.url;
    if (pg.embedded) {
      const pid = postmasterPid(BENCH_DATA_DIR);
      if (pid) pgServer = { pid, ours: procStat(pid)?.ppid === process.pid };
      machine.postgres = pgServer ? (pgServer.ours ? 'embedded, started by this run' : 'embedded, attached to a running server') : 'embedded, postmaster pid not found';
    } else machine.postgres = 'BENCH_DATABASE_URL (its CPU is not measured)';
    const seeded = await ensureDataset(databaseUrl, DATASET, log);
    if (seeded.seeded) notes.push(`Seeded the bench data set (${fmt(DATASET.users)} users) in ${(seeded.elapsedMs / 1000).toFixed(0)} s.`);
  }
  const redis = ['redis', 'write-mix', 'model'].some((s) => selected.has(s)) ? await startRedis() : undefined;

  try {
    // The ceiling answers a body as large as the hot mix's average real response.
    const bodyFile = path.join(os.tmpdir(), `bench-ceiling-body-${process.pid}.json`);
    await service('hot', {}, async (svc) => {
      const sizes = [];
      let sample = '';
      for (const r of userMix(HOT_USERS, HOT_LIMITS)) {
        const reply = await get(svc.url + r.path);
        sizes.push(Buffer.byteLength(reply.text));
        if (r.path.endsWith('limit=10')) sample = reply.text;
      }
      const size = Math.round(sizes.reduce((a, b) => a + b, 0) / sizes.length);
      writeFileSync(bodyFile, sample.padEnd(size).slice(0, size));
      notes.push(`Ceiling body: ${size} bytes (the hot mix's mean response size).`);
      ceiling = await startCeiling({ workers: WORKERS, bodyFile });
      ceiling.pid = ceiling.child.pid;
      await load({ url: ceiling.url, connections: CONNECTIONS, duration: WARMUP, requests: userMix(HOT_USERS, HOT_LIMITS) });
      const c = await measured(ceiling, () => load({ url: ceiling.url, connections: CONNECTIONS, duration: DURATION, requests: userMix(HOT_USERS, HOT_LIMITS) }));
      row('ceiling (bare uWS, start)', CONNECTIONS, c, { reference: true });
      if (selected.has('hot')) await hot(svc);
    });

    if (selected.has('redis')) {
      await redis.flush();
      await service('redis', { L1_MAX_ENTRIES: '0', REDIS_URL: redis.url }, async (svc) => {
        const mix = userMix(HOT_USERS, HOT_LIMITS);
        await load({ url: svc.url, connections: CONNECTIONS, duration: WARMUP, requests: mix });
        const before = await settled(svc.url);
        const r0 = treeCpu(redis.pid);
        const r = await measured(svc, () => load({ url: svc.url, connections: CONNECTIONS, duration: DURATION, requests: mix }));
        const redisCpu = cpuDelta(r0, treeCpu(redis.pid));
        const after = await scrape(svc.url);
        const hits = delta(before, after, 'cache_lookups_total', { tier: 'redis', result: 'hit' });
        const misses = delta(before, after, 'cache_lookups_total', { tier: 'redis', result: 'miss' });
        row('redis (L1 off, every request reads Redis)', CONNECTIONS, r, {
          redisCores: redisCpu?.cores,
          note: `Redis lookups: ${fmt(hits)} hits, ${fmt(misses)} misses (concurrent requests for one user share a lookup); redis-server ${cores(redisCpu?.cores)} cores`,
        });
      });
    }

    if (selected.has('cold')) {
      await cold();
      pgbenchTps = await pgbench(databaseUrl).catch((err) => {
        notes.push(`pgbench failed, so the cold row has no pgbench reference: ${String(err.stderr || err.message).trim().split('\n').slice(-1)[0]}`);
        return undefined;
      });
    }

    if (selected.has('model')) {
      await model(undefined);
      await model(redis);
      // The seed's formula beside the default model, same run: what the learned model costs a miss.
      await model(undefined, 'heuristic');
      await model(redis, 'heuristic');
    }

    if (selected.has('coalesce')) {
      await service('coalesce', {}, async (svc) => {
        await load({ url: svc.url, connections: 32, duration: WARMUP, requests: distinctUsers(at(RANGE.warm), 50_000) });
        const user = at(RANGE.coalesce);
        const before = await settled(svc.url);
        // One thread opens all 1,000 connections: two worker threads start apart, and the later one's requests
        // then find the finished list in L1 instead of joining the computation the scenario is about.
        const r = await measured(svc, () =>
          load({ url: svc.url, connections: 1000, amount: 1000, mainThread: true, requests: [{ method: 'GET', path: `/users/${user}/recommendations?limit=10` }] }),
        );
        const after = await scrape(svc.url);
        const calls = delta(before, after, 'model_calls_total');
        const joined = delta(before, after, 'singleflight_coalesced_total');
        row('coalesce (1000 concurrent requests, one cold user)', 1000, r, {
          modelCalls: calls,
          note: `**${calls} model call(s)** for ${fmt(r.total)} requests (≤ ${WORKERS} workers required); ${fmt(joined)} joined a computation in flight`,
        });
      });
    }

    if (selected.has('batch')) await batch();
    if (selected.has('jobs')) await jobs();
    if (selected.has('write-mix')) await writeMix(redis);
    // 10k candidates per miss, then the whole catalog. WORKERS=1 with one scoring thread: the HTTP worker and
    // its pool thread share the two cores with the generator and PostgreSQL, so the pool's hand-off is not
    // hidden by a second worker; then the default. Each configuration: the pool (adaptive), inline, and the
    // floor (the same misses with nothing to score), and the floor beside a neighbour process burning what
    // the pool's threads burned. Eight user slots per scenario.
    for (const [i, full] of [false, true].entries()) {
      if (!selected.has(full ? 'big-catalog-full' : 'big-catalog')) continue;
      let slot = 8 * i;
      for (const workers of [1, WORKERS]) for (const kind of ['pool', 'inline', 'floor', 'neighbour']) await bigCatalog({ workers, kind, slot: slot++, full });
    }

    await load({ url: ceiling.url, connections: CONNECTIONS, duration: WARMUP, requests: userMix(HOT_USERS, HOT_LIMITS) });
    const c2 = await measured(ceiling, () => load({ url: ceiling.url, connections: CONNECTIONS, duration: DURATION, requests: userMix(HOT_USERS, HOT_LIMITS) }));
    row('ceiling (bare uWS, end)', CONNECTIONS, c2, { reference: true });
  } finally {
    await ceiling?.stop();
    await redis?.stop();
    await pg?.stop();
  }

  machine.loadEnd = loadavg();
  const ceilings = rows.filter((r) => r.reference === true);
  const ceilingRps = ceilings.reduce((a, r) => a + r.rps, 0) / ceilings.length;
  const ceilingP99 = ceilings.reduce((a, r) => a + r.p99, 0) / ceilings.length;
  const drift = ceilings.length === 2 ? Math.abs(ceilings[0].rps - ceilings[1].rps) / ceilingRps : 0;
  for (const r of rows) {
    r.vsCeiling = r.rps / ceilingRps;
    if (r.scenario.startsWith('cold') && pgbenchTps) r.vsPgbench = r.rps / pgbenchTps;
  }
  const report = render({ machine, ceilingRps, ceilingP99, drift, startedAt });
  process.stdout.write(report);
  const file = path.join(RESULTS, `bench-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ machine, duration: DURATION, workers: WORKERS, ceilingRps, ceilingP99, pgbenchTps, rows, notes, profiles, rss }, null, 2));
  log(`bench: results written to ${path.relative(process.cwd(), file)}`);
}

async function cold() {
  await service('cold', { L1_MAX_ENTRIES: '0', MODEL_LATENCY_MS: '0', MODEL_FAILURE_RATE: '0' }, async (svc) => {
    await load({ url: svc.url, connections: CONNECTIONS, duration: WARMUP, requests: distinctUsers(at(RANGE.warm), 50_000) });
    const before = await settled(svc.url);
    const r = await measured(svc, () => load({ url: svc.url, connections: CONNECTIONS, duration: DURATION, requests: distinctUsers(at(RANGE.cold), 200_000) }));
    const after = await scrape(svc.url);
    const queries = delta(before, after, 'db_query_duration_seconds_count', { query: 'user_signals' });
    row('cold (caches off, model latency 0, distinct users)', CONNECTIONS, r, {
      note: `${fmt(queries)} PostgreSQL queries for ${fmt(r.total)} requests`,
    });
  });
}

/**
 * The seed's model (30-50 ms, 1.5 % failures), L1 off, 50k distinct users per row, at 256 and at 1,024
 * connections; without Redis (every request pays the model), and with the bench's Redis as production runs
 * (every miss also reads and writes Redis; flushed before each row, so only a wrapped range finds hits).
 */
async function model(redis, modelName) {
  const name = `${redis ? 'model-redis' : 'model'}${modelName ? `-${modelName}` : ''}`;
  const env = { L1_MAX_ENTRIES: '0', ...(redis ? { REDIS_URL: redis.url } : {}), ...(modelName ? { MODEL: modelName } : {}) };
  await service(name, env, async (svc) => {
    const servedKey = [...(await scrape(svc.url)).keys()].find((k) => k.startsWith('model_served{'));
    const served = servedKey ? /serves="([^"]*)"/.exec(servedKey)?.[1] : undefined;
    for (const [i, connections] of (modelName ? [256] : [256, 1024]).entries()) {
      await load({ url: svc.url, connections, duration: WARMUP, requests: distinctUsers(at(RANGE.warm), 50_000) });
      const before = await settled(svc.url);
      if (redis) await redis.flush();
      const first = at(RANGE.model + ((redis ? 2 : 0) + i) * 50_000);
      const r0 = treeCpu(redis?.pid);
      const r = await measured(svc, () => load({ url: svc.url, connections, duration: DURATION, requests: distinctUsers(first, 50_000) }));
      const redisCpu = cpuDelta(r0, treeCpu(redis?.pid));
      const after = await scrape(svc.url);
      const calls = delta(before, after, 'model_calls_total');
      const fallbacks = delta(before, after, 'recommendation_fallbacks_total');
      const latencySum = delta(before, after, 'model_call_duration_seconds_sum');
      const latencyCount = delta(before, after, 'model_call_duration_seconds_count');
      const meanMs = latencyCount > 0 ? (1000 * latencySum) / latencyCount : NaN;
      const target = (0.8 * connections) / 0.04; // 0.8 × connections ÷ mean configured latency (40 ms)
      const redisNote = redis
        ? `; Redis lookups ${fmt(delta(before, after, 'cache_lookups_total', { tier: 'redis', result: 'hit' }))} hits, ` +
          `${fmt(delta(before, after, 'cache_lookups_total', { tier: 'redis', result: 'miss' }))} misses; redis-server ${cores(redisCpu?.cores)} cores`
        : '';
      const which = `MODEL=${modelName ?? 'auto (default)'}${served ? `, serves ${served}` : ''}`;
      row(
        redis
          ? `model + Redis (${which}; 30-50 ms, 1.5 % failures; L1 off, REDIS_URL set, 50k distinct users)`
          : `model (${which}; 30-50 ms, 1.5 % failures; L1 off, no Redis, 50k distinct users)`,
        connections,
        r,
        {
          target: `≥ ${fmt(target)} req/s, p99 ≤ 80 ms`,
          ...(redis ? { redisCores: redisCpu?.cores } : {}),
          note: `${fmt(calls)} model calls, ${fmt(fallbacks)} fallbacks, model call mean ${meanMs.toFixed(1)} ms (incl. queueing)${redisNote}`,
        },
      );
    }
  });
}

async function hot(svc) {
  const mix = userMix(HOT_USERS, HOT_LIMITS);
  await load({ url: svc.url, connections: CONNECTIONS, duration: WARMUP, requests: mix });
  const before = await settled(svc.url);
  const r = await measured(svc, () => load({ url: svc.url, connections: CONNECTIONS, duration: DURATION, requests: mix }));
  const after = await scrape(svc.url);
  const hits = delta(before, after, 'cache_lookups_total', { tier: 'l1', result: 'hit' });
  row('hot (users 1-20 × limits 5/10/15/20, L1 warm)', CONNECTIONS, r, { note: `${pct(hits, r.total)} L1 hits` });
}

async function batch() {
  const mix = [];
  for (const page of [1, 2, 3]) for (const limit of [5, 10, 20]) mix.push({ method: 'GET', path: `/recommendations/batch?page=${page}&limit=${limit}` });
  const connections = 32;
  await service('batch-cold', { L1_MAX_ENTRIES: '0', MODEL_LATENCY_MS: '0', MODEL_FAILURE_RATE: '0' }, async (svc) => {
    await load({ url: svc.url, connections, duration: WARMUP, requests: mix });
    const before = await settled(svc.url);
    const r = await measured(svc, () => load({ url: svc.url, connections, duration: DURATION, requests: mix }));
    const after = await scrape(svc.url);
    const queries = delta(before, after, 'db_query_duration_seconds_count', { query: 'user_signals' });
    const users = delta(before, after, 'batch_users_total');
    row('batch cold (pages 1-3 × limits 5/10/20; caches off, model latency 0)', connections, r, {
      note: `${fmt(queries)} user-signals statements for ${fmt(r.total)} requests, ${fmt(users)} user results (concurrent requests for one page share its computations)`,
    });
  });
  await service('batch-warm', {}, async (svc) => {
    await load({ url: svc.url, connections, duration: WARMUP, requests: mix });
    await settled(svc.url);
    const r = await measured(svc, () => load({ url: svc.url, connections, duration: DURATION, requests: mix }));
    row('batch warm (pages 1-3 × limits 5/10/20)', connections, r);
    // First and last pages at limit 100, warm: what is left is the page query itself.
    const lastPage = Math.min(10_000, Math.ceil(DATASET.users / 100));
    const first = [1, 2, 3].map((p) => ({ method: 'GET', path: `/recommendations/batch?page=${p}&limit=100` }));
    const last = [lastPage - 2, lastPage - 1, lastPage].map((p) => ({ method: 'GET', path: `/recommendations/batch?page=${p}&limit=100` }));
    await load({ url: svc.url, connections, duration: Math.max(3, WARMUP), requests: [...first, ...last] });
    await settled(svc.url);
    const rf = await measured(svc, () => load({ url: svc.url, connections, duration: DURATION / 2, requests: first }));
    row('batch warm, first pages (1-3 × limit 100)', connections, rf);
    const rl = await measured(svc, () => load({ url: svc.url, connections, duration: DURATION / 2, requests: last }));
    row(`batch warm, last pages (${lastPage - 2}-${lastPage} × limit 100)`, connections, rl, {
      note: `last/first throughput ${(rl.rps / rf.rps).toFixed(2)}`,
    });
  });
}

/**
 * An asynchronous batch job for every user (POST /recommendations/jobs, model latency 0, caches not warmed):
 * the hot mix's p99 alone, then while the job runs (the issue's bound: within 1.5×), then how long the job
 * took, its service CPU per user against the batch endpoint's (cold pages of 100, caches off), and the RSS.
 */
async function jobs() {
  const env = { MODEL_LATENCY_MS: '0', MODEL_FAILURE_RATE: '0' };
  const mix = userMix(HOT_USERS, HOT_LIMITS);
  const status = async (url, id) => JSON.parse((await get(`${url}/recommendations/jobs/${id}`)).text);
  await service('jobs', env, async (svc) => {
    await load({ url: svc.url, connections: CONNECTIONS, duration: WARMUP, requests: mix });
    await settled(svc.url);
    const alone = await measured(svc, () => load({ url: svc.url, connections: CONNECTIONS, duration: DURATION, requests: mix }));
    row('hot, no job running', CONNECTIONS, alone);

    const started = performance.now();
    const cpu0 = treeCpu(svc.pid);
    const submitted = await get(`${svc.url}/recommendations/jobs`, { method: 'POST', body: JSON.stringify({ users: 'all', warm: false }) });
    if (submitted.status !== 202) throw new Error(`job not accepted: ${submitted.status} ${submitted.text}`);
    const { job_id: id, total_users: total } = JSON.parse(submitted.text);
    const submitMs = performance.now() - started;
    while ((await status(svc.url, id)).status === 'queued') await new Promise((r) => setTimeout(r, 200));
    const during = await measured(svc, () => load({ url: svc.url, connections: CONNECTIONS, duration: DURATION, requests: mix }));
    const midway = await status(svc.url, id);
    row('hot, during a job for every user', CONNECTIONS, during, {
      note: `p99 ${(during.p99 / alone.p99).toFixed(2)}× the p99 without the job (bound 1.5×); ${fmt(midway.processed_users)} of ${fmt(total)} users done when the load ended`,
    });

    let job = midway;
    let peakRss = 0;
    while (job.status === 'queued' || job.status === 'running') {
      await new Promise((r) => setTimeout(r, 1000));
      const r = clusterRss(svc.pid);
      if (r) peakRss = Math.max(peakRss, r.primary + r.workers.reduce((a, w) => a + (w.bytes ?? 0), 0));
      job = await status(svc.url, id);
    }
    const seconds = (performance.now() - started) / 1000;
    const jobCpu = cpuDelta(cpu0, treeCpu(svc.pid));
    const perUserMs = jobCpu ? (1000 * jobCpu.seconds) / total : undefined;
    notes.push(
      `Batch job for every user (${fmt(total)}): ${job.status} in ${seconds.toFixed(0)} s (${fmt(total / seconds)} users/s, submit ${submitMs.toFixed(0)} ms; ` +
        `the hot load ran during ${DURATION} s of it); service CPU ${jobCpu ? `${perUserMs.toFixed(3)} ms` : '?'} per user; ` +
        `peak RSS of the service ${(peakRss / 2 ** 20).toFixed(0)} MB.`,
    );
  });
  // The batch endpoint's cost per user on the same cold path: pages of 100 distinct users, caches off.
  await service('jobs-batch-reference', { ...env, L1_MAX_ENTRIES: '0' }, async (svc) => {
    const pages = Math.min(10_000, Math.floor(DATASET.users / 100));
    const requests = Array.from({ length: Math.min(pages, 2000) }, (_, i) => ({ method: 'GET', path: `/recommendations/batch?page=${pages - i}&limit=100` }));
    const r = await measured(svc, () => load({ url: svc.url, connections: 8, amount: requests.length, requests }));
    const perUserMs = r.cpu?.svc ? (1000 * r.cpu.svc.seconds) / (r.total * 100) : undefined;
    row('batch endpoint, cold pages of 100 (per-user reference for jobs)', 8, r, {
      note: `service CPU ${perUserMs === undefined ? '?' : `${perUserMs.toFixed(3)} ms`} per user`,
    });
  });
}

/**
 * 95 % reads, 5 % watch-history writes of a title the user was just recommended. A read is stale when it
 * returns a title whose write was acknowledged before the read was sent.
 */
async function writeMix(redis) {
  await redis.flush();
  const connections = CONNECTIONS;
  const first = at(RANGE.writeMix);
  const users = Array.from({ length: 200 }, (_, i) => first + i);
  await service('write-mix', { REDIS_URL: redis.url }, async (svc) => {
    const seen = new Map(); // user → content ids of its latest list
    const written = new Map(); // user → (content id → first acknowledged at, ms)
    const parseIds = (text) => (JSON.parse(text).recommendations ?? []).map((r) => r.content_id);
    await Promise.all(
      Array.from({ length: 16 }, async (_, k) => {
        for (let i = k; i < users.length; i += 16) {
          const reply = await get(`${svc.url}/users/${users[i]}/recommendations?limit=50`);
          seen.set(users[i], parseIds(reply.text));
        }
      }),
    );
    let reads = 0;
    let stale = 0;
    let writes = 0;
    const request = {
      method: 'GET',
      path: `/users/${first}/recommendations?limit=50`,
      setupRequest: (req, context) => {
        const user = users[Math.floor(Math.random() * users.length)];
        context.user = user;
        context.start = performance.now();
        const ids = seen.get(user) ?? [];
        if (Math.random() < 0.05 && ids.length > 0) {
          const contentId = ids[Math.floor(Math.random() * ids.length)];
          context.write = contentId;
          return { ...req, method: 'POST', path: `/users/${user}/watch-history`, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ content_id: contentId }) };
        }
        context.write = undefined;
        return { ...req, method: 'GET', path: `/users/${user}/recommendations?limit=50`, headers: {}, body: undefined };
      },
      onResponse: (status, body, context) => {
        const now = performance.now();
        if (context.write !== undefined) {
          if (status !== 201) return;
          writes += 1;
          let byUser = written.get(context.user);
          if (!byUser) written.set(context.user, (byUser = new Map()));
          if (!byUser.has(context.write)) byUser.set(context.write, now);
          return;
        }
        if (status !== 200) return;
        reads += 1;
        const ids = parseIds(body);
        seen.set(context.user, ids);
        const byUser = written.get(context.user);
        if (byUser && ids.some((id) => (byUser.get(id) ?? Infinity) < context.start)) stale += 1;
      },
    };
    // onResponse shares `seen`/`written` with this thread: autocannon on the main thread (no worker threads).
    const r = await measured(svc, () => load({ url: svc.url, connections, duration: DURATION, requests: [request] }));
    row('write-mix (95 % reads / 5 % writes, Redis + L1)', connections, r, {
      staleReads: stale,
      note: `**${stale} stale reads** of ${fmt(reads)} reads checked; ${fmt(writes)} writes acknowledged`,
    });
  });
}

/**
 * 100k titles, CANDIDATE_POOL 10,000: every miss scores 10k candidates. A scoring load (distinct users,
 * the same offered rate in every run, from vegeta's open loop) and a hot probe (the warm hot mix: wrk when
 * installed, or vegeta at BENCH_PROBE_RATE) run at once; the probe's p99 and the workers' event-loop lag show whether the event
 * loop stays responsive. Run with the Piscina pool and with SCORING_MODE=inline for contrast, at WORKERS=1 (one
 * scoring thread) and at the default worker count. `full`: CANDIDATE_POOL=0, the whole catalog per miss, at
 * a tenth of the rate (BENCH_SCORING_RATE_FULL), at the same two worker counts.
 */
const SCORING_RATE = Number(process.env.BENCH_SCORING_RATE || 300);
/**
 * BENCH_PROBE_RATE: offer the hot probe at this rate (req/s; vegeta, evenly spaced) instead of
 * saturating it with wrk. A saturating closed-loop probe takes every cycle the scoring threads would need;
 * at a fixed rate below saturation the probe measures what a hit costs while scoring runs beside it.
 */
const PROBE_RATE = Number(process.env.BENCH_PROBE_RATE || 0);
/** BENCH_SCORING_THREADS: SCORING_THREADS of every big-catalog row (default 1 at WORKERS=1, else the service's default). */
const BIG_THREADS = Number(process.env.BENCH_SCORING_THREADS || 0);
const SCORING_RATE_FULL = Number(process.env.BENCH_SCORING_RATE_FULL || Math.max(1, Math.round(SCORING_RATE / 10)));
/** BENCH_REPEAT: big-catalog runs each (probe alone, probe during scoring) pair this many times; rows show medians. */
const REPEAT = Math.max(1, Math.floor(Number(process.env.BENCH_REPEAT || 1)));
/** Users of one big-catalog configuration (its RANGE slot). */
const BIG_USERS = 18_750; // 16 slots in RANGE.bigCatalog's 300k users
/**
 * Mean thread time per pool task of each pool row (`full:workers` → ms): the neighbour row of the same
 * configuration burns that much CPU per miss in a separate process.
 */
const poolThreadMs = new Map();
/** The floor row's misses: the seed's candidate pool, which rule 1 always scores inline (microseconds). */
const FLOOR_CANDIDATES = '100';
const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return s.length === 0 ? undefined : s[(s.length - 1) >> 1];
};
/** Of several results of one load, the one with the median p99 (its other figures come with it). */
const medianRun = (list) => [...list].sort((a, b) => a.p99 - b.p99)[(list.length - 1) >> 1];
const spread = (list) => (list.length > 1 ? `; p99 of ${list.length} runs ${list.map((r) => ms(r.p99)).join(' / ')} ms, median shown` : '');

/**
 * kind: 'pool' (the default adaptive placement: at 10k+ candidates per miss most tasks leave the loop; the
 * notes count where they ran), 'inline' (every task on the event loop, for contrast), or 'floor': the same
 * misses at the same rate with nothing to score (FLOOR_CANDIDATES), the probe beside them showing what the
 * miss path itself costs the loop (the PostgreSQL read, the response; these services have no Redis), which
 * no placement can take away. 'neighbour': the floor's service and misses, with a separate process beside
 * them burning, per miss, the CPU the pool row's threads spent per task (its mean, at the misses' rate, at
 * nice 0): what that much scoring CPU costs the hits on this machine with no pool, hand-off or placement of
 * ours in the way. It runs after the pool row of its configuration, whose measurement it reuses.
 */
async function bigCatalog({ workers, kind, slot, full = false }) {
  const rate = full ? SCORING_RATE_FULL : SCORING_RATE;
  const env = {
    CANDIDATE_POOL: kind === 'floor' || kind === 'neighbour' ? FLOOR_CANDIDATES : full ? '0' : '10000',
    MODEL_LATENCY_MS: '0',
    MODEL_FAILURE_RATE: '0',
    SCORING_MODE: kind === 'inline' ? 'inline' : 'adaptive',
    ...(BIG_THREADS > 0 ? { SCORING_THREADS: String(BIG_THREADS) } : workers === 1 ? { SCORING_THREADS: '1' } : {}),
  };
  const threads = BIG_THREADS > 0 ? BIG_THREADS : workers === 1 ? 1 : 0;
  const neighbourMs = kind === 'neighbour' ? poolThreadMs.get(`${full}:${workers}`) : undefined;
  if (kind === 'neighbour' && !(neighbourMs > 0)) return; // its pool row did not run, or put nothing on the pool
  const label = `big-catalog${full ? '-full' : ''} ${kind}, WORKERS=${workers}${threads > 0 ? `, SCORING_THREADS=${threads}` : ''}`;
  const candidates =
    kind === 'neighbour'
      ? `${FLOOR_CANDIDATES} candidates per miss, beside a process burning ${ms(neighbourMs)} ms of CPU per miss`
      : kind === 'floor' ? `${FLOOR_CANDIDATES} candidates per miss: no scoring to place` : full ? 'whole catalog (100k candidates) per miss' : '10k candidates per miss';
  await service(`big-catalog${full ? '-full' : ''}-${kind}-w${workers}`, env, async (svc) => {
    const mix = userMix(HOT_USERS, HOT_LIMITS);
    // On the bench's main thread: microsecond latencies (autocannon's worker threads report whole ms).
    const probeRate = PROBE_RATE > 0 ? { overallRate: PROBE_RATE, mainThread: true } : {};
    const probeLoad = (duration) => load({ url: svc.url, connections: 16, duration, requests: mix, ...probeRate });
    await probeLoad(WARMUP);
    const scoringFirst = at(RANGE.bigCatalog + slot * BIG_USERS);
    // Distinct users per run (each a warm-up and a measured load): every scoring request is a miss, until a
    // run asks for more users than its share, when the measured load wraps around to its first ones.
    const perRun = Math.floor(BIG_USERS / REPEAT);
    const runs = [];
    for (let i = 0; i < REPEAT; i++) {
      const first = scoringFirst + i * perRun;
      const alone = await measured(svc, () => probeLoad(DURATION / 2));
      await load({ url: svc.url, connections: 32, duration: WARMUP, requests: distinctUsers(first + perRun - 2_500, 2_500), overallRate: rate });
      const before = await settled(svc.url);
      const neighbour = neighbourMs > 0 ? await startNeighbour({ busyMs: neighbourMs, periodMs: 1000 / rate }) : undefined;
      const n0 = neighbour && procStat(neighbour.pid);
      const [scoring, probe] = await measured(svc, () =>
        Promise.all([load({ url: svc.url, connections: 32, duration: DURATION, requests: distinctUsers(first, perRun - 2_500), overallRate: rate }), probeLoad(DURATION)]),
      );
      const n1 = neighbour && procStat(neighbour.pid);
      await neighbour?.stop();
      const neighbourCores = n0 && n1 ? (n1.self - n0.self) / DURATION : undefined;
      const after = await scrape(svc.url);
      // What each miss cost the event loops (main threads only): during minus the probe's own share, which at a
      // fixed probe rate is what it cost alone. A saturating probe runs at a different rate during scoring.
      const loop = scoring.cpu.loop;
      const perMiss = PROBE_RATE > 0 && loop && alone.cpu.loop ? ((loop.seconds - alone.cpu.loop.cores * loop.wall) * 1000) / Math.max(1, scoring.total) : undefined;
      // Preemption, from the scheduler's own accounting: what the scoring threads spent runnable but
      // off a CPU per pool task (their wall time beyond their CPU time, not their sleeping), and the share of
      // the load the event loops spent so.
      const sched = scoring.cpu.sched;
      const runTasks = delta(before, after, 'scoring_task_wait_seconds_count');
      const perTask = (seconds) => (sched && runTasks > 0 ? (1000 * seconds) / runTasks : undefined);
      const preempted = sched && {
        threadRunMs: perTask(sched.scoring.run),
        threadWaitMs: perTask(sched.scoring.wait),
        loopWaitShare: sched.loop.wait / sched.wall,
        loopWaitShareAlone: alone.cpu.sched && alone.cpu.sched.loop.wait / alone.cpu.sched.wall,
      };
      runs.push({ alone, scoring, probe, before, after, perMiss, preempted, neighbourCores });
    }
    const alone = medianRun(runs.map((r) => r.alone));
    const scoring = medianRun(runs.map((r) => r.scoring));
    const probe = medianRun(runs.map((r) => r.probe));
    const { after } = runs.at(-1);
    // Counters over the measured loads only: each run's delta across its own load (the warm-ups between
    // the runs are left out).
    const measuredDelta = (name, match) => runs.reduce((total, r) => total + delta(r.before, r.after, name, match), 0);
    const perMiss = median(runs.map((r) => r.perMiss));
    const preempted = Object.fromEntries(
      ['threadRunMs', 'threadWaitMs', 'loopWaitShare', 'loopWaitShareAlone'].map((k) => [k, median(runs.map((r) => r.preempted?.[k]))]),
    );
    const pct = (x) => `${(100 * x).toFixed(1)} %`;
    const schedNote =
      (preempted.threadWaitMs !== undefined ? `; scoring threads per pool task: ${ms(preempted.threadRunMs)} ms on a CPU, ${ms(preempted.threadWaitMs)} ms runnable but preempted` : '') +
      (preempted.loopWaitShare !== undefined ? `; event loops runnable but preempted ${pct(preempted.loopWaitShare)} of the load (probe alone ${pct(preempted.loopWaitShareAlone ?? NaN)})` : '');
    row(`${label}: hot probe alone`, 16, alone, REPEAT > 1 ? { note: spread(runs.map((r) => r.alone)).replace(/^; /, '') } : {});
    const lagP99 = Math.max(...Object.values(perWorker(after, 'nodejs_eventloop_lag_p99_seconds'))) * 1000;
    const lagMax = Math.max(...Object.values(perWorker(after, 'nodejs_eventloop_lag_max_seconds'))) * 1000;
    const fallbacks = measuredDelta('recommendation_fallbacks_total');
    const onPool = measuredDelta('scoring_tasks_total', { place: 'pool' });
    const onLoop = measuredDelta('scoring_tasks_total', { place: 'inline' });
    // Where a pool task's time went (means over the runs): outside its thread (queue, hand-off, wake-ups,
    // this loop being busy) and on it; and the placement rule's wait estimate at the end (worst worker).
    const poolTasks = measuredDelta('scoring_task_wait_seconds_count');
    const waitMs = poolTasks > 0 ? (1000 * measuredDelta('scoring_task_wait_seconds_sum')) / poolTasks : NaN;
    const runMs = poolTasks > 0 ? (1000 * measuredDelta('scoring_task_run_seconds_sum')) / poolTasks : NaN;
    const estimateMs = Math.max(0, ...Object.values(perWorker(after, 'scoring_pool_wait_estimate_seconds'))) * 1000;
    const nice = Math.max(0, ...Object.values(perWorker(after, 'scoring_thread_nice')));
    if (kind === 'pool' && poolTasks > 0) poolThreadMs.set(`${full}:${workers}`, runMs);
    const neighbourCores = median(runs.map((r) => r.neighbourCores));
    const neighbourNote = neighbourCores !== undefined ? `; neighbour process ${neighbourCores.toFixed(2)} cores (median of runs)` : '';
    const poolNote = poolTasks > 0 ? `; pool tasks: ${ms(waitMs)} ms outside the thread, ${ms(runMs)} ms on it (means), threads at nice ${nice}; rule's wait estimate ${ms(estimateMs)} ms` : '';
    const loop = scoring.cpu.loop;
    const loopNote = loop ? `; event loops ${loop.cores.toFixed(2)} cores (probe alone ${alone.cpu.loop?.cores.toFixed(2)})${perMiss !== undefined ? `, **${perMiss.toFixed(2)} event-loop ms per miss**${REPEAT > 1 ? ' (median of runs)' : ''}` : ''}` : '';
    row(`${label}: scoring load (${candidates}, offered ${rate} req/s)`, 32, scoring, {
      eventLoopMsPerMiss: perMiss,
      preempted,
      threadNice: nice,
      neighbourCores,
      note: `${fmt(fallbacks)} fallbacks (timeouts); tasks scored on the pool ${fmt(onPool)}, inline ${fmt(onLoop)}${loopNote}${poolNote}${neighbourNote}${schedNote}${spread(runs.map((r) => r.scoring))}`,
    });
    row(`${label}: hot probe during scoring`, 16, probe, {
      eventLoopLagP99Ms: lagP99,
      eventLoopLagMaxMs: lagMax,
      note: `p99 ${(probe.p99 / Math.max(alone.p99, 0.001)).toFixed(1)}× alone; event-loop lag p99 ${lagP99.toFixed(1)} ms, max ${lagMax.toFixed(1)} ms (worst worker)${spread(runs.map((r) => r.probe))}`,
    });
  }, workers);
}

/** Starts the service for one scenario (or uses BENCH_URL), records RSS per worker, profiles if asked. */
async function withService(name, databaseUrl, env, fn, workers = WORKERS) {
  if (TARGET) return fn({ url: TARGET });
  const profiled = PROFILE.includes(name);
  const profileDir = path.join(RESULTS, 'profiles', name);
  if (profiled) {
    rmSync(profileDir, { recursive: true, force: true });
    mkdirSync(profileDir, { recursive: true });
  }
  const svc = await startService({
    databaseUrl,
    workers,
    env: { ...EXTRA_ENV, ...env },
    execArgv: profiled ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [],
  });
  const idle = clusterRss(svc.pid);
  try {
    return await fn(svc);
  } finally {
    const after = clusterRss(svc.pid);
    if (idle && after) {
      rss.push({ scenario: name, workers, idle, after });
      const mb = (b) => (b === undefined ? '?' : `${(b / 2 ** 20).toFixed(0)}`);
      const list = (r) => r.workers.map((w) => mb(w.bytes)).join(' / ');
      notes.push(
        `RSS of ${name} (VmRSS): primary ${mb(idle.primary)} → ${mb(after.primary)} MB; ` +
          `workers ${list(idle)} MB idle → ${list(after)} MB after the load.`,
      );
    }
    await svc.stop();
    if (profiled) summarizeProfiles(name, profileDir, svc.pid);
  }
}

/** Merges the HTTP workers' main-thread profiles, and separately their scoring threads'. */
function summarizeProfiles(name, dir, primaryPid) {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  const parse = (f) => {
    const [, pid, tid] = /^CPU\.\d+\.\d+\.(\d+)\.(\d+)\.\d+\.cpuprofile$/.exec(f) ?? [];
    return { file: path.join(dir, f), pid: Number(pid), tid: Number(tid) };
  };
  const all = files.map(parse).filter((p) => p.pid !== primaryPid);
  const workers = all.filter((p) => p.tid === 0).map((p) => p.file);
  const threads = all.filter((p) => p.tid !== 0).map((p) => p.file);
  for (const [kind, list] of [['HTTP workers (main threads)', workers], ['scoring threads (Piscina)', threads]]) {
    if (list.length === 0) continue;
    const s = summarize(list, 15);
    profiles.push({ scenario: name, kind, ...s });
    notes.push(formatSummary(`${name}: ${kind}`, s));
  }
}

async function pgbench(databaseUrl) {
  const url = new URL(databaseUrl);
  const env = { ...process.env, PGPASSWORD: decodeURIComponent(url.password) };
  const base = ['-h', url.hostname, '-p', url.port || '5432', '-U', decodeURIComponent(url.username)];
  try {
    await run('pgbench', ['--version']);
  } catch {
    notes.push('pgbench not found: the cold row has no pgbench reference.');
    return undefined;
  }
  const admin = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  try {
    const [{ exists }] = await admin`SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'pgbench') AS exists`;
    if (!exists) await admin.unsafe('CREATE DATABASE pgbench');
  } finally {
    await admin.end();
  }
  const bench = postgres({ ...pgOptions(databaseUrl), database: 'pgbench', max: 1, onnotice: () => {} });
  let initialised;
  try {
    // An interrupted `pgbench -i` leaves the tables empty: `pgbench -S` then aborts ("empty range given to random").
    const [{ tables }] = await bench`SELECT to_regclass('pgbench_branches') IS NOT NULL AND to_regclass('pgbench_accounts') IS NOT NULL AS tables`;
    initialised = tables && (await bench`SELECT 1 FROM pgbench_branches LIMIT 1`).length > 0;
  } finally {
    await bench.end();
  }
  if (!initialised) {
    log('bench: pgbench -i -s 10 (once)');
    await run('pgbench', [...base, '-i', '-s', '10', '-q', 'pgbench'], { env });
  }
  const clients = String(CONNECTIONS);
  const seconds = Math.max(1, Math.round(DURATION));
  // pgbench is our child: once reaped, its CPU is in this process's cutime/cstime.
  const reaped0 = procStat('self')?.children;
  const t0 = performance.now();
  const r = await measured(undefined, async () => {
    const { stdout } = await run('pgbench', [...base, '-S', '-n', '-c', clients, '-j', '2', '-T', String(seconds), 'pgbench'], { env });
    const wall = (performance.now() - t0) / 1000;
    const genSeconds = reaped0 === undefined ? undefined : procStat('self').children - reaped0;
    const tps = Number(/tps = ([\d.]+)/.exec(stdout)?.[1]);
    const total = Number(/number of transactions actually processed: (\d+)/.exec(stdout)?.[1]);
    const lat = Number(/latency average = ([\d.]+) ms/.exec(stdout)?.[1]);
    return {
      rps: tps, p50: NaN, p99: NaN, non2xx: 0, errors: 0, total, latencyAvg: lat, generator: 'pgbench',
      genCpu: genSeconds === undefined ? undefined : { seconds: genSeconds, wall, cores: genSeconds / wall },
    };
  });
  log(`bench: pgbench -S: ${r.rps.toFixed(0)} tps, latency avg ${r.latencyAvg} ms`);
  row(`pgbench -S (select-only, ${clients} clients, -j 2, simple protocol)`, CONNECTIONS, r, { reference: 'pgbench', note: `latency avg ${r.latencyAvg} ms` });
  return r.rps;
}

function pgOptions(url) {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port || 5432), username: decodeURIComponent(u.username), password: decodeURIComponent(u.password) };
}

/**
 * A load that ends leaves requests in flight on the server (autocannon stops waiting for them): let them
 * finish before the counters are read, or their model calls and queries land in the next measurement.
 */
async function settled(url) {
  let last = -1;
  for (let i = 0; i < 50; i++) {
    await new Promise((r) => setTimeout(r, 200));
    const m = await scrape(url);
    const now = sum(m, 'model_calls_total') + sum(m, 'db_query_duration_seconds_count');
    if (now === last) return m;
    last = now;
  }
  return scrape(url);
}

function delta(before, after, name, match) {
  return sum(after, name, match) - sum(before, name, match);
}

const fmt = (n) => Math.round(n).toLocaleString('en-US');
const pct = (part, whole) => `${((100 * part) / Math.max(whole, 1)).toFixed(1)} %`;
const ms = (x) => (Number.isFinite(x) ? (x < 10 ? x.toFixed(2) : x.toFixed(1)) : '–');
const cores = (x) => (Number.isFinite(x) ? x.toFixed(2) : '–');
const cpuMs = (x) => (Number.isFinite(x) ? (x < 100 ? x.toFixed(1) : fmt(x)) : '–');

function render({ machine, ceilingRps, ceilingP99, drift, startedAt }) {
  const out = [];
  out.push(`### npm run bench — ${startedAt.toISOString()}`, '');
  out.push(
    `${machine.nproc} cores (\`nproc\`), ${machine.cpu}, ${machine.memGiB} GiB, Node ${machine.node}; load average ` +
      `${machine.loadStart} at start, ${machine.loadEnd} at end. ${WORKERS} HTTP workers (unless the row says), ${DURATION} s per load, ` +
      `the load generator on the same machine. Ceiling: ${fmt(ceilingRps)} req/s, p99 ${ms(ceilingP99)} ms (mean of start and end; ` +
      `they differ by ${(100 * drift).toFixed(0)} %, a measure of the noise).`,
    '',
    `Generators (\`gen\`): ${machine.wrk ? `\`wrk\` = wrk ${machine.wrk}, 2 threads, a generated Lua script per load; ` : ''}` +
      '`autocannon×2` = autocannon on 2 worker threads (latencies whole ms, 2xx only), `autocannon×1` = on the bench\'s main thread ' +
      '(write-mix: its response checks share state with the bench; coalesce: all 1,000 requests leave at once). `gen cores`, `svc cores`, `pg cores` = CPU seconds ÷ wall ' +
      'seconds over the measured load, from /proc/<pid>/stat utime+stime (+cutime+cstime of reaped children): the generator ' +
      '(wrk process, or this process for autocannon), the service (primary + HTTP workers, all threads; the ceiling server ' +
      `for its rows), PostgreSQL (postmaster + backends; ${machine.postgres ?? 'not measured'}). \`svc CPU-ms/1k req\` = service CPU ms per 1,000 ` +
      `responses. ⚠ generator-bound? = the generator used over 0.5 core while the service used under ${NPROC} (all cores).`,
    '',
  );
  out.push('| scenario | gen | conns | req/s | p50 ms | p99 ms | non-2xx | errors | gen cores | svc cores | svc CPU-ms/1k req | pg cores | × ceiling | × pgbench -S | notes |');
  out.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const r of rows) {
    const vsC = r.reference === 'pgbench' ? '' : r.vsCeiling.toFixed(2);
    const vsP = r.vsPgbench !== undefined ? r.vsPgbench.toFixed(2) : '';
    const note = [...(r.flags ?? []), r.target ? `target ${r.target}` : '', r.note ?? ''].filter(Boolean).join('; ');
    out.push(
      `| ${r.scenario} | ${r.generator ?? ''} | ${r.connections} | ${fmt(r.rps)} | ${ms(r.p50)} | ${ms(r.p99)} | ${Number.isFinite(r.non2xx) ? r.non2xx : ''} | ` +
        `${Number.isFinite(r.errors) ? r.errors : ''} | ${cores(r.genCores)} | ${cores(r.svcCores)} | ${cpuMs(r.svcCpuMsPer1k)} | ${cores(r.pgCores)} | ${vsC} | ${vsP} | ${note} |`,
    );
  }
  out.push('');
  for (const n of notes) out.push(n, '');
  return out.join('\n');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
