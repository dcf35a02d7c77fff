/**
 * A trained model laid out for one catalog snapshot: its item-index arrays mapped to catalog positions, in
 * shared memory (domain/model-tables.ts). Built once per (model, snapshot) pair, never per request.
 */
import type { ModelKind, ModelTables } from '../domain/model-tables.js';
import type { TrainedModel } from './trained-model.js';

/** What MODEL may name: a model, or `auto` (the trained model's validated choice). */
export const MODEL_NAMES = ['auto', 'heuristic', 'popularity', 'item-cf', 'als'] as const;
export type ModelName = (typeof MODEL_NAMES)[number];

export interface PositionIndex {
  size: number;
  positionOf: ReadonlyMap<number, number>;
}

/** The kind `name` serves with `model` (a learned name without a trained model serves the seed's formula). */
export function servedKind(name: ModelName, model: TrainedModel | undefined): ModelKind {
  if (name === 'heuristic' || name === 'popularity') return name;
  if (!model) return 'heuristic';
  return name === 'auto' ? model.choice.kind : name;
}

export function tablesFor(name: ModelName, model: TrainedModel | undefined, catalog: PositionIndex): ModelTables {
  const kind = servedKind(name, model);
  const base: ModelTables = {
    kind,
    minHistory: model?.choice.minHistory ?? 1,
    cfDecay: (name === 'auto' ? model?.choice.cfDecay : model?.tuned.cfDecay) ?? 1,
    alsDecay: (name === 'auto' ? model?.choice.alsDecay : model?.tuned.alsDecay) ?? 1,
    weights: model?.choice.weights ?? { cf: 0, als: 0, pop: 0 },
  };
  if (!model || kind === 'heuristic' || kind === 'popularity') return base;
  const positionOfItem = new Int32Array(model.itemIds.length);
  for (let i = 0; i < model.itemIds.length; i++) positionOfItem[i] = catalog.positionOf.get(model.itemIds[i]!) ?? -1;
  if (kind === 'item-cf' || (kind === 'blend' && base.weights.cf > 0)) base.cf = neighbourTable(model, positionOfItem, catalog.size);
  if (kind === 'als' || (kind === 'blend' && base.weights.als > 0)) base.als = factorTable(model, positionOfItem, catalog.size);
  return base;
}

function shared<T extends Int32Array | Float32Array | Float64Array>(Of: new (buffer: SharedArrayBuffer) => T, bytesPer: number, n: number): T {
  return new Of(new SharedArrayBuffer(Math.max(1, n) * bytesPer));
}

function neighbourTable(model: TrainedModel, positionOfItem: Int32Array, size: number): NonNullable<ModelTables['cf']> {
  const { start, item, sim } = model.cf;
  const items = model.itemIds.length;
  const counts = new Int32Array(size + 1);
  for (let i = 0; i < items; i++) {
    const p = positionOfItem[i]!;
    if (p < 0) continue;
    for (let e = start[i]!; e < start[i + 1]!; e++) if (positionOfItem[item[e]!]! >= 0) counts[p + 1]! += 1;
  }
  const outStart = shared(Int32Array, 4, size + 1);
  for (let p = 0; p < size; p++) outStart[p + 1] = outStart[p]! + counts[p + 1]!;
  const pos = shared(Int32Array, 4, outStart[size]!);
  const outSim = shared(Float32Array, 4, outStart[size]!);
  for (let i = 0; i < items; i++) {
    const p = positionOfItem[i]!;
    if (p < 0) continue;
    let at = outStart[p]!;
    for (let e = start[i]!; e < start[i + 1]!; e++) {
      const q = positionOfItem[item[e]!]!;
      if (q < 0) continue;
      pos[at] = q;
      outSim[at++] = sim[e]!;
    }
  }
  return { start: outStart, pos, sim: outSim };
}

function factorTable(model: TrainedModel, positionOfItem: Int32Array, size: number): NonNullable<ModelTables['als']> {
  const { factors: k, alpha, itemFactors, gram } = model.als;
  const factors = shared(Float32Array, 4, size * k);
  for (let i = 0; i < model.itemIds.length; i++) {
    const p = positionOfItem[i]!;
    if (p >= 0) factors.set(itemFactors.subarray(i * k, (i + 1) * k), p * k);
  }
  const g = shared(Float64Array, 8, gram.length);
  g.set(gram);
  return { k, alpha, factors, gram: g };
}
