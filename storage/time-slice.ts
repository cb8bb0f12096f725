/**
 * Cooperative time slicing for per-command loops over client-controlled data (FETCH and SEARCH over a whole
 * mailbox, STORE on many messages, pipelined commands). Storage calls may be synchronous (SQLite), and awaiting
 * a resolved promise only runs microtasks: without a real yield, one session's `FETCH 1:*` would hold the event
 * loop until it is done, and every other client (and /health) would wait. `pause()` is cheap when called often:
 * it yields only once `sliceMs` has passed since the last yield.
 *
 * The yield is a zero-delay timer, not setImmediate: measured here, Deno 2's setImmediate runs before pending
 * socket reads (an echo round trip behind a loop of 8 ms slices took about 1 s), while a timer lets I/O in on
 * both runtimes (under 10 ms); Node clamps it to 1 ms, a small price once per slice.
 */

/** How long one loop may run before it lets other work in. Small enough for a 100 ms bound with a few busy sessions. */
export const SLICE_MS = 8;

export class TimeSlice {
  readonly #sliceMs: number;
  #since = performance.now();

  constructor(sliceMs = SLICE_MS) {
    this.#sliceMs = sliceMs;
  }

  /** Yields to the event loop when this slice is used up; otherwise returns at once. */
  async pause(): Promise<void> {
    if (performance.now() - this.#since < this.#sliceMs) return;
    await new Promise<void>((resolve) => setTimeout(resolve, 0));
    this.#since = performance.now();
  }
}
