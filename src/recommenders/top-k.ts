/**
 * The best `keep` (catalog position, score) pairs of a scan, in O(n log keep): a min-heap whose root is the
 * worst pair kept, so a newcomer only has to beat it. Better = higher score, then lower position (the
 * catalog's own order: popularity DESC, id), so equal scores never displace a kept pair. One per thread,
 * reused by every task (scoring is synchronous).
 */
export class TopPositions {
  private pos = new Int32Array(64);
  private score = new Float64Array(64);
  private keep = 0;
  size = 0;

  /** Empties it for a scan that keeps `keep` pairs. */
  reset(keep: number): this {
    if (this.pos.length < keep) {
      this.pos = new Int32Array(keep);
      this.score = new Float64Array(keep);
    }
    this.keep = keep;
    this.size = 0;
    return this;
  }

  /** The score a newcomer must beat once full (-Infinity before). */
  get floor(): number {
    return this.size < this.keep ? -Infinity : this.score[0]!;
  }

  offer(position: number, score: number): void {
    if (this.size < this.keep) {
      this.pos[this.size] = position;
      this.score[this.size] = score;
      this.siftUp(this.size++);
    } else if (this.keep > 0 && score > this.score[0]!) {
      this.pos[0] = position;
      this.score[0] = score;
      this.siftDown(this.size);
    }
  }

  /** The kept pairs, best first; empties it. */
  drain(): { positions: number[]; scores: number[] } {
    const n0 = this.size;
    const positions = new Array<number>(n0);
    const scores = new Array<number>(n0);
    for (let n = n0; n > 0; n--) {
      positions[n - 1] = this.pos[0]!;
      scores[n - 1] = this.score[0]!;
      this.pos[0] = this.pos[n - 1]!;
      this.score[0] = this.score[n - 1]!;
      this.siftDown(n - 1);
    }
    this.size = 0;
    return { positions, scores };
  }

  /** slot a ranks after slot b: lower score, or equal score and later in the catalog order. */
  private worse(a: number, b: number): boolean {
    const sa = this.score[a]!;
    const sb = this.score[b]!;
    return sa < sb || (sa === sb && this.pos[a]! > this.pos[b]!);
  }

  private swap(a: number, b: number): void {
    const p = this.pos[a]!;
    this.pos[a] = this.pos[b]!;
    this.pos[b] = p;
    const s = this.score[a]!;
    this.score[a] = this.score[b]!;
    this.score[b] = s;
  }

  private siftUp(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.worse(i, parent)) return;
      this.swap(i, parent);
      i = parent;
    }
  }

  private siftDown(n: number): void {
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let w = i;
      if (l < n && this.worse(l, w)) w = l;
      if (r < n && this.worse(r, w)) w = r;
      if (w === i) return;
      this.swap(i, w);
      i = w;
    }
  }
}
