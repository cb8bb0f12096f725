/**
 * APPEND (RFC 3501 §6.3.11, UIDPLUS `[APPENDUID]`, APPENDLIMIT `[TOOBIG]` of RFC 7889, `UTF8 (~{n})` of
 * RFC 6855). The reader has already refused an oversized literal before reading it; a small message was read into
 * memory, a large one is read from the socket while storeMessage (the one way messages get into a mailbox) parses
 * it (literal-stream.ts: memory-bounded, nothing stored before its last byte and the end of its line arrived).
 */
import { storeMessage } from '../../hooks/pipeline/index.ts';
import { flagList } from './args.ts';
import { AUTHENTICATED, command } from './command.ts';
import { parseDateTime } from './render.ts';
import { no, ok, verdictOutcome } from './responses.ts';
import { InputEndedError } from './input.ts';
import { ImapSyntaxError } from './types.ts';
import type { LiteralBody } from './types.ts';

export const append = command({
  name: 'APPEND',
  states: AUTHENTICATED,
  parse(args, session) {
    const path = args.mailbox(session.utf8);
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
    if (token.type === 'atom' && token.value.toUpperCase() === 'UTF8') {
      const inner = args.next('UTF8 message');
      if (inner.type !== 'list' || inner.items.length !== 1) throw new ImapSyntaxError('Invalid UTF8 message');
      token = inner.items[0]!;
    }
    if (token.type !== 'literal') throw new ImapSyntaxError('The message must be a literal');
    args.end();
    const body: LiteralBody = token.body;
    return { path, flags, internalDate, body };
  },
  async run(session, { path, flags, internalDate, body }, ctx) {
    const mailbox = await session.app.storage.mailboxes.getByPath(session.userId, path);
    if (!mailbox) return no('No such mailbox', 'TRYCREATE');
    if (body.size === 0) return no('Empty message', 'CANNOT');
    const result = await storeMessage(session.app, ctx, {
      userId: session.userId,
      mailboxId: mailbox.id,
      flags,
      internalDate: internalDate ?? Date.now(),
      source: body.stream(),
      declaredSize: body.size,
    });
    if (!result.ok) {
      // a message read while the command ran (literal-stream.ts): a syntax error after it, or the client gone
      const failure = body.failure?.() ?? null;
      if (failure instanceof ImapSyntaxError) throw failure;
      if (failure instanceof InputEndedError) return no('Connection closed inside the message literal');
      return verdictOutcome(result.verdict, { target: true });
    }
    if (session.selected?.mailbox.id === mailbox.id) await session.selected.sync(true);
    return ok('APPEND completed', `APPENDUID ${result.value.uidValidity} ${result.value.uid}`);
  },
});
