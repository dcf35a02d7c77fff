/**
 * `npm run import` as an operator runs it: a fixture folder in, the summary on stdout, exit 0; bad input
 * exits 1 with one `error:` line naming the file and line and nothing imported; usage errors exit 2.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { run as runCommand } from '../support/run.js';

let db: TestDatabase;
let dir: string;

beforeAll(async () => {
  db = await createTestDatabase({ migrate: false });
  dir = mkdtempSync(path.join(tmpdir(), 'import-cli-'));
});
afterAll(async () => {
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

const importCli = (...args: string[]) => runCommand(process.execPath, ['dist/cli/import.js', ...args], { DATABASE_URL: db.url });

function write(name: string, files: Record<string, string>): string {
  const d = mkdtempSync(path.join(dir, `${name}-`));
  for (const [file, body] of Object.entries(files)) writeFileSync(path.join(d, file), body);
  return d;
}

async function counts(): Promise<{ users: number; content: number; events: number }> {
  const [row] = await db.sql<{ users: number; content: number; events: number }[]>`
    SELECT (SELECT count(*) FROM users)::int AS users, (SELECT count(*) FROM content)::int AS content,
           (SELECT count(*) FROM user_watch_history)::int AS events`;
  return row!;
}

const MOVIES = 'movieId,title,genres\n1,Toy Story (1995),Animation|Comedy\n2,"Heat, The (1995)",Action\n';
const RATINGS = 'userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,2,3.5,964981247\n2,1,5.0,964982224\n';

describe('npm run import', () => {
  it('migrates, imports a MovieLens CSV folder and says what it did; again: nothing added', async () => {
    const d = write('csv', { 'movies.csv': MOVIES, 'ratings.csv': RATINGS });
    const first = await importCli('--format', 'movielens', d);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(
      /^imported MovieLens CSV: 2 users added, 0 updated; 2 titles added, 0 updated; 3 watch events added \(3 read\) in [\d.]+s\n$/,
    );
    expect(first.stderr).toContain('migrate up 0006_content_genres');
    expect(await counts()).toEqual({ users: 2, content: 2, events: 3 });

    const again = await importCli('--format', 'movielens', d);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/: 0 users added, 0 updated; 0 titles added, 0 updated; 0 watch events added \(3 read\)/);
    expect(await counts()).toEqual({ users: 2, content: 2, events: 3 });
  });

  it('--reset replaces the data set with a JSON Lines folder', async () => {
    const d = write('jsonl', {
      'items.jsonl': '{"content_id":7,"title":"Seven","genre":"drama"}\n',
      'events.jsonl': '{"user_id":3,"content_id":7,"timestamp":"2020-01-01T00:00:00Z"}\n',
    });
    const r = await importCli('--format', 'jsonl', '--reset', d);
    expect(r.code).toBe(0);
    expect(await counts()).toEqual({ users: 1, content: 1, events: 1 });
  });

  it('exits 1 on bad input with one line naming the file and line, and imports nothing', async () => {
    const d = write('bad', { 'movies.csv': MOVIES, 'ratings.csv': `${RATINGS}3,99,4.0,964982224\n` });
    const r = await importCli('--format', 'movielens', d);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^error: ${path.join(d, 'ratings.csv').replaceAll('/', '\\/')} line 5: unknown title 99 .*\\n$`, 'm'));
    expect(r.stderr).not.toMatch(/\bat .*\.js:\d+/); // no stack trace
    expect(r.stdout).toBe('');
    expect(await counts()).toEqual({ users: 1, content: 1, events: 1 });
  });

  it('exits 1 on a missing file before touching the database', async () => {
    const d = write('missing', { 'ratings.csv': RATINGS });
    const r = await importCli('--format', 'movielens', d);
    expect(r).toMatchObject({ code: 1, stdout: '', stderr: `error: ${path.join(d, 'movies.csv')}: file not found\n` });
  });

  it('prints its usage with --help (exit 0)', async () => {
    const r = await importCli('--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: npm run import -- --format movielens\|jsonl \[--reset\] DIR/);
  });

  it.each([
    [[], '--format is required'],
    [['--format', 'csv', '/tmp'], '--format must be movielens or jsonl, got "csv"'],
    [['--format', 'jsonl'], 'missing DIR'],
    [['--format', 'jsonl', 'a', 'b'], 'expected one DIR, got 2'],
    [['--format', 'jsonl', '--bogus', 'a'], "Unknown option '--bogus'"],
  ])('%j exits 2: %s', async (args, message) => {
    const r = await importCli(...args);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`error: ${message}`);
    expect(r.stderr).toContain('Usage: npm run import -- ');
    expect(r.stdout).toBe('');
  });

  it('works through the npm script, which builds first', async () => {
    const r = await runCommand('npm', ['run', '--silent', 'import', '--', '--help'], { DATABASE_URL: db.url });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: npm run import -- /);
  });
});
