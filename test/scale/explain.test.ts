/**
 * The request path stays index-driven at scale: EXPLAIN of the repositories' own statements (the SQL text
 * exported by src/data/recommendation-repo.ts, content-repo.ts and user-repo.ts) never scans users, content,
 * user_watch_history or user_dismissals sequentially. The database holds 40k users / 2k titles / 400k events, analyzed: large enough that
 * the planner picks the plans it picks at 1M users (checked against the 1M bench database too), small
 * enough to seed in seconds. Both plan kinds are checked: the custom plan of a bound statement and the
 * generic plan a prepared statement switches to after five executions.
 */
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  TOP_ACTIVE_USERS_SQL,
  USER_PAGE_SQL,
  USER_SIGNALS_MANY_SQL,
  USER_SIGNALS_SQL,
} from '../../src/data/recommendation-repo.js';
import { CONTENT_BULK_SQL, CONTENT_BY_ID_SQL, CONTENT_HIDE_SQL, CONTENT_UPSERT_SQL } from '../../src/data/content-repo.js';
import { seed } from '../../src/data/seed.js';
import { SIMILAR_SQL } from '../../src/data/similarity-repo.js';
import { DISMISS_SQL, UNDISMISS_SQL, USER_UPSERT_SQL } from '../../src/data/user-repo.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

const USERS = 40_000;
const WATCHED_TABLES = new Set(['users', 'content', 'user_watch_history', 'user_dismissals', 'content_similarity']);

let db: TestDatabase;
/**
 * EXPLAIN_DATABASE_URL: check the plans on a database of your own instead, seeded and analyzed at the size
 * you care about (e.g. the bench's 1M users / 100k titles / 20M events). Nothing is written: every
 * statement is only planned (EXPLAIN, and EXPLAIN ANALYZE of read-only ones).
 */
const external = process.env.EXPLAIN_DATABASE_URL;

beforeAll(async () => {
  if (external) {
    const sql = postgres(external, { max: 2, onnotice: () => {} });
    db = { url: external, sql, drop: () => sql.end() };
    return;
  }
  db = await createTestDatabase();
  await seed(db.sql, { users: USERS, content: 2_000, events: 400_000 });
}, 120_000);
afterAll(async () => {
  await db?.drop();
});

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Shared Hit Blocks'?: number;
  'Shared Read Blocks'?: number;
  Plans?: PlanNode[];
}

function walk(node: PlanNode, visit: (n: PlanNode) => void): void {
  visit(node);
  for (const child of node.Plans ?? []) walk(child, visit);
}

/** The plan of `statement`: generic (no parameter values) or custom (bound to `params`). */
async function plan(sql: postgres.Sql, statement: string, params: unknown[] | 'generic', analyze = false): Promise<PlanNode> {
  const options = params === 'generic' ? 'GENERIC_PLAN, FORMAT JSON' : `FORMAT JSON${analyze ? ', ANALYZE, BUFFERS' : ''}`;
  const rows = await sql.unsafe<{ 'QUERY PLAN': [{ Plan: PlanNode }] }[]>(
    `EXPLAIN (${options}) ${statement}`,
    params === 'generic' ? [] : (params as never[]),
  );
  return rows[0]!['QUERY PLAN'][0].Plan;
}

/** Sequential scans of the big tables anywhere in the plan (subplans included). */
function seqScans(root: PlanNode): string[] {
  const found: string[] = [];
  walk(root, (n) => {
    if (n['Node Type'] === 'Seq Scan' && WATCHED_TABLES.has(n['Relation Name'] ?? '')) found.push(n['Relation Name']!);
  });
  return found;
}

function indexesUsed(root: PlanNode): string[] {
  const found = new Set<string>();
  walk(root, (n) => n['Index Name'] && found.add(n['Index Name']));
  return [...found].sort();
}

const batchOf100 = Array.from({ length: 100 }, (_, i) => 20_001 + i);
const bulkIds = Array.from({ length: 1000 }, (_, i) => 1_501 + i); // titles 1501-2000 exist, 2001-2500 are new
const bulkOf1000 = [
  bulkIds,
  bulkIds.map((id) => `Title ${id}`),
  bulkIds.map(() => 'drama'),
  bulkIds.map(() => 0.5),
  bulkIds.map(() => null),
  bulkIds.map(() => null),
  bulkIds.map((id) => (id % 2 ? 'basic' : null)),
  bulkIds.map((id) => (id % 3 ? '{US,GB}' : null)),
];
const STATEMENTS: [string, string, unknown[]][] = [
  ['user signals (one cache miss)', USER_SIGNALS_SQL, [12_345]],
  ['user signals of a batch page (100 users, one statement)', USER_SIGNALS_MANY_SQL, [batchOf100]],
  ['batch page: first page', USER_PAGE_SQL, [0, 100]],
  ['batch page: last page', USER_PAGE_SQL, [USERS - 100, 100]],
  ['most active users (cache warming)', TOP_ACTIVE_USERS_SQL, [1000]],
  ['title upsert (PUT /content/{id})', CONTENT_UPSERT_SQL, [1_500, 'T', 'drama', 0.5, null, null, null, null]],
  ['title upsert, every optional field', CONTENT_UPSERT_SQL, [2_500, 'T', 'drama', 0.5, '2025-01-01T00:00:00Z', true, 'basic', ['US']]],
  ['bulk title upsert (1000 items, half of them new)', CONTENT_BULK_SQL, bulkOf1000],
  ['hide a title (DELETE /content/{id})', CONTENT_HIDE_SQL, [1_234]],
  ['one title (GET /content/{id} fallback)', CONTENT_BY_ID_SQL, [1_234]],
  ['user upsert (PUT /users/{id})', USER_UPSERT_SQL, [12_345, true, 40, false, null, 'premium']],
  ['dismiss a title', DISMISS_SQL, [12_345, 1_234]],
  ['withdraw a dismissal', UNDISMISS_SQL, [12_345, 1_234]],
  ['similar titles of one title (GET /content/{id}/similar)', SIMILAR_SQL, [1_234]],
];

describe('EXPLAIN of the request-path statements', () => {
  it.each(STATEMENTS)('%s: no sequential scan of users, content, user_watch_history or user_dismissals', async (_name, statement, params) => {
    const custom = await plan(db.sql, statement, params);
    const generic = await plan(db.sql, statement, 'generic');
    expect({ custom: seqScans(custom), generic: seqScans(generic) }).toEqual({ custom: [], generic: [] });
  });

  it('reads the watch history through its indexes', async () => {
    const used = indexesUsed(await plan(db.sql, USER_SIGNALS_SQL, 'generic'));
    expect(used).toContain('users_pkey');
    expect(used.some((name) => name.startsWith('idx_watch_history_'))).toBe(true);
  });

  it("costs the batch endpoint's last page what it costs the first: no OFFSET over the users index", async () => {
    const buffers = async (offset: number): Promise<number> => {
      let total = 0;
      walk(await plan(db.sql, USER_PAGE_SQL, [offset, 100], true), (n) => {
        total = Math.max(total, (n['Shared Hit Blocks'] ?? 0) + (n['Shared Read Blocks'] ?? 0));
      });
      return total;
    };
    const first = await buffers(0);
    const last = await buffers(USERS - 100);
    // The statement it replaced: OFFSET (P-1)*L walks the users index up to the page.
    const offsetBuffers = async (offset: number): Promise<number> => {
      let total = 0;
      walk(await plan(db.sql, 'SELECT id FROM users ORDER BY id LIMIT 100 OFFSET $1', [offset], true), (n) => {
        total = Math.max(total, (n['Shared Hit Blocks'] ?? 0) + (n['Shared Read Blocks'] ?? 0));
      });
      return total;
    };
    console.log(`batch page buffers: first ${first}, last ${last}; OFFSET statement: first ${await offsetBuffers(0)}, last ${await offsetBuffers(USERS - 100)}`);
    expect(last).toBeLessThanOrEqual(first + 8);
    expect(await offsetBuffers(USERS - 100)).toBeGreaterThan(4 * last);
  });
});
