/** The one module that creates PostgreSQL clients (postgres.js). */
import postgres from 'postgres';

export type Sql = postgres.Sql;

export interface DbOptions {
  max: number;
  /** Server-side statement deadline, ms (0 = none). */
  statementTimeoutMs?: number;
  application?: string;
  /** Never close an idle connection (a probe's: its close then means the server went away). */
  keepOpen?: boolean;
  /** Called whenever one of the client's connections closes (postgres.js `onclose`). */
  onclose?: () => void;
}

export function connect(url: string, opts: DbOptions): Sql {
  return postgres(url, {
    max: opts.max,
    prepare: true,
    idle_timeout: opts.keepOpen ? 0 : 60,
    ...(opts.keepOpen ? { max_lifetime: null } : {}),
    ...(opts.onclose ? { onclose: opts.onclose } : {}),
    connect_timeout: 5,
    onnotice: () => {},
    // postgres.js waits up to 20 s (3^retries/100) before reconnecting after failures, which kept a
    // restarted PostgreSQL (and the LISTEN connection) unused for that long. Retry within a second.
    backoff: (retries: number) => Math.min(0.05 * 2 ** retries, 1),
    // Ids are BIGINT; the API caps them at 2^53-1, so a JS number holds them exactly.
    types: {
      int8: { to: 20, from: [20], serialize: (v: number) => String(v), parse: (v: string) => Number(v) },
    },
    connection: {
      application_name: opts.application ?? 'recommendation-service',
      ...(opts.statementTimeoutMs ? { statement_timeout: opts.statementTimeoutMs } : {}),
    },
  });
}

/** True for errors that mean "PostgreSQL is not reachable or not answering", not a bad query. */
export function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  if (!code) return false;
  return (
    code === 'ECONNREFUSED' ||
    code === 'ECONNRESET' ||
    code === 'ETIMEDOUT' ||
    code === 'EPIPE' ||
    code === 'CONNECT_TIMEOUT' ||
    code === 'CONNECTION_CLOSED' ||
    code === 'CONNECTION_ENDED' ||
    code === 'CONNECTION_DESTROYED' ||
    code === '57P01' || // admin_shutdown
    code === '57P03' || // cannot_connect_now
    code === '57014' || // query_canceled (statement_timeout)
    code.startsWith('08') // connection_exception class
  );
}
