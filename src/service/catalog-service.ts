/**
 * The catalog as the API shows it: non-personalized lists (popular, latest), one title, similar titles, and
 * the writes that change titles. Reads come from the in-memory catalog snapshot (no query per request) and
 * pass through Visibility; a write is answered only once every process stops serving what it hid.
 */
import { LRUCache } from 'lru-cache';
import { availableAt, latestOrder, type CatalogSnapshot } from '../domain/catalog-columns.js';
import { Errors } from '../domain/errors.js';
import type { Audience, Candidate } from '../domain/types.js';
import type { Catalog } from '../data/catalog.js';
import type { ContentRepo } from '../data/content-repo.js';
import type { RecommendationRepo } from '../data/recommendation-repo.js';
import type { SimilarityRepo, SimilarTitles as StoredSimilar } from '../data/similarity-repo.js';
import { round3 } from '../recommenders/heuristic.js';
import type { Visibility } from './visibility.js';

/** A title in every catalog response. */
export interface ContentItem {
  content_id: number;
  title: string;
  genre: string;
  popularity_score: number;
  created_at: string;
}

export interface ContentListQuery {
  limit: number;
  offset: number;
  genre?: string;
  /** Leave out this user's watched and dismissed titles and apply the availability rules to them. */
  userId?: number;
}

export interface ContentList {
  items: ContentItem[];
  generatedAt: string;
}

export interface SimilarTitles {
  contentId: number;
  similar: (ContentItem & { score: number })[];
  source: 'co_watch' | 'genre_popularity';
  generatedAt: string;
}

type ContentFields = Parameters<ContentRepo['upsert']>[1];
type BulkItems = Parameters<ContentRepo['upsertMany']>[0];

export interface CatalogServiceDeps {
  catalog: Catalog;
  visibility: Visibility;
  /** Users' watched and dismissed titles and audience (popular/latest with user_id). */
  signals: Pick<RecommendationRepo, 'userSignals'>;
  content: Pick<ContentRepo, 'byId' | 'upsert' | 'upsertMany' | 'hide'>;
  similarity: Pick<SimilarityRepo, 'similarTo'>;
  /** Tells every process of every instance which titles changed; resolves once all have applied it. */
  broadcastContent: (hidden: number[], visible: number[]) => Promise<void>;
  /** How long a title's similarity list is kept in memory, ms (it changes once per refresh). */
  similarCacheMs: number;
}

const SIMILAR_CACHE_ENTRIES = 10_000;

/** How long "no stored similar list" is believed (the background job may write one any moment). */
const MISSING_SIMILAR_MS = 2000;

export class CatalogService {
  private readonly similarCache: LRUCache<number, StoredSimilar | 'none'>;

  constructor(private readonly deps: CatalogServiceDeps) {
    this.similarCache = new LRUCache({ max: SIMILAR_CACHE_ENTRIES, ttl: Math.max(1, deps.similarCacheMs) });
  }

  /** Titles by popularity_score DESC, then id. */
  popular(query: ContentListQuery): Promise<ContentList> {
    return this.list(query, (s) => ({ size: s.size, at: (i) => i }));
  }

  /** Titles by created_at DESC, then id. */
  latest(query: ContentListQuery): Promise<ContentList> {
    return this.list(query, (s) => {
      const order = latestOrder(s);
      return { size: s.size, at: (i) => order[i]! };
    });
  }

  /** One title; hidden ones do not exist for the API. A title newer than the snapshot is read from PostgreSQL. */
  async title(contentId: number): Promise<ContentItem> {
    const { visibility } = this.deps;
    const snapshot = await this.deps.catalog.current();
    const at = snapshot.positionOf.get(contentId);
    if (at !== undefined) {
      if (!visibility.allows(contentId)) throw Errors.contentNotFound(contentId);
      return itemOf(snapshot.items[at]!);
    }
    const row = await this.deps.content.byId(contentId);
    if (!row || row.hidden || !visibility.allows(contentId)) throw Errors.contentNotFound(contentId);
    const { content_id, title, genre, popularity_score, created_at } = row;
    return { content_id, title, genre, popularity_score, created_at };
  }

  /**
   * The titles most watched by the same users (the background co-watch lists), best first, hidden ones
   * left out; a title without co-watchers gets its genre's most popular titles instead.
   */
  async similar(contentId: number, limit: number): Promise<SimilarTitles> {
    const base = await this.title(contentId); // 404 for unknown and hidden titles
    const snapshot = await this.deps.catalog.current();
    const lists = await this.similarityOf(contentId);
    const similar: SimilarTitles['similar'] = [];
    if (lists) {
      for (let k = 0; k < lists.similarIds.length && similar.length < limit; k++) {
        const id = lists.similarIds[k]!;
        const at = snapshot.positionOf.get(id);
        if (at === undefined || id === contentId || !this.shown(snapshot, at)) continue;
        similar.push({ ...itemOf(snapshot.items[at]!), score: round3(lists.scores[k]!) });
      }
      if (similar.length > 0) return { contentId, similar, source: 'co_watch', generatedAt: lists.computedAt };
    }
    const genre = snapshot.genreIndex.get(base.genre);
    for (let i = 0; i < snapshot.size && similar.length < limit; i++) {
      if (snapshot.genre[i] !== genre) continue;
      const c = snapshot.items[i]!;
      if (c.id === contentId || !this.shown(snapshot, i)) continue;
      similar.push({ ...itemOf(c), score: round3(c.popularity) });
    }
    return { contentId, similar, source: 'genre_popularity', generatedAt: new Date().toISOString() };
  }

  /** Creates or replaces a title; answered once no process serves it if it is now hidden. */
  async put(contentId: number, fields: ContentFields): Promise<Awaited<ReturnType<ContentRepo['upsert']>>> {
    const result = await this.deps.content.upsert(contentId, fields);
    await this.changed(...split([{ id: contentId, hidden: result.record.hidden, said: fields.hidden }]));
    return result;
  }

  /** Many titles in one transaction (all or nothing), announced together. */
  async putMany(items: BulkItems): Promise<Awaited<ReturnType<ContentRepo['upsertMany']>>> {
    const result = await this.deps.content.upsertMany(items);
    await this.changed(...split(items.map((item) => ({ id: item.content_id, hidden: item.hidden === true, said: item.hidden }))));
    return result;
  }

  /** DELETE /content/{id}: the title is hidden (its history stays); 404 if there is no such title. */
  async hide(contentId: number): Promise<void> {
    if (!(await this.deps.content.hide(contentId))) throw Errors.contentNotFound(contentId);
    await this.changed([contentId], []);
  }

  /**
   * After titles were written (committed): stop serving the hidden ones here at once, reload the catalog,
   * and wait until every other process has done the same. `visible`: written with `hidden: false`.
   */
  async changed(hidden: number[], visible: number[]): Promise<void> {
    this.deps.visibility.hide(hidden);
    this.deps.visibility.show(visible);
    this.deps.catalog.changed();
    await this.deps.broadcastContent(hidden, visible);
  }

  /**
   * Visibility.allows for a title whose position is known: the snapshot's rules by position, and the
   * titles hidden since (no id lookup per title of a list walk).
   */
  private shown(snapshot: CatalogSnapshot, position: number, audience?: Audience): boolean {
    return availableAt(snapshot, position, audience) && !this.deps.visibility.hiddenSinceSnapshot.has(snapshot.items[position]!.id);
  }

  private async similarityOf(contentId: number): Promise<StoredSimilar | null> {
    const cached = this.similarCache.get(contentId);
    if (cached !== undefined) return cached === 'none' ? null : cached;
    const found = await this.deps.similarity.similarTo(contentId);
    // No stored list yet (the job has not run, or the title is new): ask again soon rather than serve the
    // genre fallback for the whole cache period once the lists are written.
    if (found) this.similarCache.set(contentId, found);
    else this.similarCache.set(contentId, 'none', { ttl: Math.min(MISSING_SIMILAR_MS, Math.max(1, this.deps.similarCacheMs)) });
    return found;
  }

  private async list(query: ContentListQuery, order: (s: CatalogSnapshot) => { size: number; at: (i: number) => number }): Promise<ContentList> {
    const [snapshot, signals] = await Promise.all([
      this.deps.catalog.current(),
      query.userId === undefined ? undefined : this.deps.signals.userSignals(query.userId),
    ]);
    if (signals === null) throw Errors.userNotFound(query.userId!);
    const excluded = signals ? new Set([...signals.watched, ...signals.dismissed]) : undefined;
    const audience: Audience | undefined = signals?.audience;
    const genre = query.genre === undefined ? undefined : snapshot.genreIndex.get(query.genre) ?? -1;
    const { size, at } = order(snapshot);
    const items: ContentItem[] = [];
    let skip = query.offset;
    for (let k = 0; k < size && items.length < query.limit; k++) {
      const i = at(k);
      if (genre !== undefined && snapshot.genre[i] !== genre) continue;
      const c = snapshot.items[i]!;
      if (excluded?.has(c.id)) continue;
      if (!this.shown(snapshot, i, audience)) continue;
      if (skip > 0) {
        skip -= 1;
        continue;
      }
      items.push(itemOf(c));
    }
    return { items, generatedAt: new Date().toISOString() };
  }
}

/**
 * Written titles as (hidden, made visible). A write that did not mention `hidden` made nothing visible:
 * a title hidden before stays hidden, and must not leave this process's hidden set on its account.
 */
function split(written: { id: number; hidden: boolean; said: boolean | undefined }[]): [number[], number[]] {
  const hidden: number[] = [];
  const visible: number[] = [];
  for (const w of written) {
    if (w.hidden) hidden.push(w.id);
    else if (w.said === false) visible.push(w.id);
  }
  return [hidden, visible];
}

/** Creation times as RFC 3339, one string per title and snapshot title object. */
const createdAtText = new WeakMap<Candidate, string>();

function itemOf(c: Candidate): ContentItem {
  let created = createdAtText.get(c);
  if (created === undefined) createdAtText.set(c, (created = new Date(c.createdAtMs).toISOString()));
  return { content_id: c.id, title: c.title, genre: c.genre, popularity_score: c.popularity, created_at: created };
}
