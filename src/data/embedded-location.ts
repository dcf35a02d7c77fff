/**
 * Where the embedded PostgreSQL keeps its data and listens: one answer for the service and the CLI
 * commands, so a command run beside `npm start` finds the server that is already running.
 */
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const isRoot = (): boolean => process.getuid?.() === 0;

/**
 * As root, PostgreSQL runs as user `postgres`, which needs search (x) permission on every parent of the data
 * dir. Returns the first parent that lacks o+x, or undefined when the path is reachable.
 */
export function unreachableParent(dataDir: string): string | undefined {
  if (!isRoot()) return undefined;
  let dir = path.dirname(path.resolve(dataDir));
  const parents: string[] = [];
  for (;;) {
    parents.unshift(dir);
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  for (const p of parents) {
    let mode: number;
    try {
      mode = statSync(p).mode;
    } catch {
      return undefined; // the rest does not exist yet: we create it world-traversable
    }
    if ((mode & 0o001) === 0) return p;
  }
  return undefined;
}

/** `preferred` when PostgreSQL can use it, else a stable per-project folder under the OS temp dir. */
export function resolveDataDir(preferred: string): string {
  if (unreachableParent(preferred) === undefined) return preferred;
  const hash = createHash('sha256').update(path.resolve(preferred)).digest('hex').slice(0, 10);
  return path.join(os.tmpdir(), `recommendation-service-${hash}`);
}

export const DEFAULT_EMBEDDED_PG_PORT = 54329;
export const DEFAULT_DATA_DIR = './.data';

/**
 * Where the embedded PostgreSQL lives: `<DATA_DIR>/pg` (or its temp-dir fallback, see resolveDataDir) on
 * `EMBEDDED_PG_PORT`. The one resolver the service and every CLI command use, so they find the same server.
 */
export function embeddedLocation(env: { DATA_DIR?: string; EMBEDDED_PG_PORT?: string | number }): { dataDir: string; port: number } {
  const rawPort = env.EMBEDDED_PG_PORT;
  const port = rawPort === undefined || rawPort === '' ? DEFAULT_EMBEDDED_PG_PORT : Number(rawPort);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new Error(`EMBEDDED_PG_PORT must be a port number (1-65535), got "${rawPort}"`);
  }
  const dataDir = resolveDataDir(path.resolve(env.DATA_DIR || DEFAULT_DATA_DIR, 'pg'));
  return { dataDir, port };
}

