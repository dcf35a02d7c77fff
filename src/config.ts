/**
 * Configuration from the environment, validated once at start-up with a compiled TypeBox schema.
 * A bad value stops the start with a message naming the variable; nothing reads process.env later.
 */
import os from 'node:os';
import { Type, type Static } from 'typebox';
import { Compile } from 'typebox/compile';
import { DEFAULT_DATA_DIR, DEFAULT_EMBEDDED_PG_PORT } from './data/embedded-location.js';
import { MODEL_NAMES } from './recommenders/tables.js';

const Int = (minimum: number, maximum: number) => Type.Integer({ minimum, maximum });
const Rate = Type.Number({ minimum: 0, maximum: 1 });
const Bool = Type.Boolean();
const NODE = '(?:[A-Za-z0-9.-]+|\\[[0-9A-Fa-f:.]+\\]):(?:6553[0-5]|655[0-2]\\d|65[0-4]\\d{2}|6[0-4]\\d{3}|[1-5]\\d{4}|[1-9]\\d{0,3})';
const CLUSTER_NODES_PATTERN = `^\\s*${NODE}\\s*(?:,\\s*${NODE}\\s*)*$`;
const LogLevel = Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)));

/** One or more postgres:// URLs, comma-separated (spaces around the commas allowed). */
const REPLICA_URLS_PATTERN = '^\\s*postgres(ql)?://[^,\\s]+(\\s*,\\s*postgres(ql)?://[^,\\s]+)*\\s*$';

const ConfigSchema = Type.Object({
  PORT: Int(0, 65535),
  HOST: Type.String({ minLength: 1 }),
  WORKERS: Int(1, 256),
  SCORING_THREADS: Int(1, 64),
  SCORING_QUEUE_MAX: Int(1, 1_000_000),
  SCORING_MODE: Type.Union([Type.Literal('adaptive'), Type.Literal('pool'), Type.Literal('inline')]),
  SCORING_THREAD_NICE: Int(0, 19),
  DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
  DB_POOL_SIZE: Int(1, 500),
  DATABASE_REPLICA_URLS: Type.Optional(Type.String({ pattern: REPLICA_URLS_PATTERN })),
  REPLICA_MAX_LAG_MS: Int(0, 3_600_000),
  DATA_DIR: Type.String({ minLength: 1 }),
  EMBEDDED_PG_PORT: Int(1, 65535),
  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://' })),
  // host:port[,host:port...]; host a name, an IPv4 address or a bracketed IPv6 address.
  REDIS_CLUSTER_NODES: Type.Optional(Type.String({ pattern: CLUSTER_NODES_PATTERN })),
  REDIS_COMMAND_TIMEOUT_MS: Int(1, 60_000),
  CACHE_TTL: Int(1, 86_400 * 30),
  FALLBACK_CACHE_TTL: Int(1, 86_400),
  CACHE_STALE_TTL: Int(0, 86_400 * 30),
  DB_TIMEOUT_MS: Int(10, 600_000),
  MAX_PENDING_COMPUTATIONS: Int(1, 1_000_000),
  API_KEY: Type.Optional(Type.String({ minLength: 16, maxLength: 512, pattern: '^[\\x21-\\x7e]+$' })),
  API_KEY_READS: Bool,
  RATE_LIMIT_POINTS: Int(0, 10_000_000),
  RATE_LIMIT_DURATION_S: Int(1, 86_400),
  RATE_LIMIT_TRUST_PROXY: Bool,
  L1_MAX_ENTRIES: Int(0, 10_000_000),
  L1_MAX_BYTES: Int(1024, 16 * 1024 ** 3),
  CANDIDATE_POOL: Int(0, 10_000_000),
  MODEL: Type.Union(MODEL_NAMES.map((m) => Type.Literal(m))),
  MODEL_RETRAIN_SHARE: Type.Number({ minimum: 0, maximum: 100 }),
  MODEL_CHECK_S: Int(1, 86_400),
  CATALOG_REFRESH_S: Int(0, 86_400),
  MODEL_LATENCY_MIN_MS: Int(0, 60_000),
  MODEL_LATENCY_MAX_MS: Int(0, 60_000),
  MODEL_FAILURE_RATE: Rate,
  MODEL_NOISE: Bool,
  MODEL_TIMEOUT_MS: Int(1, 60_000),
  BREAKER_ERROR_PERCENT: Int(1, 100),
  BREAKER_VOLUME_THRESHOLD: Int(1, 100_000),
  BREAKER_RESET_MS: Int(10, 600_000),
  BREAKER_WINDOW_MS: Int(100, 600_000),
  BATCH_CONCURRENCY: Int(1, 1000),
  WARM_CACHE_TOP_N: Int(0, 1_000_000),
  SIMILAR_REFRESH_S: Int(0, 86_400 * 30),
  JOB_RETENTION_S: Int(1, 86_400 * 365),
  JOB_CHUNK_USERS: Int(1, 100_000),
  JOB_CONCURRENCY: Int(1, 1000),
  JOB_WORKER_CHUNKS: Int(0, 64),
  JOB_CHUNK_TIMEOUT_S: Int(2, 23 * 3600),
  REQUEST_TIMEOUT_MS: Int(10, 600_000),
  SHUTDOWN_TIMEOUT_MS: Int(0, 600_000),
  MAX_BODY_BYTES: Int(16, 1024 * 1024),
  EVENTS_MAX_BODY_BYTES: Int(1024, 64 * 1024 * 1024),
  SEED_ON_START: Bool,
  LOG_LEVEL: LogLevel,
  LOG_FORMAT: Type.Optional(Type.Union([Type.Literal('json'), Type.Literal('pretty')])),
});

export type Config = Static<typeof ConfigSchema>;

type Kind = 'int' | 'float' | 'bool' | 'string';
interface VarSpec {
  kind: Kind;
  default?: string;
  /** How docs/configuration.md shows a default that depends on the machine. */
  defaultDoc?: string;
  /** One line for docs/configuration.md's table (npm run docs:config) and for error messages. */
  doc: string;
}

const cores = Math.max(1, os.availableParallelism());

/** Every variable the service reads, with its default. docs/configuration.md is generated from it. */
export const VARIABLES: Record<string, VarSpec> = {
  PORT: { kind: 'int', default: '8080', doc: 'HTTP port (every worker listens on it; SO_REUSEPORT)' },
  HOST: { kind: 'string', default: '0.0.0.0', doc: 'HTTP bind address' },
  WORKERS: { kind: 'int', default: String(cores), defaultDoc: 'available cores', doc: 'HTTP worker processes (default: available cores)' },
  SCORING_THREADS: { kind: 'int', default: '1', doc: 'Piscina scoring threads per HTTP worker' },
  SCORING_QUEUE_MAX: { kind: 'int', default: '1024', doc: 'scoring tasks that may wait for a thread per worker; beyond it the model is skipped (fallback)' },
  SCORING_THREAD_NICE: { kind: 'int', default: '0', doc: 'OS niceness added to the scoring threads (0-19); 0 = the event loops\' priority. Measured on 2 cores, a higher value never made the hits faster and made the scoring tail slower, beside the event loops or on a core of their own (docs/performance.md, "Scoring placement")' },
  SCORING_MODE: { kind: 'string', default: 'adaptive', doc: 'where scoring CPU runs: `adaptive` (inline when a task costs less than the thread hand-off, or less than it would wait on the pool, counting the requests it would hold up on this event loop; else the pool), `pool` (always a Piscina thread) or `inline` (always the event loop); both costs are measured at start-up (see docs/performance.md)' },
  DATABASE_URL: { kind: 'string', doc: 'PostgreSQL URL; unset = start an embedded PostgreSQL under DATA_DIR' },
  DB_POOL_SIZE: { kind: 'int', default: '20', doc: 'PostgreSQL connections per HTTP worker' },
  DATABASE_REPLICA_URLS: { kind: 'string', doc: 'comma-separated PostgreSQL URLs of streaming replicas: request-path reads go to one that has replayed the user\'s last write, else to the primary; unset = every read on the primary' },
  REPLICA_MAX_LAG_MS: { kind: 'int', default: '1000', doc: 'a replica further behind the primary than this (ms) is skipped until it catches up' },
  DATA_DIR: { kind: 'string', default: DEFAULT_DATA_DIR, doc: 'where the embedded PostgreSQL keeps its data (`<DATA_DIR>/pg`); the CLI commands (`npm run seed`, `npm run migrate`) read it too' },
  EMBEDDED_PG_PORT: { kind: 'int', default: String(DEFAULT_EMBEDDED_PG_PORT), doc: 'port of the embedded PostgreSQL (service and CLI commands)' },
  REDIS_URL: { kind: 'string', doc: 'Redis URL; unset = in-process (L1) cache only' },
  REDIS_CLUSTER_NODES: { kind: 'string', doc: 'Redis Cluster seed nodes, `host:port,host:port,…` (any subset of the cluster); every Redis use then runs on the cluster. Exclusive with REDIS_URL' },
  REDIS_COMMAND_TIMEOUT_MS: { kind: 'int', default: '100', doc: 'a Redis command slower than this counts as a cache miss' },
  CACHE_TTL: { kind: 'int', default: '600', doc: 'seconds a model-ranked list stays cached' },
  FALLBACK_CACHE_TTL: { kind: 'int', default: '15', doc: 'seconds a popularity-fallback list stays cached' },
  CACHE_STALE_TTL: { kind: 'int', default: '3600', doc: 'seconds past its TTL a cached list may still be served (`metadata.stale`) while PostgreSQL is unavailable; 0 = never' },
  DB_TIMEOUT_MS: { kind: 'int', default: '1000', doc: 'a recommendation query slower than this counts as PostgreSQL unavailable (stale list or 503)' },
  MAX_PENDING_COMPUTATIONS: { kind: 'int', default: '1024', doc: 'cache misses one worker computes at once (each holds a few kB while it waits for PostgreSQL and the model); beyond it 503 service_unavailable (load shedding)' },
  API_KEY: { kind: 'string', doc: 'when set (16+ printable chars), writes need `Authorization: Bearer <key>`' },
  API_KEY_READS: { kind: 'bool', default: 'false', doc: 'with API_KEY set, recommendation reads need the key too' },
  RATE_LIMIT_POINTS: { kind: 'int', default: '0', doc: 'requests a client may make per RATE_LIMIT_DURATION_S (0 = no rate limiting); cluster-wide through Redis when REDIS_URL or REDIS_CLUSTER_NODES is set' },
  RATE_LIMIT_DURATION_S: { kind: 'int', default: '1', doc: 'rate-limit window, seconds' },
  RATE_LIMIT_TRUST_PROXY: { kind: 'bool', default: 'false', doc: 'identify clients by the first `X-Forwarded-For` address instead of the socket address' },
  L1_MAX_ENTRIES: { kind: 'int', default: '100000', doc: 'in-process cache entries per worker (0 disables L1)' },
  L1_MAX_BYTES: { kind: 'int', default: String(64 * 1024 * 1024), doc: 'in-process cache size bound per worker, bytes' },
  CATALOG_REFRESH_S: { kind: 'int', default: '60', doc: 'seconds between reloads of the in-memory catalog (titles); 0 = load once' },
  CANDIDATE_POOL: { kind: 'int', default: '100', doc: 'unwatched titles (by popularity) the seed\'s formula (`MODEL=heuristic`) scores; 0 = whole catalog. Learned models rank the whole catalog' },
  MODEL: { kind: 'string', default: 'auto', doc: 'what ranks: `auto` (the trained model\'s configuration that won on a validation split of this database\'s data; the seed\'s formula until a model is trained), `heuristic` (the seed\'s formula), `popularity`, `item-cf` (item-to-item neighbours of the recent history), `als` (implicit ALS, user side folded in from the current history per request). See docs/quality.md' },
  MODEL_RETRAIN_SHARE: { kind: 'float', default: '0.1', doc: 'retrain once the watch events (or titles) added since the last training reach this share of the data it saw (0 = only after a reseed/import or at start-up when the model predates the data)' },
  MODEL_CHECK_S: { kind: 'int', default: '60', doc: 'seconds between the primary\'s checks of whether the data has grown by MODEL_RETRAIN_SHARE since the newest model (a reseed or import is acted on at once)' },
  MODEL_LATENCY_MS: { kind: 'string', default: '30-50', doc: 'simulated model latency, `min-max` or one value, ms (0 = off)' },
  MODEL_FAILURE_RATE: { kind: 'float', default: '0.015', doc: 'simulated model failure probability, 0..1' },
  MODEL_NOISE: { kind: 'bool', default: 'true', doc: 'exploration noise in scores (false = exact, reproducible rankings)' },
  MODEL_TIMEOUT_MS: { kind: 'int', default: '250', doc: 'model call deadline; slower calls fall back to popularity' },
  BREAKER_ERROR_PERCENT: { kind: 'int', default: '50', doc: 'breaker opens when this % of calls in the window fail' },
  BREAKER_VOLUME_THRESHOLD: { kind: 'int', default: '20', doc: 'calls in the window before the breaker may open' },
  BREAKER_RESET_MS: { kind: 'int', default: '5000', doc: 'open breaker lets one probe through after this long' },
  BREAKER_WINDOW_MS: { kind: 'int', default: '10000', doc: 'rolling window of the breaker statistics' },
  BATCH_CONCURRENCY: { kind: 'int', default: '10', doc: 'users computed at once by one batch request' },
  WARM_CACHE_TOP_N: { kind: 'int', default: '0', doc: 'after start-up, compute the lists of this many most active users (by watch events) in the background (0 = off)' },
  SIMILAR_REFRESH_S: { kind: 'int', default: '3600', doc: 'seconds between recomputations of the co-watch similar-titles lists: a scheduled job of the job engine, once per interval across instances (on a background thread of whichever primary takes it), skipped when the stored lists are younger than 0.9 × this; 0 = this instance never computes them' },
  JOB_RETENTION_S: { kind: 'int', default: '86400', doc: 'seconds a finished batch job (POST /recommendations/jobs) and its results are kept; after it they are 404 and deleted' },
  JOB_CHUNK_USERS: { kind: 'int', default: '1000', doc: 'users per chunk of a batch job (the unit the job engine hands out, retries, and commits at once)' },
  JOB_CONCURRENCY: { kind: 'int', default: '4', doc: 'users one batch-job chunk ranks at once (its share of a worker\'s scoring)' },
  JOB_WORKER_CHUNKS: { kind: 'int', default: '1', doc: 'batch-job chunks each HTTP worker processes at once; 0 = this instance answers the job API but computes no chunk' },
  JOB_CHUNK_TIMEOUT_S: { kind: 'int', default: '60', doc: 'a chunk in progress longer than this is taken as lost (its instance died) and handed to another; bounds the recovery time (docs/jobs.md)' },
  REQUEST_TIMEOUT_MS: { kind: 'int', default: '5000', doc: 'per-request deadline; past it 503 request_timeout' },
  SHUTDOWN_TIMEOUT_MS: { kind: 'int', default: '10000', doc: 'graceful shutdown: how long in-flight requests may finish' },
  MAX_BODY_BYTES: { kind: 'int', default: '4096', doc: 'largest accepted request body (413 beyond)' },
  EVENTS_MAX_BODY_BYTES: { kind: 'int', default: String(2 * 1024 * 1024), doc: 'largest accepted `POST /events` body (413 beyond); the default holds 10,000 events of the longest ids and timestamps, indented' },
  SEED_ON_START: { kind: 'bool', default: 'true', doc: 'seed the default data set when `users` is empty' },
  LOG_LEVEL: { kind: 'string', default: 'info', doc: 'pino level: fatal, error, warn, info, debug, trace, silent' },
  LOG_FORMAT: { kind: 'string', doc: '`json` (one JSON object per line) or `pretty` (coloured human-readable lines, pino-pretty); unset = `pretty` when stdout is a terminal, `json` otherwise' },
};

/** DATABASE_REPLICA_URLS as a list (empty when unset). */
export function replicaUrls(config: Pick<Config, 'DATABASE_REPLICA_URLS'>): string[] {
  return (config.DATABASE_REPLICA_URLS ?? '').split(',').map((u) => u.trim()).filter((u) => u.length > 0);
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

const validator = Compile(ConfigSchema);

function convert(kind: Kind, raw: string): unknown {
  const text = raw.trim();
  switch (kind) {
    case 'int':
      return /^-?\d+$/.test(text) ? Number(text) : raw;
    case 'float':
      return /^-?(\d+\.?\d*|\.\d+)$/.test(text) ? Number(text) : raw;
    case 'bool':
      if (/^(true|1|yes|on)$/i.test(text)) return true;
      if (/^(false|0|no|off)$/i.test(text)) return false;
      return raw;
    case 'string':
      return raw;
  }
}

/** `30-50` → [30, 50]; `40` → [40, 40]; `0` → [0, 0]. */
function parseLatency(raw: string): [number, number] {
  const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(raw);
  if (!m) throw new ConfigError(`MODEL_LATENCY_MS must be "min-max" or one number of milliseconds (got ${JSON.stringify(raw)})`);
  const min = Number(m[1]);
  const max = m[2] === undefined ? min : Number(m[2]);
  if (max < min) throw new ConfigError(`MODEL_LATENCY_MS: max ${max} is below min ${min}`);
  return [min, max];
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const raw: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(VARIABLES)) {
    if (name === 'MODEL_LATENCY_MS') continue;
    const value = env[name] === undefined || env[name] === '' ? spec.default : env[name];
    if (value !== undefined) raw[name] = convert(spec.kind, value);
  }
  const [min, max] = parseLatency(env.MODEL_LATENCY_MS || VARIABLES.MODEL_LATENCY_MS!.default!);
  raw.MODEL_LATENCY_MIN_MS = min;
  raw.MODEL_LATENCY_MAX_MS = max;
  if (!validator.Check(raw)) {
    const problems = [...validator.Errors(raw)].map((e) => {
      const name = e.instancePath.replace(/^\//, '') || '(config)';
      const shown = name in raw ? ` (got ${JSON.stringify(env[name] ?? raw[name])})` : '';
      return `${name} ${e.message}${shown}`;
    });
    throw new ConfigError(`Invalid configuration: ${[...new Set(problems)].join('; ')}`);
  }
  if (raw.REDIS_URL !== undefined && raw.REDIS_CLUSTER_NODES !== undefined) {
    throw new ConfigError('Invalid configuration: REDIS_URL and REDIS_CLUSTER_NODES are exclusive (one Redis, or one Redis Cluster): set one of them');
  }
  replicaUrls(raw as Config).forEach((url, i) => {
    if (!URL.canParse(url)) throw new ConfigError(`Invalid configuration: DATABASE_REPLICA_URLS entry ${i + 1} is not a valid URL`);
  });
  return raw as Config;
}
