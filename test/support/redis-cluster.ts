/**
 * A real 6-node Redis Cluster (3 masters, 1 replica each) on loopback, for tests that need failovers.
 *
 *   const rc = await startRedisCluster();
 *   await startServer({ REDIS_CLUSTER_NODES: rc.nodes, ... });
 *   await rc.killMaster();      // SIGKILL one master, resolves once its replica serves its slots
 *   await rc.stop();
 *
 * Nodes run with `--cluster-node-timeout 1000` (a dead master is replaced in ~1-3 s), no persistence, in
 * a private temporary directory that stop() removes. Every wait is bounded (it throws, with the nodes'
 * output, rather than hang a test run).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Cluster, Redis } from 'ioredis';

export interface ClusterMaster {
  port: number;
  /** Slot ranges [first, last] this master serves. */
  slots: [number, number][];
  /** Ports of its replicas. */
  replicas: number[];
}

export interface RunningRedisCluster {
  /** Seed list for REDIS_CLUSTER_NODES: every node, `127.0.0.1:p,…`. */
  nodes: string;
  ports: number[];
  /** The current masters, as the cluster reports them (CLUSTER SHARDS of a live node). */
  masters(): Promise<ClusterMaster[]>;
  /** The master serving `key`'s slot. */
  masterOf(key: string): Promise<ClusterMaster>;
  /** A plain client to one node (for DEBUG, CONFIG, CLIENT KILL …); the caller disconnects it. */
  client(port: number): Redis;
  /**
   * SIGKILL a master (default: the first) and wait until one of its replicas is promoted and every live
   * node says cluster_state:ok. `ms`: from the kill to that moment. `whileOwnerless`: the replicas may not
   * fail over (cluster-replica-no-failover) until it resolves, so its slots have no live owner for exactly
   * as long as the test needs, however the machine schedules the nodes.
   */
  killMaster(port?: number, opts?: { whileOwnerless?: () => Promise<void> }): Promise<{ killed: number; promoted: number; ms: number }>;
  /** Stops every node (SIGKILL: nothing to keep) and removes the directory. */
  stop(): Promise<void>;
  /** What the nodes printed, for failure messages. */
  output(): string;
}

const READY_TIMEOUT_MS = 30_000;
const FAILOVER_TIMEOUT_MS = 20_000;

export async function startRedisCluster(opts: { nodes?: number; replicas?: number } = {}): Promise<RunningRedisCluster> {
  const count = opts.nodes ?? 6;
  const replicas = opts.replicas ?? 1;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'recsvc-redis-cluster-'));
  const ports = await clusterPorts(count);
  const children = new Map<number, ChildProcess>();
  let output = '';
  const alive = () => ports.filter((p) => children.get(p)?.exitCode === null && children.get(p)?.signalCode === null);

  // A process that exits without stop() does not leave six servers behind. (Vitest's fork workers are
  // torn down without 'exit' events: test files must stop() in afterAll, as the ones here do.)
  const killAll = (): void => {
    for (const child of children.values()) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', killAll);
  const stop = async (): Promise<void> => {
    process.removeListener('exit', killAll);
    await Promise.all(
      [...children.values()].map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGKILL');
          }),
      ),
    );
    await rm(dir, { recursive: true, force: true });
  };

  try {
    for (const port of ports) {
      const child = spawn(
        'redis-server',
        [
          '--port', String(port), '--bind', '127.0.0.1',
          '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '1000',
          '--appendonly', 'no', '--save', '', '--dir', dir,
          // DEBUG lets fault tests stall a node (DEBUG SLEEP); loopback only.
          '--enable-debug-command', 'local',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      child.stdout!.on('data', (d: Buffer) => (output += `[${port}] ${d}`));
      child.stderr!.on('data', (d: Buffer) => (output += `[${port}] ${d}`));
      children.set(port, child);
    }
    await until(async () => (await Promise.all(ports.map(ping))).every(Boolean), READY_TIMEOUT_MS, 'nodes answer PING', () => output);
    const create = await run('redis-cli', [
      '--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', String(replicas), '--cluster-yes',
    ]);
    if (create.code !== 0) throw new Error(`redis-cli --cluster create failed:\n${create.output}`);
    // Ready = every node says ok and every replica has finished its initial sync (else it cannot fail over).
    await until(
      async () => (await clusterOk(ports)) && (await replicasInSync(ports)),
      READY_TIMEOUT_MS,
      'cluster_state:ok on every node and every replica in sync',
      () => output,
    );
    // Redis 7.0's CLUSTER SLOTS leaves out a replica until its master has replicated something (offset 0),
    // as no real cluster is: write through every master, then wait until every slot range lists its replicas.
    const writer = new Cluster([{ host: '127.0.0.1', port: ports[0]! }], { maxRedirections: 16 });
    writer.on('error', () => {});
    try {
      await Promise.all(Array.from({ length: 64 }, (_, i) => writer.set(`recsvc:warmup:${i}`, '1', 'PX', 1000)));
    } finally {
      writer.disconnect();
    }
    await until(
      async () => {
        const reply = (await slotsOf(ports[0]!).catch(() => [])) as unknown[][];
        return reply.length > 0 && reply.every((range) => range.length - 3 >= replicas);
      },
      READY_TIMEOUT_MS,
      'CLUSTER SLOTS listing every replica',
      () => output,
    );
  } catch (err) {
    await stop();
    throw err;
  }

  const masters = async (): Promise<ClusterMaster[]> => {
    const live = alive();
    for (const port of live) {
      const redis = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: true });
      try {
        return parseShards((await redis.call('CLUSTER', 'SHARDS')) as unknown[]);
      } catch {
        // try the next node
      } finally {
        redis.disconnect();
      }
    }
    throw new Error('no live node answers CLUSTER SHARDS');
  };

  return {
    nodes: ports.map((p) => `127.0.0.1:${p}`).join(','),
    ports,
    masters,
    async masterOf(key) {
      const probe = new Redis({ port: alive()[0]!, host: '127.0.0.1', maxRetriesPerRequest: 0 });
      try {
        const slot = Number(await probe.call('CLUSTER', 'KEYSLOT', key));
        const found = (await masters()).find((m) => m.slots.some(([a, b]) => slot >= a && slot <= b));
        if (!found) throw new Error(`no master serves slot ${slot}`);
        return found;
      } finally {
        probe.disconnect();
      }
    },
    client(port) {
      // No reconnects and no unhandled 'error' events once the node is killed.
      const redis = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 0, retryStrategy: () => null });
      redis.on('error', () => {});
      return redis;
    },
    async killMaster(port, opts = {}) {
      const before = await masters();
      const victim = port === undefined ? before[0] : before.find((m) => m.port === port);
      if (!victim) throw new Error(`${port} is not a master`);
      const noFailover = (value: 'yes' | 'no') =>
        Promise.all(victim.replicas.map((p) => command(p, ['CONFIG', 'SET', 'cluster-replica-no-failover', value])));
      if (opts.whileOwnerless) await noFailover('yes');
      const child = children.get(victim.port)!;
      const started = Date.now();
      await new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      });
      if (opts.whileOwnerless) {
        try {
          await opts.whileOwnerless();
        } finally {
          await noFailover('no');
        }
      }
      let promoted = 0;
      await until(
        async () => {
          const now = await masters().catch(() => []);
          const heir = now.find((m) => victim.replicas.includes(m.port) && m.slots.length > 0);
          if (!heir) return false;
          promoted = heir.port;
          return clusterOk(alive());
        },
        FAILOVER_TIMEOUT_MS,
        `a replica of ${victim.port} promoted`,
        () => output,
      );
      return { killed: victim.port, promoted, ms: Date.now() - started };
    },
    stop,
    output: () => output,
  };
}

/** CLUSTER SHARDS (Redis 7): one entry per shard, a flat [name, value, …] map each. */
function parseShards(reply: unknown[]): ClusterMaster[] {
  const result: ClusterMaster[] = [];
  for (const shard of reply as unknown[][]) {
    const fields = toMap(shard);
    const slots = fields.get('slots') as number[];
    const nodes = (fields.get('nodes') as unknown[][]).map(toMap);
    const master = nodes.find((n) => n.get('role') === 'master' && n.get('health') === 'online');
    if (!master || slots.length === 0) continue;
    const ranges: [number, number][] = [];
    for (let i = 0; i < slots.length; i += 2) ranges.push([Number(slots[i]), Number(slots[i + 1])]);
    // Redis 7.0 says `loading` for a replica of an empty master (offset 0): only `fail` is out.
    const replicas = nodes.filter((n) => n.get('role') === 'replica' && n.get('health') !== 'fail').map((n) => Number(n.get('port')));
    result.push({ port: Number(master.get('port')), slots: ranges, replicas });
  }
  return result.sort((a, b) => a.slots[0]![0] - b.slots[0]![0]);
}

function toMap(flat: unknown[]): Map<string, unknown> {
  const map = new Map<string, unknown>();
  for (let i = 0; i < flat.length; i += 2) map.set(String(flat[i]), flat[i + 1]);
  return map;
}

async function clusterOk(ports: number[]): Promise<boolean> {
  const infos = await Promise.all(ports.map((p) => command(p, ['CLUSTER', 'INFO']).catch(() => '')));
  return infos.every((info) => info.includes('cluster_state:ok'));
}

async function replicasInSync(ports: number[]): Promise<boolean> {
  const infos = await Promise.all(ports.map((p) => command(p, ['INFO', 'replication']).catch(() => '')));
  const replicas = infos.filter((info) => info.includes('role:slave'));
  return replicas.length > 0 && replicas.every((info) => info.includes('master_link_status:up'));
}

async function slotsOf(port: number): Promise<unknown[]> {
  const redis = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => {});
  try {
    return (await redis.call('CLUSTER', 'SLOTS')) as unknown[];
  } finally {
    redis.disconnect();
  }
}

async function ping(port: number): Promise<boolean> {
  return (await command(port, ['PING']).catch(() => '')) === 'PONG';
}

/** One command over a short-lived connection (no retries, 1 s bound). */
async function command(port: number, args: string[]): Promise<string> {
  const redis = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 1000, commandTimeout: 1000, retryStrategy: () => null });
  redis.on('error', () => {});
  try {
    await redis.connect();
    return String(await redis.call(args[0]!, ...args.slice(1)));
  } finally {
    redis.disconnect();
  }
}

function run(cmd: string, args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d));
    child.stderr.on('data', (d: Buffer) => (output += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), READY_TIMEOUT_MS);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
    child.on('error', (err) => resolve({ code: -1, output: String(err) }));
  });
}

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string, output: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`redis cluster: timed out waiting for ${what}\n${output().slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `count` ports whose cluster-bus port (port + 10000) is free too: picked below 55536 so it exists. */
async function clusterPorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  while (ports.length < count) {
    const port = 20_000 + Math.floor(Math.random() * 30_000);
    if (ports.includes(port) || ports.includes(port + 10_000) || ports.includes(port - 10_000)) continue;
    if ((await portFree(port)) && (await portFree(port + 10_000))) ports.push(port);
  }
  return ports;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}
