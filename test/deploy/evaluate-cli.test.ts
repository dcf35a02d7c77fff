/**
 * `npm run evaluate` against a real database: the table on stdout, with --json one JSON object as the last
 * line (every model's row, the protocol, the default), usage errors (exit 2) and an empty database (exit 1).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { run as runCommand } from '../support/run.js';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

const run = (command: string, args: string[], env: Record<string, string> = {}) =>
  runCommand(command, args, { DATABASE_URL: db.url, ...env });
const evaluate = (...args: string[]) => run(process.execPath, ['dist/cli/evaluate.js', ...args]);

describe('npm run evaluate', () => {
  it('refuses an empty database with a message and exit 1', async () => {
    const r = await evaluate();
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('error: the database holds no watch events to evaluate');
  });

  it('prints the table and, with --json, one object as the last line: every model, the protocol, the default', async () => {
    const seeded = await run(process.execPath, ['dist/cli/seed.js', '--users', '400', '--content', '300', '--events', '12000']);
    expect(seeded.code).toBe(0);
    const r = await evaluate('--json', '--users', '150');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    const report = JSON.parse(lines.at(-1)!);
    expect(report.protocol).toMatchObject({ split: 'per-user-fraction', fraction: 0.1, cutoff: 10, ranking: 'full', candidate_pool: 100 });
    expect(report.users).toBe(150);
    expect(report.default).toBe('auto');
    expect(report.models.map((m: { model: string }) => m.model)).toEqual(['heuristic', 'popularity', 'item-cf', 'als', 'auto']);
    for (const m of report.models) {
      for (const key of ['hr_at_10', 'ndcg_at_10', 'recall_at_10', 'coverage_at_10', 'novelty', 'ndcg_ci95']) {
        expect(typeof m[key], `${m.model}.${key}`).toBe('number');
      }
      expect(m.ndcg_at_10).toBeGreaterThanOrEqual(0);
      expect(m.ndcg_at_10).toBeLessThanOrEqual(1);
    }
    // The planted tastes are learnable: the default beats popularity on the demo data.
    const ndcg = (name: string) => report.models.find((m: { model: string }) => m.model === name).ndcg_at_10;
    expect(ndcg('auto')).toBeGreaterThan(ndcg('popularity'));
    expect(r.stdout).toContain('auto (default)');
    expect(r.stdout).toMatch(/HR@10 +NDCG@10/);
  });

  it('with a global time cut instead of the fraction', async () => {
    const r = await evaluate('--json', '--users', '50', '--cut', '2025-12-01');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    expect(report.protocol).toMatchObject({ split: 'global-time-cut', cut: '2025-12-01T00:00:00.000Z' });
  });

  it('rejects bad options with exit 2 and the usage', async () => {
    for (const args of [['--fraction', '1.5'], ['--fraction', '0.1', '--cut', '2025-01-01'], ['--users', 'x'], ['--cut', 'soon']]) {
      const r = await evaluate(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toContain('Usage: npm run evaluate');
    }
  });
});
