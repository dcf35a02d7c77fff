#!/usr/bin/env node
/**
 * npm run evaluate: the quality of every model on the data the database holds (docs/quality.md). Progress
 * on stderr; the table on stdout, or with --json one JSON object as the last line of stdout.
 */
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config.js';
import { connect } from '../data/db.js';
import { databaseFromEnv } from '../data/embedded-postgres.js';
import { readAudiences, readTrainingData } from '../data/interactions-repo.js';
import { migrate } from '../data/migrate.js';
import { DEFAULT_EVALUATED_USERS, evaluate, type EvaluationReport } from '../recommenders/evaluation.js';
import { DEFAULT_TEST_FRACTION } from '../recommenders/split.js';
import { parseCommand, runCli, stopOnSignal, UsageError } from './run.js';

const USAGE = `Usage: npm run evaluate -- [--fraction F | --cut TIME] [--users N] [--seed S] [--json]

Trains every model on the training part of the database's watch events and scores the lists each would
serve against the held-out part (full ranking, through the serving code). Reads; never writes.

Options:
  --fraction F  per user, the chronologically last F of their events are held out (default ${DEFAULT_TEST_FRACTION};
                at least one; users with fewer than two events are not evaluated)
  --cut TIME    instead: events at or after TIME (RFC 3339 or a date) are held out
  --users N     evaluate at most N users, a fixed random sample (default ${DEFAULT_EVALUATED_USERS}; 0 = all);
                the table prints the 95 % confidence interval of NDCG@10 it gives
  --seed S      sample and training seed (default 1)
  --json        one JSON object as the last line of stdout
  --help        show this help

Environment: DATABASE_URL (unset: the embedded PostgreSQL of DATA_DIR, as npm run seed), CANDIDATE_POOL
and MODEL as the service reads them.
`;

interface Options {
  fraction?: number;
  cutMs?: number;
  users: number;
  seed: number;
  json: boolean;
}

function parse(argv: string[]): Options | 'help' {
  let v;
  try {
    v = parseArgs({
      args: argv,
      options: {
        fraction: { type: 'string' },
        cut: { type: 'string' },
        users: { type: 'string' },
        seed: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (v.help) return 'help';
  if (v.fraction !== undefined && v.cut !== undefined) throw new UsageError('--fraction and --cut are exclusive');
  const opts: Options = { users: DEFAULT_EVALUATED_USERS, seed: 1, json: v.json ?? false };
  if (v.fraction !== undefined) {
    const f = Number(v.fraction);
    if (!(f > 0 && f < 1)) throw new UsageError(`--fraction must be a number between 0 and 1, got "${v.fraction}"`);
    opts.fraction = f;
  }
  if (v.cut !== undefined) {
    const t = Date.parse(v.cut);
    if (Number.isNaN(t)) throw new UsageError(`--cut must be a date or time, got "${v.cut}"`);
    opts.cutMs = t;
  }
  for (const key of ['users', 'seed'] as const) {
    const raw = v[key];
    if (raw === undefined) continue;
    if (!/^\d+$/.test(raw)) throw new UsageError(`--${key} must be a non-negative integer, got "${raw}"`);
    opts[key] = Number(raw);
  }
  if (opts.users === 0) opts.users = Number.MAX_SAFE_INTEGER;
  return opts;
}

const pct = (x: number): string => x.toFixed(4);

function table(report: EvaluationReport): string {
  const head = ['model', 'serves', 'HR@10', 'NDCG@10 (±95%)', 'Recall@10', 'coverage@10', 'novelty'];
  const rows = report.models.map((m) => [
    m.model === report.default ? `${m.model} (default)` : m.model,
    m.serves,
    pct(m.hr_at_10),
    `${pct(m.ndcg_at_10)} ±${m.ndcg_ci95.toFixed(4)}`,
    pct(m.recall_at_10),
    pct(m.coverage_at_10),
    m.novelty.toFixed(0),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const p = report.protocol;
  const split = p.split === 'per-user-fraction' ? `last ${p.fraction! * 100} % of each user's events held out` : `events from ${p.cut} held out`;
  return [
    `${report.users} users evaluated (of ${p.users_evaluated_of}); ${split}; ${p.train_events} training events, ${p.test_events} held out; full ranking, top 10`,
    '',
    line(head),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
    '',
    `auto chose ${report.models.find((m) => m.model === 'auto')?.serves} on its own validation split (trained in ${(report.auto.train_ms / 1000).toFixed(1)} s)`,
  ].join('\n');
}

async function main(): Promise<number> {
  const opts = parseCommand(parse, USAGE);
  if (typeof opts === 'number') return opts;
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`error: ${err.message}\n`);
    return 2;
  }
  const started = Date.now();
  const log = (msg: string): void => void process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s] ${msg}\n`);
  const db = await databaseFromEnv(process.env, log);
  stopOnSignal(db.stop);
  const sql = connect(db.url, { max: 2, application: 'recommendation-service-evaluate' });
  try {
    await migrate(sql, 'up', { log });
    log('reading watch events, titles and users');
    const data = await readTrainingData(sql);
    const users = await readAudiences(sql);
    log(`${data.events.userIds.length} users with events, ${data.titles.length} titles, ${data.events.items.length} watch events`);
    if (data.events.items.length === 0) {
      process.stderr.write('error: the database holds no watch events to evaluate (npm run seed or npm run import first)\n');
      return 1;
    }
    const report = evaluate(
      { events: data.events, titles: data.titles, users },
      {
        ...(opts.fraction !== undefined ? { fraction: opts.fraction } : {}),
        ...(opts.cutMs !== undefined ? { cutMs: opts.cutMs } : {}),
        users: opts.users,
        seed: opts.seed,
        candidatePool: config.CANDIDATE_POOL,
        defaultModel: config.MODEL,
        onProgress: log,
      },
    );
    process.stdout.write(`${table(report)}\n`);
    if (opts.json) process.stdout.write(`${JSON.stringify(report)}\n`);
    return 0;
  } finally {
    await sql.end({ timeout: 5 });
    await db.stop();
  }
}

runCli(main);
