/**
 * NOTIFY (RFC 5465) for the selected mailbox and the personal namespace: what a `NOTIFY SET` asked for (parsed
 * once), and the per-session `Notifier` that turns the user's change log into unsolicited responses.
 *
 * - Mailboxes other than the selected one: `* STATUS` for MessageNew / MessageExpunge / FlagChange, `* LIST` for
 *   MailboxName (created, deleted as `\NonExistent`, renamed with OLDNAME) and SubscriptionChange. The notifier
 *   listens on the user's change channel (`changes.subscribe`, the ephemeral pub/sub: nothing is polled) and reads
 *   the entries after its cursor when told of new ones.
 * - The selected mailbox: its view (selected.ts) reports EXISTS / EXPUNGE / FETCH as usual; NOTIFY makes the session
 *   push them when they happen, also between commands (session.ts `pushUnsolicited`), and runs the MessageNew
 *   fetch attributes for new messages as a UID FETCH.
 * When several event groups name a mailbox, the first one applies (the `selected` one for the selected mailbox).
 * Events this server does not offer (AnnotationChange, the METADATA ones) get `NO [BADEVENT (...)]`.
 */
import type { ChangeEntry, Id, MailboxRecord, StoragePorts } from '../../storage/ports.ts';
import { createContext } from '../../hooks/context.ts';
import { encodeMailboxName, literalOrQuoted } from '../../hooks/imap-wire.ts';
import { list, mailboxName } from './args.ts';
import type { Args } from './args.ts';
import { parseFetch } from './fetch.ts';
import type { FetchPlan } from './fetch.ts';
import { DELIMITER } from './mailbox-tree.ts';
import type { ImapSession } from './session.ts';
import type { ImapToken } from './types.ts';
import { ImapSyntaxError } from './types.ts';

export const SUPPORTED_EVENTS = ['MessageNew', 'MessageExpunge', 'FlagChange', 'MailboxName', 'SubscriptionChange'] as const;
export type NotifyEvent = (typeof SUPPORTED_EVENTS)[number];
const KNOWN_EVENTS = new Map<string, NotifyEvent | null>([
  ...SUPPORTED_EVENTS.map((e) => [e.toUpperCase(), e] as [string, NotifyEvent]),
  ...['ANNOTATIONCHANGE', 'MAILBOXMETADATACHANGE', 'SERVERMETADATACHANGE'].map((e) => [e, null] as [string, null]),
]);

export type NotifyFilter =
  | { kind: 'selected'; delayed: boolean }
  | { kind: 'inboxes' | 'personal' | 'subscribed' }
  | { kind: 'subtree' | 'mailboxes'; paths: string[] };

export interface EventGroup {
  filter: NotifyFilter;
  events: ReadonlySet<NotifyEvent>;
  /** MessageNew's fetch attributes (selected mailbox only), as the UID FETCH they become. */
  fetch: FetchPlan | null;
}

export type NotifyRequest = { set: false } | { set: true; status: boolean; groups: EventGroup[]; unsupported: string[] };

const MESSAGE_EVENTS: readonly NotifyEvent[] = ['MessageNew', 'MessageExpunge', 'FlagChange'];

function atomOf(token: ImapToken | undefined): string {
  return token?.type === 'atom' && !token.section ? token.value.toUpperCase() : '';
}

function parseFilter(items: readonly ImapToken[], session: ImapSession): { filter: NotifyFilter; used: number } {
  const head = atomOf(items[0]);
  switch (head) {
    case 'SELECTED':
    case 'SELECTED-DELAYED':
      return { filter: { kind: 'selected', delayed: head === 'SELECTED-DELAYED' }, used: 1 };
    case 'INBOXES':
    case 'PERSONAL':
    case 'SUBSCRIBED':
      return { filter: { kind: head.toLowerCase() as 'inboxes' | 'personal' | 'subscribed' }, used: 1 };
    case 'SUBTREE':
    case 'MAILBOXES': {
      const names = items[1];
      if (!names) throw new ImapSyntaxError(`${head} needs one or more mailboxes`);
      const tokens = names.type === 'list' ? names.items : [names];
      if (tokens.length === 0) throw new ImapSyntaxError(`${head} needs one or more mailboxes`);
      const paths = tokens.map((token) => mailboxName(token, session.utf8));
      return { filter: { kind: head === 'SUBTREE' ? 'subtree' : 'mailboxes', paths }, used: 2 };
    }
    default:
      throw new ImapSyntaxError('Invalid NOTIFY filter');
  }
}

function parseGroup(token: ImapToken, session: ImapSession, unsupported: string[]): EventGroup {
  const items = list(token, 'NOTIFY event group');
  const { filter, used } = parseFilter(items, session);
  if (items.length !== used + 1) throw new ImapSyntaxError('NOTIFY event group expects a filter and events');
  const eventsToken = items[used]!;
  const events = new Set<NotifyEvent>();
  let fetch: FetchPlan | null = null;
  if (atomOf(eventsToken) === 'NONE') return { filter, events, fetch };
  const tokens = list(eventsToken, 'NOTIFY events');
  if (tokens.length === 0) throw new ImapSyntaxError('NOTIFY events expect at least one event');
  for (let i = 0; i < tokens.length; i++) {
    const name = atomOf(tokens[i]);
    if (!KNOWN_EVENTS.has(name)) throw new ImapSyntaxError('Unknown NOTIFY event');
    const event = KNOWN_EVENTS.get(name)!;
    if (event === null) {
      unsupported.push(name);
      continue;
    }
    events.add(event);
    if (event === 'MessageNew' && tokens[i + 1]?.type === 'list') {
      // RFC 5465 §5.2: fetch attributes only for the selected mailbox
      if (filter.kind !== 'selected') throw new ImapSyntaxError('MessageNew fetch attributes are only allowed for the selected mailbox');
      fetch = parseFetch([tokens[++i]!], { uid: true, condstore: session.condstore, utf8: session.utf8, qresync: session.isEnabled('QRESYNC') });
    }
  }
  if (filter.kind === 'selected' && (events.has('MailboxName') || events.has('SubscriptionChange'))) {
    throw new ImapSyntaxError('Mailbox events are not allowed for the selected mailbox');
  }
  return { filter, events, fetch };
}

/** `NOTIFY NONE` / `NOTIFY SET [STATUS] event-group...`. Throws ImapSyntaxError (BAD). */
export function parseNotify(args: Args, session: ImapSession): NotifyRequest {
  const verb = atomOf(args.next('NOTIFY SET or NONE'));
  if (verb === 'NONE') {
    args.end();
    return { set: false };
  }
  if (verb !== 'SET') throw new ImapSyntaxError('NOTIFY expects SET or NONE');
  const tokens = args.rest();
  let status = false;
  let at = 0;
  const first = tokens[0];
  // RFC 5465: `SET STATUS (...)`; `SET (STATUS) (...)` is taken too
  if (atomOf(first) === 'STATUS' || (first?.type === 'list' && first.items.length === 1 && atomOf(first.items[0]) === 'STATUS')) {
    status = true;
    at = 1;
  }
  if (at >= tokens.length) throw new ImapSyntaxError('NOTIFY SET expects event groups');
  const unsupported: string[] = [];
  const groups = tokens.slice(at).map((token) => parseGroup(token, session, unsupported));
  return { set: true, status, groups, unsupported };
}

/** STATUS items that tell a non-selected mailbox's message events, in STATUS order. */
function statusItems(events: ReadonlySet<NotifyEvent>): string[] {
  const items = new Set<string>();
  if (events.has('MessageNew')) ['MESSAGES', 'UIDNEXT', 'UIDVALIDITY'].forEach((i) => items.add(i));
  if (events.has('MessageExpunge')) items.add('MESSAGES');
  if (events.has('FlagChange')) ['UIDVALIDITY', 'HIGHESTMODSEQ'].forEach((i) => items.add(i));
  return ['MESSAGES', 'UIDNEXT', 'UIDVALIDITY', 'HIGHESTMODSEQ'].filter((i) => items.has(i));
}

const EVENT_OF: Partial<Record<ChangeEntry['type'], NotifyEvent>> = {
  exists: 'MessageNew',
  expunge: 'MessageExpunge',
  flags: 'FlagChange',
  'mailbox.create': 'MailboxName',
  'mailbox.rename': 'MailboxName',
  'mailbox.delete': 'MailboxName',
  'mailbox.subscribe': 'SubscriptionChange',
};

/** Change-log entries read per storage call. */
const PAGE = 500;

interface Known {
  path: string;
  subscribed: boolean;
}

/** One session's NOTIFY SET: its groups, its place in the user's change log, and the user's mailbox names. */
export class Notifier {
  readonly groups: readonly EventGroup[];
  readonly #session: ImapSession;
  readonly #storage: Pick<StoragePorts, 'changes' | 'mailboxes'>;
  readonly #userId: Id;
  readonly #known = new Map<Id, Known>();
  #cursor = 0;
  #latest = 0;
  #off: (() => void) | null = null;

  private constructor(session: ImapSession, groups: readonly EventGroup[]) {
    this.#session = session;
    this.#storage = session.app.storage;
    this.#userId = session.userId;
    this.groups = groups;
  }

  /** Starts listening; with `status`, the initial STATUS of every mailbox a group watches for message events. */
  static async start(session: ImapSession, groups: readonly EventGroup[], status: boolean): Promise<Notifier> {
    const notifier = new Notifier(session, groups);
    const storage = notifier.#storage;
    // the cursor first, the names second: a change in between is read again, never missed
    notifier.#cursor = notifier.#latest = await storage.changes.latest(notifier.#userId);
    const records = await storage.mailboxes.list(notifier.#userId);
    for (const r of records) notifier.#known.set(r.id, { path: r.path, subscribed: r.subscribed });
    notifier.#off = storage.changes.subscribe(notifier.#userId, (latest) => notifier.#heard(latest));
    if (status) {
      for (const record of records) {
        if (record.id === session.selected?.mailbox.id) continue; // its view tells the client
        const group = notifier.#groupFor(record.id, record.path, record.subscribed);
        if (!group || !MESSAGE_EVENTS.some((e) => group.events.has(e))) continue;
        const line = await notifier.#status(record.id, group.events, record);
        if (line) session.send(line);
      }
    }
    return notifier;
  }

  close(): void {
    this.#off?.();
    this.#off = null;
  }

  #heard(latest: number): void {
    if (latest <= this.#latest || !this.#off) return;
    this.#latest = latest;
    this.#session.pushUnsolicited();
  }

  /** Changes not told yet (the session pushes them when no command runs, or after the running one). */
  get due(): boolean {
    return this.#latest > this.#cursor;
  }

  /** The group that applies to a mailbox: the selected one's for the selected mailbox, else the first that names it. */
  #groupFor(id: Id, path: string, subscribed: boolean): EventGroup | null {
    const selected = this.#session.selected?.mailbox.id === id;
    if (selected) {
      const group = this.groups.find((g) => g.filter.kind === 'selected');
      if (group) return group;
    }
    for (const group of this.groups) {
      const filter = group.filter;
      switch (filter.kind) {
        case 'selected':
          break;
        case 'personal':
          return group;
        case 'inboxes':
          if (path === 'INBOX') return group;
          break;
        case 'subscribed':
          if (subscribed) return group;
          break;
        case 'subtree':
          if (filter.paths.some((p) => path === p || path.startsWith(p + DELIMITER))) return group;
          break;
        case 'mailboxes':
          if (filter.paths.includes(path)) return group;
      }
    }
    return null;
  }

  /** The group for the selected mailbox when it asks for message events there, else null (usual RFC 3501 rules). */
  selectedGroup(): EventGroup | null {
    const view = this.#session.selected;
    if (!view) return null;
    const known = this.#known.get(view.mailbox.id);
    const group = this.#groupFor(view.mailbox.id, known?.path ?? view.mailbox.path, known?.subscribed ?? view.mailbox.subscribed);
    return group && MESSAGE_EVENTS.some((e) => group.events.has(e)) ? group : null;
  }

  async #status(id: Id, events: ReadonlySet<NotifyEvent>, record?: MailboxRecord | null): Promise<string | null> {
    const items = statusItems(events);
    if (items.length === 0) return null;
    const mailbox = record ?? (await this.#storage.mailboxes.get(id));
    if (!mailbox) return null;
    const counters = items.includes('MESSAGES') ? await this.#storage.mailboxes.counters(id) : null;
    const values = items.map((item) => {
      if (item === 'MESSAGES') return `MESSAGES ${counters!.messages}`;
      if (item === 'UIDNEXT') return `UIDNEXT ${mailbox.uidNext}`;
      if (item === 'UIDVALIDITY') return `UIDVALIDITY ${mailbox.uidValidity}`;
      return `HIGHESTMODSEQ ${mailbox.highestModseq}`;
    });
    return `* STATUS ${this.#name(mailbox.path)} (${values.join(' ')})`;
  }

  #name(path: string): string {
    const utf8 = this.#session.utf8;
    return literalOrQuoted(encodeMailboxName(path, utf8), { utf8 });
  }

  /** MessageNew with fetch attributes: the new messages of the selected mailbox (UIDs after..upTo) as a UID FETCH. */
  async newMessages(after: number, upTo: number): Promise<void> {
    const plan = this.selectedGroup()?.fetch;
    const session = this.#session;
    if (!plan || upTo <= after || !session.selected) return;
    const ctx = createContext(session.session, { command: 'UID FETCH' });
    await session.runBuiltin('UID FETCH', { set: [{ start: after + 1, end: upTo }], plan }, ctx);
  }

  /** Reads the change log after the cursor and sends what the groups ask for about mailboxes other than the selected. */
  async deliver(): Promise<void> {
    const session = this.#session;
    const selectedId = session.selected?.mailbox.id ?? null;
    const due = new Map<Id, ReadonlySet<NotifyEvent>>();
    for (;;) {
      const entries = await this.#storage.changes.since(this.#userId, this.#cursor, { limit: PAGE });
      for (const entry of entries) {
        this.#cursor = Math.max(this.#cursor, entry.id);
        const event = EVENT_OF[entry.type];
        if (!event) continue;
        if (entry.type.startsWith('mailbox.')) {
          await this.#mailboxChange(entry, event);
          continue;
        }
        if (entry.mailboxId === selectedId) continue; // the selected view reports it
        const known = this.#known.get(entry.mailboxId);
        if (!known) continue;
        const group = this.#groupFor(entry.mailboxId, known.path, known.subscribed);
        if (group?.events.has(event)) due.set(entry.mailboxId, group.events);
      }
      if (entries.length < PAGE) break;
    }
    if (this.#latest < this.#cursor) this.#latest = this.#cursor;
    for (const [id, events] of due) {
      const line = await this.#status(id, events);
      if (line) session.send(line);
    }
  }

  async #mailboxChange(entry: ChangeEntry, event: NotifyEvent): Promise<void> {
    const before = this.#known.get(entry.mailboxId);
    const path = entry.path ?? before?.path;
    if (path === undefined) return;
    let subscribed = before?.subscribed ?? false;
    if (entry.type === 'mailbox.delete') this.#known.delete(entry.mailboxId);
    else {
      if (entry.type !== 'mailbox.rename') {
        const record = await this.#storage.mailboxes.get(entry.mailboxId);
        subscribed = record?.subscribed ?? subscribed;
      }
      this.#known.set(entry.mailboxId, { path, subscribed });
    }
    const group = this.#groupFor(entry.mailboxId, path, subscribed) ?? (before ? this.#groupFor(entry.mailboxId, before.path, before.subscribed) : null);
    if (!group?.events.has(event)) return;
    const attributes: string[] = [];
    if (entry.type === 'mailbox.delete') attributes.push('\\NonExistent');
    if (subscribed && entry.type !== 'mailbox.delete') attributes.push('\\Subscribed');
    const oldName = entry.type === 'mailbox.rename' && before && before.path !== path ? ` ("OLDNAME" (${this.#name(before.path)}))` : '';
    this.#session.send(`* LIST (${attributes.join(' ')}) "${DELIMITER}" ${this.#name(path)}${oldName}`);
  }
}
