/**
 * storeMessages: several messages into one mailbox, all or none (IMAP MULTIAPPEND, RFC 3502). Each message goes
 * through storeMessage as usual (message.beforeStore, message.prepare, ingest, message.store, message.afterStore;
 * each commit durable as storeMessage makes it), but every message waits after its ingest until all of them are
 * ingested, so a refusal or a bad message (quota, policy, too big, a client error in its bytes) stores none. Then
 * they commit one after another, in order (ascending UIDs). A commit that fails after earlier ones succeeded is
 * the one case that cannot be prevented in advance: the messages this batch committed are expunged again
 * (through expungeMessages), so the mailbox ends as it was.
 *
 * Messages may be added until `close()` (an IMAP client's next message may only be known once the previous one was
 * read off the socket); `finish()` answers when all added messages are stored or the batch failed.
 */
import type { HookContext } from '../context.ts';
import type { StoreInput, StoreResult } from '../types.ts';
import { fail, tempfail } from '../verdict.ts';
import type { OperationResult, Verdict } from '../verdict.ts';
import { expungeMessages } from './messages.ts';
import type { PipelineApp } from './run.ts';
import { storeMessageWhen } from './store-message.ts';

export class StoreBatch {
  readonly #app: PipelineApp;
  readonly #ctx: HookContext;
  readonly #settled: Array<Promise<void>> = [];
  /** Gate of each message, resolved true in order once all are ingested (false when the batch failed). */
  readonly #gates: Array<{ arrived: boolean; open: (go: boolean) => void; promise: Promise<boolean> }> = [];
  readonly #results: Array<StoreResult | null> = [];
  #closed = false;
  #failure: Verdict | null = null;
  /** Index of the next message to commit. */
  #next = 0;
  #started = false;
  #mailboxId: string | null = null;
  #userId: string | null = null;
  #whenClosed!: () => void;
  readonly #closedOrFailed = new Promise<void>((resolve) => (this.#whenClosed = resolve));

  constructor(app: PipelineApp, ctx: HookContext) {
    this.#app = app;
    this.#ctx = ctx;
  }

  /** How many messages were added. */
  get size(): number {
    return this.#gates.length;
  }

  /**
   * Adds a message (all to the same mailbox): its store starts now and waits for the others after its ingest.
   * `ingested` is called when it got there (its source was read, or a `message.prepare` tap replaced it).
   */
  add(input: StoreInput, ingested?: () => void): void {
    if (this.#closed) throw new Error('StoreBatch: add() after close()');
    this.#mailboxId = input.mailboxId;
    this.#userId = input.userId;
    const index = this.#gates.length;
    let open!: (go: boolean) => void;
    const promise = new Promise<boolean>((resolve) => (open = resolve));
    const gate = { arrived: false, open, promise };
    this.#gates.push(gate);
    this.#results.push(null);
    if (this.#failure) open(false);
    const proceed = (): Promise<boolean> => {
      gate.arrived = true;
      ingested?.();
      this.#check();
      return promise;
    };
    const settled = storeMessageWhen(this.#app, this.#ctx, input, proceed).then(
      (result) => this.#stored(index, result),
      (err: unknown) => {
        this.#ctx.log.error('storeMessages: a store failed', { err });
        this.#fail(tempfail('SERVERBUG', 'Internal server error, try again later'));
      },
    );
    this.#settled.push(settled);
  }

  /** No more messages follow. */
  close(): void {
    this.#closed = true;
    this.#whenClosed();
    this.#check();
  }

  /** Abandons the batch (the command failed for a reason of its own): nothing more is committed. */
  abort(verdict: Verdict): void {
    this.#fail(verdict);
  }

  /** The stored messages in order, or the first failure (then none of them is left stored). */
  async finish(): Promise<OperationResult<StoreResult[]>> {
    await this.#closedOrFailed;
    // messages added meanwhile are in #settled too: wait until no new ones appear
    for (let seen = 0; seen < this.#settled.length; seen = this.#settled.length) await Promise.all(this.#settled);
    if (this.#failure) {
      await this.#rollback();
      return fail(this.#failure);
    }
    return { ok: true, value: this.#results as StoreResult[] };
  }

  #stored(index: number, result: OperationResult<StoreResult> | null): void {
    if (result === null) return; // its gate said no: the batch failed already
    if (!result.ok) {
      this.#fail(result.verdict);
      return;
    }
    this.#results[index] = result.value;
    this.#next = index + 1;
    if (this.#next < this.#gates.length) this.#gates[this.#next]!.open(!this.#failure);
  }

  #fail(verdict: Verdict): void {
    this.#failure ??= verdict;
    for (const gate of this.#gates) gate.open(false);
    this.#whenClosed();
  }

  /** All added messages ingested and no more coming: the first commits. */
  #check(): void {
    if (this.#started || this.#failure || !this.#closed) return;
    if (this.#gates.length === 0 || !this.#gates.every((gate) => gate.arrived)) return;
    this.#started = true;
    this.#gates[0]!.open(true);
  }

  /** Expunges what this batch committed (not messages a tap answered as already stored). */
  async #rollback(): Promise<void> {
    const uids = this.#results.filter((r): r is StoreResult => r !== null && !r.existing).map((r) => r.uid);
    if (uids.length === 0 || !this.#mailboxId || !this.#userId) return;
    const result = await expungeMessages(this.#app, this.#ctx, { userId: this.#userId, mailboxId: this.#mailboxId, uids });
    if (!result.ok) this.#ctx.log.error('storeMessages: could not expunge the messages of a failed batch', { uids, verdict: result.verdict });
  }
}
