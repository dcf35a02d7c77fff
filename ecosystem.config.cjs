/**
 * pm2 process file: `npm run build && pm2 start ecosystem.config.cjs --env production`.
 *
 * pm2 runs the node:cluster PRIMARY in fork mode, one instance: the primary forks and supervises the HTTP
 * workers itself and aggregates their metrics, which pm2's cluster mode cannot host. Zero-downtime rolling
 * restart of the workers: `pm2 sendSignal SIGUSR2 recommendation-service` (not `pm2 reload`, which in fork
 * mode restarts the whole process). Values read from the environment here can be overridden at `pm2 start`.
 */
const path = require('node:path');

const env = process.env;
const shutdownTimeoutMs = Number(env.SHUTDOWN_TIMEOUT_MS || 10_000);
const logDir = env.PM2_LOG_DIR || path.join(__dirname, 'logs');

module.exports = {
  apps: [
    {
      name: 'recommendation-service',
      cwd: __dirname,
      script: 'dist/main.js',
      exec_mode: 'fork',
      instances: 1,
      // The primary sends 'ready' once every worker listens (after migrations and the optional seed).
      wait_ready: true,
      listen_timeout: 60_000,
      // pm2 stops with SIGINT (the primary treats it as SIGTERM): workers drain for up to SHUTDOWN_TIMEOUT_MS,
      // pools close, exit 0. pm2 sends SIGKILL to the process tree only after kill_timeout.
      kill_timeout: shutdownTimeoutMs + 5_000,
      // pm2 measures the primary's own memory (workers are bounded by L1_MAX_BYTES); over it: full restart.
      max_memory_restart: env.PM2_MAX_MEMORY || '512M',
      exp_backoff_restart_delay: 100,
      // pino writes JSON lines with their own time; workers share the primary's stdout and stderr.
      out_file: path.join(logDir, 'recommendation-service.out.log'),
      error_file: path.join(logDir, 'recommendation-service.err.log'),
      merge_logs: true,
      env_production: {
        NODE_ENV: 'production',
        PORT: env.PORT || '8080',
        LOG_LEVEL: env.LOG_LEVEL || 'info',
        SHUTDOWN_TIMEOUT_MS: String(shutdownTimeoutMs),
        // Production data is loaded on purpose (`npm run seed`), never as a side effect of a first start.
        SEED_ON_START: env.SEED_ON_START || 'false',
      },
    },
  ],
};
