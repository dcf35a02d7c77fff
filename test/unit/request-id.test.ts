import { describe, expect, it } from 'vitest';
import { RequestIds } from '../../src/http/request-id.js';

const text = (bytes: Uint8Array) => Buffer.from(bytes).toString('latin1');

describe('request ids', () => {
  it.each([
    ['abc-123', true],
    ['A.b_c-9', true],
    ['x'.repeat(128), true],
    ['x'.repeat(129), false],
    ['', false],
    ['has space', false],
    ['semi;colon', false],
    ['ünïcode', false],
    ['line\nbreak', false],
  ])('accepts the incoming id %j: %s', (incoming, accepted) => {
    expect(RequestIds.accepts(incoming)).toBe(accepted);
  });

  it('generates prefix + a base-36 counter, as text and as the same bytes', () => {
    const ids = new RequestIds('p-');
    const seqs = Array.from({ length: 40 }, () => ids.next());
    expect(seqs.slice(0, 3)).toEqual([1, 2, 3]);
    expect(seqs.map((s) => ids.text(s)).slice(0, 3)).toEqual(['p-1', 'p-2', 'p-3']);
    expect(ids.text(36)).toBe('p-10');
    for (const seq of [1, 9, 10, 35, 36, 1295, 1296, 123_456_789, Number.MAX_SAFE_INTEGER]) {
      expect(text(ids.bytes(seq))).toBe(ids.text(seq));
    }
  });

  it('reuses one buffer for the bytes (copy them out before the next call)', () => {
    const ids = new RequestIds('p-');
    const first = ids.bytes(5);
    expect(text(first)).toBe('p-5');
    expect(ids.bytes(6)).toBe(first); // same view object: nothing allocated per request
    expect(text(first)).toBe('p-6');
  });

  it('tags each worker with a random start-up prefix and its index', () => {
    const ids = RequestIds.forWorker(3);
    expect(ids.text(ids.next())).toMatch(/^[0-9a-f]{8}-3-1$/);
    expect(RequestIds.forWorker(3).text(1)).not.toBe(ids.text(1));
  });
});
