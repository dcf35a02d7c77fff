/**
 * Debian's haproxy running deploy/haproxy.cfg (the file we ship) in front of three instances on loopback.
 *
 *   const lb = await startHaproxy([port1, port2, port3]);
 *   fetch(`http://127.0.0.1:${lb.port}/...`); await lb.serverStates(); await lb.stop();
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, httpRequest } from './server.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const HAPROXY_CONFIG = path.join(ROOT, 'deploy/haproxy.cfg');

export interface RunningHaproxy {
  port: number;
  /** instance name (`instance-1`…) → haproxy's state of it (`UP`, `DOWN`, `UP 1/2`, …), from its stats CSV. */
  serverStates(): Promise<Record<string, string>>;
  stop(): Promise<void>;
  output(): string;
}

export async function startHaproxy(instancePorts: number[]): Promise<RunningHaproxy> {
  if (instancePorts.length !== 3) throw new Error('deploy/haproxy.cfg names three instances');
  const port = await freePort();
  const statsPort = await freePort();
  let output = '';
  const child: ChildProcess = spawn('haproxy', ['-db', '-f', HAPROXY_CONFIG], {
    env: {
      PATH: process.env.PATH ?? '',
      RECS_LB_BIND: `127.0.0.1:${port}`,
      RECS_LB_STATS_BIND: `127.0.0.1:${statsPort}`,
      ...Object.fromEntries(instancePorts.map((p, i) => [`RECS_INSTANCE_${i + 1}`, `127.0.0.1:${p}`])),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));

  const serverStates = async (): Promise<Record<string, string>> => {
    const csv = (await httpRequest(statsPort, 'GET', '/stats;csv', { timeoutMs: 2000 })).text;
    const states: Record<string, string> = {};
    for (const line of csv.split('\n')) {
      const cols = line.split(',');
      if (cols[0] === 'instances' && cols[1]?.startsWith('instance-')) states[cols[1]] = cols[17] ?? '';
    }
    return states;
  };

  const deadline = Date.now() + 20_000;
  for (;;) {
    const failed = await Promise.race([spawnError, new Promise<undefined>((r) => setTimeout(() => r(undefined), 100))]);
    if (failed) throw new Error(`haproxy could not start (apt-get install haproxy): ${failed.message}`);
    if (child.exitCode !== null) throw new Error(`haproxy exited with ${child.exitCode}:\n${output}`);
    const states = await serverStates().catch(() => ({}) as Record<string, string>);
    if (Object.values(states).filter((s) => s === 'UP').length === 3) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`haproxy did not see three healthy instances: ${JSON.stringify(states)}\n${output}`);
    }
  }

  return {
    port,
    serverStates,
    output: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
