/**
 * The time a client may take to send one command, shared by the IMAP reader and the POP3/LMTP line reader.
 * The idle timer alone cannot stop a slow writer: one byte a second resets it forever. A command (from its first
 * byte to its last, literals and LMTP DATA included) must arrive by
 *
 *     deadline = first byte + timeoutMs + bytes received so far / minBytesPerSecond
 *
 * so a command line gets `timeoutMs` in full, and a large upload gets more time for every byte it actually
 * delivers: a client that keeps up at least `minBytesPerSecond` on average is never cut off, however large the
 * message (a 20 MB APPEND over a slow mobile link), while one that announces 20 MB and then trickles gets only
 * what its bytes earned. Counting received bytes (not announced sizes) means an announcement buys nothing.
 * `minBytesPerSecond` 0 gives a fixed budget.
 *
 * One timer per running budget, rescheduled lazily (only when it fires), so counting bytes costs an addition.
 */

export interface CommandBudgetOptions {
  /** Time for the command with no bytes counted (the grace period). */
  timeoutMs: number;
  /** Every byte received adds 1/minBytesPerSecond seconds; 0 adds nothing. */
  minBytesPerSecond: number;
  /** The deadline passed: say goodbye and close (the reader's pending read then ends). */
  onExpire(): void;
}

export class CommandBudget {
  readonly #options: CommandBudgetOptions;
  #started = 0;
  #bytes = 0;
  #running = false;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(options: CommandBudgetOptions) {
    this.#options = options;
  }

  get running(): boolean {
    return this.#running;
  }

  /** Starts the clock (no-op when running): call when the command's first byte is there. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#started = performance.now();
    this.#bytes = 0;
    this.#schedule(this.#options.timeoutMs);
  }

  /** Counts bytes received while the budget runs. */
  add(bytes: number): void {
    if (this.#running) this.#bytes += bytes;
  }

  /** The command arrived in full. */
  stop(): void {
    this.#running = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #deadline(): number {
    const rate = this.#options.minBytesPerSecond;
    return this.#started + this.#options.timeoutMs + (rate > 0 ? (this.#bytes * 1000) / rate : 0);
  }

  #schedule(ms: number): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#check(), Math.max(1, Math.ceil(ms)));
  }

  #check(): void {
    if (!this.#running) return;
    const left = this.#deadline() - performance.now();
    if (left > 0) return this.#schedule(left);
    this.stop();
    this.#options.onExpire();
  }
}
