/** autocannon runs: one measured load, its summary in the bench's units. */
import autocannon from 'autocannon';

/** Response times, ms as floats: autocannon's own histogram keeps whole milliseconds only. */
class Latencies {
  values = new Float64Array(1 << 16);
  n = 0;
  add(ms) {
    if (this.n === this.values.length) {
      const grown = new Float64Array(this.values.length * 2);
      grown.set(this.values);
      this.values = grown;
    }
    this.values[this.n++] = ms;
  }
  percentiles() {
    const sorted = this.values.subarray(0, this.n).sort();
    const at = (q) => (this.n === 0 ? NaN : sorted[Math.min(this.n - 1, Math.floor(q * this.n))]);
    return { p50: at(0.5), p99: at(0.99), max: this.n ? sorted[this.n - 1] : NaN };
  }
}

/**
 * `requests`: autocannon request objects (each connection cycles through them); `setupRequest` on one of
 * them can rewrite it per request (distinct users); `overallRate` caps the offered load (req/s). Resolves { rps, p50, p99, max (ms), non2xx, errors,
 * total }; latencies are every response's, at microsecond resolution.
 */
export function load({ url, connections, duration, amount, requests, timeout = 10, overallRate }) {
  return new Promise((resolve, reject) => {
    const latencies = new Latencies();
    const instance = autocannon(
      {
        url,
        connections,
        ...(amount ? { amount } : { duration }),
        requests,
        timeout,
        pipelining: 1,
        ...(overallRate ? { overallRate } : {}),
      },
      (err, result) => {
        if (err) return reject(err);
        const total = result['1xx'] + result['2xx'] + result['3xx'] + result['4xx'] + result['5xx'];
        const seconds = result.duration;
        resolve({
          rps: total / seconds,
          ...latencies.percentiles(),
          non2xx: result.non2xx,
          errors: result.errors + result.timeouts,
          total,
          seconds,
        });
      },
    );
    instance.on('error', () => {});
    instance.on('response', (_client, _status, _bytes, ms) => latencies.add(ms));
  });
}

/** Paths cycled through: the seed's single-user mix, users × limits. */
export function userMix(users, limits) {
  const out = [];
  for (const u of users) for (const l of limits) out.push({ method: 'GET', path: `/users/${u}/recommendations?limit=${l}` });
  return out;
}

/** One request object that asks for a different user every time (ids from `first` upward, wrapping). */
export function distinctUsers(first, count, limit = 10) {
  let next = 0;
  return [
    {
      method: 'GET',
      path: `/users/${first}/recommendations?limit=${limit}`,
      setupRequest: (req) => {
        const user = first + (next++ % count);
        return { ...req, path: `/users/${user}/recommendations?limit=${limit}` };
      },
    },
  ];
}
