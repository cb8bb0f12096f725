/**
 * The search port on MongoDB: one `messagesearch` document per message (written at append and copy, deleted with the
 * message) holding its header fields and body text folded the way needles are (storage/search/fold.ts), and its
 * sent day. A term is one query, `{ mailbox, <field>: { $regex: <escaped folded needle> } }`, that returns UIDs: the
 * database scans the mailbox's search documents, no message is loaded into the server.
 */
import type { ObjectId } from 'mongodb';
import type { Id, IngestedMessage, MetaTerm, SearchField, SearchPort, SearchTerm, SentDateTerm } from '../ports.ts';
import { fold } from '../search/fold.ts';
import { compareDay, sentDayOfHeaders } from '../search/sent-date.ts';
import type { MongoCollections, SearchDoc } from './collections.ts';
import { mongoCall } from './errors.ts';
import { objectId } from './ids.ts';

const DAY = 86_400_000;

type TextField = 'subject' | 'from' | 'to' | 'cc' | 'bcc' | 'headers' | 'body';

/** The search document fields a term looks in, and whether an empty needle needs the field to be present. */
const FIELDS: Record<SearchField, { fields: readonly TextField[]; optional: boolean }> = {
  subject: { fields: ['subject'], optional: true },
  from: { fields: ['from'], optional: true },
  to: { fields: ['to'], optional: true },
  cc: { fields: ['cc'], optional: true },
  bcc: { fields: ['bcc'], optional: true },
  body: { fields: ['body'], optional: false },
  text: { fields: ['headers', 'body'], optional: false },
};

function foldOrNull(text: string | null): string | null {
  return text === null ? null : fold(text);
}

/** The search document of a message stored with this `_id` in this mailbox under this UID. */
export function searchDoc(id: ObjectId, mailbox: ObjectId, uid: number, message: IngestedMessage, internalDate: number): SearchDoc {
  const h = message.searchHeaders;
  return {
    _id: id,
    mailbox,
    uid,
    subject: foldOrNull(h.subject),
    from: foldOrNull(h.from),
    to: foldOrNull(h.to),
    cc: foldOrNull(h.cc),
    bcc: foldOrNull(h.bcc),
    headers: fold(h.headers),
    body: fold(message.searchText),
    text: message.searchText,
    sentDay: sentDayOfHeaders(h.headers) ?? Math.floor(internalDate / DAY) * DAY,
  };
}

/**
 * A needle as a regular expression matching it literally (PCRE on MongoDB, JavaScript on the stand-in): the
 * metacharacters escaped, control characters as \xHH (a pattern cannot hold a NUL).
 */
export function literalPattern(needle: string): string {
  return needle.replace(/[.*+?^${}()|[\]\\/]|[\x00-\x1f]/g, (ch) => (ch.charCodeAt(0) < 0x20 ? `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}` : `\\${ch}`));
}

export class MongoSearch implements SearchPort {
  readonly #c: MongoCollections;

  constructor(c: MongoCollections) {
    this.#c = c;
  }

  match(mailboxId: Id, terms: readonly SearchTerm[]): Promise<number[][]> {
    const mailbox = objectId(mailboxId);
    if (!mailbox) return Promise.resolve(terms.map(() => []));
    return mongoCall(() => Promise.all(terms.map((term) => this.#uids(mailbox, termFilter(term)))));
  }

  matchSent(mailboxId: Id, terms: readonly SentDateTerm[]): Promise<number[][]> {
    const mailbox = objectId(mailboxId);
    if (!mailbox) return Promise.resolve(terms.map(() => []));
    const ops = { before: '$lt', on: '$eq', since: '$gte' } as const;
    return mongoCall(() => Promise.all(terms.map(({ op, day }) => this.#uids(mailbox, { sentDay: { [ops[op]]: day } }))));
  }

  matchMeta(mailboxId: Id, terms: readonly MetaTerm[]): Promise<number[][]> {
    const mailbox = objectId(mailboxId);
    if (!mailbox) return Promise.resolve(terms.map(() => []));
    return mongoCall(() => Promise.all(terms.map((term) => this.#metaUids(mailbox, term))));
  }

  /** UIDs (ascending) of the mailbox's message documents matching a MetaTerm (older documents: see MessageDoc). */
  async #metaUids(mailbox: ObjectId, term: MetaTerm): Promise<number[]> {
    const messages = this.#c.messages;
    if (term.field === 'savedate') {
      const docs = await messages.find({ mailbox }, { projection: { _id: 0, uid: 1, savedDate: 1, internalDate: 1 } }).sort({ uid: 1 }).toArray();
      return docs.filter((d) => compareDay(term.op, Math.floor((d.savedDate ?? d.internalDate) / DAY) * DAY, term.day)).map((d) => d.uid);
    }
    const id = objectId(term.id);
    if (!id) return [];
    const filter = term.field === 'threadid' ? { mailbox, thread: id } : { mailbox, $or: [{ emailId: id }, { _id: id, emailId: { $exists: false } }] };
    const docs = await messages.find(filter, { projection: { _id: 0, uid: 1 } }).sort({ uid: 1 }).toArray();
    return docs.map((d) => d.uid);
  }

  /** UIDs (ascending) of the mailbox's search documents that match `filter`. */
  async #uids(mailbox: ObjectId, filter: Record<string, unknown>): Promise<number[]> {
    const docs = await this.#c.messageSearch.find({ mailbox, ...filter }, { projection: { _id: 0, uid: 1 } }).sort({ uid: 1 }).toArray();
    return docs.map((d) => d.uid);
  }
}

function termFilter(term: SearchTerm): Record<string, unknown> {
  const spec = FIELDS[term.field];
  if (!spec) throw new TypeError(`search: unknown field ${String(term.field)}`);
  const needle = fold(term.value);
  if (needle === '') return spec.optional ? { [spec.fields[0]!]: { $ne: null } } : {};
  const regex = { $regex: literalPattern(needle) };
  return spec.fields.length === 1 ? { [spec.fields[0]!]: regex } : { $or: spec.fields.map((f) => ({ [f]: regex })) };
}
