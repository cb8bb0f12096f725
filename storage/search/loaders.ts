/**
 * The evaluator's data sources over the storage ports for one mailbox: the search port for text keys, and per-message
 * loaders (each record read at most once) for what no index answers. IMAP SEARCH and the HTTP search pass these to
 * `search()`.
 */
import type { Id, MessageRecord, StoragePorts } from '../ports.ts';
import { readAll, readHeader } from '../mime/reassemble.ts';
import type { SearchContext } from './evaluate.ts';

export type MailboxSearchSources = Required<Pick<SearchContext, 'matchText' | 'matchSent' | 'matchMeta' | 'loadSearchText' | 'loadHeaders'>> & {
  /** The message record (MessageRecord), read once per UID. */
  loadRecord(uid: number): Promise<MessageRecord | null>;
};

export function mailboxSearchSources(storage: Pick<StoragePorts, 'messages' | 'blobs' | 'search'>, mailboxId: Id): MailboxSearchSources {
  const records = new Map<number, Promise<MessageRecord | null>>();
  const loadRecord = (uid: number): Promise<MessageRecord | null> => {
    let found = records.get(uid);
    if (!found) records.set(uid, (found = storage.messages.get(mailboxId, uid)));
    return found;
  };
  return {
    loadRecord,
    matchText: (terms) => storage.search.match(mailboxId, terms),
    matchSent: (terms) => storage.search.matchSent(mailboxId, terms),
    matchMeta: (terms) => storage.search.matchMeta(mailboxId, terms),
    async loadSearchText(uid) {
      const record = await loadRecord(uid);
      return record ? storage.messages.searchText(record.id) : null;
    },
    async loadHeaders(uid) {
      const record = await loadRecord(uid);
      const content = record ? await storage.messages.content(record.id) : null;
      if (!record || !content) return null;
      return readAll(readHeader(content, storage.blobs, record.mime));
    },
  };
}
