/**
 * APPEND's message literal read while the command runs, instead of before: the reader hands the command over as soon
 * as the literal is announced (and, for `{n}`, the continuation request sent), and the message streams from the
 * socket into ingest (parse, hashing, blob staging) as it arrives. A large message is then neither written to a spool
 * file and read back nor held whole in memory, and its parse overlaps its reception.
 *
 * The literal ends the command only when the rest of its line is empty (APPEND takes nothing after the message at the
 * top level): `stream()` reads that rest right after the last byte of the message, so a command with anything after
 * its literal fails inside ingest, before anything is stored, and the command answers BAD (`failure()`). The reader's
 * clean-up (`drain()`) discards what the command did not read (a mailbox that does not exist, a refusal before the
 * message was read) and that line's rest, so the next command starts at the right byte. The command budget keeps
 * running until the line's end has arrived (the reader leaves it running for the command).
 */
import { VerdictError, tempfail } from '../../hooks/verdict.ts';
import type { CommandBudget } from '../net/command-budget.ts';
import { InputEndedError } from './input.ts';
import type { InputBuffer } from './input.ts';
import { ImapSyntaxError } from './types.ts';
import type { LiteralBody } from './types.ts';

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
  /** The rest of the line when it was not empty (the reader skips what it announces). */
  leftover: Uint8Array | null = null;

  constructor(input: InputBuffer, size: number, maxTail: number, budget: CommandBudget | null) {
    this.#input = input;
    this.size = size;
    this.#left = size;
    this.#maxTail = maxTail;
    this.#budget = budget;
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

  /** Reads the rest of the command line: empty, or the command is refused before the message is stored. */
  async #tail(): Promise<void> {
    this.#tailRead = true;
    const rest = await this.#input.readLine(this.#maxTail);
    if (rest.type === 'end') throw new InputEndedError();
    this.#budget?.stop();
    if (rest.type === 'toolong') {
      this.#failure = new ImapSyntaxError('Command line too long');
      await this.#input.skipLine();
    } else if (rest.bytes.length > 0) {
      this.leftover = rest.bytes;
      this.#failure = new ImapSyntaxError('Unexpected data after the message literal');
    }
    if (this.#failure) throw this.#failure;
  }

  /** After the command: discards what it left unread of the message and the rest of its line. */
  async drain(): Promise<void> {
    try {
      if (this.#tailRead) return;
      this.#started = true;
      for await (const chunk of this.#input.read(this.#left)) this.#left -= chunk.length;
      await this.#tail().catch((err: unknown) => {
        if (!(err instanceof ImapSyntaxError)) throw err;
      });
    } finally {
      this.#budget?.stop();
    }
  }
}
