/** What a training run produces and PostgreSQL keeps (data/model-repo.ts): everything serving needs. */
import type { AlsModel, AlsParams } from './als.js';
import type { Neighbours } from './item-cf.js';

/** The configuration `auto` serves: fitted on a validation split cut from the training data. */
export interface ModelChoice {
  kind: 'popularity' | 'item-cf' | 'als' | 'blend';
  /** Users with fewer history events get the popularity ranking. */
  minHistory: number;
  cfDecay: number;
  alsDecay: number;
  weights: { cf: number; als: number; pop: number };
}

/** One candidate's score on the validation split. */
export interface ValidationRow {
  model: string;
  ndcg_at_10: number;
}

export interface TrainedModel {
  /** The content id of each item index of `cf` and `als`. */
  itemIds: Float64Array;
  cf: Neighbours;
  als: AlsModel;
  choice: ModelChoice;
  /** Each component's own best recency decay on validation (MODEL=item-cf and MODEL=als serve with them). */
  tuned: { cfDecay: number; alsDecay: number };
  /** Every candidate tried, best first. */
  validation: ValidationRow[];
  stats: {
    users: number;
    items: number;
    events: number;
    validationUsers: number;
    als: AlsParams;
    trainMs: number;
  };
}
