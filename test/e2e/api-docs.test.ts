/**
 * `GET /docs`: the interactive API reference, checked in a real browser. Headless Chromium loads the page
 * from the clustered server with every other host unresolvable (offline, no CDN) and must render the
 * recommendation route with its parameters from `/openapi.json`. Like the other operational routes,
 * the page needs no API key and is not rate limited, even when reads need a key.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../support/db.js';
import { startServer, type RunningServer } from '../support/server.js';

const KEY = 'docs-test-key-0123456789';

/** Debian's `chromium` (.ci/run installs it); undefined where it is not installed. */
function chromiumPath(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    for (const name of ['chromium', 'chromium-browser']) {
      try {
        accessSync(path.join(dir, name), constants.X_OK);
        return path.join(dir, name);
      } catch {
        // not here
      }
    }
  }
  return undefined;
}
const chromium = chromiumPath();

/** The DOM after the page's scripts ran, as Chromium rendered it; any host but 127.0.0.1 fails to resolve. */
async function renderedDom(url: string): Promise<string> {
  const { stdout } = await promisify(execFile)(
    chromium!,
    [
      '--headless',
      '--no-sandbox', // tests run as root in CI
      '--disable-gpu',
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
      '--virtual-time-budget=20000',
      '--dump-dom',
      url,
    ],
    { maxBuffer: 64 * 1024 * 1024, timeout: 60_000 },
  );
  return stdout;
}

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let server: RunningServer;

beforeAll(async () => {
  db = await createTestDatabase();
  // Reads need the key and every client gets 2 requests per minute: /docs must stay reachable anyway.
  server = await startServer({
    DATABASE_URL: db.url,
    API_KEY: KEY,
    API_KEY_READS: 'true',
    RATE_LIMIT_POINTS: '2',
    RATE_LIMIT_DURATION_S: '60',
  });
});

afterAll(async () => {
  await server?.stop();
  await db?.drop();
});

describe('GET /docs', () => {
  it('serves a page whose scripts and styles all come from this server', async () => {
    const r = await server.get('/docs');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(r.headers['content-security-policy']).toContain("script-src 'self'");
    const refs = [...r.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(refs.filter((ref) => ref !== 'data:,').every((ref) => ref.startsWith('/docs/'))).toBe(true);
    for (const ref of refs.filter((ref) => ref.startsWith('/docs/'))) {
      const asset = await server.get(ref);
      expect(asset.status, ref).toBe(200);
      expect(asset.text.length, ref).toBeGreaterThan(0);
      expect(asset.headers['cache-control'], ref).toContain('immutable');
    }
  });

  it('stays open and unlimited like /openapi.json while reads need the key and are rate limited', async () => {
    expect((await server.get('/users/1/recommendations')).status).toBe(401);
    for (let i = 0; i < 5; i++) {
      expect((await server.get('/docs')).status).toBe(200);
      expect((await server.get('/docs/init.js')).status).toBe(200);
      expect((await server.get('/openapi.json')).status).toBe(200);
    }
    const keyed = { authorization: `Bearer ${KEY}` };
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await server.request('GET', '/users/1/recommendations', { headers: keyed })).status);
    expect(statuses).toEqual([200, 200, 429]);
  });

  it('answers another method with 405', async () => {
    const r = await server.request('POST', '/docs', { body: '{}' });
    expect(r.status).toBe(405);
    expect(r.headers.allow).toBe('GET');
  });

  it.skipIf(!chromium)(
    `renders the recommendation route and its parameters in headless Chromium${chromium ? '' : ' (skipped: chromium is not installed; `apt-get install chromium`)'}`,
    async () => {
      // Deep link to the operation: Swagger UI expands it, which renders its parameters.
      const dom = await renderedDom(`http://127.0.0.1:${server.port}/docs#/default/getRecommendations`);
      expect(dom).toContain('data-path="/users/{id}/recommendations"');
      expect(dom).toContain('data-path="/content/{id}/similar"');
      const params = [...dom.matchAll(/<td class="parameters-col_name">.*?<div class="parameter__name[^"]*">([a-z_]+)/gs)].map((m) => m[1]);
      expect(params).toEqual(['id', 'limit', 'offset', 'genre', 'explain']);
    },
    90_000,
  );
});
