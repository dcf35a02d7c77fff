/**
 * Trained models in PostgreSQL (migration 0007): the training job saves one and announces its id on
 * MODEL_CHANNEL in the same transaction; workers load the newest at start-up and each announced one. The
 * arrays travel as bytea (typed-array bytes), so a restart or a new instance serves at once without
 * retraining. The two newest are kept (a worker still loading the previous one finds it).
 */
import type { Sql } from './db.js';
import type { TrainedModel } from '../recommenders/trained-model.js';

export const MODEL_CHANNEL = 'recsvc_model';
/** Models kept: the newest and the one before it. */
const KEEP = 2;

/** What data a model saw: the trainer compares it with the data now. */
export interface DataMark {
  datasetVersion: number;
  /** Highest watch-event id then (ids only grow: events added since = max id now − this). */
  maxEventId: number;
  events: number;
  titles: number;
}

export interface StoredModelInfo extends DataMark {
  id: number;
  trainedAt: string;
}

type Meta = Pick<TrainedModel, 'choice' | 'tuned' | 'validation' | 'stats'> & { alsFactors: number; alsAlpha: number };

const bytes = (a: Int32Array | Float32Array | Float64Array): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** A bytea back to a typed array (copied: the driver's Buffer need not be aligned). */
function typed<T extends Int32Array | Float32Array | Float64Array>(Of: { new (b: ArrayBuffer): T; BYTES_PER_ELEMENT: number }, b: Buffer): T {
  const copy = new ArrayBuffer(b.byteLength);
  new Uint8Array(copy).set(b);
  return new Of(copy);
}

/** The data as it is now, measured the way DataMark records it. */
export async function currentData(sql: Sql): Promise<DataMark> {
  const [row] = await sql<{ version: number; max_event_id: number; events: number; titles: number }[]>`
    SELECT (SELECT version FROM dataset) AS version,
           coalesce((SELECT max(id) FROM user_watch_history), 0) AS max_event_id,
           coalesce((SELECT sum(events) FROM user_activity), 0)::int8 AS events,
           (SELECT count(*) FROM content) AS titles`;
  return { datasetVersion: Number(row!.version), maxEventId: Number(row!.max_event_id), events: Number(row!.events), titles: Number(row!.titles) };
}

/** Saves a model and announces it (delivered at commit); returns its id. */
export async function saveModel(sql: Sql, model: TrainedModel, mark: DataMark): Promise<number> {
  const meta: Meta = { choice: model.choice, tuned: model.tuned, validation: model.validation, stats: model.stats, alsFactors: model.als.factors, alsAlpha: model.als.alpha };
  return sql.begin(async (tx) => {
    const [row] = await tx<{ id: number }[]>`
      INSERT INTO trained_models (dataset_version, max_event_id, events, titles, meta, item_ids, cf_start, cf_item, cf_sim, als_factors, als_gram)
      VALUES (${mark.datasetVersion}, ${mark.maxEventId}, ${mark.events}, ${mark.titles}, ${tx.json(meta as never)},
              ${bytes(model.itemIds)}, ${bytes(model.cf.start)}, ${bytes(model.cf.item)}, ${bytes(model.cf.sim)},
              ${bytes(model.als.itemFactors)}, ${bytes(model.als.gram)})
      RETURNING id`;
    await tx`DELETE FROM trained_models WHERE id NOT IN (SELECT id FROM trained_models ORDER BY id DESC LIMIT ${KEEP})`;
    await tx`SELECT pg_notify(${MODEL_CHANNEL}, ${String(row!.id)})`;
    return Number(row!.id);
  });
}

/** The newest model's data mark, without its arrays (cheap: what the trainer checks every minute). */
export async function newestModelInfo(sql: Sql): Promise<StoredModelInfo | undefined> {
  const [row] = await sql<{ id: number; trained_at: Date; dataset_version: number; max_event_id: number; events: number; titles: number }[]>`
    SELECT id, trained_at, dataset_version, max_event_id, events, titles FROM trained_models ORDER BY id DESC LIMIT 1`;
  if (!row) return undefined;
  return {
    id: Number(row.id),
    trainedAt: row.trained_at.toISOString(),
    datasetVersion: Number(row.dataset_version),
    maxEventId: Number(row.max_event_id),
    events: Number(row.events),
    titles: Number(row.titles),
  };
}

/** A model by id, or the newest (`id` undefined); undefined when there is none (or it was pruned). */
export async function loadModel(sql: Sql, id?: number): Promise<{ id: number; model: TrainedModel } | undefined> {
  const rows = id === undefined
    ? await sql<StoredRow[]>`SELECT * FROM trained_models ORDER BY id DESC LIMIT 1`
    : await sql<StoredRow[]>`SELECT * FROM trained_models WHERE id = ${id}`;
  const row = rows[0];
  if (!row) return undefined;
  const meta = row.meta as Meta;
  return {
    id: Number(row.id),
    model: {
      itemIds: typed(Float64Array, row.item_ids),
      cf: { start: typed(Int32Array, row.cf_start), item: typed(Int32Array, row.cf_item), sim: typed(Float32Array, row.cf_sim) },
      als: { factors: meta.alsFactors, alpha: meta.alsAlpha, itemFactors: typed(Float32Array, row.als_factors), gram: typed(Float64Array, row.als_gram) },
      choice: meta.choice,
      tuned: meta.tuned,
      validation: meta.validation,
      stats: meta.stats,
    },
  };
}

/** Records a failed training run (the previous model keeps serving). */
export async function recordTrainingFailure(sql: Sql, message: string): Promise<void> {
  await sql`INSERT INTO model_training_failures (message) VALUES (${message.slice(0, 2000)})`;
}

interface StoredRow {
  id: number;
  meta: unknown;
  item_ids: Buffer;
  cf_start: Buffer;
  cf_item: Buffer;
  cf_sim: Buffer;
  als_factors: Buffer;
  als_gram: Buffer;
}
