/**
 * Search across a user's mailboxes: WildDuck's structured parameters and a Gmail-like `q` (search-query.ts),
 * both turned into one protocol-neutral criteria tree and evaluated per mailbox by storage/search/evaluate.ts, so
 * the index-only keys (flags, size, date) never load a message and text keys are answered by the search port.
 * Without `mailbox` or `in:`, Junk and Trash are left out (as WildDuck does).
 */
import { Buffer } from 'node:buffer';
import { z } from 'zod';
import type { MailboxRecord, MessageIndexEntry, MessageRecord } from '../../storage/ports.ts';
import type { App } from '../app.ts';
import { search } from '../../storage/search/evaluate.ts';
import type { SearchKey } from '../../storage/search/criteria.ts';
import { mailboxSearchSources } from '../../storage/search/loaders.ts';
import { ApiError } from './errors.ts';
import { id, queryBool, userParams } from './common.ts';
import { listItems } from './messages.ts';
import { QueryError, parseQuery } from './search-query.ts';
import { route } from './route.ts';
import type { Route } from './route.ts';

const dateParam = z
  .string()
  .refine((v) => Number.isFinite(Date.parse(v)), 'expected a date')
  .transform((v) => Date.parse(v));

const searchQuery = z.object({
  q: z.string().max(1024).optional().describe('Gmail-like query: from: to: subject: in: has:attachment is:unread is:starred before: after: larger: smaller:, words, "phrases", -negation'),
  query: z.string().max(1024).optional().describe('Text that must occur in the headers or the body'),
  from: z.string().max(255).optional(),
  to: z.string().max(255).optional().describe('Matches To and Cc'),
  subject: z.string().max(255).optional(),
  mailbox: id('mailbox').optional().describe('Mailbox id to search in (default: all but Junk and Trash)'),
  datestart: dateParam.optional().describe('Received at or after'),
  dateend: dateParam.optional().describe('Received at or before'),
  minSize: z.coerce.number().int().nonnegative().optional(),
  maxSize: z.coerce.number().int().nonnegative().optional(),
  attachments: queryBool('Only messages with (true) or without (false) attachments'),
  flagged: queryBool('Only flagged (true) or unflagged (false) messages'),
  unseen: queryBool('Only unseen (true) or seen (false) messages'),
  searchable: queryBool('Accepted for compatibility'),
  limit: z.coerce.number().int().min(1).max(250).default(20),
  next: z.string().max(200).optional(),
  previous: z.string().max(200).optional(),
  page: z.coerce.number().int().min(1).optional().describe('Accepted for compatibility; the cursor decides'),
});

type SearchParams = z.output<typeof searchQuery>;

const SPECIAL: Record<string, string> = { inbox: '\\Inbox', sent: '\\Sent', drafts: '\\Drafts', trash: '\\Trash', junk: '\\Junk', spam: '\\Junk', archive: '\\Archive' };

async function pickMailboxes(app: App, userId: string, byId: string | undefined, byName: string | null): Promise<MailboxRecord[]> {
  const all = await app.storage.mailboxes.list(userId);
  if (byId !== undefined) {
    const box = all.find((b) => b.id === byId);
    if (!box) throw new ApiError('NoSuchMailbox');
    return [box];
  }
  if (byName !== null) {
    const lower = byName.toLowerCase();
    const box =
      all.find((b) => b.path.toLowerCase() === lower) ??
      (lower === 'inbox' ? all.find((b) => b.path === 'INBOX') : all.find((b) => b.specialUse !== null && b.specialUse === SPECIAL[lower]));
    if (!box) throw new ApiError('NoSuchMailbox', `No mailbox "${byName}"`);
    return [box];
  }
  return all.filter((b) => b.specialUse !== '\\Junk' && b.specialUse !== '\\Trash');
}

/** Structured parameters and `q` → one key tree (AND of all), mailbox choice and attachment filter. */
function buildQuery(params: SearchParams): { key: SearchKey; mailbox: string | null; attachments: boolean | null } {
  const keys: SearchKey[] = [];
  let mailbox: string | null = null;
  let attachments: boolean | null = params.attachments ?? null;
  if (params.q) {
    try {
      const parsed = parseQuery(params.q);
      keys.push(...parsed.keys);
      mailbox = parsed.mailbox;
      if (parsed.attachments !== null) attachments = parsed.attachments;
    } catch (err) {
      if (err instanceof QueryError) throw new ApiError('InputValidationError', `query.q: ${err.message}`, [{ path: 'query.q', message: err.message }]);
      throw err;
    }
  }
  if (params.query) for (const word of params.query.split(/\s+/).filter(Boolean)) keys.push({ type: 'text', value: word });
  if (params.from) keys.push({ type: 'header', field: 'from', value: params.from });
  if (params.to) keys.push({ type: 'or', left: { type: 'header', field: 'to', value: params.to }, right: { type: 'header', field: 'cc', value: params.to } });
  if (params.subject) keys.push({ type: 'header', field: 'subject', value: params.subject });
  if (params.minSize !== undefined && params.minSize > 0) keys.push({ type: 'larger', size: params.minSize - 1 });
  if (params.maxSize !== undefined) keys.push({ type: 'smaller', size: params.maxSize + 1 });
  if (params.flagged !== undefined) keys.push({ type: 'flag', flag: '\\Flagged', present: params.flagged });
  if (params.unseen !== undefined) keys.push({ type: 'flag', flag: '\\Seen', present: !params.unseen });
  const key: SearchKey = keys.length === 0 ? { type: 'all' } : keys.length === 1 ? keys[0]! : { type: 'and', keys };
  return { key, mailbox, attachments };
}

interface Hit {
  box: MailboxRecord;
  entry: MessageIndexEntry;
}

/** Offset cursors: results are computed afresh per request, newest first across mailboxes. */
function encodeCursor(offset: number, page: number): string {
  return Buffer.from(`o:${offset}:${page}`).toString('base64url');
}

function decodeCursor(value: string, name: string): { offset: number; page: number } {
  const match = /^o:(\d+):(\d+)$/.exec(Buffer.from(value, 'base64url').toString('latin1'));
  if (!match) throw new ApiError('InputValidationError', `query.${name}: invalid cursor`);
  return { offset: Number(match[1]), page: Number(match[2]) };
}

export const searchRoutes: Route[] = [
  route({
    method: 'GET',
    path: '/users/:user/search',
    summary: 'Search messages across mailboxes (structured parameters and/or a Gmail-like q)',
    tag: 'Messages',
    access: 'owner',
    params: userParams,
    query: searchQuery,
    async handler({ app, user, query }) {
      const built = buildQuery(query);
      const boxes = await pickMailboxes(app, user.id, query.mailbox, built.mailbox);
      const storage = app.storage;
      const hits: Hit[] = [];
      for (const box of boxes) {
        let entries = await storage.messages.index(box.id);
        if (query.datestart !== undefined) entries = entries.filter((e) => e.internalDate >= query.datestart!);
        if (query.dateend !== undefined) entries = entries.filter((e) => e.internalDate <= query.dateend!);
        if (entries.length === 0) continue;
        const loaders = mailboxSearchSources(storage, box.id);
        const result = await search({ key: built.key, usesModseq: false }, { entries, recent: new Set(), ...loaders });
        const byUid = new Map(entries.map((e) => [e.uid, e]));
        for (const uid of result.uids) {
          if (built.attachments !== null && ((await loaders.loadRecord(uid))?.hasAttachments ?? false) !== built.attachments) continue;
          hits.push({ box, entry: byUid.get(uid)! });
        }
      }
      hits.sort((a, b) => b.entry.internalDate - a.entry.internalDate || b.entry.uid - a.entry.uid || a.box.id.localeCompare(b.box.id));

      let start = 0;
      let page = 1;
      if (query.next) ({ offset: start, page } = decodeCursor(query.next, 'next'));
      else if (query.previous) ({ offset: start, page } = decodeCursor(query.previous, 'previous'));
      start = Math.min(Math.max(0, start), hits.length);
      const slice = hits.slice(start, start + query.limit);
      const records = (await Promise.all(slice.map((h) => storage.messages.get(h.box.id, h.entry.uid)))).filter((r): r is MessageRecord => r !== null);
      return {
        query: query.q ?? query.query ?? '',
        total: hits.length,
        page,
        previousCursor: start > 0 ? encodeCursor(Math.max(0, start - query.limit), Math.max(1, page - 1)) : false,
        nextCursor: start + slice.length < hits.length ? encodeCursor(start + slice.length, page + 1) : false,
        results: await listItems(app, records),
      };
    },
  }),
];
