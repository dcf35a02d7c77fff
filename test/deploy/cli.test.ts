/**
 * The operator commands against a real, empty database: `migrate up|down|status`, `seed` (sizes, --reset),
 * their help (exit 0), usage errors (exit 2) and an unreachable database (exit 1: one line, no stack trace,
 * no password). They run as built by `npm test`; one run goes through the npm script, which builds first.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { run as runCommand } from '../support/run.js';
import { freePort } from '../support/server.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const MIGRATIONS = readdirSync(path.join(ROOT, 'migrations'))
  .filter((f) => f.endsWith('.up.sql'))
  .map((f) => f.slice(0, -'.up.sql'.length))
  .sort();

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase({ migrate: false });
});
afterAll(async () => {
  await db?.drop();
});

/** A command with this file's database as DATABASE_URL (unless `env` overrides it). */
const run = (command: string, args: string[], env: Record<string, string> = {}) =>
  runCommand(command, args, { DATABASE_URL: db.url, ...env });

const migrate = (...args: string[]) => run(process.execPath, ['dist/cli/migrate.js', ...args]);
const seed = (...args: string[]) => run(process.execPath, ['dist/cli/seed.js', ...args]);

async function counts(): Promise<{ users: number; content: number; events: number }> {
  const [row] = await db.sql<{ users: number; content: number; events: number }[]>`
    SELECT (SELECT count(*) FROM users)::int AS users, (SELECT count(*) FROM content)::int AS content,
           (SELECT count(*) FROM user_watch_history)::int AS events`;
  return row!;
}

describe('migrate', () => {
  it('shows every migration pending on an empty database', async () => {
    const r = await migrate('status');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(MIGRATIONS.map((id) => `pending  ${id}\n`).join(''));
  });

  it('applies all, reverts the latest, re-applies it: up, status, down, status, up', async () => {
    const up = await migrate('up');
    expect(up.code).toBe(0);
    expect(up.stdout).toBe(MIGRATIONS.map((id) => `applied ${id}\n`).join(''));
    expect((await migrate('status')).stdout).toBe(MIGRATIONS.map((id) => `applied  ${id}\n`).join(''));

    const latest = MIGRATIONS.at(-1)!;
    const down = await migrate('down');
    expect(down).toMatchObject({ code: 0, stdout: `reverted ${latest}\n` });
    expect((await migrate('status')).stdout).toContain(`pending  ${latest}\n`);

    expect(await migrate('up')).toMatchObject({ code: 0, stdout: `applied ${latest}\n` });
    expect(await migrate('up')).toMatchObject({ code: 0, stdout: 'already up to date\n' });
    const [{ n }] = await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM schema_migrations`;
    expect(n).toBe(MIGRATIONS.length);
  });

  it('works through the npm script, which builds first', async () => {
    const r = await run('npm', ['run', '--silent', 'migrate', '--', 'status']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(MIGRATIONS.map((id) => `applied  ${id}\n`).join(''));
  });
});

describe('seed', () => {
  it('loads the requested sizes', async () => {
    const r = await seed('--users', '5', '--content', '10', '--events', '20');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^seeded 5 users, 10 titles, 20 watch events, \d+ dismissals in [\d.]+s\n$/);
    expect(await counts()).toEqual({ users: 5, content: 10, events: 20 });
  });

  it('refuses to seed over existing data without --reset (exit 1), replaces it with --reset', async () => {
    const refused = await seed('--users', '3', '--content', '4');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^error: .*not empty.*--reset/m);
    expect(await counts()).toEqual({ users: 5, content: 10, events: 20 });

    // Without --events a small catalog gets every (user, title) pair: 3 × 4.
    const reset = await seed('--reset', '--users', '3', '--content', '4');
    expect(reset.code).toBe(0);
    expect(await counts()).toEqual({ users: 3, content: 4, events: 12 });
  });
});

describe('help and usage errors', () => {
  it.each([
    ['migrate', ['--help']],
    ['migrate', ['-h']],
    ['seed', ['--help']],
  ])('%s %s prints the usage and exits 0', async (cli, args) => {
    const r = await (cli === 'migrate' ? migrate : seed)(...args);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^Usage: npm run ${cli} -- `));
    expect(r.stderr).toBe('');
  });

  it.each([
    ['migrate', [], 'missing command'],
    ['migrate', ['sideways'], 'unknown command "sideways"'],
    ['migrate', ['up', '--steps', '0'], '--steps must be a positive integer'],
    ['migrate', ['status', '--steps', '1'], '--steps applies to up and down only'],
    ['migrate', ['up', 'now'], 'unexpected argument "now"'],
    ['seed', ['--users', 'many'], '--users must be a non-negative integer'],
    ['seed', ['--bogus'], "Unknown option '--bogus'"],
    ['seed', ['--users', '2', '--content', '3', '--events', '7'], '--events 7 exceeds users × content (6)'],
  ])('%s %j exits 2: %s', async (cli, args, message) => {
    const r = await (cli === 'migrate' ? migrate : seed)(...args);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`error: ${message}`);
    expect(r.stderr).toContain(`Usage: npm run ${cli} -- `);
    expect(r.stdout).toBe('');
  });

  it('exits 2 on a DATABASE_URL that is not a PostgreSQL URL', async () => {
    const r = await run(process.execPath, ['dist/cli/migrate.js', 'status'], { DATABASE_URL: 'mysql://localhost/db' });
    expect(r).toMatchObject({ code: 2, stderr: 'error: DATABASE_URL must start with postgres:// or postgresql://\n' });
  });
});

describe('unreachable database', () => {
  it.each([
    ['migrate', ['status']],
    ['seed', ['--users', '2']],
  ])('%s %j exits 1 with one line naming the server, no stack trace, no password', async (cli, args) => {
    const port = await freePort(); // nothing listens there
    const url = `postgres://operator:s3cret-pw@127.0.0.1:${port}/recommendations`;
    const r = await run(process.execPath, [`dist/cli/${cli}.js`, ...args], { DATABASE_URL: url });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `error: cannot connect to PostgreSQL at 127.0.0.1:${port}/recommendations: ` +
        `connect ECONNREFUSED 127.0.0.1:${port} (check DATABASE_URL)\n`,
    );
    expect(r.stdout).toBe('');
  });
});
