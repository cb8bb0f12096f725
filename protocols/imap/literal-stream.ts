/**
 * APPEND's message literal read while the command runs, instead of before: the reader hands the command over as soon
 * as the literal is announced (and, for `{n}`, the continuation request sent), and the message streams from the
 * socket into ingest (parse, hashing, blob staging) as it arrives. A large message is then neither written to a spool
 * file and read back nor held whole in memory, and its parse overlaps its reception.
 *
 * `stream()` reads the rest of the line right after the last byte of the message. An empty rest ends the command; a
 * non-empty one is more of the command (MULTIAPPEND's further messages, RFC 3502): the reader reads it to the end of
 * the command (`continueCommand`, further literals in memory or spooled) and the command takes the tokens
 * (`whenTail`) before the stream ends, so its first message is not stored before the command is known to be whole.
 * A syntax error there fails the stream inside ingest, before anything is stored, and the command answers BAD
 * (`failure()`). The reader's clean-up (`drain()`) discards what the command did not read (a mailbox that does not
 * exist, a refusal before the message was read) and the rest of the command, so the next command starts at the right
 * byte. The command budget keeps running until the command's end has arrived (the reader leaves it running).
 */
import { VerdictError, tempfail } from '../../hooks/verdict.ts';
import type { CommandBudget } from '../net/command-budget.ts';
import { InputEndedError } from './input.ts';
import type { InputBuffer } from './input.ts';
import { ImapSyntaxError } from './types.ts';
import type { ImapToken, LiteralBody } from './types.ts';

export class StreamedLiteral implements LiteralBody {
  readonly size: number;
  readonly #input: InputBuffer;
  readonly #budget: CommandBudget | null;
  /** Most bytes the rest of the line may have. */
  readonly #maxTail: number;
  #left: number;
  #started = false;
  /** The line after the literal was read (whatever it held). */
  #tailRead = false;
  #failure: Error | null = null;
  /** Reads the rest of the command from the line after the message (the reader's continuation). */
  readonly #continueCommand: (line: Uint8Array) => Promise<ImapToken[]>;
  /** The command's taker of the rest of its arguments (null: the command ended with the message). */
  #onTail: ((rest: ImapToken[] | null) => Promise<void> | void) | null = null;

  constructor(
    input: InputBuffer,
    size: number,
    maxTail: number,
    budget: CommandBudget | null,
    continueCommand: (line: Uint8Array) => Promise<ImapToken[]>,
  ) {
    this.#input = input;
    this.size = size;
    this.#left = size;
    this.#maxTail = maxTail;
    this.#budget = budget;
    this.#continueCommand = continueCommand;
  }

  /** Why reading the message failed: an ImapSyntaxError (answer BAD), an InputEndedError (the client left), or null. */
  failure(): Error | null {
    return this.#failure;
  }

  async *stream(): AsyncGenerator<Uint8Array> {
    if (this.#started) throw new Error('the message literal can be read once');
    this.#started = true;
    try {
      for await (const chunk of this.#input.read(this.#left)) {
        this.#left -= chunk.length;
        yield chunk;
      }
      await this.#tail();
    } catch (err) {
      if (err instanceof VerdictError) throw err;
      this.#failure ??= err as Error;
      // a verdict, so the pipeline answers without logging a server fault; the command answers from failure()
      throw new VerdictError(tempfail('UNAVAILABLE', (err as Error).message));
    }
  }

  /**
   * Called once the rest of the command has been read, before the stream ends: with its further arguments, or null
   * when the message ended the command. What it throws fails the stream (and so the command's store).
   */
  whenTail(handler: (rest: ImapToken[] | null) => Promise<void> | void): void {
    this.#onTail = handler;
  }

  /** Reads the rest of the command (see the header); `deliver`: hand it to the command (not when draining). */
  async #tail(deliver = true): Promise<void> {
    this.#tailRead = true;
    const rest = await this.#input.readLine(this.#maxTail);
    if (rest.type === 'end') throw new InputEndedError();
    try {
      if (rest.type === 'toolong') {
        this.#failure = new ImapSyntaxError('Command line too long');
        await this.#input.skipLine();
      } else {
        const tokens = rest.bytes.length > 0 ? await this.#continueCommand(rest.bytes) : null;
        if (deliver) await this.#onTail?.(tokens);
      }
    } catch (err) {
      if (this.#input.ended && !(err instanceof ImapSyntaxError)) throw new InputEndedError();
      this.#failure ??= err as Error;
    } finally {
      this.#budget?.stop();
    }
    if (this.#failure) throw this.#failure;
  }

  /** After the command: discards what it left unread of the message and the rest of its line. */
  async drain(): Promise<void> {
    try {
      if (this.#tailRead) return;
      this.#started = true;
      for await (const chunk of this.#input.read(this.#left)) this.#left -= chunk.length;
      await this.#tail(false).catch((err: unknown) => {
        if (err instanceof InputEndedError) throw err;
      });
    } finally {
      this.#budget?.stop();
    }
  }
}
