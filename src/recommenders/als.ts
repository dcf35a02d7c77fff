/**
 * Implicit-feedback matrix factorisation (Hu, Koren & Volinsky 2008), solved by alternating least squares
 * with a few conjugate-gradient steps per row (Takács, Pilászy & Tikk 2011, as `implicit` does): every
 * watched title is a preference of 1 with confidence 1 + alpha, every other title a preference of 0 with
 * confidence 1. Only the item factors are kept: a user's factor is solved at request time from their
 * current history (foldIn), so a watch event changes the next list without retraining.
 *
 * Cost per iteration: (users + items) · (k² + 2 · steps · k · events per row) — linear in the events.
 */
import { mulberry32 } from '../domain/random.js';
import { distinctRows, itemCount, userCount, type Interactions } from './interactions.js';

export interface AlsParams {
  factors: number;
  /** L2 regularisation, per row. */
  reg: number;
  /** Confidence of a watch: 1 + alpha. */
  alpha: number;
  iterations: number;
  /** Conjugate-gradient steps per row and iteration (warm-started from the previous iteration). */
  cgSteps: number;
  seed: number;
}

export const DEFAULT_ALS: AlsParams = { factors: 64, reg: 0.1, alpha: 10, iterations: 12, cgSteps: 3, seed: 1 };

/** What serving needs: item factors and (YᵀY + reg·I), the user-independent part of every fold-in. */
export interface AlsModel {
  factors: number;
  alpha: number;
  /** Item i's factor is itemFactors[i·k .. (i+1)·k). */
  itemFactors: Float32Array;
  /** k × k, row-major: YᵀY + reg·I. */
  gram: Float64Array;
}

/** Float64 while training (no conversion per read), Float32 once served (half the memory). */
type Factors = Float32Array | Float64Array;


/** YᵀY + reg·I of n rows of k factors. */
export function gramOf(y: Factors, n: number, k: number, reg: number): Float64Array {
  const g = new Float64Array(k * k);
  for (let i = 0; i < n; i++) {
    const o = i * k;
    for (let a = 0; a < k; a++) {
      const ya = y[o + a]!;
      if (ya === 0) continue;
      const row = a * k;
      for (let b = a; b < k; b++) g[row + b]! += ya * y[o + b]!;
    }
  }
  for (let a = 0; a < k; a++) {
    g[a * k + a]! += reg;
    for (let b = a + 1; b < k; b++) g[b * k + a] = g[a * k + b]!;
  }
  return g;
}

/** Scratch vectors for one solver (reused across rows). */
class Scratch {
  readonly r: Float64Array;
  readonly p: Float64Array;
  readonly ap: Float64Array;
  readonly x: Float64Array;
  constructor(k: number) {
    this.r = new Float64Array(k);
    this.p = new Float64Array(k);
    this.ap = new Float64Array(k);
    this.x = new Float64Array(k);
  }
}

/**
 * out = (G + alpha · Σ_{i ∈ rows} y_i y_iᵀ) · v, with G already holding reg·I. `rows` are indices into y.
 */
function applyA(g: Float64Array, y: Factors, k: number, alpha: number, rows: ArrayLike<number>, from: number, to: number, v: Float64Array, out: Float64Array, weights?: ArrayLike<number>): void {
  for (let a = 0; a < k; a++) {
    let s = 0;
    const row = a * k;
    for (let b = 0; b < k; b++) s += g[row + b]! * v[b]!;
    out[a] = s;
  }
  for (let e = from; e < to; e++) {
    const o = rows[e]! * k;
    let d = 0;
    for (let a = 0; a < k; a++) d += y[o + a]! * v[a]!;
    d *= weights ? alpha * weights[e]! : alpha;
    for (let a = 0; a < k; a++) out[a]! += d * y[o + a]!;
  }
}

/**
 * Conjugate gradient on (G + alpha Σ y yᵀ) x = (1 + alpha) Σ y from the x in `s.x`; `steps` at most, stops
 * early once the residual is negligible. Leaves the solution in s.x.
 */
function solveRow(g: Float64Array, y: Factors, k: number, alpha: number, rows: ArrayLike<number>, from: number, to: number, steps: number, s: Scratch, weights?: ArrayLike<number>): void {
  const { r, p, ap, x } = s;
  applyA(g, y, k, alpha, rows, from, to, x, ap, weights);
  r.fill(0);
  for (let e = from; e < to; e++) {
    const o = rows[e]! * k;
    const c = 1 + (weights ? alpha * weights[e]! : alpha);
    for (let a = 0; a < k; a++) r[a]! += c * y[o + a]!;
  }
  let rs = 0;
  for (let a = 0; a < k; a++) {
    r[a] = r[a]! - ap[a]!;
    p[a] = r[a]!;
    rs += r[a]! * r[a]!;
  }
  for (let step = 0; step < steps && rs > 1e-12; step++) {
    applyA(g, y, k, alpha, rows, from, to, p, ap, weights);
    let pap = 0;
    for (let a = 0; a < k; a++) pap += p[a]! * ap[a]!;
    if (pap <= 0) break;
    const step_ = rs / pap;
    let next = 0;
    for (let a = 0; a < k; a++) {
      x[a]! += step_ * p[a]!;
      r[a]! -= step_ * ap[a]!;
      next += r[a]! * r[a]!;
    }
    const beta = next / rs;
    for (let a = 0; a < k; a++) p[a] = r[a]! + beta * p[a]!;
    rs = next;
  }
}

/** One half-iteration: every row of `x` re-solved against `y` (rows of `csr` index into y). */
function sweep(x: Factors, y: Factors, nY: number, csrStart: Int32Array, csrItems: Int32Array, p: AlsParams, s: Scratch): void {
  const k = p.factors;
  const g = gramOf(y, nY, k, p.reg);
  const rows = csrStart.length - 1;
  for (let u = 0; u < rows; u++) {
    const from = csrStart[u]!;
    const to = csrStart[u + 1]!;
    const o = u * k;
    if (from === to) {
      // Nothing watched (or watched by no one): the solution of (G + reg·I) x = 0.
      x.fill(0, o, o + k);
      continue;
    }
    for (let a = 0; a < k; a++) s.x[a] = x[o + a]!;
    solveRow(g, y, k, p.alpha, csrItems, from, to, p.cgSteps, s);
    for (let a = 0; a < k; a++) x[o + a] = s.x[a]!;
  }
}

export function trainAls(data: Interactions, params: Partial<AlsParams> = {}, onIteration?: (i: number) => void): AlsModel {
  const p = { ...DEFAULT_ALS, ...params };
  const k = p.factors;
  const users = userCount(data);
  const items = itemCount(data);
  const byUser = distinctRows(data);
  // Item → users rows from the distinct user rows.
  const itemStart = new Int32Array(items + 1);
  for (let e = 0; e < byUser.items.length; e++) itemStart[byUser.items[e]! + 1]! += 1;
  for (let i = 0; i < items; i++) itemStart[i + 1]! += itemStart[i]!;
  const itemUsers = new Int32Array(byUser.items.length);
  const fill = itemStart.slice(0, items);
  for (let u = 0; u < users; u++) {
    for (let e = byUser.start[u]!; e < byUser.start[u + 1]!; e++) itemUsers[fill[byUser.items[e]!]!++] = u;
  }
  const random = mulberry32(p.seed);
  const init = (n: number) => {
    const a = new Float64Array(n * k);
    for (let i = 0; i < a.length; i++) a[i] = (random() - 0.5) * 0.02;
    return a;
  };
  const userF = init(users);
  const itemF = init(items);
  const s = new Scratch(k);
  for (let it = 0; it < p.iterations; it++) {
    sweep(userF, itemF, items, byUser.start, byUser.items, p, s);
    sweep(itemF, userF, users, itemStart, itemUsers, p, s);
    onIteration?.(it + 1);
  }
  return { factors: k, alpha: p.alpha, itemFactors: Float32Array.from(itemF), gram: gramOf(itemF, items, k, p.reg) };
}

/**
 * A user's factor from their history (item rows of `itemFactors`), solved to convergence from zero: at
 * most k conjugate-gradient steps, each (k² + 2 · k · history). `weights` scale each event's confidence
 * (recent events weigh more).
 */
export function foldIn(model: Pick<AlsModel, 'factors' | 'alpha' | 'gram'>, itemFactors: Float32Array, history: ArrayLike<number>, out: Float64Array, weights?: ArrayLike<number>): Float64Array {
  const k = model.factors;
  const s = scratchFor(k);
  s.x.fill(0);
  solveRow(model.gram, itemFactors, k, model.alpha, history, 0, history.length, k, s, weights);
  out.set(s.x);
  return out;
}

let shared: Scratch | undefined;
function scratchFor(k: number): Scratch {
  if (!shared || shared.x.length !== k) shared = new Scratch(k);
  return shared;
}
