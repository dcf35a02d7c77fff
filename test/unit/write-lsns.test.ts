/** Read-your-writes bookkeeping (src/data/write-lsns.ts): what a replica must have replayed for a read. */
import { describe, expect, it } from 'vitest';
import { formatLsn, parseLsn, UNKNOWN_LSN, WriteLsns } from '../../src/data/write-lsns.js';

describe('LSN text', () => {
  it('parses pg_lsn text into a comparable integer and back', () => {
    expect(parseLsn('0/0')).toBe(0n);
    expect(parseLsn('16/B374D848')).toBe((0x16n << 32n) | 0xb374d848n);
    expect(formatLsn(parseLsn('16/B374D848')!)).toBe('16/B374D848');
    // Textual order is not numeric order: 0/A0000000 < 1/1.
    expect(parseLsn('0/A0000000')! < parseLsn('1/1')!).toBe(true);
  });

  it('rejects anything that is not a pg_lsn', () => {
    for (const bad of [undefined, null, '', '16', '16/', '/1', 'G/1', '1/123456789', '1/1 ']) expect(parseLsn(bad)).toBeUndefined();
  });
});

describe('WriteLsns', () => {
  it('asks for the highest LSN among the users read, and at least the floor', () => {
    const w = new WriteLsns();
    expect(w.required([1, 2])).toBe(0n);
    w.noteUser(1, 100n);
    w.noteUser(2, 300n);
    w.noteUser(2, 200n); // an older position of the same user never lowers it
    expect(w.required([1])).toBe(100n);
    expect(w.required([1, 2, 3])).toBe(300n);
    expect(w.required()).toBe(0n); // shared data (catalog, pages) needs only the floor
    w.noteAll(150n);
    expect(w.required([1])).toBe(150n);
    expect(w.required()).toBe(150n);
  });

  it('a write of unknown position sends the user to the primary until a primary position read after it', () => {
    const w = new WriteLsns();
    w.noteUser(7, undefined, 1000);
    expect(w.required([7])).toBe(UNKNOWN_LSN);
    w.settle(0n, { lsn: 500n, startedAt: 1000 }); // read no later than the write: proves nothing
    expect(w.required([7])).toBe(UNKNOWN_LSN);
    w.settle(0n, { lsn: 600n, startedAt: 1001 });
    expect(w.required([7])).toBe(600n);
  });

  it('a pending floor keeps a known LSN noted meanwhile', () => {
    const w = new WriteLsns();
    w.noteAll(undefined, 1000);
    w.noteAll(900n, 1002); // a later relay message with a known position
    expect(w.required()).toBe(UNKNOWN_LSN);
    w.settle(0n, { lsn: 800n, startedAt: 1001 });
    expect(w.required()).toBe(900n);
  });

  it('forgetting is never unsafe: the evicted user raises the floor', () => {
    const w = new WriteLsns(2);
    w.noteUser(1, 100n);
    w.noteUser(2, 200n);
    w.noteUser(3, 50n);
    expect(w.size).toBe(2);
    expect(w.required([1])).toBe(100n); // user 1 evicted: the floor is its LSN
    expect(w.required([3])).toBe(100n);
    expect(w.required([2])).toBe(200n);
  });

  it('what every replica has replayed becomes the floor and prunes the users at or below it', () => {
    const w = new WriteLsns();
    w.noteUser(1, 100n);
    w.noteUser(2, 200n);
    w.noteUser(3, 300n);
    w.settle(200n);
    expect(w.size).toBe(1);
    expect(w.required([1, 2])).toBe(200n);
    expect(w.required([3])).toBe(300n);
  });
});
