/**
 * `GET /docs`: the OpenAPI document rendered by Swagger UI (npm `swagger-ui-dist`, the only importer).
 * Its files are read once at start-up and served from memory: no CDN, works offline. Like `/openapi.json`
 * and the other operational routes, it needs no API key and is not rate limited.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Exchange, type WireContext } from './exchange.js';
import type { TemplatedApp } from './uws.js';

export const DOCS_PATH = '/docs';

interface Asset {
  path: string;
  contentType: string;
  body: Buffer;
  /** The URL the page links, versioned by content so a browser may cache it for good. */
  href: string;
}

// Our initializer: the document this service serves, no validator badge (it would call swagger.io).
const INITIALIZER = `window.ui = SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: 'BaseLayout',
});
`;

// Swagger UI styles elements inline and draws icons as data: URIs; everything else comes from here.
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
  "connect-src 'self'; frame-ancestors 'none'";

const JS = 'text/javascript; charset=utf-8';

/** What the page loads: two files of swagger-ui-dist and our initializer, each under /docs/<name>. */
const FILES: ReadonlyArray<{ name: string; contentType: string; body?: string }> = [
  { name: 'swagger-ui.css', contentType: 'text/css; charset=utf-8' },
  { name: 'swagger-ui-bundle.js', contentType: JS },
  { name: 'init.js', contentType: JS, body: INITIALIZER },
];

/** The paths this module answers (GET only), for the app's 405 table. */
export const DOCS_PATHS: readonly string[] = [DOCS_PATH, ...FILES.map((f) => `${DOCS_PATH}/${f.name}`)];

function loadAssets(): Asset[] {
  const require = createRequire(import.meta.url);
  const dist = path.dirname(require.resolve('swagger-ui-dist/package.json'));
  return FILES.map(({ name, contentType, body }) => {
    const bytes = body === undefined ? readFileSync(path.join(dist, name)) : Buffer.from(body);
    const version = createHash('sha256').update(bytes).digest('hex').slice(0, 12);
    const urlPath = `${DOCS_PATH}/${name}`;
    return { path: urlPath, contentType, body: bytes, href: `${urlPath}?v=${version}` };
  });
}

function page([css, bundle, init]: Asset[]): Buffer {
  return Buffer.from(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Recommendation service — API reference</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${css!.href}">
</head>
<body>
<div id="swagger-ui"></div>
<script src="${bundle!.href}"></script>
<script src="${init!.href}"></script>
</body>
</html>
`);
}

export function docsRoutes(app: TemplatedApp, ctx: WireContext): void {
  const assets = loadAssets();
  const html = page(assets);
  const htmlHeaders = { 'cache-control': 'no-cache', 'content-security-policy': CSP, 'x-content-type-options': 'nosniff' };
  app.get(DOCS_PATH, (res, req) => {
    new Exchange(res, 'unknown', 'GET', ctx, req).send(200, html, 'text/html; charset=utf-8', false, htmlHeaders);
  });
  const assetHeaders = { 'cache-control': 'public, max-age=31536000, immutable', 'x-content-type-options': 'nosniff' };
  for (const a of assets) {
    app.get(a.path, (res, req) => {
      new Exchange(res, 'unknown', 'GET', ctx, req).send(200, a.body, a.contentType, false, assetHeaders);
    });
  }
}
