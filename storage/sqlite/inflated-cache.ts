/**
 * Inline bytes inflated lately, by message row id, so the FETCHes of many sessions on one mailbox inflate a
 * message's bytes once, not once per FETCH (inflating was ~3 % of a kept-session IMAP mix's CPU). Safe without
 * invalidation: a message's content never changes and row ids are never reused. Least recently used entries leave
 * first once the cache holds more than its byte budget; a budget of 0 keeps nothing.
 */
export class InflatedCache {
  readonly #maxBytes: number;
  readonly #entries = new Map<number, Uint8Array>();
  #bytes = 0;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  get(id: number): Uint8Array | undefined {
    const bytes = this.#entries.get(id);
    if (bytes) {
      // most recently used last
      this.#entries.delete(id);
      this.#entries.set(id, bytes);
    }
    return bytes;
  }

  set(id: number, bytes: Uint8Array): void {
    if (bytes.byteLength > this.#maxBytes / 4 || this.#entries.has(id)) return;
    this.#entries.set(id, bytes);
    this.#bytes += bytes.byteLength;
    for (const [oldest, held] of this.#entries) {
      if (this.#bytes <= this.#maxBytes) break;
      this.#entries.delete(oldest);
      this.#bytes -= held.byteLength;
    }
  }

  /** Bytes held (tests). */
  get bytes(): number {
    return this.#bytes;
  }
}
