/**
 * The catalog as columns in candidate order (popularity DESC, then id): what scoring reads. The numbers
 * live in SharedArrayBuffers, so a scoring thread reads the very memory the HTTP worker loaded — a task
 * carries only the user's own signals (genre preferences, watched positions), never the candidates.
 */
import type { Candidate } from './types.js';

export interface CatalogColumns {
  /** Titles in this snapshot; position i of every column is the same title. */
  size: number;
  ids: Float64Array;
  popularity: Float64Array;
  createdAtMs: Float64Array;
  /** Index into `genres` (kept on the loading thread: scoring needs only the index). */
  genre: Uint16Array;
}

/** Columns plus what only the loading thread needs: the title objects and the genre names. */
export interface CatalogSnapshot extends CatalogColumns {
  /** Titles by position (the same order as the columns). */
  items: Candidate[];
  genres: string[];
  /** Position of each content id. */
  positionOf: Map<number, number>;
  /** Index of each genre name in `genres`. */
  genreIndex: Map<string, number>;
}

/** Builds the snapshot in candidate order: popularity DESC, then id (already sorted input costs O(n)). */
export function catalogSnapshot(titles: readonly Candidate[]): CatalogSnapshot {
  const items = [...titles].sort((a, b) => b.popularity - a.popularity || a.id - b.id);
  const n = items.length;
  const ids = new Float64Array(new SharedArrayBuffer(8 * n));
  const popularity = new Float64Array(new SharedArrayBuffer(8 * n));
  const createdAtMs = new Float64Array(new SharedArrayBuffer(8 * n));
  const genre = new Uint16Array(new SharedArrayBuffer(2 * n));
  const genres: string[] = [];
  const genreIndex = new Map<string, number>();
  const positionOf = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const c = items[i]!;
    ids[i] = c.id;
    popularity[i] = c.popularity;
    createdAtMs[i] = c.createdAtMs;
    let g = genreIndex.get(c.genre);
    if (g === undefined) {
      g = genres.length;
      if (g > 0xffff) throw new Error('more than 65,536 genres');
      genreIndex.set(c.genre, g);
      genres.push(c.genre);
    }
    c.genre = genres[g]!; // one string per genre, not one per title (the driver makes a string per row)
    genre[i] = g;
    positionOf.set(c.id, i);
  }
  return { size: n, ids, popularity, createdAtMs, genre, items, genres, positionOf, genreIndex };
}

/** The columns alone: what crosses to a scoring thread (shared buffers, no copy). */
export function columnsOf(s: CatalogColumns): CatalogColumns {
  return { size: s.size, ids: s.ids, popularity: s.popularity, createdAtMs: s.createdAtMs, genre: s.genre };
}
