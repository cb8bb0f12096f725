/**
 * User filters (WildDuck's model), always loaded: a `delivery.route` tap at stage DEFAULT (after spam routing at
 * POLICY, so a filter's `spam: false` can overrule the scanner) that checks the recipient's filters, oldest first,
 * against the message and applies what matched:
 *
 *   conditions  from (From/Sender), to (To/Cc/delivery address), subject, listId, text (words in the text parts),
 *               ha (has attachment), size (positive = larger than, negative = smaller than); all must hold
 *   actions     seen, flag, delete (accept without storing), spam (Junk; no forwarding, no autoreply),
 *               mailbox (by id or path; a missing one falls back to INBOX), targets (forward to addresses)
 *
 * First match per action wins: a later filter never changes an action an earlier match already set (false
 * included), while forward targets of every matching filter add up. Each match leaves a `filter:<id>` note.
 * The message body is parsed only when some filter asks about text or attachments.
 */
import type { Plugin, PluginApi } from '../hooks/host.ts';
import { DEFAULT } from '../hooks/stages.ts';
import type { DeliveryRequest, DeliveryRoute, MailboxRecord } from '../hooks/types.ts';
import type { Flag, Id } from '../storage/ports.ts';
import { listFilters } from '../storage/delivery-settings.ts';
import type { FilterAction, FilterQuery, StoredFilter } from '../storage/delivery-settings.ts';
import { decodeWords } from '../storage/mime/headers.ts';
import type { HeaderField } from '../storage/mime/headers.ts';
import { MimeSplitter } from '../storage/mime/splitter.ts';
import { SearchTextCollector } from '../storage/mime/search-text.ts';
import { hasAttachments } from '../storage/mime/ingest.ts';

export const FILTERS_PLUGIN = 'filters';

/** What filters look at: headers and size at once, text and attachments parsed on first use. */
export interface MessageFacts {
  readonly headers: readonly HeaderField[];
  /** Addresses the message was delivered to (count as "to"). */
  readonly deliveredTo: readonly string[];
  readonly size: number;
  body(): Promise<{ text: string; hasAttachment: boolean }>;
}

export function messageFacts(request: DeliveryRequest, textLimit: number, maxHtmlDepth?: number): MessageFacts {
  let parsed: Promise<{ text: string; hasAttachment: boolean }> | null = null;
  return {
    headers: request.headers,
    deliveredTo: [request.recipient.address, request.recipient.resolved],
    size: request.size,
    body: () =>
      (parsed ??= (async () => {
        const text = new SearchTextCollector(textLimit, maxHtmlDepth);
        const splitter = new MimeSplitter(text);
        for await (const chunk of request.open()) splitter.write(chunk);
        const root = splitter.end();
        return { text: text.bodyText(), hasAttachment: hasAttachments(root) };
      })()),
  };
}

const HEADER_KEYS: Record<'from' | 'to' | 'subject' | 'listId', readonly string[]> = {
  from: ['from', 'sender'],
  to: ['to', 'cc', 'delivered-to'],
  subject: ['subject'],
  listId: ['list-id'],
};

function normalize(value: string): string {
  return value.toLowerCase().replace(/\s+/g, ' ');
}

/** Words and "quoted phrases" of a text condition, lowercased. */
export function textTerms(text: string): string[] {
  const terms: string[] = [];
  for (const m of text.matchAll(/"([^"]*)"|(\S+)/g)) {
    const term = normalize((m[1] ?? m[2] ?? '').trim());
    if (term) terms.push(term);
  }
  return terms;
}

function headerMatches(facts: MessageFacts, key: keyof typeof HEADER_KEYS, term: string): boolean {
  let wanted = normalize(term);
  if (key === 'listId') wanted = /<([^>]+)/.exec(wanted)?.[1]?.trim() || wanted;
  const values = facts.headers.filter((h) => HEADER_KEYS[key].includes(h.key)).map((h) => decodeWords(h.value));
  if (key === 'to') values.push(...facts.deliveredTo);
  return values.some((value) => normalize(value).includes(wanted));
}

/** True when every condition of `query` holds for the message. */
export async function matchQuery(query: FilterQuery, facts: MessageFacts): Promise<boolean> {
  for (const key of ['from', 'to', 'subject', 'listId'] as const) {
    const term = query[key];
    if (term !== undefined && !headerMatches(facts, key, term)) return false;
  }
  if (query.size !== undefined) {
    if (query.size > 0 && facts.size < query.size) return false;
    if (query.size < 0 && facts.size > -query.size) return false;
  }
  if (query.ha !== undefined && (await facts.body()).hasAttachment !== query.ha) return false;
  if (query.text !== undefined) {
    const text = normalize((await facts.body()).text);
    if (!textTerms(query.text).every((term) => text.includes(term))) return false;
  }
  return true;
}

export interface FilterOutcome {
  /** Ids of the filters that matched, in order. */
  readonly matched: Id[];
  /** Each action as the first matching filter that set it decided. */
  readonly actions: Omit<FilterAction, 'targets'>;
  /** Forward targets of every matching filter, without repeats. */
  readonly targets: string[];
}

/** Runs the enabled filters in order. First match per action wins; targets add up. */
export async function evaluateFilters(filters: readonly StoredFilter[], facts: MessageFacts): Promise<FilterOutcome> {
  const matched: Id[] = [];
  const actions: Record<string, unknown> = {};
  const targets: string[] = [];
  for (const filter of filters) {
    if (filter.data.disabled || !(await matchQuery(filter.data.query, facts))) continue;
    matched.push(filter.id);
    for (const [key, value] of Object.entries(filter.data.action)) {
      if (value === undefined) continue;
      if (key === 'targets') {
        for (const target of value as string[]) if (!targets.includes(target)) targets.push(target);
      } else if (!(key in actions)) {
        actions[key] = value;
      }
    }
  }
  return { matched, actions: actions as FilterOutcome['actions'], targets };
}

/** The route after a filter outcome. `mailboxPath` is the target mailbox's path, already resolved (or null). */
export function applyOutcome(route: DeliveryRoute, outcome: FilterOutcome, mailboxPath: string | null): DeliveryRoute {
  if (outcome.matched.length === 0) return route;
  const { actions } = outcome;
  const flags: Flag[] = [...route.flags];
  const addFlag = (flag: Flag) => {
    if (!flags.includes(flag)) flags.push(flag);
  };
  if (actions.seen) addFlag('\\Seen');
  if (actions.flag) addFlag('\\Flagged');
  let next: DeliveryRoute = {
    ...route,
    flags,
    discard: route.discard || actions.delete === true,
    notes: [...route.notes, ...outcome.matched.map((id) => `filter:${id}`)],
  };
  if (actions.spam === false && next.spam) {
    // the user's filter overrules the scanner: back to the normal route
    next = { ...next, spam: false, specialUse: next.specialUse === '\\Junk' ? null : next.specialUse, autoreply: true };
  }
  if (mailboxPath !== null && !next.spam) next = { ...next, mailbox: mailboxPath, specialUse: null };
  if (actions.spam === true) next = { ...next, spam: true, specialUse: '\\Junk', autoreply: false, forward: [] };
  if (!next.spam && outcome.targets.length > 0) {
    next = { ...next, forward: [...next.forward, ...outcome.targets.filter((t) => !next.forward.includes(t))] };
  }
  return next;
}

type MailboxLookup = Pick<PluginApi['storage']['mailboxes'], 'get' | 'getByPath'>;

/** A filter's mailbox (an id of the user's mailbox, else a path) → its path; null when the user has no such mailbox. */
export async function resolveMailboxPath(mailboxes: MailboxLookup, userId: Id, value: string): Promise<string | null> {
  let box: MailboxRecord | null = null;
  try {
    box = await mailboxes.get(value);
  } catch {
    box = null; // not an id this backend understands
  }
  if (box && box.userId === userId) return box.path;
  box = await mailboxes.getByPath(userId, value);
  return box ? box.path : null;
}

export function createFiltersPlugin(): Plugin {
  return {
    name: FILTERS_PLUGIN,
    apply(api: PluginApi) {
      const textLimit = api.config.limits.searchTextLimit;
      api.hooks.delivery.route.tapPromise({ stage: DEFAULT }, async (route, ctx, request) => {
        const filters = await listFilters(api.storage.documents, request.recipient.userId);
        if (filters.length === 0) return route;
        const outcome = await evaluateFilters(filters, messageFacts(request, textLimit, api.config.limits.maxHtmlDepth));
        if (outcome.matched.length === 0) return route;
        let path: string | null = null;
        if (outcome.actions.mailbox !== undefined) {
          path = await resolveMailboxPath(api.storage.mailboxes, request.recipient.userId, outcome.actions.mailbox);
          if (path === null) ctx.log.warn('filter mailbox not found; delivering to INBOX', { mailbox: outcome.actions.mailbox });
        }
        ctx.log.debug('filters matched', { filters: outcome.matched });
        return applyOutcome(route, outcome, path);
      });
    },
  };
}
