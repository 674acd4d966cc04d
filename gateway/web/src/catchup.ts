// Catch-up after a reconnect (docs/api.md, "Catch-up"): every delivery carries a `Seq`; the client
// keeps the highest it has seen and, after a reconnect, asks `sync` for what it missed. A delivery
// can then arrive twice (live while the catch-up runs, and in it); this log applies each once.

/** Whether `a` is a greater `Seq` than `b` (decimal strings of any length). */
export function seqAfter(a: string, b: string): boolean {
  return a.length !== b.length ? a.length > b.length : a > b;
}

const SEQ = /^\d+$/;

/** The deliveries seen, by `Seq`, and the highest. */
export class SeqLog {
  private seen = new Set<string>();
  private order: string[] = [];
  private top?: string;

  constructor(private readonly capacity = 5000) {}

  /** Whether a delivery with this `Seq` is new, recording it. Payloads without one (answers to this socket's own requests) are always new. */
  admit(seq: unknown): boolean {
    if (typeof seq !== 'string' || !SEQ.test(seq)) return true;
    if (this.seen.has(seq)) return false;
    this.seen.add(seq);
    this.order.push(seq);
    if (this.order.length > this.capacity) this.seen.delete(this.order.shift() as string);
    this.raise(seq);
    return true;
  }

  /** Where now is, as `sync {}` answered it: nothing before it needs catching up. */
  raise(seq: unknown) {
    if (typeof seq === 'string' && SEQ.test(seq) && (this.top === undefined || seqAfter(seq, this.top))) this.top = seq;
  }

  /** The `Since` of the next catch-up, once a starting point is known. */
  get highest(): string | undefined {
    return this.top;
  }
}
