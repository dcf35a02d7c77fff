#!/usr/bin/env node
import { parseArgs } from 'node:util';
import postgres from 'postgres';
import { databaseFromEnv } from '../data/embedded-postgres.js';
import { migrate } from '../data/migrate.js';
import { DEFAULT_SEED, DEFAULT_SEED_SIZE, seed, type SeedOptions } from '../data/seed.js';
import { fmt, progressReporter } from './progress.js';
import { parseCommand, runCli, stopOnSignal, UsageError } from './run.js';

const USAGE = `Usage: npm run seed -- [--users N] [--content N] [--events N] [--seed S] [--reset]

Loads deterministic test data (same options, identical rows). Runs migrations up first.
The watch events carry latent tastes across genres, a long tail and drift over time
(docs/demo-data.md).

Options:
  --users N     users to create (default ${DEFAULT_SEED_SIZE.users})
  --content N   titles to create (default ${DEFAULT_SEED_SIZE.content})
  --events N    watch events to create (default ${DEFAULT_SEED_SIZE.events}, or users × content when
                that is smaller); at most users × content
  --seed S      PRNG seed (default ${DEFAULT_SEED})
  --reset       replace existing data (truncates users, content, user_watch_history and
                user_dismissals)
  --help        show this help

Numbers may use _ separators: --events 20_000_000

Environment:
  DATABASE_URL       PostgreSQL to seed; when unset, the embedded PostgreSQL of DATA_DIR:
                     the one a running \`npm start\` uses, else started for this command
  DATA_DIR           where the embedded PostgreSQL keeps its data, as for the service
                     (default ./.data; data under <DATA_DIR>/pg)
  EMBEDDED_PG_PORT   port of the embedded PostgreSQL (default 54329)
`;

function count(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const digits = raw.replaceAll('_', '');
  if (!/^\d+$/.test(digits) || !Number.isSafeInteger(Number(digits))) {
    throw new UsageError(`--${name} must be a non-negative integer, got "${raw}"`);
  }
  return Number(digits);
}

function parse(argv: string[]): SeedOptions | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        users: { type: 'string' },
        content: { type: 'string' },
        events: { type: 'string' },
        seed: { type: 'string' },
        reset: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const v = parsed.values;
  if (v.help) return 'help';
  const users = count('users', v.users, DEFAULT_SEED_SIZE.users);
  const content = count('content', v.content, DEFAULT_SEED_SIZE.content);
  const opts: SeedOptions = {
    users,
    content,
    // Without --events: the default, or every pair when a small catalog has fewer (`--users 2` just works).
    events: count('events', v.events, Math.min(DEFAULT_SEED_SIZE.events, users * content)),
    seed: count('seed', v.seed, DEFAULT_SEED),
    reset: v.reset ?? false,
  };
  if (opts.seed! > 0xffffffff) throw new UsageError('--seed must be at most 4294967295');
  if (opts.events > opts.users * opts.content) {
    throw new UsageError(`--events ${opts.events} exceeds users × content (${opts.users * opts.content}): ` +
      'each user watches a title at most once');
  }
  return opts;
}

async function main(): Promise<number> {
  const opts = parseCommand(parse, USAGE);
  if (typeof opts === 'number') return opts;
  const log = (msg: string): void => void process.stderr.write(`${msg}\n`);
  const db = await databaseFromEnv(process.env, log);
  stopOnSignal(db.stop);
  const sql = postgres(db.url, { max: 2, connect_timeout: 10, onnotice: () => {} });
  const progress = progressReporter(process.stderr);
  try {
    const { ran } = await migrate(sql, 'up', { log });
    if (ran.length > 0) log(`applied ${ran.length} migration(s)`);
    log(`seeding ${fmt.format(opts.users)} users, ${fmt.format(opts.content)} titles, ` +
      `${fmt.format(opts.events)} watch events (seed ${opts.seed}${opts.reset ? ', reset' : ''})`);
    const result = await seed(sql, { ...opts, onProgress: progress.onProgress });
    process.stdout.write(
      `seeded ${fmt.format(result.users)} users, ${fmt.format(result.content)} titles, ` +
        `${fmt.format(result.events)} watch events, ${fmt.format(result.dismissals)} dismissals ` +
        `in ${(result.elapsedMs / 1000).toFixed(1)}s\n`,
    );
    return 0;
  } finally {
    progress.finish();
    await sql.end({ timeout: 5 });
    await db.stop();
  }
}

runCli(main);
