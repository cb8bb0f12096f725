/**
 * FAKE StoragePorts for hook/pipeline tests: in-memory, only the parts the pipeline and the storage plugin
 * use (users by name, mailboxes, append/copy/move/expunge/setFlags, staged-blob discard). Not a backend and not
 * checked by the contract suite; methods nobody needs throw "not in the fake".
 */
import { createHash } from 'node:crypto';
import { StorageError } from '../../storage/ports.ts';
import { MemoryEphemeral } from '../../storage/ephemeral/memory.ts';
import { indexColumnsFrom } from '../../storage/mailbox-index/columns.ts';
import { loginKey } from '../../storage/addresses.ts';
import type {
  AppendInput,
  IngestedMessage,
  MailboxRecord,
  MessageRecord,
  StagedBlob,
  StoragePorts,
  UserRecord,
} from '../../storage/ports.ts';

const missing = (what: string) => () => {
  throw new Error(`${what} is not in the fake storage`);
};

export interface FakeStorage extends StoragePorts {
  /** Bytes of every appended message by id (concatenated inline bytes, the fake keeps everything inline). */
  readonly bytes: Map<string, Uint8Array>;
  readonly staged: Set<string>;
  readonly discarded: string[];
  readonly messageList: MessageRecord[];
  readonly mailboxList: MailboxRecord[];
  closed: boolean;
  /** When set, the next messages.append throws this. */
  failNextAppend: Error | null;
  addUser(username: string, passwordHash: string | null, disabled?: boolean): UserRecord;
}

export function createFakeStorage(): FakeStorage {
  let nextId = 1;
  const id = () => String(nextId++);
  const users: UserRecord[] = [];
  const mailboxes: MailboxRecord[] = [];
  const messages: MessageRecord[] = [];
  const bytes = new Map<string, Uint8Array>();
  const staged = new Set<string>();
  const discarded: string[] = [];

  const box = (mailboxId: string) => {
    const found = mailboxes.find((m) => m.id === mailboxId);
    if (!found) throw new StorageError('NONEXISTENT', 'no such mailbox');
    return found;
  };

  const fake: FakeStorage = {
    name: 'fake',
    bytes,
    staged,
    discarded,
    messageList: messages,
    mailboxList: mailboxes,
    closed: false,
    failNextAppend: null,
    addUser(username, passwordHash, disabled = false) {
      const user: UserRecord = {
        id: id(),
        username,
        name: username,
        passwordHash,
        quota: { storage: null, messages: null },
        storageUsed: 0,
        messagesUsed: 0,
        disabled,
        tags: [],
        created: Date.now(),
      };
      users.push(user);
      return user;
    },
    users: {
      create: missing('users.create'),
      get: async (userId) => users.find((u) => u.id === userId) ?? null,
      getByUsername: async (username) => users.find((u) => u.username === username) ?? null,
      getByLoginName: async (login) => users.find((u) => loginKey(u.username) === loginKey(login)) ?? null,
      list: missing('users.list'),
      count: missing('users.count'),
      update: missing('users.update'),
      recalculateUsage: missing('users.recalculateUsage'),
      delete: missing('users.delete'),
      addAddress: missing('users.addAddress'),
      removeAddress: missing('users.removeAddress'),
      updateAddress: missing('users.updateAddress'),
      listAddresses: missing('users.listAddresses'),
      resolveAddress: missing('users.resolveAddress'),
    },
    mailboxes: {
      async create(userId, input) {
        if (mailboxes.some((m) => m.userId === userId && m.path === input.path)) throw new StorageError('ALREADYEXISTS', 'mailbox exists');
        const record: MailboxRecord = {
          id: id(),
          userId,
          path: input.path,
          specialUse: input.specialUse ?? null,
          subscribed: input.subscribed ?? true,
          uidValidity: 1,
          uidNext: 1,
          highestModseq: 0,
          created: Date.now(),
        };
        mailboxes.push(record);
        return record;
      },
      get: async (mailboxId) => mailboxes.find((m) => m.id === mailboxId) ?? null,
      getByPath: async (userId, path) => mailboxes.find((m) => m.userId === userId && m.path === path) ?? null,
      getBySpecialUse: async (userId, use) => mailboxes.find((m) => m.userId === userId && m.specialUse === use) ?? null,
      list: async (userId) => mailboxes.filter((m) => m.userId === userId),
      counters: missing('mailboxes.counters'),
      async rename(userId, fromPath, toPath) {
        const affected = mailboxes.filter((m) => m.userId === userId && (m.path === fromPath || m.path.startsWith(fromPath + '/')));
        if (affected.length === 0) throw new StorageError('NONEXISTENT', 'no such mailbox');
        if (mailboxes.some((m) => m.userId === userId && m.path === toPath)) throw new StorageError('ALREADYEXISTS', 'target exists');
        for (const m of affected) m.path = toPath + m.path.slice(fromPath.length);
        return affected.map((m) => ({ ...m }));
      },
      async setSubscribed(mailboxId, subscribed) {
        box(mailboxId).subscribed = subscribed;
      },
      async delete(mailboxId) {
        if (box(mailboxId).path === 'INBOX') throw new StorageError('CANNOT', 'cannot delete INBOX');
        mailboxes.splice(mailboxes.indexOf(box(mailboxId)), 1);
      },
    },
    messages: {
      async append(input: AppendInput) {
        if (fake.failNextAppend) {
          const err = fake.failNextAppend;
          fake.failNextAppend = null;
          throw err;
        }
        const mailbox = box(input.mailboxId);
        const m: IngestedMessage = input.message;
        const uid = mailbox.uidNext++;
        const modseq = ++mailbox.highestModseq;
        const record: MessageRecord = {
          id: id(),
          userId: input.userId,
          mailboxId: input.mailboxId,
          uid,
          modseq,
          flags: [...input.flags],
          internalDate: input.internalDate,
          size: m.size,
          messageId: m.messageId,
          threadId: id(),
          headerDate: m.headerDate ?? input.internalDate,
          subject: m.subject,
          envelope: m.envelope,
          mime: m.mime,
          hasAttachments: m.hasAttachments,
        };
        messages.push(record);
        bytes.set(record.id, m.content.inline);
        for (const blob of m.blobs) staged.delete(blob.hash);
        return { id: record.id, uid, modseq, uidValidity: mailbox.uidValidity, threadId: record.threadId };
      },
      get: async (mailboxId, uid) => messages.find((m) => m.mailboxId === mailboxId && m.uid === uid) ?? null,
      getById: async (messageId) => messages.find((m) => m.id === messageId) ?? null,
      async parts(mailboxId, uids, wanted) {
        if (wanted.content) throw new Error('fake storage: messages.parts with content is not implemented');
        const wantedUids = new Set(uids);
        return messages
          .filter((m) => m.mailboxId === mailboxId && wantedUids.has(m.uid))
          .sort((a, b) => a.uid - b.uid)
          .map((m) => ({ uid: m.uid, ...(wanted.envelope ? { envelope: m.envelope } : {}), ...(wanted.mime ? { mime: m.mime } : {}) }));
      },
      sortData: () => {
        throw new Error('fake storage: messages.sortData is not implemented');
      },
      index: async (mailboxId) =>
        messages
          .filter((m) => m.mailboxId === mailboxId)
          .map((m) => ({ uid: m.uid, modseq: m.modseq, flags: [...m.flags], size: m.size, internalDate: m.internalDate })),
      indexColumns: async (mailboxId, options) =>
        indexColumnsFrom(
          (await fake.messages.index(mailboxId)).filter((e) => e.uid > (options?.afterUid ?? 0)).sort((a, b) => a.uid - b.uid),
        ),
      content: missing('messages.content'),
      searchText: missing('messages.searchText'),
      async setFlags(mailboxId, uids, update) {
        const mailbox = box(mailboxId);
        const changed = [];
        for (const m of messages.filter((x) => x.mailboxId === mailboxId && uids.includes(x.uid))) {
          const set = new Set(update.action === 'set' ? [] : m.flags);
          for (const f of update.flags) (update.action === 'remove' ? set.delete(f) : set.add(f));
          m.flags = [...set];
          m.modseq = ++mailbox.highestModseq;
          changed.push({ uid: m.uid, flags: [...m.flags], modseq: m.modseq });
        }
        return { changed, modified: [] };
      },
      async copy(fromMailboxId, uids, toMailboxId) {
        const target = box(toMailboxId);
        const mappings = [];
        for (const m of messages.filter((x) => x.mailboxId === fromMailboxId && uids.includes(x.uid))) {
          const copy = { ...m, id: id(), mailboxId: toMailboxId, uid: target.uidNext++, modseq: ++target.highestModseq };
          messages.push(copy);
          mappings.push({ sourceUid: m.uid, destinationUid: copy.uid });
        }
        return { uidValidity: target.uidValidity, mappings, modseq: target.highestModseq };
      },
      async move(fromMailboxId, uids, toMailboxId) {
        const result = await fake.messages.copy(fromMailboxId, uids, toMailboxId);
        await fake.messages.expunge(fromMailboxId, uids);
        return result;
      },
      async expunge(mailboxId, uids) {
        const removed = messages.filter((x) => x.mailboxId === mailboxId && uids.includes(x.uid));
        for (const m of removed) messages.splice(messages.indexOf(m), 1);
        return removed.map((m) => m.uid);
      },
      findByMessageId: missing('messages.findByMessageId'),
      threadCounts: missing('messages.threadCounts'),
      page: missing('messages.page'),
    },
    search: { match: missing('search.match'), matchSent: missing('search.matchSent') },
    blobs: {
      stage() {
        const chunks: Uint8Array[] = [];
        return {
          write: async (chunk) => {
            chunks.push(chunk);
          },
          finish: async (): Promise<StagedBlob> => {
            const hash = createHash('sha256');
            let size = 0;
            for (const c of chunks) {
              hash.update(c);
              size += c.length;
            }
            const blob = { hash: hash.digest('hex'), size };
            staged.add(blob.hash);
            return blob;
          },
          abort: async () => {},
        };
      },
      read: missing('blobs.read') as never,
      async discard(list) {
        for (const blob of list) {
          staged.delete(blob.hash);
          discarded.push(blob.hash);
        }
      },
      collect: missing('blobs.collect'),
      stats: missing('blobs.stats'),
    },
    changes: {
      since: missing('changes.since'),
      latest: async () => 0,
      subscribe: () => () => {},
      vanished: missing('changes.vanished'),
      prune: missing('changes.prune'),
    },
    // the real in-process implementation: the always-loaded login-limits plugin counts failures here
    ephemeral: new MemoryEphemeral(),
    documents: {
      // the hook tests never store per-user documents; the real port is covered by the contract suite
      list: async () => [],
      get: async () => null,
      put: async () => {
        throw new Error('fake storage: documents are not supported');
      },
      delete: async () => false,
      findByKey: async () => null,
      listAll: async () => [],
    },
    ping: async () => {},
    async close() {
      fake.closed = true;
    },
  };
  return fake;
}
