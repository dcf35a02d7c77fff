/**
 * A trained model as a scoring task carries it: arrays over catalog positions (the snapshot's order), in
 * shared memory, so a scoring thread reads the very tables the HTTP worker built (no copy per task).
 * Built once per (model, catalog snapshot) by src/recommenders/tables.ts.
 */

/** What ranks a user's candidates: the seed's formula, popularity, or a learned model (docs/quality.md). */
export type ModelKind = 'heuristic' | 'popularity' | 'item-cf' | 'als' | 'blend';

export interface ModelTables {
  kind: ModelKind;
  /** Users with fewer history events than this get the popularity ranking (cold start). */
  minHistory: number;
  /** Weight of the history event r places from the newest: decay^r, per component. */
  cfDecay: number;
  alsDecay: number;
  /** A blend's weights (item-cf and als use their own component alone). */
  weights: { cf: number; als: number; pop: number };
  /** Neighbours of position p: pos[start[p] .. start[p + 1]), similarities in sim. */
  cf?: { start: Int32Array; pos: Int32Array; sim: Float32Array };
  /** Item factors by position (k per title; zeros for a title the model never saw), and YᵀY + reg·I. */
  als?: { k: number; alpha: number; factors: Float32Array; gram: Float64Array };
}

/** Why an item is in a list (GET …/recommendations?explain=true), by code: the order of EXPLANATION_KINDS. */
export const EXPLANATION_KINDS = ['similar_to_watched', 'latent_taste', 'popular_in_genre', 'popular', 'fallback'] as const;
export type ExplanationKind = (typeof EXPLANATION_KINDS)[number];
export const REASON = { similar: 0, latent: 1, genre: 2, popular: 3, fallback: 4 } as const;
