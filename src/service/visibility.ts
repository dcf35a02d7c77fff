/**
 * Which titles may be served, in this process, now: the catalog snapshot's hidden flags and availability
 * rules, plus the titles hidden since that snapshot was read (relayed by the primary before a hiding write
 * is acknowledged). Every response passes its titles through here, whichever tier its list came from.
 *
 * `version` moves whenever a title may have stopped being servable (a hide, a snapshot with other rules).
 * A cached list remembers the version it was checked at, so the hot path pays one comparison and a list
 * is re-checked once per change, not once per request.
 */
import { availableAt, type CatalogSnapshot } from '../domain/catalog-columns.js';
import type { Audience } from '../domain/types.js';

export class Visibility {
  /** Starts at 1: a list with `checked` 0 has never been checked. */
  version = 1;
  private snapshot: CatalogSnapshot | undefined;
  /**
   * Hidden by a notification, whatever the snapshot says: a snapshot read before the hide committed must
   * not bring the title back. Left only by a notification that the title is visible again (its snapshot
   * then catches up within a load). Not pruned when a snapshot agrees: a later snapshot may be read from a
   * replica that has not replayed the hide. Bounded by the catalog; a scoring task skips each of them.
   */
  private readonly hiddenSince = new Set<number>();

  /** The catalog snapshot now installed (Catalog.onSnapshot). */
  useSnapshot(snapshot: CatalogSnapshot): void {
    const previous = this.snapshot;
    this.snapshot = snapshot;
    if (previous?.rules !== snapshot.rules) this.version += 1;
  }

  /** Titles hidden (or deleted): not one of them is served from the moment this returns. */
  hide(contentIds: readonly number[]): void {
    if (contentIds.length === 0) return;
    for (const id of contentIds) this.hiddenSince.add(id);
    this.version += 1;
  }

  /** Titles visible again: served once a snapshot that says so is in. */
  show(contentIds: readonly number[]): void {
    for (const id of contentIds) this.hiddenSince.delete(id);
  }

  /** Hidden titles not in the snapshot's hidden flags: a scoring task leaves them out on top of those. */
  get hiddenSinceSnapshot(): ReadonlySet<number> {
    return this.hiddenSince;
  }

  /**
   * Whether the title may be shown to `audience` (undefined: to anyone, i.e. only "not hidden"). A title the
   * snapshot does not know yet (added since) is allowed unless hidden: its rules arrive with the next load.
   */
  allows(contentId: number, audience?: Audience): boolean {
    if (this.hiddenSince.has(contentId)) return false;
    const s = this.snapshot;
    const at = s?.positionOf.get(contentId);
    return at === undefined || availableAt(s!, at, audience);
  }
}
