/**
 * Offline evaluation (docs/quality.md): the temporal hold-out, every model trained on the training part
 * only, each evaluated user's list ranked through the serving path (offline.ts) over the full catalog the
 * user may be shown (availability, hidden titles and dismissals apply), scored against their held-out
 * events. Popularity — the baseline's ranking and the novelty ranks — is counted on training events too.
 */
import type { Audience, Candidate } from '../domain/types.js';
import { itemCounts, type Interactions } from './interactions.js';
import { MetricAccumulator, type MetricRow } from './metrics.js';
import { rankOffline, signalsFromRows, UNRESTRICTED } from './offline.js';
import { DEFAULT_TEST_FRACTION, temporalSplit } from './split.js';
import { MODEL_NAMES, servedKind, tablesFor, type ModelName } from './tables.js';
import { popularityCatalog, sampleUsers, trainModel } from './training.js';
import type { TrainedModel } from './trained-model.js';

export interface EvaluationInput {
  events: Interactions;
  titles: readonly Candidate[];
  /** Audience and dismissals per user id (absent: unrestricted, none). */
  users: ReadonlyMap<number, { audience: Audience; dismissed: number[] }>;
}

export interface EvaluationOptions {
  fraction?: number;
  cutMs?: number;
  /** Evaluated users sampled at most (default DEFAULT_EVALUATED_USERS). */
  users?: number;
  /** The seed's formula's candidate pool, as served (CANDIDATE_POOL). */
  candidatePool: number;
  /** The model served by default (MODEL). */
  defaultModel: ModelName;
  seed?: number;
  onProgress?: (message: string) => void;
  /** Trains the learned models (tests swap in a model trained on other data to show a leak would show). */
  train?: (train: Interactions) => TrainedModel;
}

/** At ~0.2 per-user NDCG deviation, 5,000 users give a 95 % interval of about ±0.006. */
export const DEFAULT_EVALUATED_USERS = 5000;

export interface ModelResult extends MetricRow {
  model: string;
  /** What it served: `auto` names its validated choice. */
  serves: string;
  /** Half-width of the 95 % confidence interval of ndcg_at_10. */
  ndcg_ci95: number;
}

export interface EvaluationReport {
  protocol: {
    split: 'per-user-fraction' | 'global-time-cut';
    fraction?: number;
    cut?: string;
    cutoff: 10;
    ranking: 'full';
    candidate_pool: number;
    train_events: number;
    test_events: number;
    users_evaluated_of: number;
    seed: number;
  };
  users: number;
  models: ModelResult[];
  default: ModelName;
  /** What `auto` chose on its own validation split, and the candidates it tried. */
  auto: { choice: TrainedModel['choice']; validation: TrainedModel['validation']; train_ms: number };
}

export function evaluate(input: EvaluationInput, opts: EvaluationOptions): EvaluationReport {
  const progress = opts.onProgress ?? (() => {});
  const seed = opts.seed ?? 1;
  const split = temporalSplit(input.events, { ...(opts.fraction !== undefined ? { fraction: opts.fraction } : {}), ...(opts.cutMs !== undefined ? { cutMs: opts.cutMs } : {}) });
  const { train } = split;
  const catalog = popularityCatalog(train, input.titles);
  progress(`split: ${train.items.length} training events, ${split.evaluated.length} users with held-out events`);
  const trained = (opts.train ?? ((t) => trainModel(t, { onProgress: progress, seed })))(train);

  const evaluated = sampleUsers(split.evaluated, opts.users ?? DEFAULT_EVALUATED_USERS, seed);
  const counts = itemCounts(train);
  const rankOf = popularityRanks(train.itemIds, counts);
  let visible = 0;
  for (let p = 0; p < catalog.size; p++) if (catalog.hidden[p] === 0) visible += 1;
  let nowMs = 0;
  for (const t of train.times) if (t > nowMs) nowMs = t;
  let testEvents = 0;
  for (const t of split.test) testEvents += t.length;

  const models: ModelResult[] = [];
  const order: ModelName[] = [...MODEL_NAMES.filter((n) => n !== 'auto'), 'auto'];
  for (const name of order) {
    const tables = tablesFor(name, trained, catalog);
    const acc = new MetricAccumulator(visible, (id) => rankOf.get(id) ?? rankOf.size + 1);
    for (const u of evaluated) {
      const extra = input.users.get(train.userIds[u]!);
      const signals = signalsFromRows(train, u, catalog, extra ?? { audience: UNRESTRICTED });
      const ids = rankOffline(signals, tables, { keep: 10, candidatePool: opts.candidatePool, nowMs });
      acc.add(ids, new Set(Array.from(split.test[u]!, (i) => train.itemIds[i]!)));
    }
    const kind = servedKind(name, trained);
    models.push({ model: name, serves: name === 'auto' ? describe(trained) : kind, ...acc.result(), ndcg_ci95: acc.ndcgHalfWidth() });
    progress(`${name}: NDCG@10 ${acc.result().ndcg_at_10.toFixed(4)} over ${acc.count} users`);
  }
  return {
    protocol: {
      split: opts.cutMs === undefined ? 'per-user-fraction' : 'global-time-cut',
      ...(opts.cutMs === undefined ? { fraction: opts.fraction ?? DEFAULT_TEST_FRACTION } : { cut: new Date(opts.cutMs).toISOString() }),
      cutoff: 10,
      ranking: 'full',
      candidate_pool: opts.candidatePool,
      train_events: train.items.length,
      test_events: testEvents,
      users_evaluated_of: split.evaluated.length,
      seed,
    },
    users: evaluated.length,
    models,
    default: opts.defaultModel,
    auto: { choice: trained.choice, validation: trained.validation, train_ms: trained.stats.trainMs },
  };
}

/** `blend cf=0.5 als=0.5 pop=0`, `item-cf decay=0.9`, … */
export function describe(model: TrainedModel): string {
  const c = model.choice;
  if (c.kind === 'blend') return `blend cf=${c.weights.cf} als=${c.weights.als} pop=${c.weights.pop}`;
  if (c.kind === 'item-cf') return `item-cf decay=${c.cfDecay}`;
  if (c.kind === 'als') return `als decay=${c.alsDecay}`;
  return c.kind;
}

/** Content id → rank by training watch count (1 = most watched; ties by content id). */
function popularityRanks(itemIds: Float64Array, counts: Float64Array): Map<number, number> {
  const order = Array.from(itemIds.keys()).sort((a, b) => counts[b]! - counts[a]! || itemIds[a]! - itemIds[b]!);
  const ranks = new Map<number, number>();
  order.forEach((i, r) => ranks.set(itemIds[i]!, r + 1));
  return ranks;
}
