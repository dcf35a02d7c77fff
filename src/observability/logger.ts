/** The one pino logger. JSON lines on stdout; each process tags its lines with its role. */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, role: string): Logger {
  return pino({
    level,
    base: { pid: process.pid, role },
    timestamp: pino.stdTimeFunctions.isoTime,
    // Secrets never reach a log line even if someone logs a config object or headers.
    redact: ['DATABASE_URL', 'REDIS_URL', 'config.DATABASE_URL', 'config.REDIS_URL', 'headers.authorization'],
  });
}
