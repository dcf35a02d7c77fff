/**
 * Starts the real clustered service (`node dist/main.js`) as a child process against a test database,
 * and talks plain HTTP to it. `fresh: true` opens a new TCP connection per request, so successive
 * requests land on either worker (SO_REUSEPORT spreads connections, not requests).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Whether a process with this pid exists (signal 0 checks without signalling). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: any;
}

export interface RunningServer {
  port: number;
  child: ChildProcess;
  /** Everything the processes printed (JSON log lines), for assertions and for debugging failures. */
  output: () => string;
  request(method: string, path: string, opts?: { body?: string | Buffer; headers?: Record<string, string>; fresh?: boolean }): Promise<Reply>;
  get(path: string, fresh?: boolean): Promise<Reply>;
  post(path: string, body: unknown, fresh?: boolean): Promise<Reply>;
  /** SIGTERM and wait for exit; resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 32 });

/**
 * One HTTP request to 127.0.0.1:`port`; the body (JSON text) is sent as application/json, and the reply's
 * JSON parsed when it is JSON. `timeoutMs`: give up (reject) when the reply takes longer.
 */
export function httpRequest(
  port: number,
  method: string,
  urlPath: string,
  opts: { body?: string | Buffer; headers?: Record<string, string>; agent?: http.Agent | false; timeoutMs?: number } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method,
        path: urlPath,
        agent: opts.agent ?? false,
        headers: { ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}), ...opts.headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
        res.on('error', reject);
      },
    );
    if (opts.timeoutMs !== undefined) req.setTimeout(opts.timeoutMs, () => req.destroy(new Error('client timeout')));
    req.on('error', reject);
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}

export async function startServer(env: Record<string, string>): Promise<RunningServer> {
  const port = await freePort();
  let output = '';
  const child = spawn(process.execPath, [path.join(ROOT, 'dist/main.js')], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      PORT: String(port),
      HOST: '127.0.0.1',
      WORKERS: '2',
      LOG_LEVEL: 'info',
      MODEL_LATENCY_MS: '0',
      MODEL_FAILURE_RATE: '0',
      MODEL_NOISE: 'false',
      // The seed's formula unless a test names a model: a learned default trains in the background and its
      // swap retires every cached list at a moment no test chose (the model tests set MODEL themselves).
      MODEL: 'heuristic',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const request: RunningServer['request'] = (method, urlPath, { fresh, ...opts } = {}) =>
    httpRequest(port, method, urlPath, { ...opts, agent: fresh ? false : keepAlive });

  const server: RunningServer = {
    port,
    child,
    output: () => output,
    request,
    get: (p, fresh) => request('GET', p, { fresh }),
    post: (p, body, fresh) => request('POST', p, { body: JSON.stringify(body), fresh }),
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      return exited;
    },
  };

  const deadline = Date.now() + 90_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}:\n${output}`);
    if (output.includes('"service ready"')) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`server did not become ready:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return server;
}
