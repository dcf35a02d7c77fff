/**
 * A scoring task as it crosses to a scoring thread. postMessage clones objects one property at a time on
 * the sending thread: 10,000 candidate objects cost ~3 ms of the HTTP worker's event loop, more than
 * scoring them. Packed, the candidates are four typed arrays moved without copying (transfer list) plus
 * the few distinct genre names; titles stay behind, and the thread answers with each kept title's index
 * so the sender fills titles in from its own candidates.
 */
import type { Candidate, Recommendation, ScoringTask } from '../domain/types.js';

export interface PackedCandidates {
  ids: Float64Array;
  popularity: Float64Array;
  createdAtMs: Float64Array;
  genre: Uint16Array;
  genres: string[];
}

export interface PackedTask extends Omit<ScoringTask, 'signals'> {
  signals: Omit<ScoringTask['signals'], 'candidates'>;
  packed: PackedCandidates;
}

export function isPacked(task: ScoringTask | PackedTask): task is PackedTask {
  return (task as PackedTask).packed !== undefined;
}

/** The task to post and the buffers to transfer with it. */
export function packTask(task: ScoringTask): { task: PackedTask; transferList: ArrayBuffer[] } {
  const { candidates, ...signals } = task.signals;
  const n = candidates.length;
  const packed: PackedCandidates = {
    ids: new Float64Array(n),
    popularity: new Float64Array(n),
    createdAtMs: new Float64Array(n),
    genre: new Uint16Array(n),
    genres: [],
  };
  const genreIndex = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const c = candidates[i]!;
    packed.ids[i] = c.id;
    packed.popularity[i] = c.popularity;
    packed.createdAtMs[i] = c.createdAtMs;
    let g = genreIndex.get(c.genre);
    if (g === undefined) {
      g = packed.genres.length;
      genreIndex.set(c.genre, g);
      packed.genres.push(c.genre);
    }
    packed.genre[i] = g;
  }
  const transferList = [packed.ids.buffer, packed.popularity.buffer, packed.createdAtMs.buffer, packed.genre.buffer] as ArrayBuffer[];
  return { task: { ...task, signals, packed }, transferList };
}

/** A candidate as the thread rebuilds it: no title, its position among the packed candidates instead. */
export interface UnpackedCandidate extends Candidate {
  position: number;
}

/** The thread side: candidates without titles (the sender fills them in from each kept position). */
export function unpackCandidates(packed: PackedCandidates): UnpackedCandidate[] {
  const n = packed.ids.length;
  const out = new Array<UnpackedCandidate>(n);
  for (let i = 0; i < n; i++) {
    out[i] = {
      id: packed.ids[i]!,
      title: '',
      genre: packed.genres[packed.genre[i]!]!,
      popularity: packed.popularity[i]!,
      createdAtMs: packed.createdAtMs[i]!,
      position: i,
    };
  }
  return out;
}

/** The sender side: titles back from its own candidates. */
export function restoreTitles(items: Recommendation[], indexOf: Int32Array, candidates: Candidate[]): Recommendation[] {
  for (let i = 0; i < items.length; i++) items[i]!.title = candidates[indexOf[i]!]!.title;
  return items;
}
