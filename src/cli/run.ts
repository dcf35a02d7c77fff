/** What every CLI command shares: exit codes, error output, and no embedded server left behind. */

/** A bad command line: printed with the usage, exit 2. */
export class UsageError extends Error {}

/**
 * The command line parsed, or the exit code once it has been answered: the usage (`--help`, exit 0), a usage
 * error (exit 2), or a DATABASE_URL the client cannot use (exit 2).
 */
export function parseCommand<T extends object>(parse: (argv: string[]) => T | 'help', usage: string): T | number {
  let opts: T | 'help';
  try {
    opts = parse(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`error: ${err.message}\n\n${usage}`);
    return 2;
  }
  if (opts === 'help') {
    process.stdout.write(usage);
    return 0;
  }
  const urlProblem = databaseUrlProblem(process.env.DATABASE_URL);
  if (urlProblem) {
    process.stderr.write(`error: ${urlProblem}\n`);
    return 2;
  }
  return opts;
}

/** Ctrl+C or a kill must not leave the embedded server running. */
export function stopOnSignal(stop: () => Promise<void>): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      void stop().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
    });
  }
}

/** A DATABASE_URL the PostgreSQL client cannot use is a usage error (exit 2), like the service's check. */
export function databaseUrlProblem(url: string | undefined): string | undefined {
  if (url === undefined || url === '') return undefined;
  if (!/^postgres(ql)?:\/\//.test(url)) return 'DATABASE_URL must start with postgres:// or postgresql://';
  try {
    new URL(url);
  } catch {
    return 'DATABASE_URL is not a valid URL';
  }
  return undefined;
}

/** Failing to reach or log in to PostgreSQL, as opposed to a failing statement. */
const CONNECT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH',
  'ECONNRESET', 'CONNECT_TIMEOUT', '28P01', '28000', '3D000']);

/** `host:port/database` of a PostgreSQL URL: never its credentials. */
function where(url: string | undefined): string {
  if (!url) return 'the embedded PostgreSQL';
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || 5432}${u.pathname}`;
  } catch {
    return 'DATABASE_URL';
  }
}

function describe(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && CONNECT_CODES.has(code)) {
    return `cannot connect to PostgreSQL at ${where(process.env.DATABASE_URL)}: ${message} (check DATABASE_URL)`;
  }
  return message;
}

/** Runs a command's main; its number is the exit code, a throw prints `error: …` (no stack) and exits 1. */
export function runCli(main: () => Promise<number>): void {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`error: ${describe(err)}\n`);
      process.exitCode = 1;
    },
  );
}
