/**
 * Fuzz targets for fast-check (property-based, so one definition runs under `node:test`, `deno test` and the
 * longer `npm run fuzz`). Each target is a property over generated client input; the properties are:
 *
 * - no throw outside the target's documented error (ImapSyntaxError, QueryError, AddressError, a rejected reply…);
 * - byte-exact round trips where the code promises one (MIME ingest → reassembly, modified UTF-7, dot-stuffing,
 *   the line reader's framing);
 * - bounded output (memory): what a parser keeps is bounded by its input and limits.
 *
 * Linear time is checked separately (test/fuzz/linearity.ts). Seeds come from test/fixtures (the .eml corpus) and
 * from SEEDS_* below (real client lines), mutated by the generators.
 */
import fc from 'fast-check';
import { Buffer } from 'node:buffer';
import { PassThrough } from 'node:stream';
import { CommandTokenizer } from '../../protocols/imap/tokenizer.ts';
import { CommandReader } from '../../protocols/imap/reader.ts';
import { InputBuffer, InputEndedError } from '../../protocols/imap/input.ts';
import { Args } from '../../protocols/imap/args.ts';
import { COMMANDS } from '../../protocols/imap/commands.ts';
import type { ImapSession } from '../../protocols/imap/session.ts';
import { parseSearch } from '../../protocols/imap/search.ts';
import { decodeModifiedUtf7, encodeModifiedUtf7 } from '../../protocols/imap/render.ts';
import { ImapSyntaxError } from '../../protocols/imap/types.ts';
import type { ImapToken } from '../../protocols/imap/types.ts';
import { parseQuery, QueryError } from '../../protocols/http/search-query.ts';
import { LineReader } from '../../protocols/net/line-reader.ts';
import { parsePath, splitCommand } from '../../protocols/lmtp/syntax.ts';
import { decodePlain } from '../../protocols/pop3/sasl.ts';
import { DotUnstuffer, dotStuff } from '../../protocols/net/dot-stuffing.ts';
import { ingestMessage, readAll, readMessage } from '../../storage/mime/index.ts';
import { AddressError, normalizeAddress } from '../../storage/addresses.ts';
import { MemoryBlobs } from '../helpers/memory-blobs.ts';
import { fixture, fixtureNames } from '../helpers/mime-fixtures.ts';

export interface FuzzTarget {
  readonly name: string;
  /** Share of the run budget (1 = the default number of runs). */
  readonly weight?: number;
  /** A finding this target reproduces that is fixed elsewhere (another part of issue 9): reported, not failed. */
  readonly knownIssue?: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- each target has its own argument tuple
  property(): fc.IRawProperty<any, boolean>;
}

const enc = new TextEncoder();
const bytes = (s: string) => enc.encode(s);

/** Real client lines, mutated by the generators (seed corpus for the command parsers). */
export const SEEDS_IMAP = [
  'a1 LOGIN alice "secret pass"',
  'a2 SELECT INBOX (CONDSTORE)',
  'a3 UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From To Subject)]<0.100> BINARY.PEEK[1.2] MODSEQ) (CHANGEDSINCE 12)',
  'a4 SEARCH CHARSET UTF-8 OR (FROM "bob" SUBJECT hi) NOT (SEEN LARGER 1000) SENTSINCE 1-Jan-2020 UID 1,3:5,*',
  'a5 STORE 1:3 +FLAGS.SILENT (\\Seen \\Flagged $Junk)',
  'a6 LIST "" "*"',
  'a7 LIST (SUBSCRIBED) "" ("INBOX" "Sent*") RETURN (STATUS (MESSAGES UNSEEN))',
  'a8 APPEND Drafts (\\Draft) "01-Jan-2024 10:00:00 +0000" {5+}',
  'a9 CREATE "&ZeVnLIqe-/Sub"',
  'b1 ID ("name" "fuzz" "version" NIL)',
  'b2 UID EXPUNGE 4:7',
  'b3 COPY 1:* Trash',
  'b4 ENABLE QRESYNC UTF8=ACCEPT',
  'b5 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))',
  'b6 STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ SIZE)',
  'b7 SEARCH HEADER X-Test "a b" YOUNGER 3600 MODSEQ "/flags/\\\\draft" all 620162338',
];
export const SEEDS_LINE = ['LHLO mx.example', 'MAIL FROM:<a@b.example> SIZE=100 BODY=8BITMIME', 'RCPT TO:<alice+tag@example.com>', 'DATA', 'USER alice', 'PASS x y', 'AUTH PLAIN AGFsaWNlAHNlY3JldA==', 'TOP 1 10', 'QUIT'];
export const SEEDS_Q = ['from:bob subject:"weekly report" -is:seen has:attachment larger:10M', 'in:Sent before:2024-01-01 after:2023-06-01 hello world', '-"quoted phrase" to:carol is:flagged smaller:100k'];

/** One of the seeds with a few random edits (insert, delete, replace, duplicate a slice): structure-aware input. */
export function mutated(seeds: readonly string[], alphabet: fc.Arbitrary<string>): fc.Arbitrary<string> {
  const edit = fc.tuple(fc.nat(), fc.nat({ max: 16 }), fc.nat({ max: 3 }), fc.array(alphabet, { maxLength: 8 }).map((a) => a.join('')));
  return fc.tuple(fc.constantFrom(...seeds), fc.array(edit, { maxLength: 6 })).map(([seed, edits]) => {
    let s = seed;
    for (const [at, len, kind, text] of edits) {
      const i = s.length === 0 ? 0 : at % (s.length + 1);
      if (kind === 0) s = s.slice(0, i) + text + s.slice(i);
      else if (kind === 1) s = s.slice(0, i) + s.slice(i + len);
      else if (kind === 2) s = s.slice(0, i) + text + s.slice(i + len);
      else s = s.slice(0, i) + s.slice(i, i + len).repeat(1 + (len % 4)) + s.slice(i);
    }
    return s;
  });
}

/** Characters that matter to the IMAP grammar, plus any character at all. */
const imapChar = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(' ', '(', ')', '[', ']', '<', '>', '.', '"', '\\', '{', '}', '+', '~', '*', '%', ':', ',', '0', '9', 'NIL', 'BODY', '&', '-', '\u0000', '\r', '\n') },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme-ascii', maxLength: 3 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 2 }) },
);
const imapLine = fc.oneof(mutated(SEEDS_IMAP, imapChar), fc.array(imapChar, { maxLength: 60 }).map((a) => a.join('')));

/** `fn` throws nothing, or only an instance of one of `allowed`. */
function onlyThrows(fn: () => unknown, ...allowed: Array<new (...args: never[]) => Error>): void {
  try {
    fn();
  } catch (err) {
    if (!allowed.some((type) => err instanceof type)) throw err;
  }
}

/** Tokenizes a whole command as the reader would, answering every literal with `literal` bytes. */
export function tokenize(args: Uint8Array, literal = bytes('lit')): ImapToken[] {
  const tokenizer = new CommandTokenizer();
  let request = tokenizer.feed(args);
  let guard = 0;
  while (request && guard++ < 100) {
    tokenizer.pushLiteral({ type: 'string', value: 'lit', bytes: literal, literal: true });
    request = tokenizer.feed(new Uint8Array(0));
  }
  return tokenizer.finish();
}

/** A token tree generator for the parsers that consume tokens (search, command arguments). */
const tokenTree: fc.Arbitrary<ImapToken[]> = fc
  .letrec<{ token: ImapToken; tokens: ImapToken[] }>((tie) => ({
    token: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.constantFrom<ImapToken>(...'ALL NOT OR UID SEEN UNSEEN FROM TO BODY TEXT HEADER LARGER SMALLER SINCE BEFORE ON SENTON OLDER YOUNGER MODSEQ KEYWORD CHARSET UTF-8 1 2 * 1:* 2,4:6 $ 4294967296 -1 01-Jan-2024 FLAGS BODY.PEEK RFC822.SIZE ENVELOPE INTERNALDATE UID MESSAGES INBOX'.split(' ').map((value) => ({ type: 'atom' as const, value }))),
      fc.string({ maxLength: 12 }).map<ImapToken>((value) => ({ type: 'atom', value })),
      fc.string({ maxLength: 12 }).map<ImapToken>((value) => ({ type: 'string', value, bytes: bytes(value), literal: false })),
      fc.constant<ImapToken>({ type: 'nil' }),
      tie('tokens').map<ImapToken>((items) => ({ type: 'list', items })),
    ),
    tokens: fc.array(tie('token'), { maxLength: 6 }),
  }))
  .tokens;

const fakeSession = (utf8: boolean) => ({ utf8, condstore: false, enabled: new Set<string>() }) as unknown as ImapSession;

async function readerRun(chunks: Uint8Array[]): Promise<number> {
  const input = new InputBuffer();
  const reader = new CommandReader(input, {
    maxLineLength: 1024,
    maxLiteralSize: 2048,
    maxAppendSize: 4096,
    spoolDir: '/nonexistent-fuzz-spool', // literals stay under memoryThreshold: nothing is spooled
    memoryThreshold: 8192,
    continuation: async () => {},
  });
  for (const chunk of chunks) input.push(chunk);
  input.end();
  let results = 0;
  for (;;) {
    let r;
    try {
      r = await reader.readCommand();
    } catch (err) {
      // EOF inside a literal: the documented InputEndedError, which the session takes as the end of the connection
      if (err instanceof InputEndedError) return results;
      throw err;
    }
    if (r.type === 'end') return results;
    if (r.type === 'command') await r.release();
    if (r.type === 'reject' && r.close) return results;
    if (++results > 10_000) throw new Error('reader made no progress');
  }
}

async function lineReaderRun(chunks: Uint8Array[], maxLineLength: number): Promise<Array<string | null>> {
  const socket = new PassThrough();
  const reader = new LineReader(socket, { maxLineLength });
  for (const chunk of chunks) socket.write(chunk);
  socket.end();
  const lines: Array<string | null> = [];
  for (;;) {
    const line = await reader.readLine();
    if (line === null) return lines;
    lines.push(line.kind === 'line' ? line.text : null);
    if (lines.length > 100_000) throw new Error('line reader made no progress');
  }
}

/** Splits bytes into chunks at the given cut points. */
function cut(data: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => (data.length === 0 ? 0 : c % data.length)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let last = 0;
  for (const p of points) {
    if (p > last) out.push(data.slice(last, p));
    last = Math.max(last, p);
  }
  out.push(data.slice(last));
  return out;
}

async function* source(chunks: Uint8Array[]): AsyncIterable<Uint8Array> {
  yield* chunks;
}

/** MIME corpus: every fixture, and fixtures with random byte edits (the splitter must survive any damage). */
const fixtures = fixtureNames().map((name) => fixture(name));
const mimeBytes: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.constantFrom(...fixtures),
  fc
    .tuple(
      fc.constantFrom(...fixtures),
      fc.array(fc.tuple(fc.nat(), fc.nat({ max: 200 }), fc.constantFrom('\r\n', '\n', '--', '--boundary', '\r\n\r\n', 'Content-Type: multipart/mixed; boundary=x\r\n', '=?utf-8?b?', '\u0000', '\xff', ' ')), { maxLength: 8 }),
    )
    .map(([base, edits]) => {
      let b = base;
      for (const [at, drop, text] of edits) {
        const i = at % (b.length + 1);
        const t = enc.encode(text);
        const next = new Uint8Array(i + t.length + Math.max(0, b.length - i - drop));
        next.set(b.subarray(0, i), 0);
        next.set(t, i);
        next.set(b.subarray(Math.min(b.length, i + drop)), i + t.length);
        b = next;
      }
      return b;
    }),
  fc.uint8Array({ maxLength: 2000 }),
);

export const TARGETS: readonly FuzzTarget[] = [
  {
    name: 'IMAP tokenizer: any line → tokens or ImapSyntaxError; depth and token count bounded by the line',
    weight: 3,
    property: () =>
      fc.property(imapLine, (line) => {
        const data = bytes(line);
        onlyThrows(() => {
          const tokens = tokenize(data);
          let count = 0;
          const walk = (list: ImapToken[]) => {
            for (const t of list) {
              count++;
              if (t.type === 'list') walk(t.items);
              if (t.type === 'atom' && t.section) walk(t.section);
            }
          };
          walk(tokens);
          if (count > data.length + 1) throw new Error(`more tokens (${count}) than input bytes (${data.length})`);
        }, ImapSyntaxError);
      }),
  },
  {
    name: 'IMAP command parsers: every verb\'s parse() on any tokens → parsed or ImapSyntaxError',
    weight: 3,
    property: () =>
      fc.property(fc.constantFrom(...COMMANDS.keys()), fc.oneof(tokenTree, imapLine.map((l) => { try { return tokenize(bytes(' ' + l)); } catch { return []; } })), fc.boolean(), (verb, tokens, utf8) => {
        const spec = COMMANDS.get(verb)!;
        onlyThrows(() => spec.parse(new Args(tokens), fakeSession(utf8)), ImapSyntaxError);
      }),
  },
  {
    name: 'IMAP reader: any byte stream in any chunks → commands, rejections or end; always terminates',
    weight: 2,
    property: () =>
      fc.asyncProperty(fc.array(imapLine, { maxLength: 6 }), fc.array(fc.nat(), { maxLength: 8 }), async (lines, cuts) => {
        const data = bytes(lines.join('\r\n') + '\r\n');
        await readerRun(cut(data, cuts));
      }),
  },
  {
    name: 'IMAP SEARCH parser: any tokens → query or ImapSyntaxError (BAD / BADCHARSET)',
    weight: 2,
    property: () =>
      fc.property(tokenTree, fc.boolean(), (tokens, utf8) => {
        onlyThrows(() => parseSearch(tokens, { utf8 }), ImapSyntaxError);
      }),
  },
  {
    name: 'modified UTF-7: decode(encode(s)) === s for every string; decode(any) → text or ImapSyntaxError',
    weight: 2,
    property: () =>
      fc.property(fc.string({ unit: 'grapheme', maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 40 }), mutated(['&ZeVnLIqe-', 'Sent &AOQ-', '&-&-', '&Jjo-!'], fc.constantFrom('&', '-', 'A', '+', ',', '/', 'Z', '\u00e4')), (text, junk, near) => {
        const encoded = encodeModifiedUtf7(text);
        if (!/^[\x20-\x7e]*$/.test(encoded)) throw new Error(`encoding of ${JSON.stringify(text)} is not printable ASCII`);
        const back = decodeModifiedUtf7(encoded);
        if (back !== text) throw new Error(`round trip ${JSON.stringify(text)} → ${encoded} → ${JSON.stringify(back)}`);
        for (const s of [junk, near]) onlyThrows(() => decodeModifiedUtf7(s), ImapSyntaxError);
      }),
  },
  {
    name: 'HTTP search q: any string → parsed query or QueryError',
    weight: 2,
    property: () =>
      fc.property(fc.oneof(mutated(SEEDS_Q, fc.constantFrom('"', '-', ':', ' ', 'is', 'has', 'in', 'before', '\t', 'x')), fc.string({ maxLength: 80 }), fc.string({ unit: 'binary', maxLength: 40 })), (q) => {
        onlyThrows(() => parseQuery(q), QueryError);
      }),
  },
  {
    name: 'LMTP/POP3 command syntax: splitCommand, parsePath and the address it yields never throw outside AddressError',
    weight: 2,
    property: () =>
      fc.property(fc.oneof(mutated(SEEDS_LINE, fc.constantFrom('<', '>', ':', '@', ' ', '=', '\u0000', 'A', '=', '+', '/')), fc.string({ maxLength: 60 })), (line) => {
        const { verb, rest } = splitCommand(line);
        if (verb.includes(' ')) throw new Error('verb with a space');
        for (const keyword of ['FROM', 'TO'] as const) {
          const r = parsePath(keyword, rest);
          if (r.ok) onlyThrows(() => r.value.address && normalizeAddress(r.value.address), AddressError);
        }
      }),
  },
  {
    name: 'POP3 SASL PLAIN: any initial response → credentials or a reason, never a throw',
    property: () =>
      fc.property(fc.oneof(fc.base64String({ maxLength: 40 }), fc.string({ maxLength: 40 }), mutated(['AGFsaWNlAHNlY3JldA==', 'YQBiAGM='], fc.constantFrom('A', '=', '+', '/', ' '))), (response) => {
        decodePlain(response);
      }),
  },
  {
    name: 'line reader (LMTP, POP3): lines come out exactly as sent, in any chunking; over-long lines reported once',
    weight: 2,
    property: () =>
      fc.asyncProperty(fc.array(fc.oneof(fc.constantFrom(...SEEDS_LINE), fc.string({ maxLength: 40 })), { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 10 }), async (lines, cuts) => {
        const clean = lines.map((l) => l.replace(/[\r\n]/g, ' '));
        const data = bytes(clean.map((l) => l + '\r\n').join(''));
        const max = 32;
        const got = await lineReaderRun(cut(data, cuts), max);
        const want = clean.map((l) => (bytes(l).length > max ? null : l));
        if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`framing: ${JSON.stringify(got)} ≠ ${JSON.stringify(want)}`);
      }),
  },
  {
    name: 'dot-stuffing: LMTP DATA unstuffing of POP3 stuffing gives back the bytes (CRLF added when missing)',
    weight: 2,
    property: () =>
      fc.asyncProperty(fc.array(fc.oneof(fc.constantFrom('.', '..', '\r\n', '\r\n.\r\n', '.\r\n', 'a', ' '), fc.string({ maxLength: 5 })), { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 6 }), async (parts, cuts) => {
        const body = bytes(parts.join('').replace(/\r?\n/g, '\r\n').replace(/\r(?!\n)/g, ''));
        const stuffed = await readAll(dotStuff(source([body])));
        const unstuffer = new DotUnstuffer();
        const out: Uint8Array[] = [];
        let done = false;
        for (const chunk of cut(stuffed, cuts)) {
          if (done) throw new Error('data after the terminator');
          const r = unstuffer.push(chunk);
          out.push(r.data);
          done = r.done;
        }
        if (!done) throw new Error('terminator not found');
        const back = await readAll(source(out));
        const expected = body.length === 0 || body[body.length - 1] === 0x0a ? body : new Uint8Array([...body, 0x0d, 0x0a]);
        if (Buffer.compare(Buffer.from(back), Buffer.from(expected)) !== 0) throw new Error(`round trip: ${JSON.stringify(new TextDecoder().decode(body))}`);
      }),
  },
  {
    name: 'MIME ingest: any message (fixtures, damaged fixtures, random bytes) in any chunks reassembles byte for byte',
    weight: 1,
    property: () =>
      fc.asyncProperty(mimeBytes, fc.array(fc.nat(), { maxLength: 6 }), fc.constantFrom(64, 1024, 16 * 1024), async (message, cuts, blobThreshold) => {
        const blobs = new MemoryBlobs();
        const ingested = await ingestMessage(source(cut(message, cuts)), blobs, { blobThreshold });
        const back = await readAll(readMessage(ingested.content, blobs));
        if (ingested.size !== message.length || Buffer.compare(Buffer.from(back), Buffer.from(message)) !== 0) {
          throw new Error(`reassembly differs (${back.length} vs ${message.length} bytes)`);
        }
      }),
  },
];
