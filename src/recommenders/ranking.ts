/**
 * One user's ranking under the task's model — the step every list takes, served or evaluated: the seed's
 * formula, popularity, item-to-item neighbours, the latent model folded in from the current history, or a
 * blend of them; then the best `keep` titles the user may be shown (not watched or dismissed, available to
 * their audience, of the asked genre), each with why it is there.
 *
 * Learned scores are over the whole catalog (full ranking): dense arrays of the catalog's size, reused by
 * every task of this thread. Each component is divided by its best score for the user, so a blend's weights
 * mean the same for every user; a title no component scores keeps 0 and ties go to the catalog order
 * (popularity), which is how the neighbour model fills a short list with popular titles.
 */
import { REASON, type ModelTables } from '../domain/model-tables.js';
import type { Ranking, ScoringTask } from '../domain/types.js';
import { HISTORY_WINDOW } from '../domain/constants.js';
import { foldIn } from './als.js';
import { markWatched, popularityRanking, rankCatalog, round3, unmark } from './heuristic.js';
import { TopPositions } from './top-k.js';

/** History events that explain an item at most (the latent model compares each with the item). */
const EXPLAIN_HISTORY = 50;
const BECAUSE_MAX = 3;

let total = new Float64Array(0);
let cfScore = new Float64Array(0);
let alsScore = new Float64Array(0);
let slotOf = new Int32Array(0);
let userFactor = new Float64Array(0);
const top = new TopPositions();

function ensure(size: number): void {
  if (total.length >= size) return;
  total = new Float64Array(size);
  cfScore = new Float64Array(size);
  alsScore = new Float64Array(size);
  slotOf = new Int32Array(size).fill(-1);
}

export function rankTask(task: ScoringTask): Ranking {
  const m = task.model;
  if (!m || m.kind === 'heuristic') return explainHeuristic(task, rankCatalog(task));
  const history = task.history ?? [];
  if (m.kind === 'popularity' || history.length < m.minHistory || history.length === 0) {
    return labelled(popularityRanking(task), REASON.popular);
  }
  return rankLearned(task, m, history);
}

function rankLearned(task: ScoringTask, m: ModelTables, history: readonly number[]): Ranking {
  const { catalog, watched, available } = task;
  const size = catalog.size;
  const keep = Math.max(0, Math.floor(task.keep));
  ensure(size);
  const wCf = m.cf ? (m.kind === 'item-cf' ? 1 : m.kind === 'blend' ? m.weights.cf : 0) : 0;
  const wAls = m.als ? (m.kind === 'als' ? 1 : m.kind === 'blend' ? m.weights.als : 0) : 0;
  const wPop = m.kind === 'blend' ? m.weights.pop : 0;
  const cf = wCf > 0 ? cfScores(m, history, size) : 0;
  const als = wAls > 0 ? alsScores(m, history, size) : 0;
  const cfScale = cf > 0 ? wCf / cf : 0;
  const alsScale = als > 0 ? wAls / als : 0;
  const popScale = size > 0 && catalog.popularity[0]! > 0 ? wPop / catalog.popularity[0]! : 0;
  for (let i = 0; i < size; i++) {
    total[i] = (cfScale > 0 ? cfScale * cfScore[i]! : 0) + (alsScale > 0 ? alsScale * alsScore[i]! : 0) + popScale * catalog.popularity[i]!;
  }
  const only = task.genre ?? -1;
  const best = top.reset(keep);
  const seen = markWatched(size, watched);
  try {
    for (let i = 0; i < size; i++) {
      if (seen[i] === 1) continue;
      if (available !== undefined && available[i] === 0) continue;
      if (only >= 0 && catalog.genre[i] !== only) continue;
      best.offer(i, total[i]!);
    }
  } finally {
    unmark(watched);
  }
  const ranked = best.drain();
  const reasons = new Array<number>(ranked.positions.length);
  const because: number[][] = new Array(ranked.positions.length);
  const cfBecause = cfScale > 0 ? explainNeighbours(m, history, ranked.positions) : undefined;
  const alsBecause = alsScale > 0 ? explainLatent(m, history, ranked.positions) : undefined;
  for (let s = 0; s < ranked.positions.length; s++) {
    const p = ranked.positions[s]!;
    const fromCf = cfScale * cfScore[p]!;
    const fromAls = alsScale * alsScore[p]!;
    const fromPop = popScale * catalog.popularity[p]!;
    if (fromCf > 0 && fromCf >= fromAls && fromCf >= fromPop) {
      reasons[s] = REASON.similar;
      because[s] = cfBecause![s]!;
    } else if (fromAls > 0 && fromAls >= fromPop) {
      reasons[s] = REASON.latent;
      because[s] = alsBecause![s]!;
    } else {
      reasons[s] = REASON.popular;
      because[s] = [];
    }
    ranked.scores[s] = round3(ranked.scores[s]!);
  }
  return { ...ranked, reasons, because };
}

/** Sum over the history of decay^r · similarity into cfScore; returns the best score. */
function cfScores(m: ModelTables, history: readonly number[], size: number): number {
  const { start, pos, sim } = m.cf!;
  cfScore.fill(0, 0, size);
  let w = 1;
  for (let r = 0; r < history.length; r++, w *= m.cfDecay) {
    const h = history[r]!;
    for (let e = start[h]!, end = start[h + 1]!; e < end; e++) cfScore[pos[e]!]! += w * sim[e]!;
  }
  let max = 0;
  for (let i = 0; i < size; i++) if (cfScore[i]! > max) max = cfScore[i]!;
  return max;
}

/** The user's factor from the history (recent events weigh more), then every title's score; the best. */
function alsScores(m: ModelTables, history: readonly number[], size: number): number {
  const { k, factors } = m.als!;
  if (userFactor.length !== k) userFactor = new Float64Array(k);
  const weights = new Array<number>(history.length);
  for (let r = 0, w = 1; r < history.length; r++, w *= m.alsDecay) weights[r] = w;
  foldIn({ factors: k, alpha: m.als!.alpha, gram: m.als!.gram }, factors, history, userFactor, weights);
  const u = userFactor;
  let max = 0;
  for (let i = 0, o = 0; i < size; i++, o += k) {
    let d = 0;
    for (let a = 0; a < k; a++) d += factors[o + a]! * u[a]!;
    alsScore[i] = d;
    if (d > max) max = d;
  }
  return max;
}

/** Per kept item, the history events whose neighbour lists gave it the most, best first. */
function explainNeighbours(m: ModelTables, history: readonly number[], kept: readonly number[]): number[][] {
  const { start, pos, sim } = m.cf!;
  const best = new Best(kept.length);
  for (let s = 0; s < kept.length; s++) slotOf[kept[s]!] = s;
  try {
    let w = 1;
    for (let r = 0; r < history.length; r++, w *= m.cfDecay) {
      const h = history[r]!;
      for (let e = start[h]!, end = start[h + 1]!; e < end; e++) {
        const s = slotOf[pos[e]!]!;
        if (s >= 0) best.offer(s, h, w * sim[e]!);
      }
    }
  } finally {
    for (const p of kept) slotOf[p] = -1;
  }
  return best.lists();
}

/** Per kept item, the recent history events closest to it in the latent space (decay-weighted dot product). */
function explainLatent(m: ModelTables, history: readonly number[], kept: readonly number[]): number[][] {
  const { k, factors } = m.als!;
  const best = new Best(kept.length);
  const n = Math.min(history.length, EXPLAIN_HISTORY);
  for (let s = 0; s < kept.length; s++) {
    const o = kept[s]! * k;
    let w = 1;
    for (let r = 0; r < n; r++, w *= m.alsDecay) {
      const h = history[r]! * k;
      let d = 0;
      for (let a = 0; a < k; a++) d += factors[o + a]! * factors[h + a]!;
      if (d > 0) best.offer(s, history[r]!, w * d);
    }
  }
  return best.lists();
}

/** The seed's formula: an item of a genre the user watches is "popular in genre", because of those events. */
function explainHeuristic(task: ScoringTask, ranking: Ranking): Ranking {
  const history = (task.history ?? []).slice(0, HISTORY_WINDOW);
  const genre = task.catalog.genre;
  // Per genre, its newest distinct titles: a title watched twice is one reason, not two.
  const newestOf = new Map<number, number[]>();
  for (const h of history) {
    let same = newestOf.get(genre[h]!);
    if (!same) newestOf.set(genre[h]!, (same = []));
    if (same.length < BECAUSE_MAX && !same.includes(h)) same.push(h);
  }
  const reasons: number[] = [];
  const because: number[][] = [];
  for (const p of ranking.positions) {
    const same = newestOf.get(genre[p]!) ?? [];
    reasons.push(same.length > 0 ? REASON.genre : REASON.popular);
    because.push(same);
  }
  return { ...ranking, reasons, because };
}

function labelled(ranking: Ranking, reason: number): Ranking {
  return { ...ranking, reasons: ranking.positions.map(() => reason), because: ranking.positions.map(() => []) };
}

/** The best BECAUSE_MAX (history position, contribution) per slot; a position offered twice keeps its best. */
class Best {
  private readonly pos: Int32Array;
  private readonly val: Float64Array;
  constructor(slots: number) {
    this.pos = new Int32Array(slots * BECAUSE_MAX).fill(-1);
    this.val = new Float64Array(slots * BECAUSE_MAX).fill(-Infinity);
  }

  offer(slot: number, position: number, value: number): void {
    const o = slot * BECAUSE_MAX;
    for (let q = 0; q < BECAUSE_MAX; q++) {
      if (this.pos[o + q] === position) {
        if (value <= this.val[o + q]!) return;
        // Remove it, then insert with the better value below.
        for (let t = q; t < BECAUSE_MAX - 1; t++) {
          this.pos[o + t] = this.pos[o + t + 1]!;
          this.val[o + t] = this.val[o + t + 1]!;
        }
        this.pos[o + BECAUSE_MAX - 1] = -1;
        this.val[o + BECAUSE_MAX - 1] = -Infinity;
        break;
      }
    }
    if (value <= this.val[o + BECAUSE_MAX - 1]!) return;
    let q = BECAUSE_MAX - 1;
    while (q > 0 && value > this.val[o + q - 1]!) {
      this.pos[o + q] = this.pos[o + q - 1]!;
      this.val[o + q] = this.val[o + q - 1]!;
      q -= 1;
    }
    this.pos[o + q] = position;
    this.val[o + q] = value;
  }

  lists(): number[][] {
    const out: number[][] = [];
    for (let o = 0; o < this.pos.length; o += BECAUSE_MAX) {
      const list: number[] = [];
      for (let q = 0; q < BECAUSE_MAX && this.pos[o + q]! >= 0; q++) list.push(this.pos[o + q]!);
      out.push(list);
    }
    return out;
  }
}
