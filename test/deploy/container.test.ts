/**
 * The container artefacts, as far as a machine without a Docker engine can check them: docker-compose.yml
 * is accepted by `docker-compose config` (Debian's 1.29) and wires what docs/operations.md promises; the
 * Dockerfile's HEALTHCHECK command, run as written, tells a serving instance from a dead one; its CMD is
 * exec form, so SIGTERM reaches the primary.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUILDS } from '../../src/http/uws.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { freePort, startServer, type RunningServer } from '../support/server.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const hasCompose = spawnSync('docker-compose', ['version'], { encoding: 'utf8' }).status === 0;

interface Service {
  image?: string;
  build?: { context: string };
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  volumes?: string[];
  stop_grace_period?: string;
}

const composeSuite = hasCompose
  ? 'docker-compose.yml (docker-compose config)'
  : 'docker-compose.yml: SKIPPED, docker-compose is not installed (apt-get install docker-compose; .ci/run does)';

describe.skipIf(!hasCompose)(composeSuite, () => {
  let config: { services: Record<string, Service>; volumes: Record<string, unknown> };

  beforeAll(async () => {
    // docker-compose 1.29 prints YAML only; it is Python, so python3 with PyYAML is there to convert it.
    const yaml = await new Promise<string>((resolve, reject) =>
      execFile('docker-compose', ['config'], { cwd: ROOT, env: { PATH: process.env.PATH } }, (err, stdout, stderr) =>
        err ? reject(new Error(`docker-compose config failed: ${stderr}`)) : resolve(stdout),
      ),
    );
    const json = spawnSync('python3', ['-c', 'import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))'], {
      input: yaml,
      encoding: 'utf8',
    });
    expect(json.status, json.stderr).toBe(0);
    config = JSON.parse(json.stdout);
  });

  it('defines the app, PostgreSQL 18, Redis 7, Prometheus and Grafana', () => {
    expect(Object.keys(config.services).sort()).toEqual(['app', 'grafana', 'postgres', 'prometheus', 'redis']);
    expect(config.services.app!.build!.context).toBe(ROOT);
    expect(config.services.postgres!.image).toBe('postgres:18');
    expect(config.services.redis!.image).toBe('redis:7');
  });

  it('starts the app only once PostgreSQL and Redis are healthy, and configures it through the environment', () => {
    const { app, postgres, redis } = config.services;
    expect(app!.depends_on).toEqual({
      postgres: { condition: 'service_healthy' },
      redis: { condition: 'service_healthy' },
    });
    expect(postgres!.healthcheck!.test.join(' ')).toContain('pg_isready');
    expect(redis!.healthcheck!.test.join(' ')).toContain('redis-cli ping');
    const env = app!.environment!;
    expect(new URL(env.DATABASE_URL!).host).toBe('postgres:5432');
    expect(new URL(env.REDIS_URL!).host).toBe('redis:6379');
    // Docker must not SIGKILL the primary while its workers drain.
    const grace = Number(/^(\d+)s$/.exec(app!.stop_grace_period ?? '')?.[1]);
    expect(grace * 1000).toBeGreaterThan(Number(env.SHUTDOWN_TIMEOUT_MS));
  });

  it('keeps PostgreSQL, Redis, Prometheus and Grafana data in named volumes', () => {
    expect(Object.keys(config.volumes).sort()).toEqual(['grafana-data', 'postgres-data', 'prometheus-data', 'redis-data']);
    const named = (s: string) => config.services[s]!.volumes!.map((v) => v.split(':')[0]);
    expect(named('postgres')).toContain('postgres-data');
    expect(named('redis')).toContain('redis-data');
    expect(named('prometheus')).toContain('prometheus-data');
    expect(named('grafana')).toContain('grafana-data');
  });

  it('mounts files that exist: the scrape config, Grafana provisioning and dashboards', () => {
    const mounts = ['prometheus', 'grafana'].flatMap((s) => config.services[s]!.volumes!).filter((v) => v.startsWith('/'));
    const targets = Object.fromEntries(mounts.map((v) => [v.split(':')[1], v.split(':')[0]!]));
    expect(targets).toEqual({
      '/etc/prometheus/prometheus.yml': path.join(ROOT, 'grafana/prometheus.yml'),
      '/etc/grafana/provisioning': path.join(ROOT, 'grafana/provisioning'),
      '/var/lib/grafana/dashboards': path.join(ROOT, 'grafana/dashboards'),
    });
    for (const source of Object.values(targets)) expect(existsSync(source), source).toBe(true);
    // Prometheus scrapes the app by its service name and container port.
    const port = config.services.app!.environment!.PORT;
    expect(readFileSync(path.join(ROOT, 'grafana/prometheus.yml'), 'utf8')).toContain(`'app:${port}'`);
  });
});

describe('Dockerfile', () => {
  const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
  const instruction = (name: string) =>
    dockerfile
      .replace(/\\\n/g, ' ')
      .split('\n')
      .filter((l) => l.startsWith(`${name} `))
      .map((l) => l.slice(name.length + 1).trim());

  it('runs compiled JavaScript as a non-root user, node itself as PID 1 (exec form), on glibc', () => {
    expect(instruction('CMD')).toEqual(['["node", "dist/main.js"]']);
    expect(instruction('USER')).toEqual(['node']);
    for (const from of instruction('FROM')) expect(from).toMatch(/^node:24-trixie-slim\b/);
    expect(dockerfile).toContain('npm ci --omit=dev');
    expect(dockerfile).toContain('RUN npm run build');
  });

  it('is on a Node and a Debian whose glibc one of the uWebSockets.js builds serves', () => {
    const glibcMinor: Record<string, number> = { bookworm: 36, trixie: 41 }; // Debian 12, 13: glibc 2.x
    for (const from of instruction('FROM')) {
      const [, major, debian] = /^node:(\d+)-(\w+)-slim\b/.exec(from)!;
      const needs = BUILDS.map((b) => b.glibc[Number(major)]).filter((v) => v !== undefined);
      expect(needs.some((min) => Number(min.slice(2)) <= glibcMinor[debian!]!), from).toBe(true);
    }
  });

  describe('HEALTHCHECK, run as written', () => {
    let db: TestDatabase;
    let server: RunningServer;
    let command: string[];
    beforeAll(async () => {
      const [healthcheck] = instruction('HEALTHCHECK');
      command = JSON.parse(healthcheck!.slice(healthcheck!.indexOf('CMD ') + 4));
      db = await createTestDatabase();
      server = await startServer({ DATABASE_URL: db.url });
    });
    afterAll(async () => {
      await server?.stop();
      await db?.drop();
    });
    const check = (port: number) =>
      spawnSync(command[0] === 'node' ? process.execPath : command[0]!, command.slice(1), {
        env: { PATH: process.env.PATH, PORT: String(port) },
        timeout: 10_000,
      }).status;

    it('passes while the service serves /health', () => {
      expect(check(server.port)).toBe(0);
    });
    it('fails when nothing answers on PORT', async () => {
      expect(check(await freePort())).toBe(1);
    });
  });
});
