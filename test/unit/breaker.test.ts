import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { ModelError } from '../../src/domain/errors.js';
import { createModelBreaker, type BreakerState, type ModelBreaker } from '../../src/service/breaker.js';

type Mode = 'ok' | 'fail' | 'slow' | 'queue_full';

/** A fake model whose behaviour the test switches, counting how often the breaker really calls it. */
function fakeModel() {
  const model = {
    mode: 'ok' as Mode,
    calls: 0,
    action: async (x: number): Promise<number> => {
      model.calls++;
      switch (model.mode) {
        case 'ok':
          return x * 2;
        case 'fail':
          throw new Error('model inference failed');
        case 'slow':
          await sleep(300);
          return x * 2;
        case 'queue_full':
          throw new ModelError('rejected', 'Task queue is at limit');
      }
    },
  };
  return model;
}

/** Records state transitions and lets a test await one without guessing how long it takes. */
function stateLog() {
  const seen: BreakerState[] = [];
  const waiters: Array<{ state: BreakerState; resolve: () => void }> = [];
  return {
    seen,
    onStateChange(state: BreakerState) {
      seen.push(state);
      for (const w of waiters.splice(0)) (w.state === state ? w.resolve() : waiters.push(w));
    },
    next(state: BreakerState): Promise<void> {
      return new Promise((resolve) => waiters.push({ state, resolve }));
    },
  };
}

async function reasonOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ModelError);
    return (err as ModelError).reason;
  }
  throw new Error('expected a rejection');
}

const breakers: Array<ModelBreaker<[number], number>> = [];
afterEach(() => {
  for (const b of breakers.splice(0)) b.shutdown();
});

function setup(overrides: { resetTimeoutMs?: number; timeoutMs?: number } = {}) {
  const model = fakeModel();
  const log = stateLog();
  const breaker = createModelBreaker(model.action, {
    timeoutMs: overrides.timeoutMs ?? 1_000,
    errorThresholdPercentage: 50,
    volumeThreshold: 4,
    resetTimeoutMs: overrides.resetTimeoutMs ?? 60_000,
    rollingCountTimeoutMs: 60_000,
    onStateChange: log.onStateChange,
  });
  breakers.push(breaker);
  return { model, log, breaker };
}

async function tripOpen(model: ReturnType<typeof fakeModel>, breaker: ModelBreaker<[number], number>) {
  model.mode = 'fail';
  for (let i = 0; i < 4; i++) expect(await reasonOf(breaker.fire(i))).toBe('failure');
  expect(breaker.state()).toBe('open');
}

describe('model circuit breaker', () => {
  it('passes results through while closed', async () => {
    const { breaker } = setup();
    expect(await breaker.fire(21)).toBe(42);
    expect(breaker.state()).toBe('closed');
  });

  it('stays closed below the volume threshold, opens once it is reached with failures', async () => {
    const { model, log, breaker } = setup();
    model.mode = 'fail';
    for (let i = 0; i < 3; i++) {
      expect(await reasonOf(breaker.fire(i))).toBe('failure');
      expect(breaker.state()).toBe('closed');
    }
    expect(await reasonOf(breaker.fire(3))).toBe('failure');
    expect(breaker.state()).toBe('open');
    expect(log.seen).toEqual(['open']);
  });

  it('does not open while the error percentage stays at or below the threshold', async () => {
    const { model, breaker } = setup();
    for (let i = 0; i < 10; i++) {
      model.mode = i % 2 === 0 ? 'ok' : 'fail'; // exactly 50 %: opossum opens only above it
      await breaker.fire(i).catch(() => undefined);
    }
    expect(breaker.state()).toBe('closed');
  });

  it('rejects fast with reason "rejected" when open, without calling the model', async () => {
    const { model, breaker } = setup();
    await tripOpen(model, breaker);
    const callsWhenOpened = model.calls;
    model.mode = 'ok';
    for (let i = 0; i < 5; i++) expect(await reasonOf(breaker.fire(i))).toBe('rejected');
    expect(model.calls).toBe(callsWhenOpened);
  });

  it('after the reset timeout lets one probe through; success closes it', async () => {
    const { model, log, breaker } = setup({ resetTimeoutMs: 30 });
    await tripOpen(model, breaker);
    await log.next('half_open');
    expect(breaker.state()).toBe('half_open');

    model.mode = 'slow';
    const probe = breaker.fire(5);
    // Only a single probe: a concurrent call is rejected, not sent to the model.
    const callsDuringProbe = model.calls;
    expect(await reasonOf(breaker.fire(6))).toBe('rejected');
    expect(model.calls).toBe(callsDuringProbe);

    expect(await probe).toBe(10);
    expect(breaker.state()).toBe('closed');
    expect(log.seen).toEqual(['open', 'half_open', 'closed']);
    model.mode = 'ok';
    expect(await breaker.fire(1)).toBe(2);
  });

  it('a failing probe opens it again, and it half-opens again later', async () => {
    const { model, log, breaker } = setup({ resetTimeoutMs: 30 });
    await tripOpen(model, breaker);
    await log.next('half_open');

    const reopened = log.next('open');
    expect(await reasonOf(breaker.fire(1))).toBe('failure');
    await reopened;
    expect(breaker.state()).toBe('open');
    expect(await reasonOf(breaker.fire(2))).toBe('rejected');

    await log.next('half_open');
    model.mode = 'ok';
    expect(await breaker.fire(3)).toBe(6);
    expect(log.seen).toEqual(['open', 'half_open', 'open', 'half_open', 'closed']);
  });

  it('reports a timeout as reason "timeout" and counts it as a failure', async () => {
    const { model, breaker } = setup({ timeoutMs: 20 });
    model.mode = 'slow';
    for (let i = 0; i < 4; i++) expect(await reasonOf(breaker.fire(i))).toBe('timeout');
    expect(breaker.state()).toBe('open');
  });

  it('a full pool queue is reason "rejected" and does not open a closed breaker', async () => {
    const { model, breaker } = setup();
    model.mode = 'queue_full';
    for (let i = 0; i < 10; i++) expect(await reasonOf(breaker.fire(i))).toBe('rejected');
    expect(breaker.state()).toBe('closed');
  });

  it('a half-open probe that meets a full pool queue counts as a failed probe', async () => {
    const { model, log, breaker } = setup({ resetTimeoutMs: 30 });
    await tripOpen(model, breaker);
    await log.next('half_open');
    model.mode = 'queue_full';
    expect(await reasonOf(breaker.fire(1))).toBe('rejected');
    expect(breaker.state()).toBe('open');
  });

  it('rejects with reason "rejected" after shutdown', async () => {
    const { breaker } = setup();
    breaker.shutdown();
    expect(await reasonOf(breaker.fire(1))).toBe('rejected');
  });
});
