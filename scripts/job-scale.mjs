#!/usr/bin/env node
/**
 * One batch job for every user of DATABASE_URL (a seeded database), on the real clustered service started
 * here (WORKERS=2, model latency 0, SIMILAR_REFRESH_S=0, JOB_* as in your environment), and what it cost:
 * submit time, wall time to completion, users per second, the service's CPU per user (primary + workers,
 * from /proc) and its peak RSS. Then the batch endpoint on the same cold path for comparison: pages of 100
 * users that the job did not cache (`"warm": false`), four at a time, and its CPU per user.
 *
 *   npm run build && DATABASE_URL=postgres://… node scripts/job-scale.mjs
 *
 * Writes a job (and its results) into that database. Not a load test: one job, then 40 batch pages.
 */
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';

const url = process.env.DATABASE_URL;
if (!url) {
  console.error('DATABASE_URL is required');
  process.exit(2);
}

const port = await new Promise((resolve) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => {
    const { port: free } = s.address();
    s.close(() => resolve(free));
  });
});

function request(method, path, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, agent: false, headers: body ? { 'content-type': 'application/json' } : {} }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, json: JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null') }));
    });
    req.on('error', reject);
    if (body) req.write(JSON.stringify(body));
    req.end();
  });
}

/** The service's processes: the primary and its children. */
function tree(primary) {
  const pids = [primary];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === primary) pids.push(Number(entry));
    } catch {
      // gone
    }
  }
  return pids;
}
/** CPU seconds (utime + stime, every thread) of the service, and its RSS in bytes. */
function usage(primary) {
  let cpu = 0;
  let rss = 0;
  for (const pid of tree(primary)) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      cpu += (Number(fields[11]) + Number(fields[12])) / 100;
      rss += Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
    } catch {
      // gone
    }
  }
  return { cpu, rss };
}

const child = spawn(process.execPath, ['dist/main.js'], {
  env: {
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    WORKERS: process.env.WORKERS ?? '2',
    MODEL_LATENCY_MS: '0',
    MODEL_FAILURE_RATE: '0',
    SEED_ON_START: 'false',
    SIMILAR_REFRESH_S: '0',
    LOG_LEVEL: 'warn',
  },
  stdio: ['ignore', 'inherit', 'inherit'],
});
try {
  for (let i = 0; ; i++) {
    if (i > 600) throw new Error('service did not start');
    try {
      if ((await request('GET', '/ready')).status === 200) break;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  let total = 0;
  for (let run = 1; run <= Number(process.env.JOB_RUNS ?? 1); run++) {
  const before = usage(child.pid);
  const started = performance.now();
  const submitted = await request('POST', '/recommendations/jobs', { users: 'all', warm: false });
  const submitMs = performance.now() - started;
  if (submitted.status !== 202) throw new Error(`not accepted: ${JSON.stringify(submitted)}`);
  const id = submitted.json.job_id;
  total = submitted.json.total_users;
  let job;
  let peakRss = before.rss;
  do {
    await sleep(250);
    peakRss = Math.max(peakRss, usage(child.pid).rss);
    job = (await request('GET', `/recommendations/jobs/${id}`)).json;
  } while (job.status === 'queued' || job.status === 'running');
  const seconds = (performance.now() - started) / 1000;
  const after = usage(child.pid);
  const jobCpuMs = ((after.cpu - before.cpu) * 1000) / total;
  console.log(`job ${run}: ${job.status}, ${total} users (${job.failed_users} failed), submit ${submitMs.toFixed(0)} ms, ${seconds.toFixed(1)} s, ` +
    `${Math.round(total / seconds)} users/s; service CPU ${jobCpuMs.toFixed(3)} ms/user; RSS ${(before.rss / 2 ** 20).toFixed(0)} → peak ${(peakRss / 2 ** 20).toFixed(0)} MB`);
  }

  // The batch endpoint, same cold path: 40 pages of 100 (users the job did not cache), 4 at a time.
  const pages = Array.from({ length: Math.min(40, Math.floor(total / 100)) }, (_, i) => i + 1);
  const b0 = usage(child.pid);
  const t0 = performance.now();
  let users = 0;
  for (let i = 0; i < pages.length; i += 4) {
    const replies = await Promise.all(pages.slice(i, i + 4).map((p) => request('GET', `/recommendations/batch?page=${p}&limit=100`)));
    for (const r of replies) users += r.json.results.length;
  }
  const bSeconds = (performance.now() - t0) / 1000;
  const batchCpuMs = ((usage(child.pid).cpu - b0.cpu) * 1000) / users;
  console.log(`batch endpoint: ${users} users in ${bSeconds.toFixed(1)} s, ${Math.round(users / bSeconds)} users/s; service CPU ${batchCpuMs.toFixed(3)} ms/user`);
} finally {
  child.kill('SIGTERM');
}
