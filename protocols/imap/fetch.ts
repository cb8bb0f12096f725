/**
 * FETCH (RFC 3501 §6.4.5, §7.4.2; RFC 7162 CONDSTORE): the data items a client asks for, parsed once into a
 * plan that tells the caller what to load, and the rendering of one message's `* n FETCH (...)` response.
 *
 * Body sections are streamed as literals from the stored bytes (storage/mime/reassemble.ts): sizes are known
 * up front from the MIME node offsets, so a 20 MB BODY[] is never buffered. Only HEADER.FIELDS(.NOT) reads its
 * (small) header block into memory to filter it. Bytes are sent as stored: RFC822.SIZE, BODY[] and the
 * BODYSTRUCTURE sizes agree because they all count the same stored bytes. The one exception: a NUL, which an
 * IMAP literal may not carry, goes out as a space (render.ts NUL_REPLACEMENT; same size).
 */
import { contentSize, findPart, readAll, readMessage } from '../../storage/mime/index.ts';
import type { BlobsPort, Envelope, MessageContent, MessageIndexEntry, MessageParts, MessagePartsWanted, MimeNode } from '../../storage/ports.ts';
import { objectId } from '../../hooks/imap-object-ids.ts';
import { astring, formatInternalDate, nstring, renderBodyStructure, renderEnvelope, renderFlags, withoutNul } from './render.ts';
import type { RenderOptions } from './render.ts';
import { isSequenceSet } from './sequence.ts';
import { binaryLabel, binaryPiece, isBinaryName, parseBinaryItem } from './fetch-binary.ts';
import { once, partialRange } from './fetch-range.ts';
import type { BinaryItem } from './fetch-binary.ts';
import { ImapSyntaxError } from './types.ts';
import type { ImapToken, ResponsePiece } from './types.ts';

/** What a section addresses inside a part. `full` is `BODY[]` / `BODY[1.2]`. */
export type SectionKind = 'full' | 'HEADER' | 'HEADER.FIELDS' | 'HEADER.FIELDS.NOT' | 'TEXT' | 'MIME';

export interface FetchSection {
  /** IMAP part number, "" for the message itself. */
  part: string;
  kind: SectionKind;
  /** Header field names for HEADER.FIELDS(.NOT), as the client wrote them. */
  fields: string[];
}

export type SimpleFetchItem =
  | 'UID'
  | 'FLAGS'
  | 'INTERNALDATE'
  | 'RFC822.SIZE'
  | 'ENVELOPE'
  | 'BODY'
  | 'BODYSTRUCTURE'
  | 'MODSEQ'
  /** RFC 8474 OBJECTID. */
  | 'EMAILID'
  | 'THREADID'
  /** RFC 8514 SAVEDATE. */
  | 'SAVEDATE'
  /** RFC 8970 PREVIEW (with or without LAZY: the preview is stored, so it is always at hand). */
  | 'PREVIEW';

export type FetchItem =
  | { type: SimpleFetchItem }
  | {
      type: 'section';
      /** Response name: BODY (for BODY and BODY.PEEK) or RFC822, RFC822.HEADER, RFC822.TEXT. */
      name: 'BODY' | 'RFC822' | 'RFC822.HEADER' | 'RFC822.TEXT';
      /** BODY.PEEK / RFC822.HEADER: does not set \Seen. */
      peek: boolean;
      section: FetchSection;
      /** `<start.length>`; length null means to the end. */
      partial: { start: number; length: number | null } | null;
    }
  /** BINARY[...], BINARY.PEEK[...], BINARY.SIZE[...] (RFC 3516, fetch-binary.ts). */
  | BinaryItem;

export interface FetchPlan {
  /** Items in response order (UID first for UID FETCH, MODSEQ added for CHANGEDSINCE). */
  items: FetchItem[];
  /** UID FETCH. */
  uid: boolean;
  /** The sequence set, when it was passed as the first argument (otherwise the caller parsed it). */
  sequence: string | null;
  /** Stored parts beyond the index are needed (ENVELOPE, BODY, BODYSTRUCTURE, any section but BODY[]/RFC822). */
  needsRecord: boolean;
  /** The message content (segments) is needed: any body section. */
  needsContent: boolean;
  /** What to read of each message (MessagesPort.parts): the envelope, the MIME tree, the content. */
  parts: MessagePartsWanted;
  /** A non-PEEK body section was asked for: set \Seen (in a read-write mailbox) before rendering. */
  setsSeen: boolean;
  /** CHANGEDSINCE modifier (RFC 7162 §3.1.4): only messages with modseq > this; null when absent. */
  changedSince: number | null;
  /** VANISHED modifier (RFC 7162 §3.2.6, UID FETCH with CHANGEDSINCE, QRESYNC enabled): report expunged UIDs first. */
  vanished: boolean;
  /** MODSEQ is fetched or CHANGEDSINCE given: the command enables CONDSTORE (RFC 7162 §3.1). */
  enablesCondstore: boolean;
  /** Render strings for a client that enabled UTF8=ACCEPT. */
  utf8: boolean;
}

export interface ParseFetchOptions {
  /** UID FETCH: UID is always returned. */
  uid: boolean;
  /** CONDSTORE is enabled in the session: MODSEQ accompanies FLAGS (RFC 7162 §3.2). */
  condstore?: boolean;
  /** UTF8=ACCEPT is enabled. */
  utf8?: boolean;
  /** QRESYNC is enabled: the VANISHED modifier is allowed. */
  qresync?: boolean;
}

const MACROS: Record<string, SimpleFetchItem[]> = {
  ALL: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE'],
  FAST: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE'],
  FULL: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODY'],
};

const SIMPLE = new Set<string>(['UID', 'FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODY', 'BODYSTRUCTURE', 'MODSEQ', 'EMAILID', 'THREADID', 'SAVEDATE', 'PREVIEW']);

/** `PREVIEW (LAZY)` (RFC 8970 §3.2): the modifier list after PREVIEW; LAZY is the only modifier defined. */
function isPreviewModifiers(token: ImapToken | undefined): boolean {
  return token?.type === 'list' && token.items.length > 0 && token.items[0]!.type === 'atom' && token.items[0].value.toUpperCase() === 'LAZY';
}

function checkPreviewModifiers(token: ImapToken): void {
  if (token.type !== 'list' || token.items.length === 0) throw new ImapSyntaxError('Invalid PREVIEW modifiers');
  for (const item of token.items) {
    if (item.type !== 'atom' || item.value.toUpperCase() !== 'LAZY') throw new ImapSyntaxError('Unknown PREVIEW modifier');
  }
}

const isPreview = (token: ImapToken | undefined): boolean => token?.type === 'atom' && !token.section && token.value.toUpperCase() === 'PREVIEW';

const MAX_NUMBER = 4294967295;
const MAX_MODSEQ = Number.MAX_SAFE_INTEGER;

function parseNumber(token: ImapToken | undefined, what: string, max: number, allowZero = false): number {
  if (!token || token.type !== 'atom' || !/^[0-9]+$/.test(token.value)) throw new ImapSyntaxError(`Invalid ${what}`);
  const value = Number(token.value);
  if (value > max || (!allowZero && value === 0)) throw new ImapSyntaxError(`Invalid ${what}`);
  return value;
}

function fieldName(token: ImapToken): string {
  if (token.type === 'atom' && !token.section && !token.partial) return token.value;
  if (token.type === 'string' && token.value.length > 0) return token.value;
  throw new ImapSyntaxError('Invalid header field name');
}

/** `[1.2.HEADER.FIELDS (A B)]` tokens → section. */
export function parseSection(tokens: readonly ImapToken[]): FetchSection {
  if (tokens.length === 0) return { part: '', kind: 'full', fields: [] };
  const first = tokens[0]!;
  if (first.type !== 'atom' || first.section || first.partial) throw new ImapSyntaxError('Invalid section');
  const words = first.value.split('.');
  const numbers: string[] = [];
  while (words.length > 0 && /^[0-9]+$/.test(words[0]!)) {
    const word = words.shift()!;
    if (!/^[1-9][0-9]*$/.test(word) || Number(word) > MAX_NUMBER) throw new ImapSyntaxError('Invalid section part number');
    numbers.push(word);
  }
  const part = numbers.join('.');
  const spec = words.join('.').toUpperCase();
  let kind: SectionKind;
  switch (spec) {
    case '':
      if (part === '' || first.value.endsWith('.')) throw new ImapSyntaxError('Invalid section');
      kind = 'full';
      break;
    case 'HEADER':
    case 'TEXT':
    case 'HEADER.FIELDS':
    case 'HEADER.FIELDS.NOT':
      kind = spec;
      break;
    case 'MIME':
      if (part === '') throw new ImapSyntaxError('MIME needs a part number');
      kind = 'MIME';
      break;
    default:
      throw new ImapSyntaxError(`Invalid section ${first.value}`);
  }
  if (kind === 'HEADER.FIELDS' || kind === 'HEADER.FIELDS.NOT') {
    const list = tokens[1];
    if (tokens.length !== 2 || !list || list.type !== 'list' || list.items.length === 0) {
      throw new ImapSyntaxError(`${kind} needs a list of header field names`);
    }
    return { part, kind, fields: list.items.map(fieldName) };
  }
  if (tokens.length !== 1) throw new ImapSyntaxError('Invalid section');
  return { part, kind, fields: [] };
}

function parseItem(token: ImapToken, items: FetchItem[]): void {
  if (token.type !== 'atom') throw new ImapSyntaxError('Invalid FETCH data item');
  const name = token.value.toUpperCase();
  if (token.section === undefined) {
    if (token.partial) throw new ImapSyntaxError('Partial without section');
    if (SIMPLE.has(name)) items.push({ type: name as SimpleFetchItem });
    else if (name === 'RFC822') items.push({ type: 'section', name: 'RFC822', peek: false, section: { part: '', kind: 'full', fields: [] }, partial: null });
    else if (name === 'RFC822.HEADER') items.push({ type: 'section', name: 'RFC822.HEADER', peek: true, section: { part: '', kind: 'HEADER', fields: [] }, partial: null });
    else if (name === 'RFC822.TEXT') items.push({ type: 'section', name: 'RFC822.TEXT', peek: false, section: { part: '', kind: 'TEXT', fields: [] }, partial: null });
    else throw new ImapSyntaxError(`Unknown FETCH data item ${token.value}`);
    return;
  }
  if (isBinaryName(name)) {
    items.push(parseBinaryItem(name, token));
    return;
  }
  if (name !== 'BODY' && name !== 'BODY.PEEK') throw new ImapSyntaxError(`Unknown FETCH data item ${token.value}[]`);
  let partial: { start: number; length: number | null } | null = null;
  if (token.partial) {
    const { start, length } = token.partial;
    if (!Number.isSafeInteger(start) || start < 0 || start > MAX_NUMBER) throw new ImapSyntaxError('Invalid partial range');
    if (length !== null && (!Number.isSafeInteger(length) || length < 1 || length > MAX_NUMBER)) throw new ImapSyntaxError('Invalid partial range');
    partial = { start, length };
  }
  items.push({ type: 'section', name: 'BODY', peek: name === 'BODY.PEEK', section: parseSection(token.section), partial });
}

function parseModifiers(token: ImapToken, options: ParseFetchOptions): { changedSince: number; vanished: boolean } {
  if (token.type !== 'list' || token.items.length === 0) throw new ImapSyntaxError('Invalid FETCH modifiers');
  let changedSince: number | null = null;
  let vanished = false;
  const items = token.items;
  for (let index = 0; index < items.length; index++) {
    const name = items[index]!;
    const modifier = name.type === 'atom' ? name.value.toUpperCase() : '';
    if (modifier === 'CHANGEDSINCE' && changedSince === null) {
      // mod-sequence-value may be 0 here (RFC 7162: "CHANGEDSINCE 0" is valid and means all)
      changedSince = parseNumber(items[++index], 'CHANGEDSINCE value', MAX_MODSEQ, true);
    } else if (modifier === 'VANISHED' && !vanished) {
      // RFC 7162 §3.2.6: UID FETCH only, after ENABLE QRESYNC
      if (!options.uid) throw new ImapSyntaxError('VANISHED is only allowed with UID FETCH');
      if (!options.qresync) throw new ImapSyntaxError('QRESYNC is not enabled', 'CLIENTBUG');
      vanished = true;
    } else throw new ImapSyntaxError('Unknown FETCH modifier');
  }
  if (changedSince === null) throw new ImapSyntaxError('VANISHED requires CHANGEDSINCE');
  return { changedSince, vanished };
}

const sameItem = (a: FetchItem, b: FetchItem): boolean => JSON.stringify(a) === JSON.stringify(b);

/**
 * FETCH arguments → plan. `args` are the tokens after the sequence set (a leading sequence-set atom is also
 * accepted and returned as `plan.sequence`): one item, a macro, or a list of items, then optionally a list of
 * modifiers `(CHANGEDSINCE n)`. Throws ImapSyntaxError.
 */
export function parseFetch(args: readonly ImapToken[], options: ParseFetchOptions): FetchPlan {
  let rest = [...args];
  let sequence: string | null = null;
  const head = rest[0];
  if (head && head.type === 'atom' && !head.section && rest.length > 1 && isSequenceSet(head.value)) {
    sequence = head.value;
    rest = rest.slice(1);
  }
  // a lone `PREVIEW (LAZY)`: the list is PREVIEW's modifiers, not the command's
  let itemsToken = rest[0]!;
  if (isPreview(itemsToken) && isPreviewModifiers(rest[1])) {
    checkPreviewModifiers(rest[1]!);
    itemsToken = { type: 'list', items: [itemsToken] };
    rest = [itemsToken, ...rest.slice(2)];
  }
  if (rest.length === 0 || rest.length > 2) throw new ImapSyntaxError('FETCH expects data items and optional modifiers');
  const modifiers = rest.length === 2 ? parseModifiers(rest[1]!, options) : null;
  const changedSince = modifiers?.changedSince ?? null;

  const requested: FetchItem[] = [];
  if (itemsToken.type === 'atom' && !itemsToken.section && MACROS[itemsToken.value.toUpperCase()]) {
    for (const type of MACROS[itemsToken.value.toUpperCase()]!) requested.push({ type });
  } else if (itemsToken.type === 'list') {
    if (itemsToken.items.length === 0) throw new ImapSyntaxError('Empty FETCH item list');
    const tokens = itemsToken.items;
    for (let at = 0; at < tokens.length; at++) {
      parseItem(tokens[at]!, requested);
      if (isPreview(tokens[at]) && tokens[at + 1]?.type === 'list') checkPreviewModifiers(tokens[++at]!);
    }
  } else {
    parseItem(itemsToken, requested);
  }

  const items: FetchItem[] = [];
  const add = (item: FetchItem): void => {
    if (!items.some((existing) => sameItem(existing, item))) items.push(item);
  };
  if (options.uid) add({ type: 'UID' });
  for (const item of requested) add(item);
  const wants = (type: SimpleFetchItem): boolean => items.some((item) => item.type === type);
  if (changedSince !== null || (options.condstore && wants('FLAGS'))) add({ type: 'MODSEQ' });

  const parts: MessagePartsWanted = {};
  let setsSeen = false;
  for (const item of items) {
    if (item.type === 'ENVELOPE') parts.envelope = true;
    if (item.type === 'BODY' || item.type === 'BODYSTRUCTURE') parts.mime = true;
    if (item.type === 'EMAILID' || item.type === 'THREADID') parts.ids = true;
    if (item.type === 'SAVEDATE') parts.savedDate = true;
    if (item.type === 'PREVIEW') parts.preview = true;
    if (item.type === 'section') {
      parts.content = true;
      if (item.section.part !== '' || item.section.kind !== 'full') parts.mime = true;
      if (!item.peek) setsSeen = true;
    }
    if (item.type === 'binary') {
      if (!item.size) parts.content = true; // BINARY.SIZE: the MIME tree's sizes serve (fetch-binary.ts)
      if (item.part !== '') parts.mime = true;
      if (!item.peek) setsSeen = true;
    }
  }
  const needsRecord = parts.envelope === true || parts.mime === true || parts.ids === true || parts.savedDate === true || parts.preview === true;
  const needsContent = parts.content === true;
  return {
    items,
    uid: options.uid,
    sequence,
    needsRecord,
    needsContent,
    parts,
    setsSeen,
    changedSince,
    vanished: modifiers?.vanished ?? false,
    enablesCondstore: changedSince !== null || wants('MODSEQ'),
    utf8: options.utf8 === true,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------------------

export interface FetchMessage {
  /** Message sequence number. */
  seq: number;
  entry: MessageIndexEntry;
  /**
   * The stored parts the plan needs (plan.parts): `envelope` for ENVELOPE, `mime` for BODY, BODYSTRUCTURE, sections;
   * the ids for EMAILID / THREADID, `savedDate` for SAVEDATE, `preview` for PREVIEW.
   */
  record?: Pick<MessageParts, 'envelope' | 'mime' | 'emailId' | 'threadId' | 'savedDate' | 'preview'> | null;
  /** Required when plan.needsContent. */
  content?: MessageContent | null;
  /** Reads the content when the plan did not (BINARY.SIZE of a message without recorded decoded sizes). */
  loadContent?: () => Promise<MessageContent | null>;
  blobs: BlobsPort;
  /** This session holds \Recent for the message: added to FLAGS. */
  recent?: boolean;
  /** The fetch just set \Seen: FLAGS is included even when not asked for (RFC 3501 §6.4.5). */
  flagsChanged?: boolean;
}

/** `BODY[1.HEADER.FIELDS (From To)]<0>` as it appears in the response. */
export function sectionLabel(item: Extract<FetchItem, { type: 'section' }>, options: RenderOptions = {}): string {
  if (item.name !== 'BODY') return item.name;
  const { part, kind, fields } = item.section;
  let text = part;
  if (kind !== 'full') text += (part ? '.' : '') + kind;
  if (fields.length > 0) text += ` (${fields.map((field) => astring(field, options)).join(' ')})`;
  return `BODY[${text}]${item.partial ? `<${item.partial.start}>` : ''}`;
}

/** Where a section's bytes come from: a range of the stored message, or bytes already in memory. */
type SectionSource = { from: number; to: number } | { bytes: Uint8Array };

const EMPTY: SectionSource = { bytes: new Uint8Array(0) };
const latin1 = new TextDecoder('latin1');
const CRLF = new Uint8Array([13, 10]);

/** Lower-cased field name sets by the plan's list (one per FETCH command, not per message). */
const fieldSets = new WeakMap<readonly string[], Set<string>>();

/**
 * Keeps (or, with `exclude`, drops) the header fields named in `names` (case-insensitive) from a header block,
 * byte for byte including continuation lines, and ends the result with the blank line.
 */
export function filterHeaderFields(header: Uint8Array, names: readonly string[], exclude: boolean): Uint8Array {
  let wanted = fieldSets.get(names);
  if (!wanted) fieldSets.set(names, (wanted = new Set(names.map((name) => name.toLowerCase()))));
  const kept: Uint8Array[] = [];
  let size = 0;
  let fieldKept = false;
  let lastEndsWithNewline = true;
  let offset = 0;
  while (offset < header.length) {
    let end = header.indexOf(10, offset);
    end = end < 0 ? header.length : end + 1;
    const line = header.subarray(offset, end);
    offset = end;
    const isBlank = line.length <= 2 && (line[0] === 10 || (line[0] === 13 && line[1] === 10));
    if (isBlank) break; // the end of the header block
    const continuation = line[0] === 32 || line[0] === 9;
    if (!continuation) {
      // the field name: the bytes before the colon (within the first 1024), decoded alone
      const colon = line.subarray(0, 1024).indexOf(58);
      const name = colon > 0 ? latin1.decode(line.subarray(0, colon)).trim().toLowerCase() : null;
      fieldKept = name === null ? exclude : wanted.has(name) !== exclude;
    }
    if (fieldKept) {
      kept.push(line);
      size += line.length;
      lastEndsWithNewline = line[line.length - 1] === 10;
    }
  }
  if (!lastEndsWithNewline) {
    kept.push(CRLF);
    size += 2;
  }
  kept.push(CRLF);
  size += 2;
  const out = new Uint8Array(size);
  let position = 0;
  for (const piece of kept) {
    out.set(piece, position);
    position += piece.length;
  }
  return out;
}

function needEnvelope(message: FetchMessage): Envelope {
  const envelope = message.record?.envelope;
  if (!envelope) throw new Error('renderFetch: the plan needs the message envelope');
  return envelope;
}

function needMime(message: FetchMessage): MimeNode {
  const mime = message.record?.mime;
  if (!mime) throw new Error('renderFetch: the plan needs the message MIME tree');
  return mime;
}

function needStored<K extends 'emailId' | 'threadId' | 'savedDate' | 'preview'>(message: FetchMessage, key: K): NonNullable<MessageParts[K]> {
  const value = message.record?.[key];
  if (value === undefined || value === null) throw new Error(`renderFetch: the plan needs the message's ${key}`);
  return value as NonNullable<MessageParts[K]>;
}

function needContent(message: FetchMessage): MessageContent {
  if (!message.content) throw new Error('renderFetch: the plan needs the message content');
  return message.content;
}

async function sectionSource(section: FetchSection, message: FetchMessage): Promise<SectionSource> {
  const content = needContent(message);
  if (section.part === '' && section.kind === 'full') return { from: 0, to: contentSize(content) };
  const root = needMime(message);
  const node = findPart(root, section.part);
  if (!node) return EMPTY;
  let target: MimeNode | null = node;
  if (section.part !== '' && section.kind !== 'full' && section.kind !== 'MIME') {
    // p.HEADER, p.TEXT, p.HEADER.FIELDS address the message encapsulated in a message/rfc822 part
    target = node.message ? node.message.root : null;
  }
  if (!target) return EMPTY;
  switch (section.kind) {
    case 'full':
    case 'TEXT':
      return { from: target.bodyStart, to: target.bodyEnd };
    case 'HEADER':
    case 'MIME':
      return { from: target.headerStart, to: target.bodyStart };
    case 'HEADER.FIELDS':
    case 'HEADER.FIELDS.NOT': {
      const header = await readAll(readMessage(content, message.blobs, target.headerStart, target.bodyStart));
      return { bytes: filterHeaderFields(header, section.fields, section.kind === 'HEADER.FIELDS.NOT') };
    }
  }
}

async function sectionPiece(item: Extract<FetchItem, { type: 'section' }>, message: FetchMessage): Promise<ResponsePiece> {
  const source = await sectionSource(item.section, message);
  const total = 'bytes' in source ? source.bytes.length : source.to - source.from;
  const { start, end } = partialRange(item.partial, total);
  const size = end - start;
  if (size <= 0) return '""';
  // every section (BODY[...], RFC822, RFC822.HEADER/TEXT, HEADER.FIELDS, partial) is a literal: no raw NUL
  if ('bytes' in source) return { literal: withoutNul(once(source.bytes.subarray(start, end))), size };
  const content = needContent(message);
  return { literal: withoutNul(readMessage(content, message.blobs, source.from + start, source.from + end)), size };
}

/**
 * The response to one message: pieces of `* <seq> FETCH (<items>)`, without the trailing CRLF. Text pieces are
 * adjacent strings merged together; body sections are `{ literal, size }` pieces whose bytes are read lazily
 * when the caller iterates them (the `{size}\r\n` prefix is the caller's to write, see ResponsePiece).
 */
export async function renderFetch(plan: FetchPlan, message: FetchMessage): Promise<ResponsePiece[]> {
  const options: RenderOptions = { utf8: plan.utf8 };
  const pieces: ResponsePiece[] = [];
  let text = `* ${message.seq} FETCH (`;
  let first = true;
  const add = (value: string): void => {
    text += (first ? '' : ' ') + value;
    first = false;
  };
  for (const item of itemsFor(plan, message)) {
    switch (item.type) {
      case 'section':
      case 'binary': {
        const piece = item.type === 'section' ? await sectionPiece(item, message) : await binaryPiece(item, message);
        add(`${item.type === 'section' ? sectionLabel(item, options) : binaryLabel(item)} `);
        if (typeof piece === 'string') {
          text += piece;
        } else {
          pieces.push(text);
          pieces.push(piece);
          text = '';
        }
        break;
      }
      default:
        add(simpleItem(item.type, message, options));
    }
  }
  text += ')';
  pieces.push(text);
  return pieces;
}

function itemsFor(plan: FetchPlan, message: FetchMessage): FetchItem[] {
  if (message.flagsChanged && !plan.items.some((item) => item.type === 'FLAGS')) return [...plan.items, { type: 'FLAGS' }];
  return plan.items;
}

/** Rendered flag lists by list (the shared index interns them, so a whole-mailbox FETCH renders each list once). */
const rendered = [new WeakMap<readonly string[], string>(), new WeakMap<readonly string[], string>()];

function flagsText(flags: readonly string[], recent: boolean): string {
  const cache = rendered[recent ? 1 : 0]!;
  let text = cache.get(flags);
  if (text === undefined) {
    text = renderFlags(recent && !flags.includes('\\Recent') ? [...flags, '\\Recent'] : flags);
    cache.set(flags, text);
  }
  return text;
}

/** One data item that is not a body section. */
function simpleItem(type: SimpleFetchItem, message: FetchMessage, options: RenderOptions): string {
  const { entry } = message;
  switch (type) {
    case 'UID':
      return `UID ${entry.uid}`;
    case 'FLAGS':
      return `FLAGS ${flagsText(entry.flags, message.recent === true)}`;
    case 'INTERNALDATE':
      return `INTERNALDATE ${formatInternalDate(entry.internalDate)}`;
    case 'RFC822.SIZE':
      return `RFC822.SIZE ${entry.size}`;
    case 'MODSEQ':
      return `MODSEQ (${entry.modseq})`;
    case 'ENVELOPE':
      return `ENVELOPE ${renderEnvelope(needEnvelope(message), options)}`;
    case 'BODY':
      return `BODY ${renderBodyStructure(needMime(message), false, options)}`;
    case 'BODYSTRUCTURE':
      return `BODYSTRUCTURE ${renderBodyStructure(needMime(message), true, options)}`;
    case 'EMAILID':
      return `EMAILID (${objectId('email', needStored(message, 'emailId'))})`;
    case 'THREADID':
      return `THREADID (${objectId('thread', needStored(message, 'threadId'))})`;
    case 'SAVEDATE':
      return `SAVEDATE ${formatInternalDate(needStored(message, 'savedDate'))}`;
    case 'PREVIEW':
      // UTF-8 text; without UTF8=ACCEPT a non-ASCII preview goes out as a literal (RFC 8970 §3.1)
      return `PREVIEW ${nstring(needStored(message, 'preview'), options)}`;
  }
}

/**
 * The response to one message for a plan without body sections (`planHasSections` false), synchronously and as
 * one line without CRLF: the fast path of metadata FETCHes (UID FLAGS RFC822.SIZE over a whole mailbox).
 */
export function renderFetchLine(plan: FetchPlan, message: FetchMessage): string {
  const options: RenderOptions = { utf8: plan.utf8 };
  let text = `* ${message.seq} FETCH (`;
  let first = true;
  for (const item of itemsFor(plan, message)) {
    if (item.type === 'section' || item.type === 'binary') throw new Error('renderFetchLine: the plan has body sections');
    text += (first ? '' : ' ') + simpleItem(item.type, message, options);
    first = false;
  }
  return text + ')';
}

/** True when the plan fetches any body section (those stream as literals: renderFetch, not renderFetchLine). */
export function planHasSections(plan: FetchPlan): boolean {
  return plan.items.some((item) => item.type === 'section' || item.type === 'binary');
}
