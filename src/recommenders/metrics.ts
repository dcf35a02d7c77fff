/**
 * Top-N accuracy and beyond-accuracy metrics, averaged over users (docs/quality.md):
 *   HR@N      1 if any of the top N is held out
 *   NDCG@N    DCG of the hits (binary relevance) over the ideal DCG of min(N, |test|) hits
 *   Recall@N  hits / min(N, |test|)
 *   coverage@N  distinct titles recommended to anyone / titles that could be recommended
 *   novelty   mean popularity rank (1 = most watched in training) of what is recommended
 */

export const CUTOFF = 10;

export interface MetricRow {
  hr_at_10: number;
  ndcg_at_10: number;
  recall_at_10: number;
  coverage_at_10: number;
  novelty: number;
}

/** 1/log2(rank + 1) for ranks 1..N. */
const DISCOUNT = Array.from({ length: 64 }, (_, r) => 1 / Math.log2(r + 2));

export class MetricAccumulator {
  private users = 0;
  private hr = 0;
  private ndcg = 0;
  private recall = 0;
  /** Per-user NDCG, for the confidence interval. */
  private readonly ndcgs: number[] = [];
  private readonly shown = new Set<number>();
  private rankSum = 0;
  private ranked = 0;

  constructor(
    /** Titles that could be recommended at all (the coverage denominator). */
    private readonly catalogSize: number,
    /** Popularity rank (1 = most watched) of an item key; unknown keys count as the last rank. */
    private readonly popularityRank: (key: number) => number,
    private readonly n = CUTOFF,
  ) {}

  /** One user's list (item keys, best first) against their held-out keys. */
  add(recommended: ArrayLike<number>, heldOut: ReadonlySet<number>): void {
    const n = Math.min(this.n, recommended.length);
    let dcg = 0;
    let hits = 0;
    for (let r = 0; r < n; r++) {
      const key = recommended[r]!;
      this.shown.add(key);
      this.rankSum += this.popularityRank(key);
      this.ranked += 1;
      if (heldOut.has(key)) {
        hits += 1;
        dcg += DISCOUNT[r]!;
      }
    }
    const ideal = Math.min(this.n, heldOut.size);
    let idcg = 0;
    for (let r = 0; r < ideal; r++) idcg += DISCOUNT[r]!;
    const ndcg = idcg > 0 ? dcg / idcg : 0;
    this.users += 1;
    this.hr += hits > 0 ? 1 : 0;
    this.ndcg += ndcg;
    this.recall += ideal > 0 ? hits / ideal : 0;
    this.ndcgs.push(ndcg);
  }

  get count(): number {
    return this.users;
  }

  result(): MetricRow {
    const u = Math.max(1, this.users);
    return {
      hr_at_10: this.hr / u,
      ndcg_at_10: this.ndcg / u,
      recall_at_10: this.recall / u,
      coverage_at_10: this.catalogSize > 0 ? this.shown.size / this.catalogSize : 0,
      novelty: this.ranked > 0 ? this.rankSum / this.ranked : 0,
    };
  }

  /** Half-width of the 95 % normal confidence interval of the mean NDCG@N. */
  ndcgHalfWidth(): number {
    const n = this.ndcgs.length;
    if (n < 2) return 0;
    const mean = this.ndcg / n;
    let ss = 0;
    for (const x of this.ndcgs) ss += (x - mean) ** 2;
    return 1.96 * Math.sqrt(ss / (n - 1) / n);
  }
}
