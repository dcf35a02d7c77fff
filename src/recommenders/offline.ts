/**
 * Ranking a user offline exactly as a request would: their signals built from training rows, then the
 * serving path's scoringTask → rankTask (candidates, model, availability and filters). Training's
 * validation and `npm run evaluate` both rank through here.
 */
import type { CatalogSnapshot } from '../domain/catalog-columns.js';
import { MODEL_HISTORY } from '../domain/constants.js';
import type { ModelTables } from '../domain/model-tables.js';
import type { Audience, UserSignals } from '../domain/types.js';
import { scoringTask } from './heuristic.js';
import type { Interactions } from './interactions.js';
import { rankTask } from './ranking.js';

/** Premium and no country: every title that is not hidden may be shown (validation has no audiences). */
export const UNRESTRICTED: Audience = { tier: 2, country: null };

/** User index `u`'s signals from rows (oldest first): the newest MODEL_HISTORY as recent, all as watched. */
export function signalsFromRows(
  rows: Interactions,
  u: number,
  catalog: CatalogSnapshot,
  extra: { dismissed?: number[]; audience?: Audience } = {},
): UserSignals {
  const from = rows.userStart[u]!;
  const to = rows.userStart[u + 1]!;
  const recent: number[] = [];
  for (let e = to - 1; e >= from && recent.length < MODEL_HISTORY; e--) recent.push(rows.itemIds[rows.items[e]!]!);
  const watched: number[] = [];
  for (let e = from; e < to; e++) watched.push(rows.itemIds[rows.items[e]!]!);
  return { userId: rows.userIds[u]!, catalog, recent, watched, dismissed: extra.dismissed ?? [], audience: extra.audience ?? UNRESTRICTED };
}

export interface OfflineOptions {
  keep: number;
  /** The seed's formula's candidate pool (0 = whole catalog). */
  candidatePool: number;
  nowMs: number;
}

/** The content ids the model would serve the user, best first. */
export function rankOffline(signals: UserSignals, tables: ModelTables, opts: OfflineOptions): number[] {
  const task = scoringTask(signals, { pool: opts.candidatePool, keep: opts.keep, nowMs: opts.nowMs, noise: false, model: tables });
  const { positions } = rankTask(task);
  return positions.map((p) => signals.catalog.ids[p]!);
}
