/**
 * Training: the neighbour lists and the latent factors over every watch event, with the configuration
 * `auto` serves chosen on a validation split cut from the training data itself (per user the last 10 % of
 * their events) — never on anything an evaluation holds out, and refitted on every data set, so nothing is
 * tuned to one data set. Candidates: popularity, the neighbours at a few recency decays, a small grid of
 * latent models and decays, and blends of the best of each; the best validation NDCG@10 wins. The winner's
 * components are then trained again on all the events.
 */
import { catalogSnapshot, type CatalogSnapshot } from '../domain/catalog-columns.js';
import type { Candidate } from '../domain/types.js';
import { DEFAULT_ALS, trainAls, type AlsModel, type AlsParams } from './als.js';
import { itemCount, itemCounts, sampleUsersUpTo, type Interactions } from './interactions.js';
import { trainItemCf, type Neighbours } from './item-cf.js';
import { MetricAccumulator } from './metrics.js';
import { rankOffline, signalsFromRows } from './offline.js';
import { temporalSplit } from './split.js';
import { tablesFor } from './tables.js';
import type { ModelChoice, TrainedModel, ValidationRow } from './trained-model.js';

export interface TrainingOptions {
  /** Validation users sampled at most (default 1000): the choice's cost is linear in it. */
  validationUsers?: number;
  /** Events the candidate models are trained on at most during the search (default SEARCH_EVENTS). */
  searchEvents?: number;
  /** Latent-model configurations tried (default ALS_GRID). */
  alsGrid?: Partial<AlsParams>[];
  seed?: number;
  /** Progress lines for a terminal or a log. */
  onProgress?: (message: string) => void;
}

export const ALS_GRID: Partial<AlsParams>[] = [
  { factors: 32, reg: 0.1, alpha: 5 },
  { factors: 64, reg: 0.1, alpha: 5 },
  { factors: 32, reg: 0.1, alpha: 2 },
  { factors: 32, reg: 1, alpha: 20 },
];
const DECAYS = [1, 0.95, 0.9, 0.8];
/** Above this many training events, the configuration search trains on a user sample of this size: the
 * comparison between candidates holds on a sample, and the search then costs the same at any scale. */
export const SEARCH_EVENTS = 500_000;
/** Blend weights tried (neighbours, latent, popularity). */
const BLENDS: [number, number, number][] = [
  [0.5, 0.5, 0], [0.3, 0.7, 0], [0.7, 0.3, 0], [0.2, 0.8, 0], [0.8, 0.2, 0], [0.45, 0.45, 0.1], [0.4, 0.4, 0.2],
];
/** Users with no history get popularity: any event is enough for the learned models to start from. */
const MIN_HISTORY = 1;

export function trainModel(data: Interactions, opts: TrainingOptions = {}): TrainedModel {
  const started = performance.now();
  const progress = opts.onProgress ?? (() => {});
  const split = temporalSplit(data);
  const fit = split.train;
  const users = sampleUsers(split.evaluated, opts.validationUsers ?? 1000, opts.seed ?? 1);
  const catalog = popularityCatalog(fit);
  const heldOut = users.map((u) => new Set(Array.from(split.test[u]!, (i) => data.itemIds[i]!)));
  // The search trains on at most SEARCH_EVENTS of the fit events (a user sample): the comparison between
  // candidates holds on a sample, and it keeps the search's cost flat however large the data.
  const search = sampleUsersUpTo(fit, opts.searchEvents ?? SEARCH_EVENTS, opts.seed ?? 1);
  const cfFit = trainItemCf(search);
  progress(`validation: ${users.length} users, ${itemCount(fit)} titles, models searched on ${search.items.length} of ${fit.items.length} training events`);

  const rows: ValidationRow[] = [];
  const score = (name: string, choice: ModelChoice, cf: Neighbours, als: AlsModel | undefined): number => {
    const model = modelOf(data.itemIds, cf, als ?? EMPTY_ALS, choice);
    const tables = tablesFor('auto', model, catalog);
    const acc = new MetricAccumulator(catalog.size, () => 0);
    users.forEach((u, n) => {
      const ids = rankOffline(signalsFromRows(fit, u, catalog), tables, { keep: 10, candidatePool: 0, nowMs: 0 });
      acc.add(ids, heldOut[n]!);
    });
    const ndcg = acc.result().ndcg_at_10;
    rows.push({ model: name, ndcg_at_10: ndcg });
    return ndcg;
  };
  const choice = (kind: ModelChoice['kind'], cfDecay = 1, alsDecay = 1, weights = { cf: 0, als: 0, pop: 0 }): ModelChoice =>
    ({ kind, minHistory: MIN_HISTORY, cfDecay, alsDecay, weights });

  let best = { ndcg: score('popularity', choice('popularity'), cfFit, undefined), choice: choice('popularity') };
  const consider = (ndcg: number, c: ModelChoice): void => {
    if (ndcg > best.ndcg) best = { ndcg, choice: c };
  };

  let cfDecay = 1;
  let cfBest = -1;
  for (const d of DECAYS) {
    const ndcg = score(`item-cf decay=${d}`, choice('item-cf', d), cfFit, undefined);
    if (ndcg > cfBest) [cfBest, cfDecay] = [ndcg, d];
    consider(ndcg, choice('item-cf', d));
  }
  progress(`item-cf: best decay ${cfDecay} (NDCG@10 ${cfBest.toFixed(4)})`);

  let alsBest = { ndcg: -1, params: { ...DEFAULT_ALS }, decay: 1, model: EMPTY_ALS };
  for (const grid of opts.alsGrid ?? ALS_GRID) {
    const params = { ...DEFAULT_ALS, ...grid };
    const t0 = performance.now();
    const model = trainAls(search, params);
    const name = `als k=${params.factors} reg=${params.reg} alpha=${params.alpha}`;
    for (const d of DECAYS) {
      const ndcg = score(`${name} decay=${d}`, choice('als', 1, d), cfFit, model);
      if (ndcg > alsBest.ndcg) alsBest = { ndcg, params, decay: d, model };
      consider(ndcg, choice('als', 1, d));
    }
    progress(`${name}: trained in ${Math.round(performance.now() - t0)} ms`);
  }
  progress(`als: best k=${alsBest.params.factors} reg=${alsBest.params.reg} alpha=${alsBest.params.alpha} decay ${alsBest.decay} (NDCG@10 ${alsBest.ndcg.toFixed(4)})`);

  for (const [cf, als, pop] of BLENDS) {
    const c = choice('blend', cfDecay, alsBest.decay, { cf, als, pop });
    consider(score(`blend cf=${cf} als=${als} pop=${pop}`, c, cfFit, alsBest.model), c);
  }
  rows.sort((a, b) => b.ndcg_at_10 - a.ndcg_at_10);
  progress(`chosen: ${rows[0]!.model} (validation NDCG@10 ${best.ndcg.toFixed(4)}); training on all ${data.items.length} events`);

  // Both components again, on every event: MODEL=item-cf and MODEL=als serve them whatever auto chose.
  const cf = trainItemCf(data);
  const als = trainAls(data, alsBest.params);
  const model = modelOf(data.itemIds, cf, als, best.choice);
  model.tuned = { cfDecay, alsDecay: alsBest.decay };
  model.validation = rows;
  model.stats = {
    users: data.userIds.length,
    items: data.itemIds.length,
    events: data.items.length,
    validationUsers: users.length,
    als: alsBest.params,
    trainMs: Math.round(performance.now() - started),
  };
  return model;
}

const EMPTY_ALS: AlsModel = { factors: 1, alpha: 0, itemFactors: new Float32Array(0), gram: new Float64Array(1) };

function modelOf(itemIds: Float64Array, cf: Neighbours, als: AlsModel, choice: ModelChoice): TrainedModel {
  return {
    itemIds,
    cf,
    als,
    choice,
    tuned: { cfDecay: choice.cfDecay, alsDecay: choice.alsDecay },
    validation: [],
    stats: { users: 0, items: itemIds.length, events: 0, validationUsers: 0, als: DEFAULT_ALS, trainMs: 0 },
  };
}

/** A catalog of the rows' items in training-popularity order (validation knows no titles or audiences). */
export function popularityCatalog(rows: Interactions, titles?: readonly Candidate[]): CatalogSnapshot {
  const counts = itemCounts(rows);
  let max = 0;
  for (const c of counts) if (c > max) max = c;
  const byId = new Map<number, number>();
  rows.itemIds.forEach((id, i) => byId.set(id, i));
  const base: Candidate[] =
    titles?.map((t) => ({ ...t })) ??
    Array.from(rows.itemIds, (id) => ({ id, title: '', genre: '', popularity: 0, createdAtMs: 0 }));
  for (const t of base) {
    const i = byId.get(t.id);
    t.popularity = i === undefined || max === 0 ? 0 : counts[i]! / max;
  }
  return catalogSnapshot(base);
}

/** Up to `n` of `from`, a fixed pseudo-random choice (all of them when there are fewer). */
export function sampleUsers(from: Int32Array, n: number, seed: number): number[] {
  const all = Array.from(from);
  if (all.length <= n) return all;
  let a = seed >>> 0;
  for (let i = all.length - 1; i > 0; i--) {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
    const j = a % (i + 1);
    [all[i], all[j]] = [all[j]!, all[i]!];
  }
  return all.slice(0, n).sort((x, y) => x - y);
}
