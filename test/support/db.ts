/** A private, migrated database per test file on the run's shared PostgreSQL server. */
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { inject } from 'vitest';
import { migrate } from '../../src/data/migrate.js';

export interface TestDatabase {
  url: string;
  /** Note: postgres.js returns int8/count values as strings; cast in SQL (`::int`) where numbers are wanted. */
  sql: postgres.Sql;
  /** Ends `sql` and drops the database, also when other clients are still connected. */
  drop(): Promise<void>;
}

export function adminSql(): postgres.Sql {
  return postgres(inject('databaseUrl'), { max: 1, onnotice: () => {} });
}

/** `migrate: false` gives an empty database (for migration tests). */
export async function createTestDatabase(opts: { migrate?: boolean } = {}): Promise<TestDatabase> {
  const name = `test_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = adminSql();
  try {
    await admin.unsafe(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(inject('databaseUrl'));
  url.pathname = `/${name}`;
  const sql = postgres(url.toString(), { max: 10, onnotice: () => {} });
  const drop = async (): Promise<void> => {
    await sql.end({ timeout: 5 });
    const a = adminSql();
    try {
      await a.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    } finally {
      await a.end();
    }
  };
  try {
    if (opts.migrate !== false) await migrate(sql, 'up');
  } catch (err) {
    await drop();
    throw err;
  }
  return { url: url.toString(), sql, drop };
}
