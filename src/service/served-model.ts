/**
 * The model this process serves: MODEL's name, the trained model in force (loaded from PostgreSQL, swapped
 * whole when a newer one is trained) and its tables per catalog snapshot, built once per (model, snapshot)
 * and shared by every task (domain/model-tables.ts). Before any model is trained, a learned name serves the
 * seed's formula (tables.ts servedKind) and says so.
 */
import type { CatalogSnapshot } from '../domain/catalog-columns.js';
import type { ModelTables } from '../domain/model-tables.js';
import { servedKind, tablesFor, type ModelName } from '../recommenders/tables.js';
import type { TrainedModel } from '../recommenders/trained-model.js';
import { describe } from '../recommenders/evaluation.js';

export class ServedModel {
  private trained: TrainedModel | undefined;
  private versionId = '0';
  private tables: { snapshot: CatalogSnapshot; tables: ModelTables } | undefined;

  constructor(readonly name: ModelName) {}

  /** The trained model's version ('0' before any): part of every cache key's generation (a swap retires lists). */
  get version(): string {
    return this.versionId;
  }

  /** What serves now, for logs and /metrics: e.g. `auto → blend cf=0.5 als=0.5 pop=0`. */
  get serves(): string {
    const kind = servedKind(this.name, this.trained);
    if (this.name === 'auto' && this.trained) return describe(this.trained);
    return kind;
  }

  /** Installs a trained model; lists computed from the previous one must go (the caller bumps the cache). */
  use(model: TrainedModel | undefined, version: string): void {
    this.trained = model;
    this.versionId = version;
    this.tables = undefined;
  }

  tablesFor(snapshot: CatalogSnapshot): ModelTables {
    if (this.tables?.snapshot !== snapshot) this.tables = { snapshot, tables: tablesFor(this.name, this.trained, snapshot) };
    return this.tables.tables;
  }
}
