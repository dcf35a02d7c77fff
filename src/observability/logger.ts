/**
 * The one pino logger. Each process tags its lines with its role. JSON lines on stdout, or, for a person
 * at a terminal, pino-pretty's coloured one-line format (`LOG_FORMAT`, unset = pretty on a TTY only).
 */
import { createRequire } from 'node:module';
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

export type LogFormat = 'json' | 'pretty';

/** Unset: pretty when stdout is a terminal. Cluster workers inherit the primary's stdout, so all agree. */
export function resolveLogFormat(format: LogFormat | undefined, stdoutIsTty = process.stdout.isTTY === true): LogFormat {
  return format ?? (stdoutIsTty ? 'pretty' : 'json');
}

export function createLogger(level: string, role: string, format?: LogFormat): Logger {
  const options = {
    level,
    base: { pid: process.pid, role },
    timestamp: pino.stdTimeFunctions.isoTime,
    // Secrets never reach a log line even if someone logs a config object or headers.
    redact: ['DATABASE_URL', 'REDIS_URL', 'config.DATABASE_URL', 'config.REDIS_URL', 'headers.authorization'],
  };
  if (resolveLogFormat(format) === 'json') return pino(options);
  return pino(options, prettyStream());
}

/**
 * pino-pretty in this thread, writing synchronously: lines keep their order with the other processes'
 * and survive an exit right after a fatal line. Loaded only here, so the JSON path never loads it.
 */
function prettyStream(): DestinationStream {
  const require = createRequire(import.meta.url);
  const pretty = require('pino-pretty') as (opts: Record<string, unknown>) => DestinationStream;
  return pretty({
    sync: true,
    singleLine: true,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,role',
    messageFormat: '{role} {msg}',
  });
}
