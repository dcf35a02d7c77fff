import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type postgres from 'postgres';

export type MigrateDirection = 'up' | 'down' | 'status';

export interface MigrateOptions {
  /** Folder of `NNNN_name.up.sql` / `NNNN_name.down.sql` files (default: the repo's `migrations/`). */
  dir?: string;
  /** up: apply at most this many pending migrations (default all); down: revert this many (default 1). */
  steps?: number;
  log?: (msg: string) => void;
}

/** Migration ids (`0001_schema`) in version order. */
export interface MigrateResult {
  applied: string[];
  pending: string[];
  /** What this call applied (up) or reverted (down, newest first). */
  ran: string[];
}

interface Migration {
  version: string;
  name: string;
  id: string;
  upFile?: string;
  downFile?: string;
}

/** Same from src/data (tsx/vitest) and dist/data (compiled): both sit two levels below the repo root. */
export const DEFAULT_MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));

/** Arbitrary fixed key: every process that migrates this database serialises on it. */
const MIGRATION_LOCK_KEY = '7283462919304417001';

const FILE_PATTERN = /^(\d+)_([A-Za-z0-9_-]+)\.(up|down)\.sql$/;

export async function migrate(
  sql: postgres.Sql,
  direction: MigrateDirection,
  opts: MigrateOptions = {},
): Promise<MigrateResult> {
  if (direction !== 'up' && direction !== 'down' && direction !== 'status') {
    throw new Error(`Unknown migration direction "${String(direction)}" (expected up, down or status)`);
  }
  if (opts.steps !== undefined && (!Number.isInteger(opts.steps) || opts.steps < 1)) {
    throw new Error(`steps must be a positive integer, got ${opts.steps}`);
  }
  const dir = opts.dir ?? DEFAULT_MIGRATIONS_DIR;
  const log = opts.log ?? (() => {});
  const migrations = await readMigrations(dir);

  // One reserved connection: a session-level advisory lock belongs to the connection that took it.
  const conn = await sql.reserve();
  try {
    await conn`SELECT pg_advisory_lock(${MIGRATION_LOCK_KEY}::bigint)`;
    try {
      if (direction !== 'status') await ensureLedger(conn);
      const appliedVersions = await readLedger(conn);
      assertFilesPresent(appliedVersions, migrations, dir);

      const ran: string[] = [];
      if (direction === 'up') {
        const pending = migrations.filter((m) => !appliedVersions.has(m.version));
        for (const m of pending.slice(0, opts.steps ?? pending.length)) {
          log(`migrate up ${m.id}`);
          await inTransaction(conn, m, async () => {
            await conn.unsafe(await readFile(join(dir, m.upFile!), 'utf8'));
            await conn`INSERT INTO schema_migrations (version, name, applied_at) VALUES (${m.version}, ${m.name}, now())`;
          });
          appliedVersions.add(m.version);
          ran.push(m.id);
        }
      } else if (direction === 'down') {
        const applied = migrations.filter((m) => appliedVersions.has(m.version)).reverse();
        for (const m of applied.slice(0, opts.steps ?? 1)) {
          if (!m.downFile) throw new Error(`Migration ${m.id} has no ${m.version}_${m.name}.down.sql in ${dir}`);
          log(`migrate down ${m.id}`);
          await inTransaction(conn, m, async () => {
            await conn.unsafe(await readFile(join(dir, m.downFile!), 'utf8'));
            await conn`DELETE FROM schema_migrations WHERE version = ${m.version}`;
          });
          appliedVersions.delete(m.version);
          ran.push(m.id);
        }
      }

      return {
        applied: migrations.filter((m) => appliedVersions.has(m.version)).map((m) => m.id),
        pending: migrations.filter((m) => !appliedVersions.has(m.version)).map((m) => m.id),
        ran,
      };
    } finally {
      await conn`SELECT pg_advisory_unlock(${MIGRATION_LOCK_KEY}::bigint)`.catch(() => {});
    }
  } finally {
    conn.release();
  }
}

async function readMigrations(dir: string): Promise<Migration[]> {
  let files: string[];
  try {
    files = await readdir(dir);
  } catch (err) {
    throw new Error(`Cannot read migrations folder ${dir}: ${(err as Error).message}`, { cause: err });
  }
  const byVersion = new Map<string, Migration>();
  for (const file of files) {
    const match = FILE_PATTERN.exec(file);
    if (!match) continue;
    const [, version, name, kind] = match as unknown as [string, string, string, 'up' | 'down'];
    const m = byVersion.get(version) ?? { version, name, id: `${version}_${name}` };
    if (m.name !== name) throw new Error(`Migration ${version} has two names in ${dir}: "${m.name}" and "${name}"`);
    if (kind === 'up') m.upFile = file;
    else m.downFile = file;
    byVersion.set(version, m);
  }
  const migrations = [...byVersion.values()].sort((a, b) => compareVersions(a.version, b.version));
  for (const m of migrations) {
    if (!m.upFile) throw new Error(`Migration ${m.id} has a down file but no ${m.id}.up.sql in ${dir}`);
  }
  return migrations;
}

/** Numeric order, so 0010 follows 0009 and 10 follows 9 whatever the padding. */
function compareVersions(a: string, b: string): number {
  const diff = BigInt(a) - BigInt(b);
  return diff < 0n ? -1 : diff > 0n ? 1 : a.localeCompare(b);
}

async function ensureLedger(conn: postgres.Sql): Promise<void> {
  await conn`
    CREATE TABLE IF NOT EXISTS schema_migrations (
      version    TEXT PRIMARY KEY,
      name       TEXT NOT NULL,
      applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
    )`;
}

async function readLedger(conn: postgres.Sql): Promise<Set<string>> {
  const [{ exists } = { exists: false }] = await conn<{ exists: boolean }[]>`
    SELECT to_regclass('schema_migrations') IS NOT NULL AS exists`;
  if (!exists) return new Set();
  const rows = await conn<{ version: string }[]>`SELECT version FROM schema_migrations`;
  return new Set(rows.map((r) => r.version));
}

function assertFilesPresent(applied: Set<string>, migrations: Migration[], dir: string): void {
  const known = new Set(migrations.map((m) => m.version));
  const missing = [...applied].filter((v) => !known.has(v)).sort(compareVersions);
  if (missing.length > 0) {
    throw new Error(
      `Database has applied migration version(s) ${missing.join(', ')} but ${dir} has no file for them ` +
        '(deployed code older than the database, or a migration file was deleted/renamed)',
    );
  }
}

/** Reserved connections have no begin(): explicit BEGIN/COMMIT keeps file and ledger row atomic. */
async function inTransaction(conn: postgres.Sql, m: Migration, work: () => Promise<void>): Promise<void> {
  await conn`BEGIN`;
  try {
    await work();
    await conn`COMMIT`;
  } catch (err) {
    await conn`ROLLBACK`.catch(() => {});
    throw new Error(`Migration ${m.id} failed and was rolled back: ${(err as Error).message}`, { cause: err });
  }
}
