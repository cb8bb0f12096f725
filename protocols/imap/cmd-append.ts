/**
 * APPEND (RFC 3501 §6.3.11, UIDPLUS `[APPENDUID]`, APPENDLIMIT `[TOOBIG]` of RFC 7889, `UTF8 (~{n})` of
 * RFC 6855, literal8 `~{n}` of RFC 3516), with MULTIAPPEND (RFC 3502: several messages, all or none, APPENDUID with
 * a UID set) and CATENATE (RFC 4469: a message made of TEXT literals and URLs of the user's messages, catenate.ts).
 *
 * The reader has already refused an oversized literal before reading it; a small message was read into memory, a
 * large one is read from the socket while storeMessage (the one way messages get into a mailbox) parses it
 * (literal-stream.ts: memory-bounded, nothing stored before the command's last byte arrived). Every message goes
 * through the pipeline as one APPEND would; StoreBatch (hooks/pipeline/store-messages.ts) holds them after ingest
 * until all are ingested, then commits them in order, so one refused message stores none.
 */
import { StoreBatch } from '../../hooks/pipeline/index.ts';
import { deny } from '../../hooks/verdict.ts';
import { flagList, Args } from './args.ts';
import { CatenateRefusal, resolveCatenate } from './catenate.ts';
import type { CatenatePart } from './catenate.ts';
import { AUTHENTICATED, command } from './command.ts';
import { StreamedLiteral } from './literal-stream.ts';
import { AppendRefusal } from './reader.ts';
import { parseDateTime } from './render.ts';
import { no, ok, verdictOutcome } from './responses.ts';
import type { Outcome } from './responses.ts';
import { formatSequenceSet } from './sequence.ts';
import type { ImapSession } from './session.ts';
import { InputEndedError } from './input.ts';
import { ImapSyntaxError } from './types.ts';
import type { ImapToken, LiteralBody } from './types.ts';

/** One message of the command: a literal, or CATENATE parts. */
interface AppendMessage {
  flags: string[];
  internalDate: number | null;
  body: LiteralBody | null;
  catenate: CatenatePart[] | null;
}

/** `[flags] [date-time] (literal | UTF8 (literal) | CATENATE (parts))`, repeated until the arguments end. */
function parseMessages(args: Args, atLeastOne: boolean): AppendMessage[] {
  const messages: AppendMessage[] = [];
  if (atLeastOne && args.remaining === 0) throw new ImapSyntaxError('Missing message literal');
  while (args.remaining > 0) {
    let flags: string[] = [];
    let internalDate: number | null = null;
    let token = args.next('message literal');
    if (token.type === 'list') {
      flags = flagList(token.items).filter((f) => f !== '\\Recent');
      token = args.next('message literal');
    }
    if (token.type === 'string' && !token.literal) {
      internalDate = parseDateTime(token.value);
      token = args.next('message literal');
    }
    const keyword = token.type === 'atom' ? token.value.toUpperCase() : '';
    if (keyword === 'CATENATE') {
      messages.push({ flags, internalDate, body: null, catenate: catenateParts(args.next('CATENATE parts')) });
      continue;
    }
    if (keyword === 'UTF8') {
      const inner = args.next('UTF8 message');
      if (inner.type !== 'list' || inner.items.length !== 1) throw new ImapSyntaxError('Invalid UTF8 message');
      token = inner.items[0]!;
    }
    messages.push({ flags, internalDate, body: literalBody(token, 'The message must be a literal'), catenate: null });
  }
  return messages;
}

/** The message literal as the reader delivered it (large: a stream; before login's limits: a string literal). */
function literalBody(token: ImapToken, error: string): LiteralBody {
  if (token.type === 'literal') return token.body;
  if (token.type === 'string' && token.literal) {
    const bytes = token.bytes;
    return { size: bytes.length, stream: async function* () { yield bytes; } };
  }
  throw new ImapSyntaxError(error);
}

function catenateParts(token: ImapToken): CatenatePart[] {
  if (token.type !== 'list' || token.items.length === 0 || token.items.length % 2 !== 0) throw new ImapSyntaxError('Invalid CATENATE parts');
  const parts: CatenatePart[] = [];
  for (let i = 0; i < token.items.length; i += 2) {
    const kind = token.items[i]!;
    const value = token.items[i + 1]!;
    const name = kind.type === 'atom' ? kind.value.toUpperCase() : '';
    if (name === 'TEXT') parts.push({ type: 'text', body: literalBody(value, 'CATENATE TEXT must be a literal') });
    else if (name === 'URL' && (value.type === 'string' || (value.type === 'atom' && !value.section))) parts.push({ type: 'url', url: value.value });
    else throw new ImapSyntaxError('Invalid CATENATE part');
  }
  return parts;
}

/** A message of the command that cannot be stored (answered NO before anything is stored). */
class Refused extends Error {
  readonly outcome: Outcome;
  constructor(outcome: Outcome) {
    super(outcome.text);
    this.outcome = outcome;
  }
}

export const append = command({
  name: 'APPEND',
  states: AUTHENTICATED,
  parse(args, session) {
    const path = args.mailbox(session.utf8);
    return { path, messages: parseMessages(args, true) };
  },
  async run(session, { path, messages }, ctx) {
    const mailbox = await session.app.storage.mailboxes.getByPath(session.userId, path);
    if (!mailbox) return no('No such mailbox', 'TRYCREATE');
    const batch = new StoreBatch(session.app, ctx);
    // a message read while the command runs ends the tokens so far: the rest of the command arrives after it
    const last = messages[messages.length - 1]!.body;
    const streamed = last instanceof StreamedLiteral ? last : null;
    let tailRead = false;
    const add = async (list: readonly AppendMessage[]): Promise<void> => {
      for (const message of list) {
        const input = await storeInput(session, mailbox.id, message);
        // a message.prepare tap that dropped the streamed message unread: the rest of the command is not known
        const ingested = streamed && message.body === streamed ? () => void (tailRead || batch.abort(deny('CANNOT', 'The message was not read'))) : undefined;
        batch.add(input, ingested);
      }
    };
    streamed?.whenTail(async (rest) => {
      tailRead = true;
      if (rest) await add(parseMessages(new Args(rest), true));
      batch.close();
    });
    try {
      await add(messages);
    } catch (err) {
      if (!(err instanceof Refused)) throw err;
      batch.abort(deny('CANNOT', err.message));
      await batch.finish();
      return err.outcome;
    }
    if (!streamed) batch.close();
    const result = await batch.finish();
    if (!result.ok) {
      // the rest of a command read while it ran: a syntax error, a refused message, or the client gone
      const failure = streamed?.failure() ?? null;
      if (failure instanceof ImapSyntaxError) throw failure;
      if (failure instanceof Refused) return failure.outcome;
      if (failure instanceof AppendRefusal) return no(failure.message, failure.code);
      if (failure instanceof InputEndedError) return no('Connection closed inside the message literal');
      return verdictOutcome(result.verdict, { target: true });
    }
    if (session.selected?.mailbox.id === mailbox.id) await session.selected.sync(true);
    const uids = result.value.map((stored) => stored.uid);
    return ok('APPEND completed', `APPENDUID ${result.value[0]!.uidValidity} ${formatSequenceSet(uids, { sort: false })}`);
  },
});

/** One message as storeMessage takes it: its literal, or its CATENATE parts resolved (URLs read on demand). */
async function storeInput(session: ImapSession, mailboxId: string, message: AppendMessage) {
  const maxSize = session.app.config.limits.maxMessageSize;
  let source: AsyncIterable<Uint8Array>;
  let size: number;
  if (message.catenate) {
    try {
      const built = await resolveCatenate(session, message.catenate, maxSize);
      source = built.stream();
      size = built.size;
    } catch (err) {
      if (err instanceof CatenateRefusal) throw new Refused(no(err.message, err.code));
      throw err;
    }
  } else {
    source = message.body!.stream();
    size = message.body!.size;
  }
  if (size === 0) throw new Refused(no('Empty message', 'CANNOT'));
  return {
    userId: session.userId,
    mailboxId,
    flags: message.flags,
    internalDate: message.internalDate ?? Date.now(),
    source,
    declaredSize: size,
  };
}
