/**
 * CATENATE (RFC 4469): an APPEND message built from TEXT literals and IMAP URLs (RFC 5092) naming a message or a part
 * of one in the user's own mailboxes (no URLAUTH, no other users). Every URL is resolved before anything is stored
 * (`NO [BADURL url]` for one that names nothing), and the message's size is known up front (`NO [TOOBIG]` over the
 * limit); the bytes are then streamed from the stored messages as the new one is ingested, a part at a time.
 *
 * Accepted URL forms: `/mailbox[;UIDVALIDITY=n]/;UID=n[/;SECTION=s][/;PARTIAL=o[.l]]`, also with an
 * `imap://[user@]host` prefix (the user, when given, must be the session's). The mailbox is %-encoded UTF-8 (or the
 * modified UTF-7 name). Sections: empty (the message), HEADER, TEXT, HEADER.FIELDS[.NOT] (names), and a part number
 * optionally followed by .HEADER, .TEXT, .MIME, .HEADER.FIELDS[.NOT].
 */
import { contentSize, findPart, readAll, readMessage } from '../../storage/mime/index.ts';
import type { BlobsPort, MessageContent, MimeNode } from '../../storage/ports.ts';
import type { LiteralBody } from './types.ts';
import { filterHeaderFields } from './fetch.ts';
import { decodeMailboxName } from './render.ts';
import type { ImapSession } from './session.ts';

export type CatenatePart = { type: 'text'; body: LiteralBody } | { type: 'url'; url: string };

/** A message CATENATE refers to could not be used: `NO [code] text`. */
export class CatenateRefusal extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

/** One resolved piece: a literal, a range of a stored message, or bytes already filtered (HEADER.FIELDS). */
type Piece =
  | { type: 'text'; body: LiteralBody; size: number }
  | { type: 'range'; content: MessageContent; from: number; to: number; size: number }
  | { type: 'bytes'; bytes: Uint8Array; size: number };

export interface CatenatedMessage {
  size: number;
  stream(): AsyncIterable<Uint8Array>;
}

const URL_FORM =
  /^(?:imap:\/\/(?:([^@/]*)@)?[^/]*)?\/([^/;?]*)(?:;uidvalidity=([0-9]{1,10}))?\/;uid=([0-9]{1,10})(?:\/;section=([^/;?]*))?(?:\/;partial=([0-9]{1,10})(?:\.([0-9]{1,10}))?)?$/i;

function badUrl(url: string): CatenateRefusal {
  // url-resp-text: anything but `]` and line ends
  return new CatenateRefusal(`BADURL ${url.replace(/[\]\r\n]/g, '')}`, 'The URL does not name a message part of yours');
}

function percentDecode(text: string, url: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw badUrl(url);
  }
}

/** Resolves every part (stored messages read for their MIME tree and segment list only) and checks the size. */
export async function resolveCatenate(session: ImapSession, parts: readonly CatenatePart[], maxSize: number): Promise<CatenatedMessage> {
  const pieces: Piece[] = [];
  let size = 0;
  for (const part of parts) {
    const piece = part.type === 'text' ? ({ type: 'text', body: part.body, size: part.body.size } as const) : await resolveUrl(session, part.url);
    size += piece.size;
    if (size > maxSize) throw new CatenateRefusal('TOOBIG', `Message exceeds the maximum size of ${maxSize} bytes`);
    pieces.push(piece);
  }
  const blobs = session.app.storage.blobs;
  return { size, stream: () => catenated(pieces, blobs) };
}

async function* catenated(pieces: readonly Piece[], blobs: BlobsPort): AsyncIterable<Uint8Array> {
  for (const piece of pieces) {
    if (piece.size === 0) continue;
    if (piece.type === 'text') yield* piece.body.stream();
    else if (piece.type === 'bytes') yield piece.bytes;
    else yield* readMessage(piece.content, blobs, piece.from, piece.to);
  }
}

async function resolveUrl(session: ImapSession, url: string): Promise<Piece> {
  const match = URL_FORM.exec(url);
  if (!match) throw badUrl(url);
  const [, user, encodedMailbox, uidValidity, uidText, sectionText, partialStart, partialLength] = match;
  const { storage } = session.app;
  if (user !== undefined) {
    const me = await storage.users.get(session.userId);
    if (!me || percentDecode(user, url).toLowerCase() !== me.username.toLowerCase()) throw badUrl(url);
  }
  const name = percentDecode(encodedMailbox!, url);
  let mailbox = await storage.mailboxes.getByPath(session.userId, name);
  if (!mailbox) {
    let decoded: string | null = null;
    try {
      decoded = decodeMailboxName(name, false);
    } catch {
      // not a modified UTF-7 name either
    }
    if (decoded !== null && decoded !== name) mailbox = await storage.mailboxes.getByPath(session.userId, decoded);
  }
  if (!mailbox) throw badUrl(url);
  if (uidValidity !== undefined && Number(uidValidity) !== mailbox.uidValidity) throw badUrl(url);
  const uid = Number(uidText);
  const [found] = await storage.messages.parts(mailbox.id, [uid], { mime: true, content: true });
  if (!found?.content || !found.mime || found.uid !== uid) throw badUrl(url);
  const whole = await sectionPiece(found.content, found.mime, percentDecode(sectionText ?? '', url), url, storage.blobs);
  if (partialStart === undefined) return whole;
  const start = Math.min(Number(partialStart), whole.size);
  const end = partialLength === undefined ? whole.size : Math.min(whole.size, start + Number(partialLength));
  if (whole.type === 'bytes') return { type: 'bytes', bytes: whole.bytes.subarray(start, end), size: end - start };
  if (whole.type === 'range') return { ...whole, from: whole.from + start, to: whole.from + end, size: end - start };
  return whole;
}

async function sectionPiece(content: MessageContent, root: MimeNode, section: string, url: string, blobs: BlobsPort): Promise<Piece> {
  const range = (from: number, to: number): Piece => ({ type: 'range', content, from, to, size: to - from });
  const fields = /^(.*?)\s*\((.*)\)$/.exec(section);
  const spec = (fields ? fields[1]! : section).toUpperCase();
  const names = fields ? fields[2]!.split(/\s+/).filter((n) => n.length > 0).map((n) => n.replace(/^"(.*)"$/, '$1')) : [];
  const words = spec === '' ? [] : spec.split('.');
  const numbers: string[] = [];
  while (words.length > 0 && /^[1-9][0-9]{0,9}$/.test(words[0]!)) numbers.push(words.shift()!);
  const kind = words.join('.');
  if (numbers.length === 0 && kind === '') return range(0, contentSize(content));
  let node: MimeNode | null = root;
  if (numbers.length > 0) node = findPart(root, numbers.join('.'));
  if (!node) throw badUrl(url);
  if (kind === '') return range(node.bodyStart, node.bodyEnd);
  if (kind === 'MIME') {
    if (numbers.length === 0) throw badUrl(url);
    return range(node.headerStart, node.bodyStart);
  }
  // HEADER / TEXT / HEADER.FIELDS of a part address the message it encapsulates
  const target: MimeNode | null = numbers.length === 0 ? node : (node.message?.root ?? null);
  if (!target) throw badUrl(url);
  switch (kind) {
    case 'HEADER':
      return range(target.headerStart, target.bodyStart);
    case 'TEXT':
      return range(target.bodyStart, target.bodyEnd);
    case 'HEADER.FIELDS':
    case 'HEADER.FIELDS.NOT': {
      if (names.length === 0) throw badUrl(url);
      const header = await readAll(readMessage(content, blobs, target.headerStart, target.bodyStart));
      const bytes = filterHeaderFields(header, names, kind === 'HEADER.FIELDS.NOT');
      return { type: 'bytes', bytes, size: bytes.length };
    }
    default:
      throw badUrl(url);
  }
}
