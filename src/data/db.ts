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

/**
 * A timestamptz as PostgreSQL writes it in the UTC session (`0024-08-05 08:22:42.09996+00`, `... BC`).
 * postgres.js hands the text to `new Date()`, whose non-ISO parser fails on years below 1000 (Invalid
 * Date, then a 500 where the row is turned into JSON); the API accepts any RFC 3339 instant.
 */
const TIMESTAMPTZ = /^(\d{4,})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(\.\d+)?([+-]\d\d)(?::(\d\d))?(?::(\d\d))?( BC)?$/;
export function parseTimestamptz(text: string): Date {
  const m = TIMESTAMPTZ.exec(text);
  if (!m) return new Date(text); // 'infinity' and '-infinity' (Invalid Date, as postgres.js gives)
  const [, y, mo, d, h, mi, sec, frac, oh, om, os, bc] = m;
  const offsetMs = Math.sign(Number(`${oh}1`)) * (Math.abs(Number(oh)) * 3_600_000 + Number(om ?? 0) * 60_000 + Number(os ?? 0) * 1000);
  // Date.UTC reads years 0-99 as 1900-1999: set the year on its own.
  const date = new Date(Date.UTC(2000, Number(mo) - 1, Number(d), Number(h), Number(mi), Number(sec), Math.floor(Number(frac ?? 0) * 1000)));
  date.setUTCFullYear(bc ? 1 - Number(y) : Number(y));
  return new Date(date.getTime() - offsetMs);
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
      // Parameters are sent as postgres.js sends them by default (a Date or an instant's text, as ISO).
      timestamptz: { to: 1184, from: [1184], serialize: (v: Date | string) => (v instanceof Date ? v : new Date(v)).toISOString(), parse: parseTimestamptz },
    },
    connection: {
      application_name: opts.application ?? 'recommendation-service',
      // Offsets are then always +00 (in a named zone, instants before its first standard time carry
      // local-mean-time offsets with seconds).
      TimeZone: 'UTC',
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
