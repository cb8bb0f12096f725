/**
 * The POP3 maildrop: a snapshot of INBOX taken at login (newest `pop3.maxMessages`), message numbers into it,
 * DELE marks and RETR marks kept in the session only, and the UPDATE state (RFC 1939 §6) that applies them at QUIT
 * through the pipeline functions: retrieved messages get \Seen (updateFlags), deleted ones are moved to Trash
 * (moveMessages) or expunged (expungeMessages) per `pop3.deleteMode`. One POP3 session per mailbox at a time: the
 * maildrop holds a lock in the ephemeral store while it is open.
 */
import type { HookContext } from '../../hooks/context.ts';
import { expungeMessages, moveMessages, updateFlags } from '../../hooks/pipeline/index.ts';
import type { PipelineApp } from '../../hooks/pipeline/index.ts';
import type { Verdict } from '../../hooks/verdict.ts';
import type { MailboxRecord } from '../../storage/ports.ts';

export interface DropMessage {
  readonly uid: number;
  readonly size: number;
  /** Stable across sessions and never reused: UIDVALIDITY and UID. */
  readonly uidl: string;
  readonly seen: boolean;
  deleted: boolean;
  retrieved: boolean;
}

export interface UpdateOutcome {
  readonly seen: number;
  readonly removed: number;
  /** Verdicts of the operations that failed (the rest was applied). */
  readonly failures: Verdict[];
}

export class Maildrop {
  readonly mailbox: MailboxRecord;
  readonly messages: DropMessage[];
  readonly #app: PipelineApp;
  readonly #lockKey: string;
  readonly #ttlMs: number;
  #token: string;
  #lockedAt: number;
  #closed = false;

  private constructor(app: PipelineApp, mailbox: MailboxRecord, messages: DropMessage[], lockKey: string, token: string, ttlMs: number) {
    this.#app = app;
    this.mailbox = mailbox;
    this.messages = messages;
    this.#lockKey = lockKey;
    this.#token = token;
    this.#ttlMs = ttlMs;
    this.#lockedAt = Date.now();
  }

  /** Locks the user's INBOX and takes the snapshot; `inuse` when another POP3 session holds it. */
  static async open(app: PipelineApp, userId: string): Promise<Maildrop | 'inuse' | 'nombox'> {
    const mailbox = await app.storage.mailboxes.getByPath(userId, 'INBOX');
    if (!mailbox) return 'nombox';
    const key = `pop3:lock:${mailbox.id}`;
    const ttlMs = Math.max(app.config.pop3.idleTimeoutSeconds * 2000, 10 * 60 * 1000);
    const token = await app.storage.ephemeral.lock(key, ttlMs);
    if (!token) return 'inuse';
    try {
      const index = await app.storage.messages.index(mailbox.id);
      const newest = index.slice(Math.max(0, index.length - app.config.pop3.maxMessages));
      const messages = newest.map((entry) => ({
        uid: entry.uid,
        size: entry.size,
        uidl: `${mailbox.uidValidity}.${entry.uid}`,
        seen: entry.flags.some((f) => f.toLowerCase() === '\\seen'),
        deleted: false,
        retrieved: false,
      }));
      return new Maildrop(app, mailbox, messages, key, token, ttlMs);
    } catch (err) {
      await app.storage.ephemeral.unlock(key, token).catch(() => {});
      throw err;
    }
  }

  /** Message `n` (1-based) unless it is out of range or marked deleted. */
  get(n: number): DropMessage | null {
    if (!Number.isInteger(n) || n < 1 || n > this.messages.length) return null;
    const message = this.messages[n - 1]!;
    return message.deleted ? null : message;
  }

  /** Messages not marked deleted, with their numbers. */
  live(): Array<[number, DropMessage]> {
    const out: Array<[number, DropMessage]> = [];
    this.messages.forEach((m, i) => {
      if (!m.deleted) out.push([i + 1, m]);
    });
    return out;
  }

  /** RSET: unmarks every deleted message. */
  reset(): void {
    for (const m of this.messages) m.deleted = false;
  }

  /**
   * Keeps the lock alive in long sessions (it expires after its TTL otherwise): past half its TTL, extends it for the
   * token this maildrop holds, so no other session can take the maildrop meanwhile. Should the lock have expired
   * anyway (the store was unreachable for a while), it is taken again when free. A store that does not answer now
   * leaves it as it is: at least half the TTL is left for the next command to try again.
   */
  async refresh(): Promise<void> {
    if (this.#closed || Date.now() - this.#lockedAt < this.#ttlMs / 2) return;
    const ephemeral = this.#app.storage.ephemeral;
    try {
      if (await ephemeral.extend(this.#lockKey, this.#token, this.#ttlMs)) {
        this.#lockedAt = Date.now();
        return;
      }
      const token = await ephemeral.lock(this.#lockKey, this.#ttlMs);
      if (token) {
        this.#token = token;
        this.#lockedAt = Date.now();
      }
    } catch {
      // unreachable: tried again at the next command
    }
  }

  /** The UPDATE state: applies RETR and DELE marks through the pipeline. */
  async update(ctx: HookContext): Promise<UpdateOutcome> {
    const app = this.#app;
    const userId = this.mailbox.userId;
    const failures: Verdict[] = [];
    const toSee = this.messages.filter((m) => m.retrieved && !m.seen).map((m) => m.uid);
    let seen = 0;
    if (toSee.length > 0) {
      const result = await updateFlags(app, ctx, { userId, mailboxId: this.mailbox.id, uids: toSee, update: { action: 'add', flags: ['\\Seen'] } });
      if (result.ok) seen = result.value.changed.length;
      else failures.push(result.verdict);
    }
    const toRemove = this.messages.filter((m) => m.deleted).map((m) => m.uid);
    let removed = 0;
    if (toRemove.length > 0) {
      const trash = app.config.pop3.deleteMode === 'trash' ? await app.storage.mailboxes.getBySpecialUse(userId, '\\Trash') : null;
      if (trash && trash.id !== this.mailbox.id) {
        const result = await moveMessages(app, ctx, { userId, mailboxId: this.mailbox.id, uids: toRemove, targetMailboxId: trash.id });
        if (result.ok) removed = result.value.mappings.length;
        else failures.push(result.verdict);
      } else {
        const result = await expungeMessages(app, ctx, { userId, mailboxId: this.mailbox.id, uids: toRemove });
        if (result.ok) removed = result.value.uids.length;
        else failures.push(result.verdict);
      }
    }
    return { seen, removed, failures };
  }

  /** Releases the lock. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#app.storage.ephemeral.unlock(this.#lockKey, this.#token).catch(() => {});
  }
}
