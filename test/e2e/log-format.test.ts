/**
 * Log format of the real clustered server: JSON lines in a pipe (what log shippers read), pino-pretty's
 * coloured human lines on a terminal, and LOG_FORMAT=json|pretty overriding either. The terminal is a real
 * pseudo-terminal (util-linux `script`), so the primary and both workers decide from the stdout they got.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../support/db.js';
import { freePort, httpRequest } from '../support/server.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const MAIN = path.join(ROOT, 'dist/main.js');

let db: Awaited<ReturnType<typeof createTestDatabase>>;

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

const until = async (check: () => boolean, what: string, output: () => string) => {
  for (let i = 0; !check(); i++) {
    if (i > 1800) throw new Error(`timed out waiting for ${what}:\n${output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

/**
 * Starts the service (on a terminal when `tty`), makes one request at debug level, stops it with SIGTERM
 * and returns every line it printed, without the terminal's carriage returns.
 */
async function runOnce(env: Record<string, string>, tty: boolean): Promise<string[]> {
  const port = await freePort();
  const [command, args] = tty
    ? ['script', ['-qfec', `exec ${JSON.stringify(process.execPath)} ${JSON.stringify(MAIN)}`, '/dev/null']]
    : [process.execPath, [MAIN]];
  const child = spawn(command, args as string[], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      TERM: 'xterm-256color',
      DATABASE_URL: db.url,
      PORT: String(port),
      HOST: '127.0.0.1',
      WORKERS: '2',
      LOG_LEVEL: 'debug',
      MODEL_LATENCY_MS: '0',
      SIMILAR_REFRESH_S: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    await until(() => output.includes('service ready'), 'service ready', () => output);
    const r = await httpRequest(port, 'GET', '/health', { headers: { 'x-request-id': 'fmt-probe-1' } });
    expect(r.status).toBe(200);
    await until(() => output.includes('fmt-probe-1'), 'the access line', () => output);
  } finally {
    // Under `script` the primary is script's child: signal it, not script (which would SIGKILL it).
    const primary = tty
      ? Number(readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(' ')[0])
      : child.pid!;
    process.kill(primary, 'SIGTERM');
    await exited;
  }
  return output.replaceAll('\r', '').split('\n').filter((l) => l.length > 0);
}

const ANSI = /\x1b\[[0-9;]*m/g;
const PRETTY = /^\[\d\d:\d\d:\d\d\.\d{3}\] (TRACE|DEBUG|INFO|WARN|ERROR|FATAL): (primary|worker-\d+) \S/;

function expectPretty(lines: string[]): void {
  const plain = lines.map((l) => l.replace(ANSI, ''));
  for (const line of plain) expect(line, 'every line human-readable').toMatch(PRETTY);
  expect(plain.some((l) => /^\[[\d:.]+\] INFO: primary service ready \{"port":\d+,"workers":2\}$/.test(l))).toBe(true);
  expect(plain.filter((l) => / INFO: worker-\d worker listening /.test(l))).toHaveLength(2);
  // The access line: level, role, message, then its fields on the same line.
  const access = plain.find((l) => l.includes('"request_id":"fmt-probe-1"'));
  expect(access).toMatch(/^\[[\d:.]+\] DEBUG: worker-\d request \{.*"route":"health".*"status":200.*\}$/);
}

function expectJson(lines: string[]): void {
  expect(lines.join('\n')).not.toMatch(ANSI);
  const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(parsed.some((l) => l.msg === 'service ready' && l.role === 'primary' && l.level === 30)).toBe(true);
  expect(parsed.find((l) => l.request_id === 'fmt-probe-1')).toMatchObject({ msg: 'request', route: 'health', status: 200, level: 20 });
}

describe('log format', () => {
  it('writes JSON lines into a pipe by default', async () => {
    expectJson(await runOnce({}, false));
  });

  it('writes human-readable lines into a pipe with LOG_FORMAT=pretty', async () => {
    const lines = await runOnce({ LOG_FORMAT: 'pretty' }, false);
    expect(lines.join('\n')).not.toMatch(ANSI); // no terminal, no colours
    expectPretty(lines);
  });

  it('writes coloured human-readable lines on a terminal by default, from the primary and every worker', async () => {
    const lines = await runOnce({}, true);
    expect(lines.filter((l) => l.includes('\x1b[32mINFO\x1b[39m')).length).toBeGreaterThan(3);
    expectPretty(lines);
  });

  it('writes JSON lines on a terminal with LOG_FORMAT=json', async () => {
    expectJson(await runOnce({ LOG_FORMAT: 'json' }, true));
  });
});
