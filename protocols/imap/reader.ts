/**
 * The IMAP command reader: pulls whole commands (tag, verb, argument tokens, literals) out of the socket's
 * byte stream, enforcing every limit while reading, before anything is buffered:
 *
 * - a command line (all its line segments together) longer than `maxLineLength` → BAD, then the session closes
 *   (the rest of an endless line is never read);
 * - a literal outside APPEND larger than `maxLiteralSize` (all of a command's literals together) → BAD without
 *   the continuation request; a non-synchronizing one (`{n+}`) cannot be skipped unread → BAD and close;
 * - APPEND's message literal larger than `maxAppendSize` → `NO [TOOBIG]` before a single byte of it is read; the
 *   messages of one APPEND (MULTIAPPEND, CATENATE parts) together past APPEND_TOTAL_FACTOR × `maxAppendSize` the same
 *   (no continuation for `{n}`; close for `{n+}`, so a 1 GB announcement is never read).
 *
 * With `literalMinus` (RFC 7888 LITERAL-) a non-synchronizing literal may be at most 4096 bytes; a larger one is
 * answered `BAD [TOOBIG]` (§4), whatever the command. Like the literal of any other refused command (see
 * `#skipTail`), it is read and discarded when it is within `maxLiteralSize`, so the session goes on; a larger
 * one is not read and the session closes.
 *
 * Before the continuation request or a single byte of any literal, the command's state is checked
 * (`literalPolicy`): a verb that is not allowed in the session's state (APPEND before login) is answered without
 * `+` (synchronizing: the client sends nothing more, the session goes on); for a non-synchronizing one (`{n+}`)
 * the bytes are on their way, and RFC 7888 leaves the server two ways out: read and discard them, or close. They
 * are discarded when within the state's literal limit (a few KB before login, `imap.maxPreAuthLiteralSize`) and
 * the session closes otherwise, so an unauthenticated client never gets a large body read or spooled. Before login
 * every literal is also held to that small limit (LOGIN's credentials need no more).
 *
 * Every command must arrive within its time budget (protocols/net/command-budget.ts), from its first byte to its
 * last, literals included; past it `onCommandTimeout` says goodbye and ends the input.
 *
 * APPEND's message literal is delivered as `{ type: 'literal', body }`: kept in memory up to
 * `memoryThreshold`, otherwise spooled to a temp file in `spoolDir` (storage/spool.ts), removed once `release()`
 * was called after the command.
 * `readLine` gives raw lines for IDLE's DONE and AUTHENTICATE continuations.
 */
import { Spool } from '../../storage/spool.ts';
import { InputBuffer } from './input.ts';
import { StreamedLiteral } from './literal-stream.ts';
import type { LineResult } from './input.ts';
import { CommandTokenizer } from './tokenizer.ts';
import type { CommandBudget } from '../net/command-budget.ts';
import type { LiteralRequest } from './tokenizer.ts';
import { ImapSyntaxError } from './types.ts';
import type { ImapCommand, ImapToken, LiteralBody } from './types.ts';

export interface ReaderOptions {
  maxLineLength: number;
  /** Most tokens in one command (imap.maxArguments): BAD [LIMIT] beyond it. */
  maxArguments?: number;
  maxLiteralSize: number;
  /** Largest APPEND message literal (limits.maxMessageSize). */
  maxAppendSize: number;
  /** Directory for spooled APPEND literals (`<dataDir>/tmp`). */
  spoolDir: string;
  /** APPEND literals up to this size stay in memory. */
  memoryThreshold?: number;
  /** RFC 7888 LITERAL-: refuse non-synchronizing literals over 4096 bytes (LITERAL+ when false). */
  literalMinus?: boolean;
  /** Writes the continuation request for a synchronizing literal. */
  continuation(): Promise<void>;
  /**
   * Asked when a command announces a literal, before anything of it is read: a refusal for a verb not allowed now
   * (answered instead of the continuation), and the literal limit for the session's state.
   */
  literalPolicy?(verb: string | null): LiteralPolicy;
  /** Time budget per command (and per raw line), counted from its first byte. */
  budget?: CommandBudget | null;
}

export interface LiteralPolicy {
  refuse?: { status: 'BAD' | 'NO'; code: string | null; text: string } | null;
  /** Overrides maxLiteralSize (all literals of the command, APPEND's message included). */
  maxLiteralSize?: number;
}

export type ReadResult =
  | { type: 'command'; command: ImapCommand; release(): Promise<void> }
  /** Refused before (or while) reading it: answer `tag status [code] text`; `close` ends the session. */
  | { type: 'reject'; tag: string | null; verb: string | null; status: 'BAD' | 'NO'; code: string | null; text: string; close: boolean }
  | { type: 'end' };

const TAG = /^[\x21\x23-\x24\x26-\x27\x2c-\x5b\x5d-\x7a\x7c-\x7e]+$/; // ASTRING-CHAR minus "+"
const VERB = /^[A-Za-z][A-Za-z0-9.-]*$/;
const CRLF = new Uint8Array([0x0d, 0x0a]);
const DEFAULT_MEMORY_THRESHOLD = 128 * 1024;
/** The message literals of one APPEND (MULTIAPPEND, CATENATE) may add up to this many times maxAppendSize. */
export const APPEND_TOTAL_FACTOR = 10;
/** RFC 7888 §4: the largest non-synchronizing literal a LITERAL- server accepts. */
export const LITERAL_MINUS_MAX = 4096;

class Rejected extends Error {
  readonly status: 'BAD' | 'NO';
  readonly code: string | null;
  readonly close: boolean;
  /** The rest of the command (a non-synchronizing literal and what follows) is discarded, or the session closes. */
  readonly skip: boolean;
  constructor(status: 'BAD' | 'NO', code: string | null, text: string, close: boolean, skip = false) {
    super(text);
    this.status = status;
    this.code = code;
    this.close = close;
    this.skip = skip;
  }
}

export class CommandReader {
  readonly input: InputBuffer;
  readonly #options: ReaderOptions;

  constructor(input: InputBuffer, options: ReaderOptions) {
    this.input = input;
    this.#options = options;
  }

  /** A raw line (IDLE's DONE, an AUTHENTICATE response). `null` when the connection ended or the line is too long. */
  async readLine(): Promise<Uint8Array | null> {
    if (!(await this.#firstByte())) return null;
    try {
      const line = await this.input.readLine(this.#options.maxLineLength);
      return line.type === 'line' ? line.bytes : null;
    } finally {
      this.#options.budget?.stop();
    }
  }

  /** Waits for input, then starts the command budget; false at the end of input. */
  async #firstByte(): Promise<boolean> {
    if (!(await this.input.waitForData())) return false;
    this.#options.budget?.start();
    return true;
  }

  /** Puts a raw line back so the next `readCommand` parses it (a command sent instead of DONE). */
  unreadLine(line: Uint8Array): void {
    const bytes = new Uint8Array(line.length + 2);
    bytes.set(line, 0);
    bytes.set(CRLF, line.length);
    this.input.unshift(bytes);
  }

  /** The next complete command; empty lines are skipped. */
  async readCommand(): Promise<ReadResult> {
    this.#streaming = false;
    try {
      return await this.#readCommand();
    } finally {
      if (!this.#streaming) this.#options.budget?.stop();
    }
  }

  /** The command read last ends with a message literal read while it runs (it stops the budget). */
  #streaming = false;

  /** Bytes of the current APPEND's message literals so far, and of those kept in memory. */
  #appendBytes = 0;
  #appendMemory = 0;

  async #readCommand(): Promise<ReadResult> {
    const { maxLineLength } = this.#options;
    this.#appendBytes = this.#appendMemory = 0;
    this.#literalLimit = Math.min(this.#options.maxLiteralSize, this.#options.literalPolicy?.(null).maxLiteralSize ?? Infinity);
    let first: LineResult;
    do {
      this.#options.budget?.stop();
      if (!(await this.#firstByte())) return { type: 'end' };
      first = await this.input.readLine(maxLineLength);
    } while (first.type === 'line' && first.bytes.length === 0);
    if (first.type === 'end') return { type: 'end' };
    if (first.type === 'toolong') return reject(null, null, 'BAD', null, 'Command line too long', true);

    const line = first.bytes;
    const head = /^([^ ]*)(?: ([^ ]*))?/.exec(latin1(line.subarray(0, 200)))!;
    const tag = head[1]!;
    if (!TAG.test(tag)) return this.#skip(line, reject(null, null, 'BAD', null, 'Invalid tag', false));
    let verb = head[2] ?? '';
    if (!VERB.test(verb)) return this.#skip(line, reject(tag, null, 'BAD', null, verb ? 'Invalid command' : 'Missing command', false));
    let offset = tag.length + 1 + verb.length;
    verb = verb.toUpperCase();
    if (verb === 'UID') {
      const sub = /^ ([A-Za-z]+)/.exec(latin1(line.subarray(offset, offset + 40)));
      if (!sub) return this.#skip(line, reject(tag, null, 'BAD', null, 'Missing UID command', false));
      verb = `UID ${sub[1]!.toUpperCase()}`;
      offset += sub[0].length;
    }
    const releases: Array<() => Promise<void>> = [];
    try {
      const args = await this.#arguments(verb, line, offset, releases);
      // a method, not a named arrow: under tsx (esbuild keepNames) that would get a property table per command
      return {
        type: 'command',
        command: { tag, verb, args },
        release() {
          return releaseAll(releases);
        },
      };
    } catch (err) {
      await releaseAll(releases);
      if (err instanceof Rejected) {
        const result = reject(tag, verb, err.status, err.code, err.message, err.close);
        return err.skip ? this.#skipTail(result) : result;
      }
      if (err instanceof ImapSyntaxError) return this.#skipTail(reject(tag, verb, 'BAD', err.code, err.message, false));
      if (this.input.ended) return { type: 'end' };
      throw err;
    }
  }

  /** The line being parsed when a syntax error was found, for `#skipTail`. */
  #current: Uint8Array | null = null;
  /** The current command's literal limit: the most `#skipTail` reads and discards. */
  #literalLimit = 0;

  /**
   * The arguments of a command from `first` (at `offset`) on. `continued`: the rest of an APPEND after a message read
   * while the command runs (MULTIAPPEND, RFC 3502): every top-level literal is a message, and none streams.
   */
  async #arguments(verb: string, first: Uint8Array, offset: number, releases: Array<() => Promise<void>>, continued = false): Promise<ImapToken[]> {
    const { maxLineLength } = this.#options;
    let maxLiteralSize = this.#literalLimit;
    const tokenizer = new CommandTokenizer({ maxTokens: this.#options.maxArguments ?? Infinity });
    let line = first;
    let lineBytes = first.length;
    let literalBytes = 0;
    for (;;) {
      this.#current = line;
      const literal = tokenizer.feed(line, offset);
      if (!literal) {
        const tokens = tokenizer.finish();
        this.#current = null; // not held while the command runs (an IDLE may run for hours)
        return tokens;
      }
      this.#current = null;
      const policy = this.#options.literalPolicy?.(verb);
      if (policy?.maxLiteralSize !== undefined) this.#literalLimit = maxLiteralSize = Math.min(maxLiteralSize, policy.maxLiteralSize);
      if (policy?.refuse) {
        // no continuation; a non-synchronizing literal is discarded when small, else the session closes
        this.#current = line;
        throw new Rejected(policy.refuse.status, policy.refuse.code, policy.refuse.text, false, true);
      }
      const restricted = policy?.maxLiteralSize !== undefined;
      if (!literal.sync && this.#options.literalMinus && literal.size > LITERAL_MINUS_MAX) {
        this.#current = line; // #skipTail discards the literal (or closes when it is too large to skip)
        throw new ImapSyntaxError(`Non-synchronizing literals are limited to ${LITERAL_MINUS_MAX} bytes (LITERAL-)`, 'TOOBIG');
      }
      if (isAppendMessage(verb, tokenizer, continued) && !restricted) {
        const streams = tokenizer.depth === 0 && !continued;
        const message = await this.#appendLiteral(literal, streams ? maxLineLength - lineBytes : null, releases);
        tokenizer.pushLiteral(message);
        // read while the command runs: the command ends with it (literal-stream.ts checks the rest of the line)
        if (message.type === 'literal' && message.body instanceof StreamedLiteral) return tokenizer.finish();
      } else {
        if (literalBytes + literal.size > maxLiteralSize) {
          throw new Rejected('BAD', literal.sync ? null : 'TOOBIG', 'Literal too large', !literal.sync);
        }
        literalBytes += literal.size;
        if (literal.sync) await this.#options.continuation();
        const bytes = await this.input.readBytes(literal.size);
        if (!literal.binary && bytes.includes(0)) {
          const rest = await this.input.readLine(maxLineLength - lineBytes);
          this.#current = rest.type === 'line' ? rest.bytes : null;
          throw new ImapSyntaxError('NUL in literal');
        }
        tokenizer.pushLiteral(literal.binary ? binaryString(bytes) : { type: 'string', value: decodeLoose(bytes), bytes, literal: true });
      }
      const next = await this.input.readLine(maxLineLength - lineBytes);
      if (next.type === 'end') throw new Error('connection closed');
      if (next.type === 'toolong') throw new Rejected('BAD', null, 'Command line too long', true);
      line = next.bytes;
      lineBytes += line.length;
      offset = 0;
    }
  }

  /**
   * APPEND's message: in memory up to `memoryThreshold`; a larger one at the top level (`maxTail`: what the rest of
   * its line may hold) is read while the command runs (literal-stream.ts), and inside `UTF8 (...)` spooled to a file.
   */
  async #appendLiteral(literal: LiteralRequest, maxTail: number | null, releases: Array<() => Promise<void>>): Promise<ImapToken> {
    const { maxAppendSize, spoolDir } = this.#options;
    if (literal.size > maxAppendSize) {
      throw new Rejected('NO', 'TOOBIG', `Message exceeds the maximum size of ${maxAppendSize} bytes`, !literal.sync);
    }
    if (this.#appendBytes + literal.size > maxAppendSize * APPEND_TOTAL_FACTOR) {
      throw new Rejected('NO', 'TOOBIG', `The messages of one APPEND exceed ${maxAppendSize * APPEND_TOTAL_FACTOR} bytes together`, !literal.sync);
    }
    this.#appendBytes += literal.size;
    if (literal.sync) await this.#options.continuation();
    // in memory while the command's messages together stay under the threshold (a MULTIAPPEND of many small ones)
    const threshold = this.#options.memoryThreshold ?? DEFAULT_MEMORY_THRESHOLD;
    if (literal.size <= threshold && (this.#appendMemory === 0 || this.#appendMemory + literal.size <= threshold)) {
      this.#appendMemory += literal.size;
      const bytes = await this.input.readBytes(literal.size);
      return { type: 'literal', body: memoryBody(bytes) };
    }
    if (maxTail !== null) {
      const body = new StreamedLiteral(this.input, literal.size, maxTail, this.#options.budget ?? null, (line) => this.#continueAppend(line, releases));
      this.#streaming = true; // the command budget runs on until the literal's line has arrived
      releases.push(() => body.drain());
      return { type: 'literal', body };
    }
    // larger than the memory threshold: straight to a file (storage/spool.ts writes behind the input)
    const spool = new Spool({ dir: spoolDir, memoryLimit: 0 });
    // removed in the background: the next command need not wait for the file system
    releases.push(async () => void spool.dispose());
    try {
      for await (const chunk of this.input.read(literal.size)) await spool.write(chunk);
      await spool.finish();
    } catch (err) {
      if (this.input.ended) throw err;
      throw new Rejected('NO', 'SERVERBUG', 'Could not receive the message, try again later', true);
    }
    return { type: 'literal', body: { size: literal.size, stream: () => spool.open() } };
  }

  /**
   * The rest of an APPEND whose first message was read while the command ran, from the line that followed that
   * message: more messages (MULTIAPPEND), read as any APPEND message (in memory or spooled, each within
   * maxAppendSize). On a client error the rest of the command is skipped and the error thrown; a refusal that cannot
   * skip what the client sends (a non-synchronizing literal too large to read) ends the input (the session closes
   * after its answer).
   */
  async #continueAppend(line: Uint8Array, releases: Array<() => Promise<void>>): Promise<ImapToken[]> {
    try {
      return await this.#arguments('APPEND', line, 0, releases, true);
    } catch (err) {
      if (this.input.ended) throw err;
      if (err instanceof Rejected) {
        const result = await (err.skip ? this.#skipTail(reject(null, null, err.status, err.code, err.message, err.close)) : reject(null, null, err.status, err.code, err.message, err.close));
        if (result.type === 'end' || (result.type === 'reject' && result.close)) {
          this.input.clear();
          this.input.end();
        }
        throw err.status === 'NO' ? new AppendRefusal(err.code, err.message) : new ImapSyntaxError(err.message, err.code);
      }
      if (err instanceof ImapSyntaxError) {
        const result = await this.#skipTail(reject(null, null, 'BAD', null, err.message, false));
        if (result.type === 'end' || (result.type === 'reject' && result.close)) {
          this.input.clear();
          this.input.end();
        }
      }
      throw err;
    }
  }

  /** After a syntax error in the first line: nothing of the command was consumed beyond that line. */
  async #skip(line: Uint8Array, result: ReadResult): Promise<ReadResult> {
    this.#current = line;
    return this.#skipTail(result);
  }

  /**
   * After a syntax error the rest of the command is dropped. A line that ended in a non-synchronizing literal
   * is followed by that literal and another line segment, which are skipped too (or the session closes when
   * the literal is too large to skip).
   */
  async #skipTail(result: ReadResult): Promise<ReadResult> {
    let line = this.#current;
    this.#current = null;
    while (line) {
      const match = /\{(\d{1,12})\+\}$/.exec(latin1(line.subarray(Math.max(0, line.length - 16))));
      if (!match) break;
      const size = Number(match[1]);
      if (size > this.#literalLimit) return result.type === 'reject' ? { ...result, close: true } : result;
      for await (const _chunk of this.input.read(size)) {
        // discarded
      }
      const next = await this.input.readLine(this.#options.maxLineLength);
      if (next.type !== 'line') return next.type === 'end' ? { type: 'end' } : result.type === 'reject' ? { ...result, close: true } : result;
      line = next.bytes;
    }
    return result;
  }
}

/** Runs a command's clean-ups (spooled literals). */
async function releaseAll(releases: Array<() => Promise<void>>): Promise<void> {
  // a clean-up may add others (the rest of an APPEND read while draining its first message)
  while (releases.length > 0) for (const r of releases.splice(0)) await r().catch(() => {});
}

function reject(tag: string | null, verb: string | null, status: 'BAD' | 'NO', code: string | null, text: string, close: boolean): ReadResult {
  return { type: 'reject', tag, verb, status, code, text, close };
}

/**
 * APPEND's messages are the literals after the mailbox name at top level (several with MULTIAPPEND, RFC 3502), inside
 * `UTF8 (...)` (RFC 6855), and the TEXT parts of `CATENATE (...)` (RFC 4469).
 */
function isAppendMessage(verb: string, tokenizer: CommandTokenizer, continued: boolean): boolean {
  if (verb !== 'APPEND') return false;
  const root = tokenizer.root;
  if (tokenizer.depth === 0) return continued || root.length >= 1;
  if (tokenizer.depth === 1) {
    const before = root[root.length - 1];
    const opener = before?.type === 'atom' ? before.value.toUpperCase() : '';
    if (opener === 'UTF8') return tokenizer.current.length === 0;
    if (opener === 'CATENATE') {
      const last = tokenizer.current[tokenizer.current.length - 1];
      return last?.type === 'atom' && last.value.toUpperCase() === 'TEXT';
    }
  }
  return false;
}

/** A refusal (NO) of the message literals of an APPEND's continuation (too large: `[TOOBIG]`). */
export class AppendRefusal extends Error {
  readonly code: string | null;
  constructor(code: string | null, message: string) {
    super(message);
    this.code = code;
  }
}

function latin1(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return s;
}

const loose = new TextDecoder('utf-8');

function decodeLoose(bytes: Uint8Array): string {
  return loose.decode(bytes);
}

function binaryString(bytes: Uint8Array): ImapToken {
  return { type: 'string', value: decodeLoose(bytes), bytes, literal: true };
}

function memoryBody(bytes: Uint8Array): LiteralBody {
  return {
    size: bytes.length,
    stream: async function* () {
      yield bytes;
    },
  };
}
