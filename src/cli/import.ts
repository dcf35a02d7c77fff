#!/usr/bin/env node
import { parseArgs } from 'node:util';
import postgres from 'postgres';
import { databaseFromEnv } from '../data/embedded-postgres.js';
import { importDataset } from '../data/import/importer.js';
import { jsonlSource } from '../data/import/jsonl.js';
import { movielensSource } from '../data/import/movielens.js';
import { migrate } from '../data/migrate.js';
import { fmt, progressReporter } from './progress.js';
import { parseCommand, runCli, stopOnSignal, UsageError } from './run.js';

const USAGE = `Usage: npm run import -- --format movielens|jsonl [--reset] DIR

Loads real interaction data from the files in DIR, all or nothing (docs/data.md). Runs migrations up first.

Formats:
  movielens   a MovieLens download, the layout detected from the files present:
              100K (u.data, u.item, u.user, u.genre), 1M (ratings.dat, movies.dat, users.dat)
              or the CSV releases (ratings.csv, movies.csv); each rating is a watch event
  jsonl       items.jsonl, events.jsonl and optionally users.jsonl: one JSON object per line
              with the API's field names (events: user_id, content_id, timestamp)

Options:
  --format F  movielens or jsonl (required)
  --reset     replace the data set (users, content, watch history and dismissals); without it
              the import adds and updates, and importing the same files again changes nothing
  --help      show this help

Bad input (a malformed line, an unknown user or title, invalid UTF-8, a missing file) stops the
import with the file and line, exit code 1, and nothing imported.

Environment:
  DATABASE_URL       PostgreSQL to import into; when unset, the embedded PostgreSQL of DATA_DIR:
                     the one a running \`npm start\` uses, else started for this command
  DATA_DIR           where the embedded PostgreSQL keeps its data, as for the service
                     (default ./.data; data under <DATA_DIR>/pg)
  EMBEDDED_PG_PORT   port of the embedded PostgreSQL (default 54329)
`;

const FORMATS = { movielens: movielensSource, jsonl: jsonlSource } as const;

function parse(argv: string[]): { format: keyof typeof FORMATS; reset: boolean; dir: string } | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { format: { type: 'string' }, reset: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const v = parsed.values;
  if (v.help) return 'help';
  if (v.format === undefined) throw new UsageError('--format is required (movielens or jsonl)');
  if (!(v.format in FORMATS)) throw new UsageError(`--format must be movielens or jsonl, got "${v.format}"`);
  if (parsed.positionals.length !== 1) {
    throw new UsageError(parsed.positionals.length === 0 ? 'missing DIR' : `expected one DIR, got ${parsed.positionals.length}`);
  }
  return { format: v.format as keyof typeof FORMATS, reset: v.reset ?? false, dir: parsed.positionals[0]! };
}

async function main(): Promise<number> {
  const opts = parseCommand(parse, USAGE);
  if (typeof opts === 'number') return opts;
  // Detection and missing files fail before any database is started.
  const source = await FORMATS[opts.format](opts.dir);
  const log = (msg: string): void => void process.stderr.write(`${msg}\n`);
  const db = await databaseFromEnv(process.env, log);
  stopOnSignal(db.stop);
  const sql = postgres(db.url, { max: 2, connect_timeout: 10, onnotice: () => {} });
  const progress = progressReporter(process.stderr);
  try {
    const { ran } = await migrate(sql, 'up', { log });
    if (ran.length > 0) log(`applied ${ran.length} migration(s)`);
    log(`importing ${source.layout} from ${opts.dir}${opts.reset ? ' (reset)' : ''}`);
    const r = await importDataset(sql, source, { reset: opts.reset, onProgress: progress.onProgress });
    process.stdout.write(
      `imported ${r.layout}: ${fmt.format(r.users.added)} users added, ${fmt.format(r.users.updated)} updated; ` +
        `${fmt.format(r.titles.added)} titles added, ${fmt.format(r.titles.updated)} updated; ` +
        `${fmt.format(r.events.added)} watch events added (${fmt.format(r.events.read)} read) ` +
        `in ${(r.elapsedMs / 1000).toFixed(1)}s\n`,
    );
    return 0;
  } finally {
    progress.finish();
    await sql.end({ timeout: 5 });
    await db.stop();
  }
}

runCli(main);
