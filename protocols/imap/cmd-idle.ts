/**
 * IDLE (RFC 2177): `+ idling`, then changes to the selected mailbox are pushed as they happen (EXISTS,
 * EXPUNGE, FETCH FLAGS) until the client sends DONE. A keep-alive `* OK Still here` goes out at most
 * `imap.idleRestartSeconds` apart. A client that sends a tagged command instead of DONE (some iOS versions do) has
 * IDLE ended for it and the command is then read and run as usual. While IDLE runs, the idle timer is
 * `imap.idleCommandTimeoutSeconds` (input from the client resets it; keep-alives don't), then the session's again.
 *
 * An idling session waits on nothing of its own: no timer, no pending read, no promise race. It is an `Idler`
 * woken by callbacks (the client's input arriving, the selected mailbox's index changing, the process's one
 * keep-alive ticker) that runs whatever is due, one thing at a time, and settles the command once DONE arrives.
 * Thousands of IDLE sessions then cost one small object each beyond the session itself.
 */
import type { App } from '../app.ts';
import { AUTHENTICATED, command } from './command.ts';
import { bad, ok } from './responses.ts';
import type { Outcome } from './responses.ts';
import type { ImapSession } from './session.ts';

const decoder = new TextDecoder();

export const idle = command({
  name: 'IDLE',
  states: AUTHENTICATED,
  waits: true,
  parse: (args) => args.end(),
  // not async: no suspended frame of its own while the session idles
  run(session) {
    session.conn.setIdleTimeout?.(session.app.config.imap.idleCommandTimeoutSeconds * 1000);
    // the idler puts the session's idle timeout back as it finishes: no `.finally` promise held per idle session
    return new Idler(session).done;
  },
});

/** What woke an idler; bits, so several can be due at once. */
const INPUT = 1;
const CHANGE = 2;
const TICK = 4;

class Idler {
  readonly done: Promise<Outcome>;
  readonly #session: ImapSession;
  #settle!: (outcome: Outcome) => void;
  #fail!: (err: unknown) => void;
  #due = 0;
  #busy = false;
  #finished = false;

  constructor(session: ImapSession) {
    this.#session = session;
    this.done = new Promise<Outcome>((resolve, reject) => {
      this.#settle = resolve;
      this.#fail = reject;
    });
    session.send('+ idling');
    session.watchChanges(this);
    keepAlives(session.app).add(this);
    this.#busy = true;
    void this.#run(true);
  }

  /** Something is due: run it now, or after what is running. */
  #wake(what: number): void {
    if (this.#finished) return;
    this.#due |= what;
    if (this.#busy) return;
    this.#busy = true;
    void this.#run(false);
  }

  inputArrived(): void {
    this.#wake(INPUT);
  }

  indexChanged(): void {
    this.#wake(CHANGE);
  }

  tick(): void {
    this.#wake(TICK);
  }

  async #run(first: boolean): Promise<void> {
    const session = this.#session;
    try {
      if (first) {
        if (session.selected) await session.notify(true, true);
        await session.flush();
        // the client's next bytes (DONE, or a command sent instead) end IDLE
        session.reader.input.whenData(this);
      }
      while (this.#due !== 0 && !this.#finished) {
        const due = this.#due;
        this.#due = 0;
        if (due & INPUT) return this.#end(await this.#done());
        if (due & CHANGE) await session.notify(true); // the selected mailbox, and NOTIFY's other mailboxes
        if (due & TICK) session.send('* OK Still here');
        if (session.closing) return this.#end(ok('IDLE terminated'));
        await session.flush();
      }
    } catch (err) {
      this.#finish();
      this.#fail(err);
    } finally {
      this.#busy = false;
    }
  }

  /** Reads the line that ends IDLE: DONE, or a command to run next. */
  async #done(): Promise<Outcome> {
    const session = this.#session;
    const bytes = await session.reader.readLine();
    if (bytes === null) return { ...bad('IDLE ended without DONE'), close: true };
    if (decoder.decode(bytes).trim().toUpperCase() !== 'DONE') session.reader.unreadLine(bytes);
    return ok('IDLE terminated');
  }

  #end(outcome: Outcome): void {
    this.#finish();
    this.#settle(outcome);
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#session.restoreIdleTimeout();
    this.#session.watchChanges(null);
    keepAlives(this.#session.app).delete(this);
  }
}

/**
 * The keep-alive ticker of one app's IDLE sessions: one timer for all of them, running only while some idle, that
 * wakes each every `imap.idleRestartSeconds`.
 */
class KeepAlives {
  readonly #idlers = new Set<Idler>();
  readonly #everyMs: number;
  #timer: ReturnType<typeof setInterval> | null = null;

  constructor(everyMs: number) {
    this.#everyMs = everyMs;
  }

  add(idler: Idler): void {
    this.#idlers.add(idler);
    if (this.#timer) return;
    this.#timer = setInterval(() => {
      for (const each of this.#idlers) each.tick();
    }, this.#everyMs);
    (this.#timer as { unref?: () => void }).unref?.();
  }

  delete(idler: Idler): void {
    this.#idlers.delete(idler);
    if (this.#idlers.size > 0 || !this.#timer) return;
    clearInterval(this.#timer);
    this.#timer = null;
  }
}

const tickers = new WeakMap<App, KeepAlives>();

function keepAlives(app: App): KeepAlives {
  let ticker = tickers.get(app);
  if (!ticker) tickers.set(app, (ticker = new KeepAlives(app.config.imap.idleRestartSeconds * 1000)));
  return ticker;
}
