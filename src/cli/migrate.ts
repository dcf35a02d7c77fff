#!/usr/bin/env node
import { parseArgs } from 'node:util';
import postgres from 'postgres';
import { databaseFromEnv } from '../data/embedded-postgres.js';
import { migrate, type MigrateDirection } from '../data/migrate.js';
import { parseCommand, runCli, stopOnSignal, UsageError } from './run.js';

const USAGE = `Usage: npm run migrate -- <up|down|status> [--steps N]

Applies, reverts or lists the SQL migrations in migrations/.

  up        apply pending migrations (all, or the next N with --steps)
  down      revert the latest applied migration (or the latest N with --steps)
  status    list applied and pending migrations

Options:
  --steps N   how many migrations to apply or revert
  --help      show this help

Environment:
  DATABASE_URL       PostgreSQL to migrate; when unset, the embedded PostgreSQL of DATA_DIR:
                     the one a running \`npm start\` uses, else started for this command
  DATA_DIR           where the embedded PostgreSQL keeps its data, as for the service
                     (default ./.data; data under <DATA_DIR>/pg)
  EMBEDDED_PG_PORT   port of the embedded PostgreSQL (default 54329)
`;

function parse(argv: string[]): { direction: MigrateDirection; steps?: number } | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { steps: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (parsed.values.help) return 'help';
  const [direction, ...extra] = parsed.positionals;
  if (direction === undefined) throw new UsageError('missing command: up, down or status');
  if (direction !== 'up' && direction !== 'down' && direction !== 'status') {
    throw new UsageError(`unknown command "${direction}": expected up, down or status`);
  }
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  const raw = parsed.values.steps;
  if (raw === undefined) return { direction };
  if (!/^[1-9]\d*$/.test(raw)) throw new UsageError(`--steps must be a positive integer, got "${raw}"`);
  if (direction === 'status') throw new UsageError('--steps applies to up and down only');
  return { direction, steps: Number(raw) };
}

async function main(): Promise<number> {
  const args = parseCommand(parse, USAGE);
  if (typeof args === 'number') return args;
  const log = (msg: string): void => void process.stderr.write(`${msg}\n`);
  const db = await databaseFromEnv(process.env, log);
  stopOnSignal(db.stop);
  const sql = postgres(db.url, { max: 2, connect_timeout: 10, onnotice: () => {} });
  try {
    const result = await migrate(sql, args.direction, { steps: args.steps });
    if (args.direction === 'status') {
      for (const id of result.applied) process.stdout.write(`applied  ${id}\n`);
      for (const id of result.pending) process.stdout.write(`pending  ${id}\n`);
      if (result.applied.length + result.pending.length === 0) process.stdout.write('no migrations found\n');
    } else if (result.ran.length === 0) {
      process.stdout.write(args.direction === 'up' ? 'already up to date\n' : 'nothing to revert\n');
    } else {
      const verb = args.direction === 'up' ? 'applied' : 'reverted';
      for (const id of result.ran) process.stdout.write(`${verb} ${id}\n`);
    }
    return 0;
  } finally {
    await sql.end({ timeout: 5 });
    await db.stop();
  }
}

runCli(main);
