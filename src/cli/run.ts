/** What every CLI command shares: exit codes, error output, and no embedded server left behind. */

/** Ctrl+C or a kill must not leave the embedded server running. */
export function stopOnSignal(stop: () => Promise<void>): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      void stop().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
    });
  }
}

/** Runs a command's main; its number is the exit code, a throw prints `error: …` and exits 1. */
export function runCli(main: () => Promise<number>): void {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
