/**
 * One computation per key at a time: concurrent callers join the in-flight promise. Results and errors
 * are shared only while in flight, never cached — the entry goes away as soon as the promise settles.
 */
export class Singleflight<K, V> {
  readonly #inflight = new Map<K, Promise<V>>();

  do(key: K, fn: () => Promise<V>): { promise: Promise<V>; shared: boolean } {
    const existing = this.#inflight.get(key);
    if (existing !== undefined) return { promise: existing, shared: true };

    // async wrapper: a synchronous throw in fn becomes a shared rejection, not an exception here.
    const promise = (async () => fn())();
    this.#inflight.set(key, promise);
    // Identity check: after forget(), a newer computation may own the key and must survive this one.
    const release = (): void => {
      if (this.#inflight.get(key) === promise) this.#inflight.delete(key);
    };
    promise.then(release, release);
    return { promise, shared: false };
  }

  /** Detaches the in-flight computation (its data is stale): the next caller starts a fresh one. */
  forget(key: K): void {
    this.#inflight.delete(key);
  }

  /** Detaches every in-flight computation. */
  forgetAll(): void {
    this.#inflight.clear();
  }

  /** Whether a computation for `key` is in flight (a caller would join it). */
  has(key: K): boolean {
    return this.#inflight.has(key);
  }

  get size(): number {
    return this.#inflight.size;
  }
}
