import { describe, expect, it } from 'vitest';
import { Singleflight } from '../../src/service/singleflight.js';

/** A promise the test settles by hand. */
function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('Singleflight', () => {
  it('runs fn once for N concurrent callers; joiners are flagged shared', async () => {
    const sf = new Singleflight<number, string>();
    const gate = deferred<string>();
    let calls = 0;
    const fn = () => {
      calls++;
      return gate.promise;
    };
    const callers = Array.from({ length: 20 }, () => sf.do(7, fn));
    expect(calls).toBe(1);
    expect(callers.map((c) => c.shared)).toEqual([false, ...Array(19).fill(true)]);
    expect(sf.size).toBe(1);

    gate.resolve('list');
    expect(await Promise.all(callers.map((c) => c.promise))).toEqual(Array(20).fill('list'));
    expect(sf.size).toBe(0);
  });

  it('keeps keys independent', async () => {
    const sf = new Singleflight<number, number>();
    const a = sf.do(1, async () => 1);
    const b = sf.do(2, async () => 2);
    expect(a.shared || b.shared).toBe(false);
    expect([await a.promise, await b.promise]).toEqual([1, 2]);
  });

  it('shares an error with the callers in flight but does not cache it', async () => {
    const sf = new Singleflight<string, string>();
    const gate = deferred<string>();
    let calls = 0;
    const failing = () => {
      calls++;
      return gate.promise;
    };
    const first = sf.do('u', failing);
    const second = sf.do('u', failing);
    gate.reject(new Error('db down'));
    await expect(first.promise).rejects.toThrow('db down');
    await expect(second.promise).rejects.toThrow('db down');
    expect(calls).toBe(1);
    expect(sf.size).toBe(0);

    const retry = sf.do('u', async () => {
      calls++;
      return 'ok';
    });
    expect(retry.shared).toBe(false);
    expect(await retry.promise).toBe('ok');
    expect(calls).toBe(2);
  });

  it('turns a synchronous throw into a rejection', async () => {
    const sf = new Singleflight<string, string>();
    const { promise } = sf.do('u', () => {
      throw new Error('sync');
    });
    await expect(promise).rejects.toThrow('sync');
    expect(sf.size).toBe(0);
  });

  it('forget(): the next caller starts fresh and the old computation settling leaves the new entry', async () => {
    const sf = new Singleflight<number, string>();
    const stale = deferred<string>();
    const fresh = deferred<string>();
    const old = sf.do(1, () => stale.promise);

    sf.forget(1);
    expect(sf.size).toBe(0);
    const next = sf.do(1, () => fresh.promise);
    expect(next.shared).toBe(false);

    stale.resolve('stale list');
    expect(await old.promise).toBe('stale list');
    // The detached computation settled: the newer entry must still be there and still be joined.
    expect(sf.size).toBe(1);
    const joiner = sf.do(1, async () => 'should not run');
    expect(joiner.shared).toBe(true);
    expect(joiner.promise).toBe(next.promise);

    fresh.resolve('fresh list');
    expect(await joiner.promise).toBe('fresh list');
    expect(sf.size).toBe(0);
  });

  it('forget() on an old failing computation does not remove the new entry either', async () => {
    const sf = new Singleflight<number, string>();
    const stale = deferred<string>();
    const old = sf.do(1, () => stale.promise);
    sf.forget(1);
    const next = sf.do(1, () => new Promise<string>(() => {}));
    stale.reject(new Error('late failure'));
    await expect(old.promise).rejects.toThrow('late failure');
    expect(sf.do(1, async () => 'x').promise).toBe(next.promise);
  });
});
