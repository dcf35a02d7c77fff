/**
 * The one module that owns opossum: a circuit breaker around model inference.
 *
 * State machine (opossum 9 semantics, counts over a rolling window of `rollingCountTimeoutMs`):
 *   closed    → every call runs. After each failure (error or timeout), if the window holds at least
 *               `volumeThreshold` calls and failures/calls > `errorThresholdPercentage`%, the breaker opens.
 *               Below the volume threshold it never opens, so a few early errors cannot trip it.
 *   open      → calls are rejected at once (ModelError 'rejected', the action is not called); the service
 *               answers with the popularity fallback. After `resetTimeoutMs` it turns half-open.
 *   half_open → exactly one probe call runs; others are rejected as if open. Probe success → closed,
 *               probe failure or timeout → open again (and a new reset timer).
 * Window caveats: rejected calls count as calls (diluting the error rate), and closing does not clear
 * the window, so old failures still count until their buckets rotate out.
 *
 * Pool saturation (action rejected with ModelError 'rejected': queue full) is backpressure, not a sick
 * model: it does not count as a failure while closed (only the overflow falls back), but a half-open
 * probe that cannot even get a thread is a failed probe.
 *
 * A timeout does not cancel the task: aborting a running Piscina task terminates its thread (and every
 * other task interleaved on it), which costs far more than letting one late result be discarded.
 */
import CircuitBreaker from 'opossum';
import { ModelError } from '../domain/errors.js';

export type BreakerState = 'closed' | 'open' | 'half_open';

export interface ModelBreakerOptions {
  /** Per-call deadline; 0 disables it. */
  timeoutMs: number;
  errorThresholdPercentage: number;
  volumeThreshold: number;
  resetTimeoutMs: number;
  rollingCountTimeoutMs: number;
  onStateChange?: (state: BreakerState) => void;
}

export interface ModelBreaker<A extends unknown[], R> {
  /** Runs the action through the breaker; rejects only with ModelError. */
  fire(...args: A): Promise<R>;
  state(): BreakerState;
  shutdown(): void;
}

export function createModelBreaker<A extends unknown[], R>(
  action: (...args: A) => Promise<R>,
  opts: ModelBreakerOptions,
): ModelBreaker<A, R> {
  const breaker: CircuitBreaker<A, R> = new CircuitBreaker<A, R>(action, {
    timeout: opts.timeoutMs,
    errorThresholdPercentage: opts.errorThresholdPercentage,
    volumeThreshold: opts.volumeThreshold,
    resetTimeout: opts.resetTimeoutMs,
    rollingCountTimeout: opts.rollingCountTimeoutMs,
    rollingCountBuckets: 10,
    // Both cost work on every failure/bucket and nothing reads them: state goes out via onStateChange.
    rollingPercentilesEnabled: false,
    enableSnapshots: false,
    errorFilter: (err: unknown) => isPoolRejection(err) && !breaker.halfOpen,
  });

  const notify = opts.onStateChange;
  if (notify) {
    breaker.on('open', () => notify('open'));
    breaker.on('halfOpen', () => notify('half_open'));
    breaker.on('close', () => notify('closed'));
  }

  return {
    fire: (...args: A) => breaker.fire(...args).catch((err: unknown) => Promise.reject(toModelError(err))),
    state: () => (breaker.halfOpen ? 'half_open' : breaker.opened ? 'open' : 'closed'),
    shutdown: () => breaker.shutdown(),
  };
}

function isPoolRejection(err: unknown): boolean {
  return err instanceof ModelError && err.reason === 'rejected';
}

function toModelError(err: unknown): ModelError {
  if (err instanceof ModelError) return err;
  const e = err instanceof Error ? err : new Error(String(err));
  // Only opossum's own errors carry these codes with meaning; an action's ETIMEDOUT is a plain failure.
  const code = CircuitBreaker.isOurError(e) ? (e as Error & { code?: string }).code : undefined;
  if (code === 'ETIMEDOUT') return new ModelError('timeout', e.message);
  if (code === 'EOPENBREAKER' || code === 'ESEMLOCKED' || code === 'ESHUTDOWN') {
    return new ModelError('rejected', e.message);
  }
  return new ModelError('failure', e.message);
}
