/**
 * SORT (RFC 5256) and SORT=DISPLAY (RFC 5957) as a built-in plugin, loaded by default (`['imap-sort', false]` switches
 * it off), on the public hook API:
 *
 *   capabilities.for('imap')        announce SORT and SORT=DISPLAY
 *   imap.command.for('SORT')        parse the sort criteria and charset, run the built-in search on the selected
 *   imap.command.for('UID SORT')    mailbox (input.selected.search), sort the matches by keys read from stored data
 *                                   (storage/sort/sort.ts over messages.sortData: no message is parsed) and answer
 *
 *   C: A1 SORT (REVERSE DATE SUBJECT) UTF-8 SINCE 1-Feb-2024
 *   S: * SORT 5 3 4 1 2
 *   S: A1 OK SORT completed
 *
 * `* SORT` answers carry `(MODSEQ n)` when the search used MODSEQ (RFC 7162 §3.1.5). Sequence-number answers hold
 * other sessions' EXPUNGE responses back, as SEARCH does.
 *
 * For ESORT / CONTEXT=SORT (RFC 5267): `parseSortArgs` reads the arguments and `sortedMatches` returns the sorted
 * UIDs, so a plugin that answers `RETURN (...)` reuses both.
 */
import { definePlugin } from '../hooks/host.ts';
import type { PluginApi } from '../hooks/host.ts';
import type { HookContext } from '../hooks/context.ts';
import { imapInput, tokenText } from '../hooks/imap.ts';
import type { ImapCommandInput, ImapCommandResult, ImapSelectedMailbox, ImapToken } from '../hooks/imap.ts';
import type { StorageReader } from '../hooks/storage-reader.ts';
import { sortUids, SORT_KEYS } from '../storage/sort/sort.ts';
import type { SortCriterion, SortKeyName } from '../storage/sort/sort.ts';

export const IMAP_SORT_PLUGIN = 'imap-sort';

export interface SortArgs {
  criteria: SortCriterion[];
  /** The charset the search keys are written in. */
  charset: string;
  /** The search keys, as SEARCH takes them. */
  keys: ImapToken[];
}

/** `(sort-criteria) charset search-keys` → SortArgs, or the BAD result. */
export function parseSortArgs(args: unknown): SortArgs | ImapCommandResult {
  const tokens = Array.isArray(args) ? (args as ImapToken[]) : [];
  const list = tokens[0];
  if (!list || list.type !== 'list' || list.items.length === 0) return { status: 'BAD', text: 'SORT expects a list of sort criteria' };
  const criteria: SortCriterion[] = [];
  let reverse = false;
  for (const item of list.items) {
    const name = item.type === 'atom' ? item.value.toLowerCase() : '';
    if (name === 'reverse') {
      if (reverse) return { status: 'BAD', text: 'REVERSE twice' };
      reverse = true;
      continue;
    }
    if (!(SORT_KEYS as readonly string[]).includes(name)) return { status: 'BAD', text: `Unknown sort criterion ${tokenText(item) ?? ''}`.trim() };
    criteria.push({ key: name as SortKeyName, reverse });
    reverse = false;
  }
  if (reverse || criteria.length === 0) return { status: 'BAD', text: 'REVERSE must be followed by a sort key' };
  const charset = tokenText(tokens[1]);
  if (!charset || (tokens[1]!.type === 'atom' && (tokens[1]!.section || tokens[1]!.partial))) return { status: 'BAD', text: 'SORT expects a charset' };
  if (tokens.length < 3) return { status: 'BAD', text: 'SORT expects search criteria' };
  return { criteria, charset, keys: tokens.slice(2) };
}

/** The state check a new command does itself: BAD unless a mailbox is selected. */
export function selectedOrBad(ctx: HookContext, input: ImapCommandInput): ImapSelectedMailbox | ImapCommandResult {
  if (input.selected) return input.selected;
  return { status: 'BAD', text: ctx.session.user ? 'No mailbox selected' : 'Log in first' };
}

/** Runs the search of a SORT and sorts its matches: UIDs in sort order, with the search's highest modseq. */
export async function sortedMatches(
  storage: Pick<StorageReader, 'messages'>,
  selected: ImapSelectedMailbox,
  sort: SortArgs,
): Promise<{ status: 'OK'; uids: number[]; highestModseq: number | null } | ImapCommandResult> {
  const found = await selected.search(sort.keys, sort.charset);
  if (!('uids' in found)) return found;
  return { status: 'OK', uids: await sortUids(storage.messages, selected.mailboxId, found.uids, sort.criteria), highestModseq: found.highestModseq };
}

export const imapSortPlugin = definePlugin({
  description: 'IMAP SORT and SORT=DISPLAY (RFC 5256, 5957): sorted search results from stored envelope data (loaded by default)',
  create() {
    return {
      name: IMAP_SORT_PLUGIN,
      apply(api: PluginApi) {
        api.hooks.capabilities.for('imap').tap(IMAP_SORT_PLUGIN, (caps) => [...caps, 'SORT', 'SORT=DISPLAY']);
        for (const uid of [false, true]) {
          const verb = uid ? 'UID SORT' : 'SORT';
          api.hooks.imap.command.for(verb).tapPromise(IMAP_SORT_PLUGIN, async (ctx, raw): Promise<ImapCommandResult> => {
            const input = imapInput(raw);
            const selected = selectedOrBad(ctx, input);
            if (!('search' in selected)) return selected;
            const sort = parseSortArgs(input.args);
            if (!('criteria' in sort)) return sort;
            const sorted = await sortedMatches(api.storage, selected, sort);
            if (!('uids' in sorted)) return sorted;
            const numbers = uid ? sorted.uids : sorted.uids.map((u) => selected.seqOf(u));
            const modseq = sorted.highestModseq !== null && numbers.length > 0 ? ` (MODSEQ ${sorted.highestModseq})` : '';
            return { untagged: [`* SORT${numbers.map((n) => ` ${n}`).join('')}${modseq}`], text: `${verb} completed`, expunge: uid };
          });
        }
      },
    };
  },
});

/** The plugin as protocols/app.ts loads it by default. */
export function createImapSortPlugin() {
  return imapSortPlugin.create({});
}
